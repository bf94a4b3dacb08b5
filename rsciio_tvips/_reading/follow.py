"""Follow a recording while it is written: :func:`follow` and :class:`Follower`.

A TVIPS camera writes its recording as one stream of frame records cut into
parts of a fixed size: the last part grows, and the next one appears when it
is full. :class:`Follower` opens the recording once the first part holds a
whole frame, then looks again every so often (:meth:`TvipsRecording.refresh`:
a listing of the folder and a ``stat`` of each part, no read) and hands out
only the frames completed since the last look. A record still being written
at the end is left for the next look; the bytes of a frame are read once.

:func:`follow` is the generator a script or a notebook iterates over;
``tvips watch`` drives a :class:`Follower` itself, to show what it sees
between two looks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import Report
from .._format.layout import MAIN_HEADER_SIZE
from .._format.parts import first_part
from ..exceptions import TvipsFormatError
from .lazy import check_io
from .mapped import mapped_records
from .preadv import read_frames_into
from .recording import TvipsRecording

#: Seconds between two looks at a recording that did not grow.
POLL_SECONDS = 0.1
#: Most bytes of pixels in one block handed out: a follower that starts on
#: a recording of many gigabytes reads it in blocks of this size.
BLOCK_BYTES = 64 * 2**20
#: Seconds :func:`follow` waits for a recording to grow before it ends.
IDLE_SECONDS = 10.0


@dataclass(frozen=True)
class FrameBlock:
    """Frames completed since the last look at a recording being written.

    Attributes
    ----------
    start : int
        The frame number of the first frame (its place in the recording).
    frames : numpy.ndarray
        The frames, ``(n, dimy, dimx)``.
    headers : numpy.ndarray
        Their frame headers' decoded fields, one element per frame
        (``TvipsRecording.header_fields``' dtype).
    recording : TvipsRecording
        The recording, as sized at the look that found the frames (it is
        refreshed in place by the next look).
    """

    start: int
    frames: np.ndarray
    headers: np.ndarray
    recording: TvipsRecording

    @property
    def stop(self) -> int:
        """The frame number after the last frame."""
        return self.start + len(self.frames)

    @property
    def frame_numbers(self) -> np.ndarray:
        """The frame number of every frame of the block."""
        return np.arange(self.start, self.stop)


class Follower:
    """A recording being written, looked at again and again.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording, or its name (``x.tvips`` for
        ``x_000.tvips``); it need not exist yet.
    idle : float, optional
        Seconds without growth after which :attr:`idle` says the recording
        is finished (also how long :meth:`open` waits for the first frame).
    signed : bool, default False
        As for :class:`TvipsRecording`.
    start : int, default 0
        The first frame to hand out.
    clock : callable, optional
        Seconds, increasing (default :func:`time.monotonic`).

    Attributes
    ----------
    recording : TvipsRecording or None
        The recording, once :meth:`open` found it.
    given : int
        Frames handed out so far (the next block starts there).
    last_growth : float
        ``clock()`` when the recording last grew (a byte more, or a part).
    """

    def __init__(self, filename, idle: float = IDLE_SECONDS, *, signed=False,
                 start: int = 0, clock=time.monotonic):  # fmt: skip
        self.filename = filename
        self.idle_seconds = float(idle)
        self.signed = signed
        self.clock = clock
        self.recording = None
        self.given = int(start)
        self.last_growth = clock()
        self._first_size = None  # (1, size) of the file named, before opening
        self._lengths = []  # bytes of frames of each part, at the last look
        self.available = 0

    @property
    def done(self) -> bool:
        """Whether every frame of the recording as sized was handed out.

        False while frames wait for a part to be found final (see
        :meth:`_settle`): a follower that is idle looks once more for them.
        """
        rec = self.recording
        return rec is not None and self.given >= rec.n_frames

    @property
    def idle(self) -> bool:
        """Whether the recording has not grown for ``idle`` seconds."""
        return self.clock() - self.last_growth >= self.idle_seconds

    def open(self, sleep=time.sleep) -> bool:
        """Wait until the recording holds a whole frame, then open it.

        Returns
        -------
        bool
            True once open; False when nothing came for ``idle`` seconds
            (:meth:`open_now` then says why).

        Raises
        ------
        TvipsFormatError
            If what is there cannot be the start of a recording (a main
            header that is wrong, not one being written).
        """
        while True:
            if self.open_now(final=False):
                return True
            if self.idle:
                return False
            sleep(POLL_SECONDS)

    def open_now(self, final: bool = True) -> bool:
        """Try once to open the recording; see :meth:`open`.

        With ``final``, a recording that is not there, or holds no whole
        frame, raises what :class:`TvipsRecording` raises for it.
        """
        path = Path(os.fspath(self.filename)).absolute()
        found = first_part(path)
        size = _size_of(found)
        if size != self._first_size:  # before opening: the named file grows
            self._first_size, self.last_growth = size, self.clock()
        if not final and (found is None or size[1] < MAIN_HEADER_SIZE):
            return False  # not there yet, or its main header is being written
        try:
            # collected, not warned: a record being written at the end is
            # what a recording being written has
            self.recording = TvipsRecording._opened(
                self.filename, Report(quiet=True), self.signed
            )
        except TvipsFormatError as e:
            if final or not _waiting(e):
                raise
            return False
        if self._settle():
            self.last_growth = self.clock()
        return True

    def look(self) -> int:
        """Size the recording again; return the frames not handed out yet.

        Only frames that lie before every part still settling count (see
        :attr:`available`).
        """
        self.recording.refresh(read=self.given)
        if self._settle():
            self.last_growth = self.clock()
        return max(0, self.available - self.given)

    def _settle(self) -> bool:
        """Find the frames that can be handed out: :attr:`available`.

        Returns whether the parts changed since the last look (the
        recording grew: a byte more, or a part).

        A part followed by another has its final size, but a look may see
        the next part before the last bytes of this one (a writer that opens
        the next file first; a network file system's cached sizes): every
        frame after it would then be read from the wrong bytes. So a part
        counts as final once two looks in a row found the next part after it
        and the same size; the frames that end after the first part not
        final yet wait for the next look.
        """
        rec = self.recording
        lengths = [p.length for p in rec.chain.parts]
        before = self._lengths
        self._lengths = lengths
        end = rec.chain.nbytes
        for k, part in enumerate(rec.chain.parts[:-1]):
            final = k < len(before) - 1 and before[k] == lengths[k]
            if not final:
                end = part.stream_start + part.length
                break
        #: Frames that can be handed out now.
        self.available = min(rec.n_frames, end // rec.header.record_size)
        return lengths != before

    def blocks(self, block_bytes: int = BLOCK_BYTES, io: str = "pread"):
        """Yield the frames completed and not handed out yet, as of the last look.

        Parameters
        ----------
        block_bytes : int, optional
            Most bytes of pixels per block.
        io : {"pread", "mmap"}, optional
            ``"mmap"``: the frames are read-only views of a map of their
            part where they lie in one (see :func:`follow`).

        Yields
        ------
        FrameBlock
        """
        rec = self.recording
        frame_bytes = max(1, rec.header.frame_nbytes)
        step = max(1, block_bytes // frame_bytes)
        stop = self.available
        while self.given < stop:
            a, b = self.given, min(stop, self.given + step)
            block = None
            if io == "mmap":
                block = self._mapped(a, b)
                # a record across two parts (or a part cut short) is read
                b = a + 1 if block is None else b
            if block is None:
                frames = np.arange(a, b)
                out = np.empty((b - a, *rec.frame_shape), rec.dtype)
                headers = np.empty(b - a, rec.header.decoded_header_dtype)
                # one pass: the fields of each header with its pixels
                read_frames_into(rec.records, frames, out, 0, headers)
                block = FrameBlock(a, out, headers, rec)
            self.given = block.stop
            yield block

    def _mapped(self, a: int, b: int) -> FrameBlock | None:
        """Return frames ``a`` to ``b - 1``, or those of them in ``a``'s part, mapped.

        None when frame ``a``'s record runs into the next part: it is read.
        """
        rec = self.recording
        part, _ = rec.records.locate(a)
        # the frames whose records end in a's part
        end = (part.stream_start + part.length) // rec.header.record_size
        views = mapped_records(rec.records, a, min(b, end) - a)
        if views is None:
            return None
        fields, pixels = views
        headers = np.empty(fields.size, rec.header.decoded_header_dtype)
        for name in headers.dtype.names:
            headers[name] = fields[name]
        return FrameBlock(a, pixels, headers, rec)


def _size_of(path) -> tuple[int, int]:
    """Return (1, size) of the first part, or (0, 0) when it is not there."""
    try:
        return (1, os.stat(path).st_size) if path is not None else (0, 0)
    except OSError:
        return (0, 0)


def _waiting(error: TvipsFormatError) -> bool:
    """Whether an error on opening only says that no whole frame is there yet."""
    return any(
        f.severity == "fatal" and f.field == "frame record" for f in error.findings
    )


def follow(
    filename: str | os.PathLike,
    idle: float = IDLE_SECONDS,
    *,
    signed: bool = False,
    start: int = 0,
    block_bytes: int = BLOCK_BYTES,
    io: str = "pread",
):
    """Yield the frames of a recording as they are written.

    The recording may not exist yet: its first frame is waited for. Then
    every new frame is yielded once, in order, as soon as its record is
    whole, with its frame header and its frame number. Only the bytes that
    arrived since the last look are read.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording, or its name (``x.tvips`` for
        ``x_000.tvips``).
    idle : float, optional
        The recording is finished once it has not grown (by a byte or a
        part) for this many seconds: the generator then ends. It also bounds
        the wait for the first frame.
    signed : bool, default False
        Read 16-bit pixels as int16 (see :class:`TvipsRecording`).
    start : int, default 0
        The first frame to yield (frames before it are skipped unread).
    block_bytes : int, optional
        Most bytes of pixels per block (64 MiB): memory stays bounded
        whatever arrives at once.
    io : {"pread", "mmap"}, default "pread"
        ``"pread"`` copies the frames into a new array per block.
        ``"mmap"`` hands out read-only views of a memory map of the part
        instead (no copy: about a fifth less CPU time per frame for a
        watcher, measured), except for a record that straddles two parts. As for
        :class:`TvipsRecording`'s ``io``: a part truncated while a block's
        frames are in use kills the process with SIGBUS rather than raise.

    Yields
    ------
    FrameBlock
        ``start`` (frame number of the first frame), ``frames``
        (``(n, dimy, dimx)``), ``headers`` (decoded fields: ``num``,
        ``timestamp``, ``rotidx`` ...), ``recording`` (the
        :class:`TvipsRecording` as sized now: its ``header``, ``n_frames``).

    Raises
    ------
    FileNotFoundError
        If the recording did not appear within ``idle`` seconds.
    TvipsFormatError
        If it is not a TVIPS recording, holds no whole frame after ``idle``
        seconds, or changes other than by growing at its end (see
        :meth:`TvipsRecording.refresh`).

    Examples
    --------
    A virtual bright-field image of a 64 x 64 scan, filled in as it is
    acquired:

    >>> vbf = np.full(64 * 64, np.nan)  # doctest: +SKIP
    >>> for block in follow("scan_000.tvips", idle=10):  # doctest: +SKIP
    ...     inside = block.frames[:, 100:156, 100:156]
    ...     vbf[block.start : block.stop] = inside.sum(axis=(1, 2))
    """
    check_io(io)
    if start < 0:
        raise ValueError(f"start must be a frame number, 0 or more, got {start}")
    follower = Follower(filename, idle, signed=signed, start=start)
    if not follower.open():
        follower.open_now(final=True)  # raises what is wrong
    yield from follower.blocks(block_bytes, io)
    while True:
        if follower.look():
            yield from follower.blocks(block_bytes, io)
            continue
        if follower.idle and follower.done:
            return
        time.sleep(POLL_SECONDS)
