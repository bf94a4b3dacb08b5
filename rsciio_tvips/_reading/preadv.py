"""Read frames and frame headers straight from the files into numpy arrays.

This is the only module that reads the bytes of frame records. Every read,
eager or from a dask task, goes through :func:`read_into`: it takes pieces
of the chain's stream (a frame's pixels, some rows of a frame, a frame
header), splits those that straddle two files, and reads runs of nearby pieces
with one ``preadv`` call that scatters the bytes into their places in the
destination array. Frame headers between the pixel data of consecutive
frames land in a small scratch buffer, so whole frames go from the page cache
to their final place in one copy, with one system call per few hundred
frames. The calls are planned with numpy: the Python work per frame is a
slice or two of a memoryview.

Files are opened for reading only, per call, and closed before it returns:
nothing here holds a file handle, so the callers can be pickled and run in
other processes. Each file opened is first checked to be the part the
recording was opened with (:func:`check_unchanged`: one ``fstat`` per file
opened, not per frame).
"""

from __future__ import annotations

import os
import time

import numpy as np

from .._format.parts import REWRITTEN, TRUNCATED
from ..exceptions import TvipsFormatError

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
#: Seconds to wait before a second look at a part that seems rewritten at
#: the same size: a write appending to it sets the new modification time
#: before the new size, and a look in between must not call it rewritten.
SETTLE_SECONDS = 0.01


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
        If a file holds fewer bytes than when the recording was opened, or
        is no longer the file it was (see :func:`check_unchanged`).
    """
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    if offsets.size == 0 or length == 0:
        return
    flat = memoryview(dest.reshape(-1).view(np.uint8))
    starts = (np.asarray(rows, dtype=np.int64).reshape(-1) * length).tolist()
    bufs = [flat[a : a + length] for a in starts]
    read_into(chain, offsets, bufs, np.full(offsets.size, length, np.int64))


def read_into(chain, offsets, bufs: list, sizes=None) -> None:
    """Read the stream at each offset into the buffer that goes with it.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    offsets : array_like of int
        Stream offset of each buffer.
    bufs : list of memoryview
        Writable byte buffers; a buffer that straddles two parts is split.
    sizes : array_like of int, optional
        ``len()`` of each buffer, when the caller knows them already.

    Raises
    ------
    TvipsFormatError
        If a file holds fewer bytes than when the recording was opened, or
        is no longer the file it was (see :func:`check_unchanged`).
    """
    if not bufs:
        return
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    if sizes is None:
        sizes = np.fromiter(map(len, bufs), np.int64, len(bufs))
    part, where, sizes, bufs = _place(chain, offsets, np.asarray(sizes, np.int64), bufs)
    if not bufs:
        return
    reader = _Reader(chain)
    try:
        if len(bufs) == 1:  # one piece in one part (a frame's pixels, a
            # run of headers): nothing to plan
            reader.read(int(part[0]), int(where[0]), bufs, _NO_GAPS)
            return
        # The plan is made with numpy, not piece by piece in Python: an eager
        # load has two pieces per frame, and Python work holds the GIL that the
        # other read thread needs between its system calls.
        gaps = np.zeros_like(where)
        gaps[1:] = where[1:] - (where[:-1] + sizes[:-1])
        new_run = np.ones(where.size, dtype=bool)
        new_run[1:] = (part[1:] != part[:-1]) | (gaps[1:] < 0) | (gaps[1:] > GAP_MAX)
        gaps[new_run] = 0
        # Running totals of the buffers and bytes a call would take from the
        # start; a batch starting at piece s ends where the totals since s pass
        # a limit, or at the next piece that cannot join (another part, a step
        # back, a wide gap).
        iovecs = np.cumsum(1 + (gaps > 0))
        nbytes = np.cumsum(sizes + gaps)
        stops = np.append(np.flatnonzero(new_run), where.size)
        s = 0
        while s < where.size:
            e = min(
                int(stops[np.searchsorted(stops, s, side="right")]),
                int(np.searchsorted(iovecs, iovecs[s] - 1 + IOV_MAX, side="right")),
                int(np.searchsorted(nbytes, nbytes[s] - sizes[s] + BATCH_MAX, "right")),
            )
            e = max(e, s + 1)  # a piece larger than BATCH_MAX goes alone
            reader.read(int(part[s]), int(where[s]), bufs[s:e], gaps[s + 1 : e])
            s = e
    finally:
        reader.close()


#: The gaps of a read of one piece (read-only: shared by every such read).
_NO_GAPS = np.zeros(0, np.int64)
_NO_GAPS.flags.writeable = False


def _place(chain, offsets, sizes, bufs):
    """Return the part index, file offset and size of each piece, and its buffer.

    :meth:`Chain.pieces <rsciio_tvips._format.parts.Chain.pieces>` says where
    the pieces lie; a buffer that straddles two parts is cut in two, and
    empty ones are dropped.
    """
    piece, part, where, skip, length = chain.pieces(offsets, sizes)
    if piece.size == len(bufs) and not skip.any():  # none cut, none dropped
        return part, where, length, bufs
    ends = skip + length
    bufs = [
        bufs[i][a:b]
        for i, a, b in zip(piece.tolist(), skip.tolist(), ends.tolist(), strict=True)
    ]
    return part, where, length, bufs


class _Reader:
    """Read runs of pieces of one part in one call each; open parts on demand."""

    def __init__(self, chain):
        self.chain = chain
        self.files = {}
        self.scratch = memoryview(bytearray(GAP_MAX))

    def read(self, part: int, offset: int, bufs: list, gaps) -> None:
        """Read ``bufs`` at ``offset``, skipping ``gaps[i]`` bytes before piece i+1."""
        if gaps.any():
            # The bytes between wanted pieces land in the scratch buffer.
            iov = [bufs[0]]
            for buf, gap in zip(bufs[1:], gaps.tolist(), strict=True):
                if gap:
                    iov.append(self.scratch[:gap])
                iov.append(buf)
        else:
            iov = bufs
        want = sum(map(len, iov))
        got = self._read_fully(self._file(part, offset + want), iov, offset)
        if got != want:
            name = self.chain.parts[part].name
            msg = (
                f"{name}: expected {want} bytes at offset {offset}, found "
                f"{got}; the file was shortened after the recording was opened"
            )
            raise TvipsFormatError(msg)

    @classmethod
    def _read_fully(cls, file, iov: list, offset: int) -> int:
        """Read into ``iov`` at ``offset`` until it is full or the file ends.

        A read may return fewer bytes than asked without the file ending:
        Linux moves at most 2 GiB - 4 KiB a call (a row of a very wide
        frame is more), and signals interrupt long reads.
        """
        total = 0
        while iov:
            n = cls._read(file, iov, offset + total)
            if n <= 0:
                break
            total += n
            while iov and n >= len(iov[0]):
                n -= len(iov[0])
                iov = iov[1:]
            if n:
                iov = [iov[0][n:], *iov[1:]]
        return total

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

    def _file(self, part: int, end: int):
        """Return part ``part`` open, opening and checking it on first use.

        ``end`` is where the read that needs it ends (a file offset).
        """
        if part not in self.files:
            # kept before the check, so that close() closes it if it fails
            file = self.files[part] = open(self.chain.parts[part].path, "rb", 0)
            check_unchanged(self.chain.parts[part], file.fileno(), end)
        return self.files[part]

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files = {}


def check_unchanged(part, fd: int, end: int) -> os.stat_result:
    """Check that the file open as ``fd`` is still the part the recording had.

    The file's ``fstat`` is compared with the part's
    :class:`~rsciio_tvips._format.parts.Identity`, by the rule of
    :meth:`~rsciio_tvips._format.parts.Identity.change`: a file replaced (new
    inode or device), truncated or rewritten at the same size (new
    modification time) is refused; bytes appended (an acquisition still
    writing) are allowed, and the bytes known are trusted. One ``fstat`` per
    file opened: a read of many frames pays it once.

    Parameters
    ----------
    part : Part
        The part as sized when the recording was opened.
    fd : int
        The part's file, just opened for a read.
    end : int
        File offset where the read about to be made ends.

    Raises
    ------
    TvipsFormatError
        Naming the part and what changed, from what to what: ``"rec_001.tvips:
        the part changed since the recording was opened: inode 12 -> 34
        (replaced)"``. A file truncated before ``end`` is left to the read,
        whose short count says which bytes are missing.

    Returns
    -------
    os.stat_result
        The file's ``fstat``, for a caller that needs its size too.
    """
    now = os.fstat(fd)
    change = part.identity.change(now)
    if change is not None and change.kind == REWRITTEN:
        time.sleep(SETTLE_SECONDS)
        now = os.fstat(fd)
        change = part.identity.change(now)
    if change is None or (change.kind == TRUNCATED and end > now.st_size):
        return now
    msg = f"{part.name}: the part changed since the recording was opened: {change.text}"
    raise TvipsFormatError(msg)


def read_frames_into(
    records, frames, out: np.ndarray, row_start: int = 0, headers=None
):
    """Read frames (or a band of rows of each) into a preallocated array.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
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
        zero headers. Of ``header.frame_header_dtype`` (whole headers) or
        ``header.decoded_header_dtype`` (the decoded fields only: a call per
        few hundred frames, where reading the fields apart takes one per
        frame of more than 16 KiB).
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
    if valid.size == 1:  # a frame asked for on its own: nothing to sort
        unique, rows, inverse = frames[valid], valid, np.zeros(1, np.int64)
    else:
        unique, first, inverse = np.unique(
            frames[valid], return_index=True, return_inverse=True
        )
        rows = valid[first]
    header = records.header
    if headers is not None and (row_start or out.shape[1] != header.shape[0]):
        raise ValueError("frame headers are read with whole frames only")
    # Block by block, so that preparing the next block (Python, holding the
    # GIL) overlaps with the read of another thread (a system call, not
    # holding it) instead of preparing a whole recording before reading.
    for a in range(0, unique.size, BLOCK_FRAMES):
        b = a + BLOCK_FRAMES
        if headers is None:
            offsets = records.pixel_offsets(unique[a:b], row_start)
            read_pieces(records.chain, offsets, out[0].nbytes, out, rows[a:b])
        else:
            _read_records(records, unique[a:b], rows[a:b], out, headers)
    if valid.size == 1:
        return
    # A frame wanted at several places is read once and copied.
    source = rows[inverse.reshape(-1)]
    dup = source != valid
    if dup.any():
        out[valid[dup]] = out[source[dup]]
        if headers is not None:
            headers[valid[dup]] = headers[source[dup]]


def _read_records(records, frames, rows, out, headers) -> None:
    """Read records: each header's start into ``headers``, its pixels into ``out``.

    ``headers`` holds whole frame headers, or their decoded fields only
    (``decoded_header_dtype``): the bytes between those and the pixels
    are then skipped (read into scratch when they are few).
    """
    fhb, size = records.header.frame_header_bytes, out[0].nbytes
    hb = headers.dtype.itemsize
    heads = memoryview(headers.view(np.uint8).reshape(-1))
    pixels = memoryview(out.reshape(-1).view(np.uint8))
    rows = np.asarray(rows, dtype=np.int64)
    # Two pieces per record, in file order: its header, then its pixels.
    offsets = np.repeat(records.record_offsets(frames), 2)
    offsets[1::2] += fhb
    sizes = np.tile(np.array([hb, size], np.int64), rows.size)
    bufs = [None] * (2 * rows.size)
    bufs[0::2] = [heads[a : a + hb] for a in (rows * hb).tolist()]
    bufs[1::2] = [pixels[a : a + size] for a in (rows * size).tolist()]
    read_into(records.chain, offsets, bufs, sizes)


def read_headers(records, frames) -> np.ndarray:
    """Read the frame headers of the given frames, and no pixels.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    frames : array_like of int
        Frame numbers, in any order.

    Returns
    -------
    numpy.ndarray
        Structured array of ``header.frame_header_dtype``.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    return _read_header_starts(records, frames, records.header.frame_header_dtype)


def _read_header_starts(records, frames: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Read the first ``dtype.itemsize`` bytes of the headers of ``frames``."""
    out = np.empty(frames.size, dtype)
    offsets = records.record_offsets(frames)
    read_pieces(records.chain, offsets, dtype.itemsize, out, np.arange(frames.size))
    return out


def read_header_fields(records, frames) -> np.ndarray:
    """Read the decoded fields of the frame headers of the given frames.

    Only the first ``header.decoded_header_dtype.itemsize`` bytes of each
    header (at most 108), never the undecoded rest: a pass over every frame
    header costs the same for 60-byte headers and for 16 MiB ones. For a run
    of consecutive records at most :data:`SMALL_RECORD_FACTOR` times that
    size (tiny frames), the records are read whole in one call instead.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    frames : array_like of int
        Frame numbers, in any order.

    Returns
    -------
    numpy.ndarray
        Structured array of ``header.decoded_header_dtype``.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    dtype = records.header.decoded_header_dtype
    record = records.header.record_size
    if frames.size > 1 and record <= SMALL_RECORD_FACTOR * dtype.itemsize:
        run = frames[-1] - frames[0] + 1 == frames.size and np.all(np.diff(frames) > 0)
        if run:
            # tiny frames: one read of the whole records beats a buffer per
            # header, and reads little more
            whole = np.empty(frames.size * record, np.uint8)
            read_into(
                records.chain, records.record_offsets(frames[:1]), [memoryview(whole)]
            )
            view = np.ndarray(frames.size, dtype, whole, 0, (record,))
            return view.copy()
    return _read_header_starts(records, frames, dtype)


#: Records at most this many times their decoded header fields are read
#: whole by :func:`read_header_fields` for a run of consecutive frames.
SMALL_RECORD_FACTOR = 4
