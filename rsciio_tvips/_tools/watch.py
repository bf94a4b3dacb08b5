"""Watch an acquisition as it is written: the ``tvips watch`` command.

:class:`Watch` follows a recording (:class:`~rsciio_tvips._reading.follow.Follower`)
and, for every block of frames that arrives, once:

1. feeds the frame headers to the checks ``tvips validate`` runs
   (:class:`~rsciio_tvips._checks.FrameStream`), and says each kind of
   problem on stderr the first time it is seen (dropped frames from the
   counter, time reversals ...), as it says a part that stopped short when
   the next part appears (the checks of opening, run again at each look);
2. feeds the frames to a :class:`~.live.LiveView`, which the picture
   (``-o``) is drawn from every ``every`` seconds, in a process of its own
   (:class:`~.drawer.Drawer`): the frames do not wait for a picture being
   drawn.

A status line on stderr says, at least once a second on a terminal
(``2640 frames 121/s 1.0 MB/s, 0 dropped, last 0.1 s ago, demo_003.tvips
66.3 GiB free``; a line every few seconds elsewhere): the frames so far,
the frames/s and MB/s the recording grew at over the last seconds, the
frames dropped (the counter's gaps), the seconds since the last frame, the part being
written and the free space on its disk (said once as a problem when it
would last under :data:`DISK_LOW_SECONDS` at the current rate, or is under
:data:`DISK_LOW_BYTES`).

It ends when the recording has not grown for ``idle`` seconds, or on
Ctrl-C, and returns what ``tvips validate`` would find, from the same
checks fed with the same headers (nothing is read twice).
"""

from __future__ import annotations

import collections
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._checks import counter_joins, joins_key
from .._checks.stream import FrameStream
from .._progress import Status, duration, rate
from .._reading import follow as _follow
from .._reading.follow import Follower
from .._reading.lazy import check_io
from .._validate import changed_finding, recording_findings, status, system_finding
from ..exceptions import Finding, TvipsFormatError
from .drawer import Drawer, DrawerStopped
from .live import LiveView, Placement

#: Default seconds between two pictures (and without growth before the end:
#: follow()'s).
EVERY_SECONDS = 2.0
IDLE_SECONDS = _follow.IDLE_SECONDS
#: A disk is about to fill when its free space lasts less than this at the
#: current write rate ...
DISK_LOW_SECONDS = 60.0
#: ... or when less than this is left.
DISK_LOW_BYTES = 2**30
#: Seconds over which frames/s and MB/s are measured.
RATE_WINDOW = 2.0
#: Seconds between two looks at the free space of the disk.
DISK_SECONDS = 1.0
#: Seconds to the next look after one that found frames (the lag it adds).
BUSY_POLL_SECONDS = 0.02
#: Seconds the last picture is waited for, at the end.
LAST_PICTURE_SECONDS = 30.0
#: Bytes of frames taken in at a time: a block is taken in as soon as it is
#: whole (a lag of 0.25 s against 0.5 s with 64 MiB, at the same CPU time,
#: measured behind a writer; benchmarks/watch_lag.py).
BLOCK_BYTES = 16 * 2**20


class Watch:
    """Follow one recording being written, and say what is seen.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording, or its name; it need not exist yet.
    out : str or os.PathLike, optional
        The picture to rewrite every ``every`` seconds (its extension says
        the format, as for ``tvips preview``).
    every : float, optional
        Seconds between two pictures.
    idle : float, optional
        Seconds without growth after which the recording is finished (and
        how long its first frame is waited for).
    scan : dict, optional
        The reader options that make the frames a scan (``scan_shape``,
        ``scan_start_frame``, ``winding_scan_axis``, ``hysteresis``,
        ``scan_method``; see :func:`placement_for`); None for a movie.
    signed : bool, default False
        Read 16-bit pixels as int16.
    io : {"pread", "mmap"}, default "pread"
        How frames are read (see :func:`rsciio_tvips.follow`).
    stream : file, optional
        Where the status line and the problems go (default stderr).
    quiet : bool, default False
        No status line (the problems are still said).
    clock, sleep : callable, optional
        The time and the wait (tests pass fakes).
    on_block : callable, optional
        Called with each :class:`~rsciio_tvips.FrameBlock` once taken in
        (the benchmark measures the lag with it).
    """

    def __init__(self, filename, out=None, every=EVERY_SECONDS, idle=IDLE_SECONDS,
                 *, scan=None, signed=False, io="pread", stream=None, quiet=False,
                 clock=time.monotonic, sleep=time.sleep, on_block=None):  # fmt: skip
        self.filename = os.fspath(filename)
        self.out = out
        self.every = float(every)
        self.placement = placement_for(scan)  # refused now, not after the wait
        self.clock, self.sleep = clock, sleep
        self.on_block = on_block
        self.io = check_io(io)
        self.follower = Follower(filename, idle, signed=signed, clock=clock)
        self.status = Status(self._line, stream=stream, clock=clock, silent=quiet)
        self.checks = None  # FrameStream, once open
        self.view = None  # LiveView, once open
        self.said = set()  # problems said already
        self.samples = collections.deque()  # (time, frames, bytes) at each look
        self.last_frame = None  # clock() when the last frame arrived
        self.free = None  # free bytes on the disk of the part being written
        self._disk_checked = None
        self.drawer = None  # Drawer, while run() runs with a picture to draw
        self._drawn = None  # clock() when the last picture was asked for
        self._asked = None  # the view's version in the picture being drawn
        self._shown = None  # ... in the last one written
        self.pictures = 0  # written
        self.interrupted = False
        self._joins = None  # joins_key when the joins were last found

    def run(self) -> list[Finding]:
        """Follow the recording until it is finished; return validate's findings.

        Raises
        ------
        FileNotFoundError, TvipsFormatError
            If no recording came within ``idle`` seconds, or what came is
            not one.
        """
        # started now: its start-up (matplotlib's import) overlaps the wait
        self.drawer = None if self.out is None else self._start_drawer()
        try:
            with self.status:
                try:
                    if not self.follower.open(self._wait):
                        self.follower.open_now(final=True)  # raises what is wrong
                except KeyboardInterrupt:
                    self.follower.open_now(final=True)
                    self.interrupted = True
                findings = self._follow()
        except BaseException:
            self._close_drawer(kill=True)  # no picture is waited for
            raise
        try:
            self._close_drawer()
        except KeyboardInterrupt:
            # Ctrl-C while the child ends: the summary is owed all the same
            self.interrupted = True
            self._close_drawer(kill=True)
        return findings

    def _close_drawer(self, kill: bool = False) -> None:
        if self.drawer is not None:
            self.drawer.close(kill=kill)
            self.drawer = None

    def _start_drawer(self) -> Drawer | None:
        try:
            return Drawer()
        except DrawerStopped as e:  # the watch goes on without pictures
            self.status.say(f"tvips watch: no pictures: {e}")
            return None

    def _wait(self, seconds: float) -> None:
        self._show()
        self.sleep(seconds)

    def _follow(self) -> list[Finding]:
        rec = self.follower.recording
        # the rotator index is judged against the finished recording's frames
        self.checks = FrameStream(None)
        self.view = LiveView(rec.frame_shape, self.placement)
        self.last_frame = self.clock()
        self._sample()
        self._check_disk()  # for the first status line
        changed = None
        try:
            while not self.interrupted:
                try:
                    taken = self._take_blocks()
                    self._check_opening()
                    self._check_disk()
                    self._show()
                    # frames came: look again soon, not at once (a look per
                    # few frames costs more, per frame, than the frames)
                    self.sleep(BUSY_POLL_SECONDS if taken else _follow.POLL_SECONDS)
                    self.follower.look()
                    self._sample()
                except (OSError, TvipsFormatError) as e:
                    # a part changed, or became unreadable, under the watch:
                    # what was seen until then is still said at the end
                    changed = _stopped_by(Path(self.filename), e)
                    self.status.say(f"tvips watch: {e}")
                    break
                # judged right after a look: time spent drawing is no
                # idleness; and only once every frame is taken in
                if self.follower.idle and self.follower.done:
                    break
        except KeyboardInterrupt:
            self.interrupted = True
        self.view.finish()
        self._last_picture()
        self.status.close()
        findings = recording_findings(rec, self.checks)
        return findings if changed is None else [changed, *findings]

    def _take_blocks(self) -> int:
        """Take in the frames the last look found; return how many blocks."""
        rec = self.follower.recording
        key = joins_key(rec.records)
        if self.follower.given < rec.n_frames and key != self._joins:
            # the joins the boundary check speaks for, as validate skips them
            self._joins = key
            joins = counter_joins(rec.records, rec.read_header_fields)
            self.checks.skip = np.array(sorted(joins), dtype=np.int64)
        taken = 0
        for block in self.follower.blocks(BLOCK_BYTES, self.io):
            taken += 1
            self.checks.feed(block.headers)
            self.view.feed(block)
            self._said_stream(rec)
            now = self.clock()
            self.last_frame = now
            if self.on_block is not None:
                self.on_block(block)
            self._show()
            self._picture_due()  # while catching up too: asking costs nothing
        self._picture_due()  # and when none came: the last one drawn may be old
        return taken

    def _picture_due(self) -> None:
        """Ask for a picture if it is time to, once the frames that came are in.

        Every ``every`` seconds, or as soon as the last one is written if
        drawing it took longer (the drawer gets the time the frames leave);
        and only if the view changed since the last one asked for.
        """
        if self.drawer is None or not self.view.frames:
            return
        self._collect()
        if self.drawer is None or self.drawer.busy or self._asked == self.view.version:
            return  # being drawn, or drawn as the view is now
        if self._drawn is None or self.clock() - self._drawn >= self.every:
            self._ask()

    def _last_picture(self) -> None:
        """Draw the picture of every frame, and wait until it is written.

        Waited for at most :data:`LAST_PICTURE_SECONDS` (the drawer has the
        lowest priority: on a busy core it may take long), or until Ctrl-C:
        then the summary comes without it, said so.
        """
        if self.drawer is None or not self.view.frames:
            return
        end = time.monotonic() + LAST_PICTURE_SECONDS
        try:
            self._collect(timeout=LAST_PICTURE_SECONDS)  # the one being drawn
            if self.drawer is not None and not self.drawer.busy:
                if self._shown != self.view.version:  # not drawn as it is now
                    self._ask()
                self._collect(timeout=max(end - time.monotonic(), 0.0))
            late = self.drawer is not None and self.drawer.busy
            why = f"not drawn within {LAST_PICTURE_SECONDS:g} s"
        except KeyboardInterrupt:
            late, why = True, "not drawn (interrupted)"
        if late:
            self._close_drawer(kill=True)  # it would draw on in vain
            self.status.say(f"tvips watch: the last picture, {self.out}, was {why}")

    def _ask(self) -> None:
        rec = self.follower.recording
        title = f"{rec.chain.first.name}: {self.view.frames} frames so far"
        self.drawer.draw(title, self.view.picture(), self.out)
        self._asked = self.view.version
        self._drawn = self.clock()

    def _collect(self, timeout: float | None = None) -> None:
        """Note the picture the drawer finished, if any; say why it failed, once.

        With ``timeout``, wait that many seconds for it.
        """
        if self.drawer is None:
            return
        try:
            finished, error = self.drawer.done(timeout is not None, timeout)
        except DrawerStopped as e:
            self._no_drawer(e)
            return
        if finished and error is None:
            self.pictures += 1
            self._shown = self._asked
        elif finished and "picture" not in self.said:
            # a full disk, a folder removed ...: the watch goes on
            self.said.add("picture")
            self.status.say(f"tvips watch: cannot write {self.out}: {error}")

    def _no_drawer(self, error: DrawerStopped) -> None:
        """Go on without pictures: the drawer is gone (killed, out of memory ...)."""
        self._close_drawer(kill=True)
        self.status.say(f"tvips watch: no more pictures: {error}")

    def _said_stream(self, rec) -> None:
        for kind in self.checks.counts:
            if kind not in self.said:
                self.said.add(kind)
                self._say(self.checks.finding(kind, rec.records.locate))

    def _check_opening(self) -> None:
        for f in self.follower.recording.problems:
            # a record being written at the end is what a recording being
            # written has: said in the summary if it stays
            if f.field == "frame record":
                continue
            key = (f.file, f.offset, f.field)
            if key not in self.said:
                self.said.add(key)
                self._say(f)

    def _check_disk(self) -> None:
        now = self.clock()
        if self._disk_checked is not None and now - self._disk_checked < DISK_SECONDS:
            return
        self._disk_checked = now
        part = self.follower.recording.chain.parts[-1]
        try:
            self.free = shutil.disk_usage(os.path.dirname(part.path)).free
        except OSError:
            self.free = None
            return
        per_second = self._rates()[1]
        low = max(DISK_LOW_BYTES, per_second * DISK_LOW_SECONDS)
        if self.free < low and "disk" not in self.said:
            self.said.add("disk")
            what = "the disk is nearly full"
            if per_second:
                lasts = duration(self.free / per_second)
                what = f"the disk is about to fill: about {lasts} at this rate"
            self._say(
                Finding(
                    "warning", part.name, None, "disk",
                    f"more than {_size(low)} free", f"{_size(self.free)} free",
                    what,
                )
            )  # fmt: skip

    def _say(self, finding: Finding) -> None:
        self.status.say(f"tvips watch: {finding}")

    def _sample(self) -> None:
        """Note the size of the recording now, for the rates it grows at."""
        rec = self.follower.recording
        self.samples.append((self.clock(), rec.n_frames, rec.chain.nbytes))

    def _rates(self) -> tuple[float, float]:
        """Return the frames/s and bytes/s the recording grew at lately.

        Over the last :data:`RATE_WINDOW` seconds: the camera's rate (a
        watcher catching up with a recording already written sees none).
        """
        now = self.clock()
        while len(self.samples) > 1 and now - self.samples[1][0] >= RATE_WINDOW:
            self.samples.popleft()
        if len(self.samples) < 2:
            return 0.0, 0.0
        (t0, f0, b0), (t1, f1, b1) = self.samples[0], self.samples[-1]
        span = max(now - t0, t1 - t0, 1e-9)
        return (f1 - f0) / span, (b1 - b0) / span

    def _show(self) -> None:
        self.status.show()

    def _line(self, final: bool) -> str:
        rec = self.follower.recording
        if rec is None:
            waited = self.clock() - self.follower.last_growth
            waiting = f"waiting for the first frame ({duration(waited)})"
            return f"watch {self.filename}: {waiting}"
        frames = self.follower.given
        name = rec.chain.first.name
        dropped = self.checks.stats["missing"] if self.checks else 0
        if final:
            return (
                f"watch {name}: {frames} frames in {len(rec.chain.parts)} part(s), "
                f"{dropped} dropped" + (" (interrupted)" if self.interrupted else "")
            )
        per_frame, per_byte = self._rates()
        since = self.clock() - self.last_frame
        free = "" if self.free is None else f" {_size(self.free)} free"
        # what matters most first: a narrow terminal cuts the end
        return (
            f"{frames} frames {rate(per_frame)}/s {rate(per_byte / 1e6)} MB/s, "
            f"{dropped} dropped, last {duration(since)} ago, "
            f"{rec.chain.parts[-1].name}{free}"
        )

    def summary(self, findings: list[Finding]) -> dict:
        """Return the summary ``--json`` prints."""
        rec = self.follower.recording
        times = self.checks.summary()
        return {
            "file": rec.chain.first.name,
            "frames": self.follower.given,
            "parts": len(rec.chain.parts),
            "dropped_frames": self.checks.stats["missing"],
            "duration_s": times["duration_s"],
            "frame_rate": times["frame_rate"],
            "interrupted": self.interrupted,
            "status": status(findings),
            "problems": [asdict(f) for f in findings if f.severity != "info"],
            "remarks": [asdict(f) for f in findings if f.severity == "info"],
        }


def failed_summary(filename, error: Exception) -> dict:
    """Return the ``--json`` summary of a watch that could not follow at all.

    As :meth:`Watch.summary`, with no frame and the reason as the one
    ``fatal`` problem (as validate lists it).
    """
    path = Path(os.fspath(filename))
    if isinstance(error, FileNotFoundError):
        findings = [Finding("fatal", path.name, None, "file", "a file", "nothing")]
    elif isinstance(error, TvipsFormatError) and error.findings:
        findings = [f for f in error.findings if f.severity == "fatal"] or [
            changed_finding(path, error)
        ]
    else:
        findings = [_stopped_by(path, error)]
    return {
        "file": path.name, "frames": 0, "parts": 0, "dropped_frames": 0,
        "duration_s": 0.0, "frame_rate": 0.0, "interrupted": False, "status": 2,
        "problems": [asdict(f) for f in findings], "remarks": [],
    }  # fmt: skip


def _stopped_by(path: Path, error: Exception) -> Finding:
    """Return the fatal finding of what stopped the watch (as validate says it)."""
    if isinstance(error, TvipsFormatError):
        return changed_finding(path, error)
    if isinstance(error, OSError):
        return system_finding(path, error)
    # an option the recording cannot be read with (--signed of 8 bits)
    return Finding("fatal", path.name, None, "options", "options that fit",
                   str(error))  # fmt: skip


def _size(nbytes: float) -> str:
    """Return a size in bytes as MiB or GiB (the threshold is 1 GiB)."""
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.0f} MiB"


def placement_for(kw: dict | None) -> Placement | None:
    """Return the placement the reader options ``kw`` ask for (None: a movie).

    ``scan_shape`` places frames in order (``scan_method`` may say
    ``rotator`` or ``positions`` instead); ``scan_shape="auto"`` without a
    method places them as the reader's detection does, by the beam
    positions once they move, else by the rotator index once it counts up.

    Raises
    ------
    ValueError
        For options that make no scan (a shape of no points, a sequential
        scan without a shape, an unknown winding axis), before any wait.
    """
    if not kw or (kw.get("scan_shape") is None and kw.get("scan_method") is None):
        return None
    shape = kw.get("scan_shape")
    method = kw.get("scan_method")
    if shape == "auto":
        shape, method = None, method or "auto"
    winding = kw.get("winding_scan_axis")
    if winding not in (None, "x", "y"):
        raise ValueError(f'winding_scan_axis must be "x", "y" or None, got {winding!r}')
    return Placement(
        method or "sequential", shape, start=kw.get("scan_start_frame") or 0,
        winding=winding, hysteresis=int(kw.get("hysteresis") or 0),
    )  # fmt: skip
