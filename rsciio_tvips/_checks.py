"""Every check of a recording, one function per defect, behind one policy.

Each check returns :class:`~rsciio_tvips.exceptions.Defect` objects: the
:class:`~rsciio_tvips.exceptions.Finding` that :func:`rsciio_tvips.validate`
lists and the sentence the reader raises or warns. A :class:`Report` applies
the policy (mrcfile's model: one implementation behind strict reading,
permissive reading and the validator):

1. ``fatal``: raised as :class:`TvipsFormatError` (no frame can be read);
2. ``error``: raised when strict; warned, with what is done instead, when
   permissive;
3. ``warning``: warned (the data can be read, with a defect);
4. ``info``: only collected (unusual, not a defect).

The checks that run when a recording is opened (:func:`chain_defects`, the
main header's :func:`~rsciio_tvips._format.header.header_defects`,
:func:`size_defects`, :func:`boundary_defects`) read at most a few frame
headers. :class:`FrameStream` checks every frame header, block by block;
the validator and ``tvips info`` run it, and its counts are the reader's
``original_metadata.Diagnostics``. This module imports only the format
layer: the reader hands it a function that reads frame headers.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._format.layout import (
    FIRST_PART_NUMBER,
    MAIN_HEADER_SIZE,
    MAX_POSITION,
    MS_PER_S,
    field_offset,
    frame_times_ms,
    part_name,
)
from .exceptions import SEVERITIES, Defect, Finding, TvipsFormatError, warn

#: A frame interval this many times the median is reported as a pause.
PAUSE_FACTOR = 10
#: Earliest plausible frame time: 2000-01-01 UTC (unix seconds).
EARLIEST_TIME = 946_684_800
#: Frame headers read at a time by :func:`check_frames`.
BLOCK = 2**18


class Report:
    """Collect the defects of one recording and apply the policy to them.

    Parameters
    ----------
    permissive : bool, default False
        Warn about ``error`` defects instead of raising them.
    quiet : bool, default False
        Collect only: warn nothing (the validator, ``tvips info``).

    Attributes
    ----------
    findings : list of Finding
        Every defect added, in order (including ``info`` remarks).
    """

    def __init__(self, permissive: bool = False, quiet: bool = False):
        self.permissive = permissive
        self.quiet = quiet
        self.findings: list[Finding] = []

    def add(self, defects) -> None:
        """Record defects in order; raise or warn each as the policy says.

        Raises
        ------
        TvipsFormatError
            For the first ``fatal`` defect, or ``error`` when strict; its
            ``findings`` are those collected so far.
        """
        defects = list(defects)
        # every defect of one check is listed, even past the one raised: the
        # validator shows all the bad fields of a main header at once
        self.findings.extend(d.finding for d in defects)
        for defect in defects:
            severity = defect.finding.severity
            if severity == "fatal" or (severity == "error" and not self.permissive):
                raise TvipsFormatError(defect.message, findings=self.findings)
            if self.quiet or severity == "info":
                continue
            text = defect.message
            if severity == "error" and defect.workaround:
                text = f"{text}; {defect.workaround}"
            warn(text)

    @property
    def problems(self) -> list[Finding]:
        """The findings that are defects (everything but ``info``)."""
        return [f for f in self.findings if f.severity != "info"]


def worst_first(findings) -> list[Finding]:
    """Return findings sorted by severity (``fatal`` first), stable otherwise."""
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])


# --- checks made when a recording is opened ----------------------------------


def usable_last_part(near) -> int:
    """Return the number of the last part before the first missing one."""
    last = FIRST_PART_NUMBER
    while last + 1 in near.found:
        last += 1
    return last


def chain_defects(near, ext: str) -> list[Defect]:
    """Check the part chain: files claiming one number, missing parts, others.

    Parameters
    ----------
    near : Siblings
        What :func:`~rsciio_tvips._format.parts.siblings` found.
    ext : str
        Extension of the file opened, to name missing parts alike.

    Returns
    -------
    list of Defect
        ``error`` for each part number claimed by two files; for each missing
        part, ``fatal`` if it is the first (it holds the main header) and
        ``error`` otherwise; ``info`` for other recordings in the folder.
    """
    stem, found = near.stem, near.found
    out = []
    for number, kept, dropped in near.duplicates:
        finding = Finding(
            "error", dropped.name, None, "part chain", f"one file for part {number}",
            f"{kept.name} and {dropped.name}", f"permissive=True reads {kept.name}",
        )  # fmt: skip
        message = (
            f"{dropped.name}: two files claim part {number} of recording "
            f"{stem!r}: {kept.name} and {dropped.name}"
        )
        out.append(Defect(finding, message, f"{kept.name} is read"))
    last = max(found)
    missing = [n for n in range(FIRST_PART_NUMBER, last) if n not in found]
    for number in missing:
        fatal = number == FIRST_PART_NUMBER
        name = part_name(stem, number, ext)
        finding = Finding(
            "fatal" if fatal else "error", name, None, "part chain",
            f"part {number} of {stem!r} (parts up to {last} exist)", "no such file",
            "it holds the main header" if fatal
            else "permissive=True reads the parts before it",
        )  # fmt: skip
        message = (
            f"{name}: part {number} of the recording is missing (found parts up "
            f"to {part_name(stem, last, ext)}, {len(missing)} missing)"
        )
        workaround = ""
        if number == missing[0]:
            ignored = ", ".join(found[n].name for n in sorted(found) if n > number)
            workaround = f"the parts before it are read, {ignored} ignored"
        out.append(Defect(finding, message, workaround))
    if near.others:
        shown = ", ".join(near.others[:5]) + (", ..." if len(near.others) > 5 else "")
        first = found.get(FIRST_PART_NUMBER) or found[min(found)]
        finding = Finding(
            "info", first.name, None, "folder", f"only parts of {stem!r}",
            f"{len(near.others)} other part files ({shown})",
            "other recordings, not read with this one",
        )  # fmt: skip
        out.append(Defect(finding, f"{first.name}: {finding.found}"))
    return out


def size_defects(chain, header) -> list[Defect]:
    """Check that whole frame records follow the main header, and the end.

    Returns
    -------
    list of Defect
        ``fatal`` when not one whole record follows the main header;
        ``warning`` when the last record is incomplete (its bytes are
        ignored).
    """
    record = header.record_size
    n_frames, leftover = divmod(chain.nbytes, record)
    first = chain.first.name
    if n_frames == 0:
        h = header
        expected = (
            f"at least {record} bytes (frame header {h.frame_header_bytes} + "
            f"{h.shape[0]} x {h.shape[1]} pixels of {h.pixel_dtype.itemsize} bytes)"
        )
        found = f"{chain.nbytes} in {len(chain.parts)} part(s)"
        finding = Finding(
            "fatal", first, MAIN_HEADER_SIZE, "frame record", expected, found,
            "no whole frame record after the main header",
        )  # fmt: skip
        message = (
            f"{first}: no whole frame record after the main header at offset "
            f"{MAIN_HEADER_SIZE}: expected {expected}, found {found}"
        )
        return [Defect(finding, message)]
    if not leftover:
        return []
    part, offset = chain.locate(n_frames * record)
    finding = Finding(
        "warning", part.name, offset, "frame record", f"{record} bytes",
        f"{leftover}", f"truncated last record: {n_frames} whole frames are read",
    )  # fmt: skip
    message = (
        f"{part.name}: frame record {n_frames} at offset {offset} is truncated: "
        f"expected {record} bytes, found {leftover}; the {leftover} bytes are "
        f"ignored and {n_frames} whole frames are read (interrupted acquisition?)"
    )
    return [Defect(finding, message)]


def _counting(header, n_frames: int, read_headers) -> bool:
    """Whether the frame counter counts up, judged at both ends of the recording.

    Two pairs of neighbouring frames, at the start and at the end, so that a
    loss inside the first part does not hide itself.
    """
    if "num" not in header.frame_header_dtype.names or n_frames < 2:
        return False
    n = n_frames
    num = read_headers([0, 1, n - 2, n - 1])["num"].astype(np.int64)
    return bool(num[1] == num[0] + 1 or num[3] == num[2] + 1)


def boundary_frames(chain, record_size: int, n_frames: int) -> set[int]:
    """Return the frames that start a part (after the first): where parts join."""
    return {f for f in chain.first_frames(record_size)[1:] if 0 < f < n_frames}


def boundary_defects(chain, header, n_frames: int, read_headers) -> list[Defect]:
    """Check where parts join, for a part that looks cut short.

    A part that lost bytes (an interrupted copy) shifts every later frame.
    Two signs of it, both cheap:

    1. the frame counter, where it counts up from frame to frame, jumps at
       the start of the next part;
    2. where there is no such counter: acquisition software caps every part
       at one size, so every part but the last holds within one record (and
       the main header) as many bytes of frames as the largest, and never
       none at all.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        Its main header.
    n_frames : int
        Whole frames in the recording.
    read_headers : callable
        Reads the frame headers of a list of frame numbers.

    Returns
    -------
    list of Defect
        One ``warning`` per suspect boundary, naming the part before it (an
        empty one if any ends there) at its end; ``info`` for an empty last
        part, and for an empty part the frame counter runs across.
    """
    parts = chain.parts
    record = header.record_size
    if len(parts) < 2:
        return []
    out = []
    largest = max(p.length for p in parts[:-1])
    counting = _counting(header, n_frames, read_headers)
    firsts = chain.first_frames(record)
    for k, (part, following) in enumerate(itertools.pairwise(parts)):
        frame = firsts[k + 1]
        if following.length == 0 or frame >= n_frames:
            # the join is the next part's (an empty part ends where it starts),
            # or no whole frame follows it: nothing shifted
            continue
        jump = None
        checked = counting and 0 < frame
        if checked:
            num = read_headers([frame - 1, frame])["num"].astype(np.int64)
            if num[1] != num[0] + 1:
                jump = (int(num[0]), int(num[1]))
        empty = part.length == 0
        # the sizes speak only where no counter does: some writers split parts
        # at odd sizes, and a counter that runs on proves nothing was lost
        short = not checked and (
            empty or part.length < largest - record - MAIN_HEADER_SIZE
        )
        if jump is None and not short:
            if empty:
                out.append(_empty_part(part, "info", "the frame counter runs on"))
            continue
        out.append(_boundary_defect(part, following, largest, jump))
    last = parts[-1]
    if last.length == 0:
        # the recorder opens the next part when one is full: an acquisition
        # that stops then leaves it empty, and nothing can be told lost
        out.append(_empty_part(last, "info", "the last part"))
    return out


def _empty_part(part, severity: str, detail: str) -> Defect:
    finding = Finding(
        severity, part.name, 0, "part size", "frame records", "an empty file", detail
    )
    message = f"{part.name}: the part is an empty file at offset 0 ({detail})"
    return Defect(finding, message)


def _boundary_defect(part, following, largest: int, jump) -> Defect:
    if jump is not None:
        expected = f"frame counter {jump[0] + 1} at the start of {following.name}"
        found = str(jump[1])
    else:
        expected = f"about {largest} bytes of frames, like the other parts"
        found = f"{part.length} bytes" if part.length else "no frame bytes"
    finding = Finding(
        "warning", part.name, part.size, "part boundary", expected, found,
        "the part may have lost bytes: every frame after it is shifted",
    )  # fmt: skip
    message = f"{part.name} at offset {part.size} (its end): "
    if part.length == 0:
        message += "the part holds no frame bytes, yet frames follow it; "
    elif jump is None:
        message += (
            f"the part holds {part.length} bytes of frames, far fewer than the "
            f"others ({largest}); "
        )
    if jump is not None:
        message += (
            f"the frame counter jumps from {jump[0]} to {jump[1]} at the start of "
            f"{following.name}; "
        )
    message += "if the part lost bytes, every frame after it is shifted"
    return Defect(finding, message)


# --- checks over every frame header --------------------------------------------

#: Kinds of frame-header defect: (field, severity, what it means).
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
    n_frames : int
        Frames in the recording (bounds the plausible rotator index).
    skip : set of int, optional
        Frames whose counter :func:`boundary_defects` owns (the first frame
        of each part): a jump there is reported once, as a part boundary.

    Notes
    -----
    Memory does not grow with the recording: each kind keeps its count and
    first occurrence, and the median frame interval comes from the first
    block fed.
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
            big = np.flatnonzero(new & (rot > self.n_frames * 4 + 16))
            self._note("rotidx", frames[big], [f"at most ~{self.n_frames}"], rot[big])
        for field in ("Scan_x", "Scan_y"):
            if field in names:
                v = h[field].astype(np.float64)
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
        if self.interval is None and dt.size:
            self.interval = float(np.median(dt))
        if self.median is None and (dt > 0).any():
            self.median = float(np.median(dt[dt > 0]))
        if self.median:
            long = np.flatnonzero(dt > PAUSE_FACTOR * self.median)
            if long.size and self.pause is None:
                self.pause = [0, int(frames[long[0] + 1]), int(dt[long[0]])]
            if long.size:
                self.pause[0] += int(long.size)

    def summary(self) -> dict:
        """Return the counts: ``original_metadata.Diagnostics``.

        Returns
        -------
        dict
            ``counter_gaps`` (places where the counter jumps by more than
            1), ``counter_missing`` (frames those jumps skip),
            ``counter_resets`` (places where it does not increase),
            ``time_reversals`` (frames earlier than the one before),
            ``frame_interval_ms`` (median, of the first block),
            ``frame_rate`` (frames per second from it, 0 if unknown),
            ``duration_s`` (last frame time minus first).
        """
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
        out = []
        for kind, (count, frame, expected, found) in self.counts.items():
            field, severity, what = STREAM_KINDS[kind]
            part, offset = locate(frame)
            out.append(
                Finding(
                    severity, part.name, offset + field_offset(field), field,
                    expected, found,
                    f"{what}; first at frame {frame}, {count} frame(s)",
                )
            )  # fmt: skip
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


def frame_stream(rec, headers=None, block: int | None = None) -> FrameStream:
    """Run :class:`FrameStream` over every frame header of an open recording.

    Parameters
    ----------
    rec : TvipsRecording
        The recording.
    headers : numpy.ndarray, optional
        Every frame header, when the caller holds them already; else they are
        read in blocks of :data:`BLOCK` frames.
    block : int, optional
        Frames per block (default :data:`BLOCK`).

    Returns
    -------
    FrameStream
        Fed with every frame: ask it for ``findings`` or a ``summary``.
    """
    record = rec.header.record_size
    stream = FrameStream(rec.n_frames, boundary_frames(rec.chain, record, rec.n_frames))
    if headers is not None:
        stream.feed(headers)
        return stream
    block = block or BLOCK
    for start in range(0, rec.n_frames, block):
        stop = min(rec.n_frames, start + block)
        stream.feed(rec.read_headers(np.arange(start, stop)))
    return stream


def stream_findings(rec, stream: FrameStream) -> list[Finding]:
    """Return a fed stream's findings, located in the recording's files."""
    record = rec.header.record_size
    return stream.findings(lambda frame: rec.chain.locate(frame * record))


def frame_summary(headers, n_frames: int | None = None) -> dict:
    """Return the counter and time counts of frame headers (``Diagnostics``)."""
    stream = FrameStream(len(headers) if n_frames is None else n_frames)
    stream.feed(headers)
    return stream.summary()
