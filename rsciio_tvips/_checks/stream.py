"""The checks over every frame header, fed block by block in frame order."""

from __future__ import annotations

import numpy as np

from .._format.layout import (
    MAX_POSITION,
    MS_PER_S,
    field_offset,
    float_field,
    frame_times_ms,
)
from ..exceptions import Finding
from .opening import counter_joins

#: A frame interval this many times the median is reported as a pause.
PAUSE_FACTOR = 10
#: Earliest plausible frame time: 2000-01-01 UTC (unix seconds).
EARLIEST_TIME = 946_684_800
#: Frame headers read at a time by :func:`frame_stream`.
BLOCK = 2**18
#: The median frame interval is that of the first this many intervals (the
#: first block's).
MEDIAN_INTERVALS = BLOCK - 1
#: Most rotator indices a stream of unknown length keeps to judge at the end
#: (16 bytes each). Only a recording whose index runs far ahead of its
#: frames reaches it (garbage in the field, as 0xFFFFFFFF in every frame):
#: past it, the largest half go, summed up (see :class:`FrameStream`).
ROTATOR_KEPT = 2**20
#: The rotator indices kept are pruned of those the bound has passed every
#: this many blocks.
ROTATOR_PRUNE_BLOCKS = 64


STREAM_KINDS = {
    "counter gap": ("num", "warning", "frame counter skips: frames dropped"),
    "counter reset": ("num", "warning", "frame counter does not increase"),
    "ms": ("ms", "warning", "milliseconds out of range"),
    "clock": ("timestamp", "info", "the camera clock was not set?"),
    "time reversal": ("timestamp", "warning", "frame earlier than the one before"),
    "rotidx": ("rotidx", "warning", "rotator index beyond any scan"),
    "Scan_x": ("Scan_x", "warning", "beam position not usable"),
    "Scan_y": ("Scan_y", "warning", "beam position not usable"),
}


class FrameStream:
    """Checks over every frame header, fed block by block in frame order.

    Parameters
    ----------
    n_frames : int or None
        Frames in the recording (bounds the plausible rotator index). None
        for a recording still being written (``tvips watch``): the bound is
        then judged at the end, against the frames fed, so that the verdict
        is the one for the finished recording. The frames that might break
        it are kept until then: those whose index is beyond the bound for
        the frames fed so far (none, in a sound recording), at most
        :data:`ROTATOR_KEPT` of them (and a block): past that, the half with
        the largest indices go, and only their count, earliest frame and
        largest index stay. The verdict is then still the one for the
        finished recording unless the indices that went lie on both sides
        of the final bound (an index more than :data:`ROTATOR_KEPT` frames
        ahead that the frames catch up with): then the count is an upper
        bound, and the index shown the largest.
    skip : set of int, optional
        Frames whose counter :func:`~.opening.boundary_defects` compares
        (see :func:`~.opening.counter_joins`): a jump there is reported
        once, as a part boundary.

    Notes
    -----
    Memory does not grow with the recording: each kind keeps its count and
    first occurrence, and the median frame interval comes from the first
    :data:`MEDIAN_INTERVALS` intervals, however they are cut into blocks
    (the findings are the same for any cut). Ask for :meth:`findings` and
    :meth:`summary` once every block is fed.
    """

    def __init__(self, n_frames: int, skip=frozenset()):
        self.n_frames = n_frames
        self.skip = np.array(sorted(skip), dtype=np.int64)
        self.counts = {}  # kind -> [count, first frame, expected, found]
        self.median = None  # median positive interval, for pauses
        self.interval = None  # median interval, for the summary
        self.pause = None  # [count, first frame, interval]
        self.stats = {"gaps": 0, "missing": 0, "resets": 0, "reversals": 0}
        self.t_first = self.t_last = None
        self.prev = None  # last header of the previous block
        self.fed = 0
        self._rot_frames, self._rot_values = [], []  # n_frames None: candidates
        self._rot_count = 0  # frames in them
        self._rot_gone = None  # _Gone: the candidates that did not stay
        self._early = []  # (frames, intervals) until the median is taken
        self._early_count = 0

    def _note(self, kind, frames, expected, found) -> None:
        if frames.size == 0:
            return
        entry = self.counts.setdefault(
            kind, [0, int(frames[0]), str(expected[0]), str(found[0])]
        )
        entry[0] += int(frames.size)

    def feed(self, headers: np.ndarray) -> None:
        """Check the next block of frame headers (those after the last fed)."""
        if headers.size == 0:
            return
        lo = self.fed
        names = headers.dtype.names
        # one frame of overlap, so that differences across blocks are seen
        h = headers if self.prev is None else np.concatenate([self.prev, headers])
        base = lo - (h.size - headers.size)
        frames = np.arange(base, base + h.size)
        new = frames >= lo  # per-frame checks count each frame once
        if "num" in names:
            self._counter(h["num"].astype(np.int64), frames)
        if {"timestamp", "ms"} <= set(names):
            self._times(h, frames, new)
        if "rotidx" in names:
            rot = h["rotidx"].astype(np.int64)
            n = self.n_frames if self.n_frames is not None else self.fed + headers.size
            big = np.flatnonzero(new & (rot > rotator_bound(n)))
            if self.n_frames is None:  # judged at the end: the bound grows
                self._keep_rotator(frames[big], rot[big], n)
            else:
                self._note("rotidx", frames[big], [f"at most ~{n}"], rot[big])
        for field in ("Scan_x", "Scan_y"):
            if field in names:
                v = float_field(h, field)
                odd = ~np.isfinite(v) | (v < 0) | (v > MAX_POSITION)
                odd = np.flatnonzero(new & odd)
                self._note(field, frames[odd], ["a finite position >= 0"], v[odd])
        self.prev = headers[-1:]
        self.fed += headers.size

    def _counter(self, num, frames) -> None:
        dn = np.diff(num)
        self.stats["gaps"] += int((dn > 1).sum())
        self.stats["missing"] += int((dn[dn > 1] - 1).sum())
        self.stats["resets"] += int((dn <= 0).sum())
        odd = (dn > 1) | (dn <= 0)
        odd &= ~np.isin(frames[1:], self.skip)
        gap = np.flatnonzero(odd & (dn > 1))
        back = np.flatnonzero(odd & (dn <= 0))
        self._note("counter gap", frames[gap + 1], num[gap] + 1, num[gap + 1])
        self._note("counter reset", frames[back + 1], num[back] + 1, num[back + 1])

    def _times(self, h, frames, new) -> None:
        sec = h["timestamp"].astype(np.int64)
        ms = h["ms"].astype(np.int64)
        bad_ms = np.flatnonzero(new & (ms >= MS_PER_S))
        self._note("ms", frames[bad_ms], [f"0 to {MS_PER_S - 1}"], ms[bad_ms])
        early = np.flatnonzero(new & (sec < EARLIEST_TIME))
        self._note("clock", frames[early], ["a time after 2000"], sec[early])
        t = frame_times_ms(h)
        if self.t_first is None:
            self.t_first = int(t[0])
        self.t_last = int(t[-1])
        dt = np.diff(t)
        rev = np.flatnonzero(dt < 0)
        self.stats["reversals"] += int(rev.size)
        self._note("time reversal", frames[rev + 1], t[rev], t[rev + 1])
        if self._early is None:
            self._pauses(frames[1:], dt)
            return
        # the median interval is that of the first MEDIAN_INTERVALS, however
        # the headers come: a watcher fed a few frames at a time finds what
        # validate finds
        self._early.append((frames[1:], dt))
        self._early_count += dt.size
        if self._early_count >= MEDIAN_INTERVALS:
            self._settle()

    def _keep_rotator(self, frames, values, n: int) -> None:
        """Keep the rotator indices beyond the bound of ``n`` frames, for the end.

        Every :data:`ROTATOR_PRUNE_BLOCKS` blocks, or past
        :data:`ROTATOR_KEPT` kept, those the bound has passed since go; if
        still more than :data:`ROTATOR_KEPT` are left, the largest go down
        to half of it (half of it away from the next time: each index is
        looked at a few times, not once per block), summed up in
        ``_rot_gone``.
        """
        self._rot_frames.append(frames)
        self._rot_values.append(values)
        self._rot_count += frames.size
        if (
            len(self._rot_frames) <= ROTATOR_PRUNE_BLOCKS
            and self._rot_count <= ROTATOR_KEPT
        ):
            return
        frames = np.concatenate(self._rot_frames)
        values = np.concatenate(self._rot_values)
        keep = values > rotator_bound(n)
        if keep.sum() > ROTATOR_KEPT:
            # the largest are the likeliest to stay beyond the bound
            room = ROTATOR_KEPT // 2
            beyond = np.flatnonzero(keep)
            out = beyond[np.argpartition(values[beyond], room)[room:]]
            out.sort()
            if self._rot_gone is None:
                self._rot_gone = _Gone()
            self._rot_gone.add(frames[out], values[out])
            keep[out] = False
        self._rot_frames, self._rot_values = [frames[keep]], [values[keep]]
        self._rot_count = int(keep.sum())

    def _judge_rotator(self) -> None:
        """Judge the rotator indices kept against the frames fed (n_frames None).

        The candidates stay: judged again (after more frames, or for both
        :meth:`summary` and :meth:`findings`), the verdict is that of every
        frame fed.
        """
        if self.n_frames is not None:
            return
        bound = rotator_bound(self.fed)
        frames = np.concatenate([np.zeros(0, np.int64), *self._rot_frames])
        rot = np.concatenate([np.zeros(0, np.int64), *self._rot_values])
        self._rot_frames, self._rot_values = [frames], [rot]
        big = rot > bound
        frames, rot = frames[big], rot[big]
        gone = self._rot_gone
        more = 0
        if gone is not None and gone.most[1] > bound:  # some of them are beyond
            shown = gone.first if gone.first[1] > bound else gone.most
            at = int(np.searchsorted(frames, shown[0]))
            frames = np.insert(frames, at, shown[0])
            rot = np.insert(rot, at, shown[1])
            more = gone.count - 1
        self.counts.pop("rotidx", None)
        self._note("rotidx", frames, [f"at most ~{self.fed}"], rot)
        if more:
            self.counts["rotidx"][0] += more

    def _settle(self) -> None:
        """Take the median interval from the first intervals, and check them."""
        if self._early is None:
            return
        early, self._early = self._early, None
        if not early:
            return
        after = np.concatenate([f for f, _ in early])
        dt = np.concatenate([d for _, d in early])
        base = dt[:MEDIAN_INTERVALS]
        if base.size:
            self.interval = float(np.median(base))
        if (base > 0).any():
            self.median = float(np.median(base[base > 0]))
        self._pauses(after, dt)

    def _pauses(self, after, dt) -> None:
        """Count the intervals ``dt`` (ending at frames ``after``) that are pauses."""
        if self.median is None and (dt > 0).any():
            self.median = float(np.median(dt[dt > 0]))
        if self.median:
            long = np.flatnonzero(dt > PAUSE_FACTOR * self.median)
            if long.size and self.pause is None:
                self.pause = [0, int(after[long[0]]), int(dt[long[0]])]
            if long.size:
                self.pause[0] += int(long.size)

    def finding(self, kind: str, locate) -> Finding:
        """Return the finding of one kind of defect seen so far.

        Parameters
        ----------
        kind : str
            A key of :data:`STREAM_KINDS` that :attr:`counts` holds.
        locate : callable
            As for :meth:`findings`.
        """
        count, frame, expected, found = self.counts[kind]
        field, severity, what = STREAM_KINDS[kind]
        part, offset = locate(frame)
        return Finding(
            severity, part.name, offset + field_offset(field), field, expected,
            found, f"{what}; first at frame {frame}, {count} frame(s)",
        )  # fmt: skip

    def summary(self) -> dict:
        """Return the counts: ``original_metadata.Diagnostics``.

        Returns
        -------
        dict
            ``counter_gaps`` (places where the counter jumps by more than
            1), ``counter_missing`` (frames those jumps skip),
            ``counter_resets`` (places where it does not increase),
            ``time_reversals`` (frames earlier than the one before),
            ``frame_interval_ms`` (median, of the first
            :data:`MEDIAN_INTERVALS`),
            ``frame_rate`` (frames per second from it, 0 if unknown),
            ``duration_s`` (last frame time minus first).
        """
        self._settle()
        self._judge_rotator()
        interval = self.interval or 0.0
        span = 0 if self.t_first is None else self.t_last - self.t_first
        return {
            "counter_gaps": self.stats["gaps"],
            "counter_missing": self.stats["missing"],
            "counter_resets": self.stats["resets"],
            "time_reversals": self.stats["reversals"],
            "frame_interval_ms": interval,
            "frame_rate": MS_PER_S / interval if interval > 0 else 0.0,
            "duration_s": float(span) / MS_PER_S,
        }

    def findings(self, locate) -> list[Finding]:
        """Return one finding per kind of defect seen.

        Parameters
        ----------
        locate : callable
            Frame number -> ``(part, file offset of its record)``.
        """
        self._settle()
        self._judge_rotator()
        # in the table's order, not the order seen: the same for any blocks
        out = [self.finding(k, locate) for k in STREAM_KINDS if k in self.counts]
        if self.pause is not None:
            count, frame, interval = self.pause
            part, offset = locate(frame)
            out.append(
                Finding(
                    "info", part.name, offset + field_offset("timestamp"),
                    "timestamp",
                    f"about {self.median:g} ms after the frame before (median "
                    "interval)",
                    f"{interval} ms",
                    f"a pause in the acquisition; first at frame {frame}, "
                    f"{count} pause(s)",
                )
            )  # fmt: skip
        return out


class _Gone:
    """The rotator indices a stream of unknown length did not keep, summed up.

    Their count, and the (frame, index) of the earliest frame and of the
    largest index (its earliest frame).
    """

    def __init__(self):
        self.count = 0
        self.first = self.most = (np.inf, -1)

    def add(self, frames: np.ndarray, values: np.ndarray) -> None:
        """Count the indices ``values`` of ``frames`` (in order) in."""
        self.count += int(frames.size)
        self.first = min(self.first, (int(frames[0]), int(values[0])))
        i = int(np.argmax(values))
        most = (int(frames[i]), int(values[i]))
        if most[1] > self.most[1] or (most[1] == self.most[1] and most < self.most):
            self.most = most


def rotator_bound(n_frames: int) -> int:
    """Return the highest rotator index plausible in a recording of ``n_frames``."""
    return n_frames * 4 + 16


def frame_stream(
    rec, block: int | None = None, progress=None, watch=None
) -> FrameStream:
    """Run :class:`FrameStream` over every frame header of an open recording.

    The decoded fields are read in blocks of :data:`BLOCK` frames, so that
    memory grows neither with the recording nor with its header size.

    Parameters
    ----------
    rec : TvipsRecording
        The recording.
    block : int, optional
        Frames per block (default :data:`BLOCK`).
    progress : callable, optional
        Called as ``progress(done, total)`` after each block checked.
    watch : callable, optional
        Called as ``watch(start, fields)`` with each block, for a caller
        that summarises the headers in the same pass (``tvips info``).

    Returns
    -------
    FrameStream
        Fed with every frame: ask it for ``findings`` or a ``summary``.
    """
    joins = counter_joins(rec.records, rec.read_header_fields)
    stream = FrameStream(rec.n_frames, joins)
    for start, fields in rec.header_field_blocks(block=block or BLOCK):
        stream.feed(fields)
        if watch is not None:
            watch(start, fields)
        if progress is not None:
            progress(start + fields.size, rec.n_frames)
    return stream


def stream_findings(rec, stream: FrameStream) -> list[Finding]:
    """Return a fed stream's findings, located in the recording's files."""
    return stream.findings(rec.records.locate)
