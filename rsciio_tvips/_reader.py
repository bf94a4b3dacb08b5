"""Open a recording: :class:`TvipsRecording`, its lazy and eager arrays.

Opening reads the main header and the sizes of the parts, nothing else. The
frames are then available three ways, all through :mod:`._io`:

- :meth:`TvipsRecording.read_frame` and :meth:`~TvipsRecording.read_frames`;
- :meth:`TvipsRecording.to_dask`: a dask array built on :class:`FrameSource`,
  a small picklable array-like (paths, offsets, sizes: no memmap, no data, no
  file handle) whose ``__getitem__`` reads only the frames, and the rows of
  each frame, that a chunk needs. Its graph pickles to a few kilobytes and
  runs on any dask scheduler, processes and clusters included;
- :meth:`TvipsRecording.asarray`: one preallocated array read in place by two
  threads, with no second copy.
"""

from __future__ import annotations

import itertools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np

from ._format import MAIN_HEADER_SIZE
from ._header import MainHeader, parse_main_header
from ._io import read_frames_into, read_headers
from ._parts import Chain, find_parts
from ._scan import LinearLayout
from .exceptions import TvipsFormatError, TvipsFormatWarning

#: Default size of a dask chunk, in bytes.
CHUNK_BYTES = 100 * 2**20
#: Below this many bytes an eager read is done by one thread.
THREADED_MIN_BYTES = 64 * 2**20
#: Threads for eager reads: copies out of the page cache scale to two.
READ_THREADS = 2


class FrameSource:
    """A picklable, read-only array-like over the frames of a recording.

    Indexing with slices (as :func:`dask.array.from_array` does) reads the
    frames of the navigation block and only the rows asked for. Instances
    hold the parts' paths and sizes, never a file handle or data.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        The recording's main header.
    layout : LinearLayout
        Which frame each navigation point shows.
    """

    def __init__(self, chain: Chain, header: MainHeader, layout):
        self.chain = chain
        self.header = header
        self.layout = layout
        self.shape = tuple(layout.nav_shape) + tuple(header.shape)
        self.dtype = header.pixel_dtype
        self.ndim = len(self.shape)

    def __dask_tokenize__(self):
        return (type(self).__name__, self.chain, self.header.raw, self.layout)

    def __getitem__(self, key) -> np.ndarray:
        key = _expand(key, self.ndim)
        index = [_indices(k, n) for k, n in zip(key, self.shape, strict=True)]
        squeeze = tuple(i for i, k in enumerate(key) if _is_scalar(k))
        nav = self.ndim - 2
        frames = self.layout.frames(index[:nav])
        rows, cols = index[nav], index[nav + 1]
        r0, r1 = (int(rows.min()), int(rows.max()) + 1) if rows.size else (0, 0)
        # Read the band of rows that covers the selection, and only that.
        out = np.empty((frames.size, r1 - r0, self.shape[-1]), self.dtype)
        if out.size:
            read_frames_into(self.chain, self.header, frames, out, row_start=r0)
        if not np.array_equal(rows, np.arange(r0, r1)):
            out = out[:, rows - r0]
        if not np.array_equal(cols, np.arange(self.shape[-1])):
            out = out[:, :, cols]
        out = out.reshape(frames.shape + out.shape[1:])
        return out.squeeze(axis=squeeze) if squeeze else out


def _expand(key, ndim: int) -> tuple:
    """Return ``key`` as one entry per axis, ``...`` expanded."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices: {len(key)} for {ndim} dimensions")
    return key + (slice(None),) * (ndim - len(key))


def _is_scalar(key) -> bool:
    return not isinstance(key, slice) and np.ndim(key) == 0


def _indices(key, size: int) -> np.ndarray:
    """Return the indices one axis's key selects, as a 1-D int64 array."""
    if isinstance(key, slice):
        return np.arange(*key.indices(size), dtype=np.int64)
    index = np.asarray(key)
    if index.ndim > 1 or not (
        index.size == 0 or np.issubdtype(index.dtype, np.integer)
    ):
        raise IndexError(
            f"unsupported index {key!r}: use integers, slices or 1-D lists"
        )
    index = index.astype(np.int64).reshape(-1)
    bad = (index < -size) | (index >= size)
    if bad.any():
        msg = f"index {int(index[bad][0])} is out of bounds for an axis of size {size}"
        raise IndexError(msg)
    return index % size


def auto_chunks(nav_shape: tuple, frame_nbytes: int, target: int = CHUNK_BYTES):
    """Return chunks of about ``target`` bytes: whole frames, C-order blocks.

    The last navigation axes are kept whole as long as a chunk stays under
    ``target``; signal axes are never split.

    Parameters
    ----------
    nav_shape : tuple of int
        Shape of the navigation axes.
    frame_nbytes : int
        Bytes of one frame.
    target : int, optional
        Wanted chunk size in bytes.

    Returns
    -------
    tuple of int
        Chunk shape along the navigation axes.
    """
    budget = max(1, target // frame_nbytes)
    chunks = []
    for size in reversed(nav_shape):
        take = max(1, min(size, budget))
        chunks.append(take)
        budget = max(1, budget // size) if take == size else 1
    return tuple(reversed(chunks))


class TvipsRecording:
    """A TVIPS recording opened from any of its parts.

    Opening reads the main header and the file sizes only. The number of
    frames comes from the sizes: ``(bytes after the main header) //
    (record size)`` over all parts.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording (``x_000.tvips``, ``x_002.tvips`` ...).

    Raises
    ------
    TvipsFormatError
        If the main header is invalid (see :func:`parse_main_header`), a
        part is missing, or not one whole frame record follows the header.

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
    """

    def __init__(self, filename: str | os.PathLike):
        self.chain = find_parts(filename)
        with open(self.chain.first.path, "rb") as f:
            raw = f.read(MAIN_HEADER_SIZE)
        self.header = parse_main_header(raw, self.chain.first.name)
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
        if leftover:
            part, offset = self.chain.locate(self.n_frames * record)
            msg = (
                f"{part.name}: frame record {self.n_frames} at offset {offset} is "
                f"truncated: expected {record} bytes, found {leftover}; the "
                f"{leftover} bytes are ignored and {self.n_frames} whole frames "
                "are read (interrupted acquisition?)"
            )
            warnings.warn(msg, TvipsFormatWarning, stacklevel=2)

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

    def layout(self, nav_shape=None, start: int = 0) -> LinearLayout:
        """Return the layout of frames on navigation axes.

        Parameters
        ----------
        nav_shape : tuple of int, optional
            Navigation shape; by default ``(n_frames - start,)``.
        start : int, optional
            Frame at the first navigation point; negative pads blank frames.

        Returns
        -------
        LinearLayout
        """
        if nav_shape is None:
            nav_shape = (self.n_frames - start,)
        return LinearLayout(tuple(int(n) for n in nav_shape), int(start), self.n_frames)

    def to_dask(self, layout=None, chunks=None):
        """Return the frames as a lazy dask array.

        Parameters
        ----------
        layout : LinearLayout, optional
            Navigation layout; by default the stack of all frames.
        chunks : optional
            Anything :func:`dask.array.from_array` takes as ``chunks``; by
            default about 100 MiB of whole frames, signal axes never split.

        Returns
        -------
        dask.array.Array
        """
        import dask.array as da
        from dask.base import tokenize

        layout = layout or self.layout()
        source = FrameSource(self.chain, self.header, layout)
        if chunks is None:
            nav = auto_chunks(layout.nav_shape, self.header.frame_nbytes)
            chunks = nav + self.frame_shape
        return da.from_array(
            source,
            chunks=chunks,
            name="tvips-" + tokenize(source, chunks),
            asarray=False,
            fancy=True,
            inline_array=True,
            meta=np.empty((0,) * source.ndim, source.dtype),
        )

    def asarray(self, layout=None) -> np.ndarray:
        """Read the frames into one new array, in place.

        Parameters
        ----------
        layout : LinearLayout, optional
            Navigation layout; by default the stack of all frames.

        Returns
        -------
        numpy.ndarray
            Array of shape ``nav_shape + (dimy, dimx)``.
        """
        layout = layout or self.layout()
        frames = layout.frames([np.arange(n) for n in layout.nav_shape])
        out = np.empty((frames.size, *self.frame_shape), self.dtype)
        flat = frames.reshape(-1)
        if out.nbytes < THREADED_MIN_BYTES:
            read_frames_into(self.chain, self.header, flat, out)
        else:
            bounds = np.linspace(0, flat.size, READ_THREADS + 1).astype(int)
            with ThreadPoolExecutor(READ_THREADS) as pool:
                jobs = [
                    pool.submit(
                        read_frames_into, self.chain, self.header, flat[a:b], out[a:b]
                    )
                    for a, b in itertools.pairwise(bounds)
                ]
                for job in jobs:
                    job.result()
        return out.reshape(frames.shape + self.frame_shape)
