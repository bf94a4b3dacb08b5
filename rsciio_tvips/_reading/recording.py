"""Open a recording: :class:`TvipsRecording`, its lazy and eager arrays.

Opening reads the main header and the sizes of the parts, nothing else. The
frames are then available three ways, all through :mod:`.preadv`:

- :meth:`TvipsRecording.read_frame` and :meth:`~TvipsRecording.read_frames`;
- :meth:`TvipsRecording.to_dask`: a dask array whose tasks read their
  frames straight from the files (see :mod:`.lazy`); its graph holds no
  data and no file handle, and runs on any dask scheduler, processes and
  clusters included;
- :meth:`TvipsRecording.asarray`: one preallocated array read in place by two
  threads, with no second copy.
"""

from __future__ import annotations

import difflib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np

from .._checks import (
    Report,
    boundary_defects,
    chain_defects,
    joins_key,
    size_defects,
    usable_last_part,
)
from .._format.header import (
    MainHeader,
    header_defects,
    parse_main_header,
    read_signed,
)
from .._format.layout import MAIN_HEADER_SIZE, recording_stem
from .._format.parts import Chain, build_chain, first_part, first_parts, siblings
from .._format.records import Records
from ..exceptions import Finding, TvipsFormatError
from .grid import FrameGrid, consecutive
from .lazy import HEADER_BLOCK, check_io, frame_table_to_dask
from .preadv import read_frames_into, read_header_fields, read_headers

#: Below this many bytes an eager read is done by one thread.
THREADED_MIN_BYTES = 64 * 2**20
#: Threads for eager reads: copies out of the page cache scale to two.
READ_THREADS = 2
#: Most recordings a "No such TVIPS file" message lists (a folder may hold
#: thousands).
LISTED_RECORDINGS = 10
#: Most recordings it offers as "did you mean".
SUGGESTED_RECORDINGS = 3


class TvipsRecording:
    """A TVIPS recording opened from any of its parts.

    Opening reads the main header and the file sizes only. The number of
    frames comes from the sizes: ``(bytes after the main header) //
    (record size)`` over all parts.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording (``x_000.tvips``, ``x_002.tvips`` ...), or
        its name without the part number (``x.tvips`` opens ``x_000.tvips``
        when no file ``x.tvips`` exists).
    permissive : bool, default False
        Read the parts before a missing one, and of two files that claim one
        part number the one spelled like ``filename``, with a warning each,
        instead of raising (see :mod:`rsciio_tvips._checks`).
    signed : bool, default False
        Read 16-bit pixels as signed integers (int16) instead of uint16: the
        same bytes, read another way. MicroED recordings of gain- and
        dark-corrected frames need it; nothing in a file says so, so it is
        never guessed.
    io : {"pread", "mmap"}, default "pread"
        How :meth:`to_dask` reads pixels by default: ``"pread"`` copies each
        chunk into a buffer; ``"mmap"`` hands out read-only views of a
        memory map of the part, made by each task, where the frames allow
        (faster for reductions on a warm page cache, but a part truncated
        while mapped kills the process with SIGBUS instead of raising; see
        the documentation, "Memory-mapped reads", in Loading). Eager reads
        always copy.

    Raises
    ------
    TvipsFormatError
        If the main header is invalid (see :func:`parse_main_header`), a
        part is missing or is not a regular file (a directory, a FIFO, a
        device, a dangling link), or not one whole frame record follows the
        header. Later, when a read finds a part replaced, truncated or
        rewritten since (see :func:`~rsciio_tvips._reading.preadv.check_unchanged`).
    ValueError
        If ``signed`` is True and the pixels are not 16 bits deep.

    Warns
    -----
    TvipsFormatWarning
        If the last frame record is incomplete (an interrupted acquisition);
        the whole frames before it are read.

    Examples
    --------
    >>> rec = TvipsRecording("scan_000.tvips")  # doctest: +SKIP
    >>> rec.n_frames, rec.frame_shape  # doctest: +SKIP
    (16384, (256, 256))
    >>> rec.frame_headers["rotidx"][:4]  # doctest: +SKIP

    A MicroED tilt series of gain-corrected frames, with the stage tilt of
    every frame:

    >>> rec = TvipsRecording("microed_000.tvips", signed=True)  # doctest: +SKIP
    >>> rec.dtype, rec.frame_headers["stagea"][:3]  # doctest: +SKIP
    (dtype('int16'), array([-30.  , -29.75, -29.5 ], dtype=float32))
    """

    def __init__(
        self,
        filename: str | os.PathLike,
        permissive: bool = False,
        *,
        signed: bool = False,
        io: str = "pread",
    ):
        self.io = check_io(io)
        self._open(filename, Report(permissive), signed)

    @classmethod
    def inspect(cls, filename: str | os.PathLike, *, signed: bool = False):
        """Open as :func:`~rsciio_tvips.validate` does: collect, do not warn.

        Every defect the checks of opening find goes into :attr:`findings`
        (``info`` remarks too) without a warning; the parts before a missing
        one are read, as with ``permissive=True``.

        Parameters
        ----------
        filename : str or os.PathLike
            Any part of the recording, or its name (as for
            :class:`TvipsRecording`).
        signed : bool, default False
            As for :class:`TvipsRecording`.

        Returns
        -------
        TvipsRecording

        Raises
        ------
        TvipsFormatError
            When no frame can be read; its ``findings`` list every defect
            found up to that one.
        FileNotFoundError
            If ``filename`` does not exist.
        """
        return cls._opened(filename, Report(permissive=True, quiet=True), signed)

    @classmethod
    def _opened(cls, filename, report: Report, signed: bool, io: str = "pread"):
        """Open with the policy ``report`` applies to what the checks find."""
        rec = cls.__new__(cls)
        rec.io = check_io(io)
        rec._open(filename, report, signed)
        return rec

    def _open(self, filename, report: Report, signed: bool) -> None:
        """Find the parts, read the main header and size the frames.

        ``filename`` is a file, or a recording's name that the writer's rule
        turns into its first part (``x.tvips`` opens ``x_000.tvips``, see
        :func:`rsciio_tvips._format.parts.first_part`). The checks of
        :mod:`rsciio_tvips._checks` run in the order the reader needs their
        answers; ``report`` raises or warns what they find.
        """
        path = Path(os.fspath(filename)).absolute()
        opened = first_part(path)
        if opened is None:
            raise _not_found(filename, path)
        # A name that is there but is no regular file (a directory, a FIFO,
        # a dangling link) is a defect of the part chain like any other, a
        # TvipsFormatError rather than IsADirectoryError: the same defect
        # then reads the same whichever part is named, and validate()
        # reports it as a fatal finding instead of raising. Only a name
        # that is not there at all is a FileNotFoundError.
        self._opened_as = opened
        self._permissive = report.permissive
        near = siblings(opened)
        report.add(chain_defects(near, opened.suffix[1:]))
        chain = build_chain(near, usable_last_part(near))
        with open(chain.first.path, "rb") as f:
            raw = f.read(MAIN_HEADER_SIZE)
        known = len(report.findings)
        report.add(header_defects(raw, chain.first.name))
        # what the main header's checks said holds until it is read again
        self._header_findings = report.findings[known:]
        header = parse_main_header(raw, chain.first.name)
        if signed:
            header = read_signed(header, chain.first.name)
        self._size(Records(chain, header), report)

    def _size(self, records: Records, report: Report, joins=None) -> None:
        """Take ``records`` as the recording's and check their sizes and joins.

        ``joins``: ``(joins_key, defects)`` of the part joins found before,
        kept while the key is the same (the joins are not read again).
        """
        #: Where every frame record lies: the parts and the main header.
        self.records = records
        report.add(size_defects(records))
        self.n_frames, self.ignored_bytes = divmod(
            records.chain.nbytes, records.record_size
        )
        key = joins_key(records)
        if joins is None or key != self._joins[0]:
            joins = (key, boundary_defects(records, self.read_header_fields))
        self._joins = joins
        report.add(joins[1])
        #: Every finding of the checks made on opening (and on the last
        #: :meth:`refresh`), ``info`` remarks too.
        self.findings: list[Finding] = report.findings

    def refresh(self, read: int | None = None) -> int:
        """Extend the recording with what was written since it was sized.

        For a recording still being written (``tvips watch``,
        :func:`rsciio_tvips.follow`): the parts are listed and sized again,
        so that the frames completed since are read like the others. A
        record still being written at the end is not a frame until it is
        whole (:attr:`ignored_bytes` counts its bytes).

        Arrays already made keep their shape and go on reading their own
        frames (the bytes they read do not move: only bytes after them
        were added); a new :meth:`to_dask`, :meth:`asarray` or
        :attr:`header_fields` sees the new frames. :attr:`findings` are
        those of the checks made on opening, run again over the parts as
        they are now; they are collected, not warned.

        Parameters
        ----------
        read : int, optional
            The frames read so far, for a follower that reads the frames in
            order (:func:`rsciio_tvips.follow`): a part that ends after them
            may still grow though another part follows it (it was sized
            before its last bytes came). By default every frame counts as
            read: only the last part may grow.

        Returns
        -------
        int
            The frames added (0 when nothing whole arrived).

        Raises
        ------
        TvipsFormatError
            If the recording changed other than by growing at its end: a
            part gone, replaced, truncated or rewritten, or a part that is
            no longer the last grown (every later frame would shift); or if
            a part now has two files and the recording was not opened
            ``permissive``. The recording is then left as it was.
        OSError
            If a part cannot be listed or read; the recording is then left
            as it was too.
        """
        near = siblings(self._opened_as)
        report = Report(self._permissive, quiet=True)
        report.add(chain_defects(near, self._opened_as.suffix[1:]))
        chain = build_chain(near, usable_last_part(near))
        fixed = None if read is None else read * self.header.record_size
        wrong = self.chain.growth(chain, fixed)
        if wrong is not None:
            raise TvipsFormatError(wrong)
        report.findings.extend(self._header_findings)
        before = self.n_frames
        kept = {k: self.__dict__[k] for k in self._SIZED if k in self.__dict__}
        try:
            # the joins are judged again when their verdicts can change (see
            # joins_key), not at every look at a growing last part
            self._size(Records(chain, self.header), report, self._joins)
        except BaseException:
            self.__dict__.update(kept)  # as it was
            raise
        for cached in ("frame_headers", "header_fields"):
            self.__dict__.pop(cached, None)  # of the frames there were
        return self.n_frames - before

    #: What sizing sets (:meth:`_size`): kept to be put back on a failure.
    _SIZED = ("records", "n_frames", "ignored_bytes", "_joins", "findings")

    @property
    def problems(self) -> list[Finding]:
        """Defects found when opening, each also given as a warning.

        A missing part or two files for one part (``permissive=True``), a
        truncated last record, a part that looks cut short; not the
        ``info`` remarks (those are in :func:`rsciio_tvips.validate`).
        """
        return [f for f in self.findings if f.severity != "info"]

    @property
    def chain(self) -> Chain:
        """The parts of the recording, as one stream (``chain.parts``)."""
        return self.records.chain

    @property
    def header(self) -> MainHeader:
        """The decoded main header."""
        return self.records.header

    def __repr__(self) -> str:
        return (
            f"<TvipsRecording {self.chain.first.name!r}: {self.n_frames} frames of "
            f"{self.frame_shape[0]}x{self.frame_shape[1]} {self.dtype}, "
            f"{len(self.chain.parts)} part(s)>"
        )

    @property
    def frame_shape(self) -> tuple:
        """``(dimy, dimx)`` of a frame."""
        return self.header.shape

    @property
    def dtype(self) -> np.dtype:
        """Pixel type."""
        return self.header.pixel_dtype

    @property
    def shape(self) -> tuple:
        """``(n_frames, dimy, dimx)``."""
        return (self.n_frames, *self.header.shape)

    @cached_property
    def frame_headers(self) -> np.ndarray:
        """Every frame header, as a structured array (reads no pixels).

        Fields have RosettaSciIO's names (``num``, ``timestamp``, ``ms``,
        ``rotidx`` ...) and LiberTEM's as aliases (``ICounter``, ``ITime``
        ...); bytes past the known fields are in ``extra``. See
        :attr:`header_fields` for the fields alone.
        """
        return self.read_headers(None)

    @cached_property
    def header_fields(self) -> np.ndarray:
        """The decoded fields of every frame header, without ``extra``.

        What the checks, the scan detection and ``tvips info`` look at: at
        most 108 bytes a frame, whatever size the file declares for its
        frame headers (up to 16 MiB), read
        :data:`~rsciio_tvips._reading.lazy.HEADER_BLOCK` frames at a
        time into one array of every frame (kept, like
        :attr:`frame_headers`).
        """
        return self.read_header_fields(None)

    def read_header_fields(self, frames) -> np.ndarray:
        """Read the decoded fields of some frame headers (see :attr:`header_fields`).

        Parameters
        ----------
        frames : array_like of int or None
            Frame numbers in any order; negative numbers count from the end.
            None: every frame.

        Returns
        -------
        numpy.ndarray
            Structured array of ``header.decoded_header_dtype``.
        """
        return self._in_blocks(read_header_fields, frames)

    def header_field_blocks(
        self, start: int = 0, stop: int | None = None, block: int = HEADER_BLOCK
    ):
        """Yield the decoded fields of frames ``start`` to ``stop - 1``, in blocks.

        For the passes that look at every frame header (scan detection, the
        checks): their memory is that of one block of ``block`` frames
        (:data:`~rsciio_tvips._reading.lazy.HEADER_BLOCK`), whatever the
        length of the recording.

        Parameters
        ----------
        start, stop : int, optional
            The frames (default: all).
        block : int, optional
            Frames per block.

        Yields
        ------
        int
            The frame of the block's first element.
        numpy.ndarray
            The block's decoded fields (``header.decoded_header_dtype``).
        """
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        for a in range(max(0, start), stop, block):
            b = min(stop, a + block)
            yield a, read_header_fields(self.records, np.arange(a, b))

    def read_headers(self, frames) -> np.ndarray:
        """Read the headers of some frames.

        Parameters
        ----------
        frames : array_like of int
            Frame numbers in any order (increasing is fastest); negative
            numbers count from the end.

        Returns
        -------
        numpy.ndarray
            Structured array, one element per frame.
        """
        return self._in_blocks(read_headers, frames)

    def _in_blocks(self, read, frames) -> np.ndarray:
        """Read headers of ``frames`` (None: all) with ``read``, a block at a time.

        One read keeps a buffer per frame; blocks bound that whatever the
        number of frames asked for.
        """
        if frames is not None:
            frames = self._check_frames(frames)
        n = self.n_frames if frames is None else frames.size
        out = np.empty(n, read(self.records, np.arange(0)).dtype)
        for a in range(0, n, HEADER_BLOCK):
            b = min(n, a + HEADER_BLOCK)
            out[a:b] = read(
                self.records, np.arange(a, b) if frames is None else frames[a:b]
            )
        return out

    def read_frame(self, index: int) -> np.ndarray:
        """Read one frame.

        Parameters
        ----------
        index : int
            Frame number; negative numbers count from the end.

        Returns
        -------
        numpy.ndarray
            ``(dimy, dimx)`` array.
        """
        return self.read_frames([index])[0]

    def read_frames(self, frames) -> np.ndarray:
        """Read frames in any order.

        Parameters
        ----------
        frames : array_like of int
            Frame numbers; negative numbers count from the end.

        Returns
        -------
        numpy.ndarray
            ``(len(frames), dimy, dimx)`` array.
        """
        frames = self._check_frames(frames)
        out = np.empty((frames.size, *self.frame_shape), self.dtype)
        read_frames_into(self.records, frames, out)
        return out

    def _check_frames(self, frames) -> np.ndarray:
        asked = np.asarray(frames).reshape(-1)
        if asked.size and not np.issubdtype(asked.dtype, np.integer):
            # as numpy and Python lists do: int() would read frame 10 for 10.7
            given = frames if isinstance(frames, (list, tuple)) else asked.tolist()
            wrong = next(
                v for v in given
                if isinstance(v, bool) or not isinstance(v, (int, np.integer))
            )  # fmt: skip
            raise TypeError(f"frame numbers must be integers, got {wrong!r}")
        frames = asked.astype(np.int64)
        bad = (frames < -self.n_frames) | (frames >= self.n_frames)
        if bad.any():
            msg = (
                f"frame {int(frames[bad][0])} is out of range for a recording "
                f"of {self.n_frames} frames"
            )
            raise IndexError(msg)
        return frames % self.n_frames

    def to_dask(self, frames=None, chunks=None, io: str | None = None):
        """Return frames as a lazy dask array.

        Parameters
        ----------
        frames : array_like of int or FrameGrid, optional
            Frame table: the frame each navigation point shows, -1 for a
            blank point, of the navigation shape (see
            :mod:`rsciio_tvips._scans.tables`), or a rule that gives it
            (:class:`~rsciio_tvips._reading.grid.FrameGrid`). By default the
            stack of all frames.
        chunks : optional
            Anything :func:`dask.array.from_array` takes as ``chunks``; by
            default about 100 MiB of whole frames, signal axes never split
            (with ``io="mmap"``, also cut where a part starts: see
            :func:`~rsciio_tvips._reading.lazy.cut_at_parts`).
        io : {"pread", "mmap"}, optional
            How the tasks read pixels (default: the recording's ``io``).

        Returns
        -------
        dask.array.Array
        """
        table = self._table(frames)
        io = self.io if io is None else check_io(io)
        return frame_table_to_dask(self.records, table, chunks, io)

    def asarray(self, frames=None, headers: bool = False):
        """Read frames into one new array, each frame straight into its place.

        Parameters
        ----------
        frames : array_like of int, optional
            Frame table, as for :meth:`to_dask`; by default all frames.
        headers : bool, default False
            Also return the frame header of every point (zeros where blank),
            read in the same pass as the pixels.

        Returns
        -------
        numpy.ndarray
            Array of shape ``frames.shape + (dimy, dimx)``.
        numpy.ndarray
            With ``headers=True``: the structured array of frame headers, one
            per point in C order.
        """
        table = self._table(frames)
        flat = table.reshape(-1)
        out = np.empty((flat.size, *self.frame_shape), self.dtype)
        heads = np.empty(flat.size, self.header.frame_header_dtype) if headers else None
        bounds = [0, flat.size]
        if out.nbytes >= THREADED_MIN_BYTES:
            bounds = np.linspace(0, flat.size, READ_THREADS + 1).astype(int).tolist()
        with ThreadPoolExecutor(READ_THREADS) as pool:
            jobs = [
                pool.submit(
                    read_frames_into, self.records, np.asarray(flat[a:b]), out[a:b],
                    0, None if heads is None else heads[a:b],
                )
                for a, b in itertools.pairwise(bounds)
            ]  # fmt: skip
            for job in jobs:
                job.result()
        data = out.reshape(table.shape + self.frame_shape)
        return (data, heads) if headers else data

    def _table(self, frames):
        if frames is None:
            return consecutive(self.n_frames)
        if isinstance(frames, FrameGrid):
            # a grid blanks the points past its own frame count: of another
            # count, it would show frames that do not exist or hide real ones
            if frames.n_frames != self.n_frames:
                msg = (
                    f"{self.chain.first.name}: a frame grid of {frames.n_frames} "
                    f"frames for a recording of {self.n_frames} frames"
                )
                raise IndexError(msg)
            return frames
        table = np.asarray(frames, dtype=np.int64)
        bad = (table < -1) | (table >= self.n_frames)
        if bad.any():
            msg = (
                f"frame table entry {int(table[bad].flat[0])} is out of range for a "
                f"recording of {self.n_frames} frames (-1 means blank)"
            )
            raise IndexError(msg)
        return table


def _not_found(filename, path: Path) -> FileNotFoundError:
    """Return the error for a name that opens no file, with what its folder holds.

    The message starts ``No such TVIPS file: '<filename>'`` (``filename`` as
    given) and is nothing more when the folder holds no recording.
    """
    return FileNotFoundError(
        f"No such TVIPS file: {os.fspath(filename)!r}{_folder_note(path)}"
    )


def _folder_note(path: Path) -> str:
    """Return what the folder of ``path`` holds, for the message; '' for nothing."""
    folder = path.parent
    if not folder.is_dir():
        return f"; no such folder: {folder}"
    try:
        names = first_parts(folder)
    except OSError:
        return ""  # a folder that cannot be listed has nothing to suggest
    if not names:
        return ""
    listed = _listing(names)
    return f"; recordings in {folder}: {listed}{_did_you_mean(path.name, names)}"


def _listing(names: list[str]) -> str:
    """Return the first :data:`LISTED_RECORDINGS` names and how many more."""
    shown = ", ".join(names[:LISTED_RECORDINGS])
    more = len(names) - LISTED_RECORDINGS
    return f"{shown} and {more} more" if more > 0 else shown


def _did_you_mean(name: str, names: list[str]) -> str:
    """Return `` (did you mean a or b?)`` for the names close to ``name``, or ''.

    Every name is searched, listed or not.
    """
    # compared by recording name: the "_000.tvips" they all share would
    # make every name look close to every other
    by_stem: dict[str, list[str]] = {}
    for other in names:
        by_stem.setdefault(recording_stem(other)[0], []).append(other)
    stems = difflib.get_close_matches(
        recording_stem(name)[0], by_stem, n=SUGGESTED_RECORDINGS
    )
    if not stems:
        return ""
    return f" (did you mean {' or '.join(n for s in stems for n in by_stem[s])}?)"
