"""Open a recording: :class:`TvipsRecording`, its lazy and eager arrays.

Opening reads the main header and the sizes of the parts, nothing else. The
frames are then available three ways, all through :mod:`._io`:

- :meth:`TvipsRecording.read_frame` and :meth:`~TvipsRecording.read_frames`;
- :meth:`TvipsRecording.to_dask`: a dask array whose tasks read their
  frames straight from the files (see :mod:`._lazy`); its graph holds no
  data and no file handle, and runs on any dask scheduler, processes and
  clusters included;
- :meth:`TvipsRecording.asarray`: one preallocated array read in place by two
  threads, with no second copy.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np

from .._format.header import parse_main_header, read_signed
from .._format.layout import MAIN_HEADER_SIZE
from .._format.parts import find_parts
from ..exceptions import Finding, TvipsFormatError, warn
from .lazy import frame_table_to_dask
from .preadv import read_frames_into, read_headers

#: Below this many bytes an eager read is done by one thread.
THREADED_MIN_BYTES = 64 * 2**20
#: Threads for eager reads: copies out of the page cache scale to two.
READ_THREADS = 2


class TvipsRecording:
    """A TVIPS recording opened from any of its parts.

    Opening reads the main header and the file sizes only. The number of
    frames comes from the sizes: ``(bytes after the main header) //
    (record size)`` over all parts.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording (``x_000.tvips``, ``x_002.tvips`` ...).
    permissive : bool, default False
        Read the parts before a missing one, and of two files that claim one
        part number the one spelled like ``filename``, with a warning each,
        instead of raising (see :func:`find_parts`).
    signed : bool, default False
        Read 16-bit pixels as signed integers (int16) instead of uint16: the
        same bytes, read another way. MicroED recordings of gain- and
        dark-corrected frames need it; nothing in a file says so, so it is
        never guessed.

    Raises
    ------
    TvipsFormatError
        If the main header is invalid (see :func:`parse_main_header`), a
        part is missing, or not one whole frame record follows the header.
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
    ):
        self.chain = find_parts(filename, permissive=permissive)
        with open(self.chain.first.path, "rb") as f:
            raw = f.read(MAIN_HEADER_SIZE)
        self.header = parse_main_header(raw, self.chain.first.name)
        if signed:
            self.header = read_signed(self.header, self.chain.first.name)
        record = self.header.record_size
        self.n_frames = self.chain.nbytes // record
        leftover = self.chain.nbytes - self.n_frames * record
        if self.n_frames == 0:
            h = self.header
            msg = (
                f"{self.chain.first.name}: no whole frame record after the main "
                f"header at offset {MAIN_HEADER_SIZE}: expected at least {record} "
                f"bytes (frame header {h.frame_header_bytes} + {h.shape[0]} x "
                f"{h.shape[1]} pixels of {h.pixel_dtype.itemsize} bytes), found "
                f"{self.chain.nbytes} in {len(self.chain.parts)} part(s)"
            )
            raise TvipsFormatError(msg)
        self.ignored_bytes = leftover
        #: Defects found when opening, each also given as a warning.
        self.problems: list[Finding] = []
        if leftover:
            part, offset = self.chain.locate(self.n_frames * record)
            self.problems.append(
                Finding(
                    "warning", part.name, offset, "frame record",
                    f"{record} bytes", f"{leftover}",
                    f"truncated last record: {self.n_frames} whole frames are read",
                )
            )  # fmt: skip
            msg = (
                f"{part.name}: frame record {self.n_frames} at offset {offset} is "
                f"truncated: expected {record} bytes, found {leftover}; the "
                f"{leftover} bytes are ignored and {self.n_frames} whole frames "
                "are read (interrupted acquisition?)"
            )
            warn(msg)
        self._check_parts()

    def _check_parts(self) -> None:
        """Warn about a part that looks cut short in the middle of the chain.

        A part that lost bytes (an interrupted copy) shifts every later
        frame. Two signs of it, both cheap:

        1. the frame counter, where it counts up from frame to frame, jumps
           at the start of the next part;
        2. where there is no such counter, or no frame before the boundary
           to compare with: acquisition software caps every part at one
           size, so every part but the last holds within one record (and the
           main header) as many bytes of frames as the largest, and never
           none at all.

        Whether the counter counts is judged on two pairs of neighbouring
        frames, at the start and at the end of the recording, so that a
        loss inside the first part does not hide itself.
        """
        parts = self.chain.parts
        record = self.header.record_size
        if len(parts) < 2:
            return
        largest = max(p.length for p in parts[:-1])
        counting = "num" in self.header.frame_header_dtype.names and self.n_frames > 1
        if counting:
            n = self.n_frames
            num = self.read_headers([0, 1, n - 2, n - 1])["num"].astype(np.int64)
            counting = num[1] == num[0] + 1 or num[3] == num[2] + 1
        for part, following in itertools.pairwise(parts):
            frame = -(-following.stream_start // record)
            if frame >= self.n_frames:
                break  # no whole frame after this boundary: nothing shifted
            jump = None
            checked = counting and 0 < frame < self.n_frames
            if checked:
                num = self.read_headers([frame - 1, frame])["num"].astype(np.int64)
                if num[1] != num[0] + 1:
                    jump = num
            # the sizes speak only where no counter does: some writers split
            # parts at odd sizes, and a counter that runs on proves nothing
            # was lost
            short = not checked and (
                part.length == 0 or part.length < largest - record - MAIN_HEADER_SIZE
            )
            if not (short or jump is not None):
                continue
            if short:
                found = str(part.length) if part.length else "no frame bytes"
                self.problems.append(
                    Finding(
                        "warning", part.name, None, "part size",
                        f"about {largest} bytes of frames, like the other parts",
                        found, "the part may have lost bytes",
                    )
                )  # fmt: skip
            if jump is not None:
                after, offset = self.chain.locate(frame * record)
                self.problems.append(
                    Finding(
                        "warning", after.name, offset, "num", str(jump[0] + 1),
                        str(jump[1]), f"frame counter at the start of {after.name}; "
                        f"{part.name} may have lost bytes",
                    )
                )  # fmt: skip
            msg = f"{part.name}: "
            if short and part.length == 0:
                msg += "the part holds no frame bytes, yet frames follow it; "
            elif short:
                msg += (
                    f"the part holds {part.length} bytes of frames, far fewer than "
                    f"the others ({largest}); "
                )
            if jump is not None:
                msg += (
                    f"the frame counter jumps from {jump[0]} to {jump[1]} at the "
                    f"start of {following.name}; "
                )
            warn(msg + "if the part lost bytes, every frame after it is shifted")

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
        ...); bytes past the known fields are in ``extra``.
        """
        return self.read_headers(np.arange(self.n_frames))

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
        frames = self._check_frames(frames)
        return read_headers(self.chain, self.header, frames)

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
        read_frames_into(self.chain, self.header, frames, out)
        return out

    def _check_frames(self, frames) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        bad = (frames < -self.n_frames) | (frames >= self.n_frames)
        if bad.any():
            msg = (
                f"frame {int(frames[bad][0])} is out of range for a recording "
                f"of {self.n_frames} frames"
            )
            raise IndexError(msg)
        return frames % self.n_frames

    def to_dask(self, frames=None, chunks=None):
        """Return frames as a lazy dask array.

        Parameters
        ----------
        frames : array_like of int, optional
            Frame table: the frame each navigation point shows, -1 for a
            blank point, of the navigation shape (see :mod:`._scan`). By
            default the stack of all frames.
        chunks : optional
            Anything :func:`dask.array.from_array` takes as ``chunks``; by
            default about 100 MiB of whole frames, signal axes never split.

        Returns
        -------
        dask.array.Array
        """
        table = self._table(frames)
        return frame_table_to_dask(self.chain, self.header, table, chunks)

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
                    read_frames_into, self.chain, self.header, flat[a:b], out[a:b],
                    0, None if heads is None else heads[a:b],
                )
                for a, b in itertools.pairwise(bounds)
            ]  # fmt: skip
            for job in jobs:
                job.result()
        data = out.reshape(table.shape + self.frame_shape)
        return (data, heads) if headers else data

    def _table(self, frames) -> np.ndarray:
        if frames is None:
            return np.arange(self.n_frames, dtype=np.int64)
        table = np.asarray(frames, dtype=np.int64)
        bad = (table < -1) | (table >= self.n_frames)
        if bad.any():
            msg = (
                f"frame table entry {int(table[bad].flat[0])} is out of range for a "
                f"recording of {self.n_frames} frames (-1 means blank)"
            )
            raise IndexError(msg)
        return table
