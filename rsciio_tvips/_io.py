"""Read frames and frame headers straight from the files into numpy arrays.

This is the only module that reads the bytes of frame records. Every read,
eager or from a dask task, goes through :func:`read_pieces`: it takes pieces
of the chain's stream (a frame's pixels, some rows of a frame, a frame
header), splits those that straddle two files, and reads runs of nearby pieces
with one ``preadv`` call that scatters the bytes into their places in the
destination array. Frame headers between the pixel data of consecutive frames
land in a small scratch buffer, so whole frames go from the page cache to
their final place in one copy, with one system call per few hundred frames.

Files are opened for reading only, per call, and closed before it returns:
nothing here holds a file handle, so the callers can be pickled and run in
other processes.
"""

from __future__ import annotations

import os

import numpy as np

from .exceptions import TvipsFormatError

#: Gaps between wanted pieces up to this size are read into a scratch buffer
#: rather than split into another system call (a copy of 16 KiB costs about
#: what the call costs).
GAP_MAX = 16 * 1024
#: Most buffers one ``preadv`` call takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Most bytes one call reads; Linux reads at most 2 GiB - 4 KiB per call.
BATCH_MAX = 64 * 1024 * 1024
#: Frames prepared and read at a time: two buffers each (header and pixels,
#: or pixels and the gap to the next frame) fill one ``preadv`` call.
BLOCK_FRAMES = (IOV_MAX - 2) // 2
#: Whether the system has ``os.preadv``; a module attribute so that the
#: portable fallback can be tested on systems that have it.
HAVE_PREADV = hasattr(os, "preadv")


class _BatchReader:
    """Collect pieces of one file into runs and read each run in one call."""

    def __init__(self, chain):
        self.chain = chain
        self.files = {}
        self.scratch = memoryview(bytearray(GAP_MAX))
        self.part = -1
        self.start = 0
        self.cursor = 0
        self.bufs = []

    def add(self, part: int, file_offset: int, buf: memoryview) -> None:
        gap = file_offset - self.cursor
        if (
            self.bufs
            and part == self.part
            and 0 <= gap <= GAP_MAX
            and len(self.bufs) < IOV_MAX - 1
            and self.cursor + gap + len(buf) - self.start <= BATCH_MAX
        ):
            if gap:
                self.bufs.append(self.scratch[:gap])
        else:
            self.flush()
            self.part = part
            self.start = file_offset
        self.bufs.append(buf)
        self.cursor = file_offset + len(buf)

    def flush(self) -> None:
        if not self.bufs:
            return
        want = self.cursor - self.start
        got = self._read(self._file(self.part), self.bufs, self.start)
        self.bufs = []
        if got != want:
            name = self.chain.parts[self.part].name
            msg = (
                f"{name}: expected {want} bytes at offset {self.start}, found "
                f"{got}; the file was shortened after the recording was opened"
            )
            raise TvipsFormatError(msg)

    @staticmethod
    def _read(file, bufs, offset: int) -> int:
        if HAVE_PREADV:
            return os.preadv(file.fileno(), bufs, offset)
        file.seek(offset)
        total = 0
        for buf in bufs:
            n = file.readinto(buf)
            total += n
            if n < len(buf):
                break
        return total

    def _file(self, part: int):
        if part not in self.files:
            self.files[part] = open(self.chain.parts[part].path, "rb", buffering=0)
        return self.files[part]

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files = {}


def read_pieces(chain, offsets, length: int, dest: np.ndarray, rows) -> None:
    """Read equal-length pieces of the stream into rows of ``dest``.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    offsets : array_like of int
        Stream offsets of the pieces. Any order works; runs of increasing,
        non-overlapping pieces are read together.
    length : int
        Bytes in each piece.
    dest : numpy.ndarray
        C-contiguous array; seen as bytes, it has rows of ``length`` bytes.
    rows : array_like of int
        Row of ``dest`` that piece ``i`` is read into.

    Raises
    ------
    TvipsFormatError
        If a file holds fewer bytes than when the recording was opened.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.size == 0 or length == 0:
        return
    flat = memoryview(dest.reshape(-1).view(np.uint8))
    bufs = [flat[r * length : (r + 1) * length] for r in np.asarray(rows).tolist()]
    read_into(chain, offsets.tolist(), bufs)


def read_into(chain, offsets: list, bufs: list) -> None:
    """Read the stream at each offset into the buffer that goes with it.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    offsets : list of int
        Stream offset of each buffer.
    bufs : list of memoryview
        Writable byte buffers; a buffer that straddles two parts is split.
    """
    ends = np.array([p.stream_start + p.length for p in chain.parts], np.int64)
    starts = np.asarray(offsets, dtype=np.int64)
    sizes = np.array([len(b) for b in bufs], dtype=np.int64)
    first = np.searchsorted(ends, starts, side="right").tolist()
    last = np.searchsorted(
        ends, starts + np.maximum(sizes - 1, 0), side="right"
    ).tolist()
    reader = _BatchReader(chain)
    try:
        for offset, buf, p0, p1 in zip(offsets, bufs, first, last, strict=True):
            for index in range(p0, p1 + 1):
                # A piece is split where it straddles the end of a part.
                part = chain.parts[index]
                lo = max(offset, part.stream_start)
                hi = min(offset + len(buf), part.stream_start + part.length)
                if hi > lo:
                    reader.add(
                        index,
                        part.file_offset + lo - part.stream_start,
                        buf[lo - offset : hi - offset],
                    )
        reader.flush()
    finally:
        reader.close()


def read_frames_into(
    chain, header, frames, out: np.ndarray, row_start: int = 0, headers=None
):
    """Read frames (or a band of rows of each) into a preallocated array.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        The recording's main header.
    frames : array_like of int
        Frame numbers, in any order, repeats allowed; -1 means a blank frame
        (filled with zeros).
    out : numpy.ndarray
        C-contiguous array of shape ``(len(frames), nrows, dimx)`` and the
        recording's pixel type.
    row_start : int, optional
        First row to read of each frame; ``out.shape[1]`` rows are read.
    headers : numpy.ndarray, optional
        Structured array of ``len(frames)`` frame headers to fill in the same
        pass (whole frames only): each record is read in one piece, its
        header into ``headers`` and its pixels into ``out``; blank frames get
        zero headers.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    blank = frames < 0
    if blank.any():
        out[blank] = 0
        if headers is not None:
            headers[blank] = np.zeros((), headers.dtype)
    valid = np.flatnonzero(~blank)
    if valid.size == 0:
        return
    unique, first, inverse = np.unique(
        frames[valid], return_index=True, return_inverse=True
    )
    rows = valid[first]
    if headers is not None and (row_start or out.shape[1] != header.shape[0]):
        raise ValueError("frame headers are read with whole frames only")
    # Block by block, so that preparing the next block (Python, holding the
    # GIL) overlaps with the read of another thread (a system call, not
    # holding it) instead of preparing a whole recording before reading.
    for a in range(0, unique.size, BLOCK_FRAMES):
        b = a + BLOCK_FRAMES
        if headers is None:
            row_bytes = header.shape[1] * header.pixel_dtype.itemsize
            offsets = (
                unique[a:b] * header.record_size
                + header.frame_header_bytes
                + row_start * row_bytes
            )
            read_pieces(chain, offsets, out[0].nbytes, out, rows[a:b])
        else:
            _read_records(chain, header, unique[a:b], rows[a:b], out, headers)
    # A frame wanted at several places is read once and copied.
    source = rows[inverse.reshape(-1)]
    dup = source != valid
    if dup.any():
        out[valid[dup]] = out[source[dup]]
        if headers is not None:
            headers[valid[dup]] = headers[source[dup]]


def _read_records(chain, header, frames, rows, out, headers) -> None:
    """Read whole records: each header into ``headers``, its pixels into ``out``."""
    fhb, size = header.frame_header_bytes, out[0].nbytes
    heads = memoryview(headers.view(np.uint8).reshape(-1))
    pixels = memoryview(out.reshape(-1).view(np.uint8))
    offsets, bufs = [], []
    for frame, row in zip(frames.tolist(), rows.tolist(), strict=True):
        offsets += [frame * header.record_size, frame * header.record_size + fhb]
        bufs += [
            heads[row * fhb : (row + 1) * fhb],
            pixels[row * size : (row + 1) * size],
        ]
    read_into(chain, offsets, bufs)


def read_headers(chain, header, frames) -> np.ndarray:
    """Read the frame headers of the given frames, and no pixels.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        The recording's main header.
    frames : array_like of int
        Frame numbers, in any order.

    Returns
    -------
    numpy.ndarray
        Structured array of ``header.frame_header_dtype``.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    dtype = header.frame_header_dtype
    out = np.empty(frames.size, dtype)
    read_pieces(
        chain,
        frames * header.record_size,
        dtype.itemsize,
        out,
        np.arange(frames.size),
    )
    return out
