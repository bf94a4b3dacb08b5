"""Put frame records into part files, each at its place, under temporary names.

:func:`write_parts` writes every record at its place in its part: part ``k``
holds the frames ``edges[k] .. edges[k + 1] - 1``, and frame ``f`` of it
starts at byte ``(256 if k == 0 else 0) + (f - edges[k]) * record``. Because
every record has a fixed place, blocks of frames can be written in any order:
lazy data is computed along its own chunk grid (each chunk once, whatever its
shape on the navigation axes) and each contiguous run of frames goes to the
file with one ``pwritev`` (frame headers and frames gathered from where they
are, no assembly copy). A frame larger than
:data:`.pieces.LARGE_FRAME_BYTES` is computed and written in pieces instead
(:mod:`.pieces`: rows, or parts of a row, each within one chunk of the
data), so that no frame is ever held whole. At most :data:`OPEN_FILES`
parts are open at once.

The parts are written under the hidden names of :mod:`.names`, and
:func:`~.commit.commit` then moves them into place.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import math
import os
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .._format.layout import MAIN_HEADER_SIZE
from . import pieces
from .loading import _groups, _load, _pipelined
from .names import named_error

#: Bytes of frames loaded (computed) and written at once.
BLOCK_BYTES = 64 * 2**20
#: Most buffers one ``pwritev`` call takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Whether the system has ``os.pwritev``; a module attribute so that the
#: portable path can be tested on systems that have it.
HAVE_WRITEV = hasattr(os, "pwritev")
#: Most part files held open at once.
OPEN_FILES = 16


class _PartFiles:
    """The temporary part files, opened on demand, a few at a time."""

    def __init__(self, parts):
        self.temps = [part.temp for part in parts]
        self.names = [part.final.name for part in parts]
        self.open = OrderedDict()
        self.created = set()

    def fd(self, k: int) -> int:
        if k in self.open:
            self.open.move_to_end(k)
            return self.open[k]
        flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
        if k not in self.created:
            flags |= os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(self.temps[k], flags, 0o666)
        except OSError as exc:
            raise named_error(exc, self.names[k], "cannot create") from exc
        self.created.add(k)
        self.open[k] = fd
        if len(self.open) > OPEN_FILES:
            os.close(self.open.popitem(last=False)[1])
        return fd

    def write(self, k: int, offset: int, bufs: list) -> None:
        fd = self.fd(k)
        try:
            if HAVE_WRITEV:
                _pwritev_all(fd, bufs, offset)
            else:
                os.lseek(fd, offset, os.SEEK_SET)
                data = b"".join(bytes(b) for b in bufs)
                while data:
                    data = data[os.write(fd, data) :]
        except OSError as exc:
            raise named_error(exc, self.names[k], "cannot write") from exc

    def close(self) -> None:
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()


def _pwritev_all(fd: int, bufs: list, offset: int) -> None:
    """Write every buffer, in order, from ``offset``, resuming partial writes."""
    bufs = [b for b in bufs if len(b)]  # an empty last buffer would spin
    i = 0
    while i < len(bufs):
        written = os.pwritev(fd, bufs[i : i + IOV_MAX], offset)
        if written == 0:  # no progress, no error: never loop on it
            raise OSError(errno.EIO, "pwritev wrote nothing")
        offset += written
        while written and i < len(bufs):
            if written >= len(bufs[i]):
                written -= len(bufs[i])
                i += 1
            else:
                bufs[i] = bufs[i][written:]
                written = 0


def _blocks(data, frame_bytes: int) -> list[tuple[slice, ...]]:
    """Return navigation blocks to load at once, as slices in C order.

    Numpy data: runs of about BLOCK_BYTES along the flattened frames (given
    as one slice over a 1-D navigation). Dask data: its own chunks on the
    navigation axes, so that no chunk is computed twice.
    """
    nav = data.shape[:-2]
    chunks = getattr(data, "chunks", None)
    if chunks is None:
        n = math.prod(nav)
        per = max(1, BLOCK_BYTES // frame_bytes)
        return [(slice(a, min(n, a + per)),) for a in range(0, n, per)]
    edges = [np.cumsum((0, *c)).tolist() for c in chunks[: len(nav)]]
    return [
        tuple(slice(edges[a][i], edges[a][i + 1]) for a, i in enumerate(index))
        for index in itertools.product(*(range(len(c)) for c in chunks[: len(nav)]))
    ]


def write_parts(parts, counts, header: bytes, headers, data, progress) -> None:
    """Write every part under its temporary name.

    Parameters
    ----------
    parts : list of Part
        Each part's final and temporary name (:func:`~.names.new_parts`).
    counts : list of int
        Records in each part.
    header : bytes
        The main header (start of part 0).
    headers : FrameHeaders
        Frame headers of all frames, in C order of the navigation axes
        (:func:`~rsciio_tvips._metadata.encode.frame_headers`).
    data : numpy.ndarray or dask.array.Array
        Frames, shape ``nav + (dimy, dimx)``, chunked in any way; numpy
        data must have one navigation axis (flattened by the caller).
    progress : object or None
        Progress bar with ``update(n)``.
    """
    frame_bytes = math.prod(data.shape[-2:]) * data.dtype.itemsize
    fhb = headers.size
    places = _Places(np.cumsum([0, *counts]).tolist(), fhb, fhb + frame_bytes)
    heads = HeaderBytes(headers)
    files = _PartFiles(parts)
    try:
        files.write(0, 0, [header])
        # the module's limit, read at each write (tests lower it)
        if frame_bytes > pieces.LARGE_FRAME_BYTES:
            pieces._write_large_frames(files, data, heads, places, progress)
        else:
            _write_frames(files, data, heads, places, progress)
    finally:
        files.close()


#: Bytes of carried frame-header ends (past the decoded fields) a lazy
#: signal's are computed in at a time.
EXTRA_BLOCK_BYTES = 16 * 2**20


class HeaderBytes:
    """The bytes of each frame's header, made as they are written.

    The decoded fields of every frame are held (at most 108 bytes a frame);
    the bytes after them are one shared run of zeros, rows of a numpy
    array, or, for a lazy signal's carried headers, its chunks, each
    computed when first written (the last two kept: frames are written in
    order, a chunk of the data at a time). The reader's chunks hold at most
    :data:`~rsciio_tvips._reading.lazy.HEADER_TASK_BYTES`; others larger
    than :data:`EXTRA_BLOCK_BYTES` are cut to that.

    Parameters
    ----------
    headers : FrameHeaders
        What :func:`~rsciio_tvips._metadata.encode.frame_headers` made.
    """

    def __init__(self, headers):
        fields = headers.fields
        self.fields = fields.view(np.uint8).reshape(fields.size, fields.dtype.itemsize)
        self.tail = headers.size - fields.dtype.itemsize
        self.extra = headers.extra
        self.zeros = memoryview(bytes(self.tail))
        self.blocks = OrderedDict()
        self.edges = None
        if self.extra is not None and not isinstance(self.extra, np.ndarray):
            extra = self.extra
            if max(extra.chunks[0], default=0) * self.tail > EXTRA_BLOCK_BYTES:
                # chunks too large to hold two of: cut them (each piece then
                # computes its chunk again: the reader's chunks never are)
                rows = max(1, EXTRA_BLOCK_BYTES // max(self.tail, 1))
                self.extra = extra = extra.rechunk({0: rows})
            self.edges = np.cumsum([0, *extra.chunks[0]]).tolist()

    def of(self, f: int) -> list[memoryview]:
        """Return the buffers of frame ``f``'s header, to be written in turn."""
        head = [memoryview(self.fields[f])]
        if not self.tail:
            return head
        if self.extra is None:
            return [*head, self.zeros]
        if isinstance(self.extra, np.ndarray):
            return [*head, memoryview(self.extra[f])]
        # a lazy signal's: one of its own chunks at a time (each a task of
        # the reader's, which reads those headers once)
        b = bisect.bisect_right(self.edges, f) - 1
        rows = self.blocks.get(b)
        if rows is None:
            rows = np.ascontiguousarray(self.extra.blocks[b], np.uint8)
            self.blocks[b] = rows
            if len(self.blocks) > 2:
                self.blocks.popitem(last=False)
        return [*head, memoryview(rows[f - self.edges[b]])]


class _Places(NamedTuple):
    """Where records go: part ``k`` holds frames ``edges[k] .. edges[k + 1] - 1``."""

    edges: list
    fhb: int  # bytes of a frame header
    record: int  # bytes of a record (frame header and pixels)

    def record_start(self, k: int, f: int) -> int:
        """Return the offset of frame ``f``'s record in part ``k``."""
        return (MAIN_HEADER_SIZE if k == 0 else 0) + (f - self.edges[k]) * self.record


def _write_frames(files, data, heads, places, progress) -> None:
    """Write frames of at most LARGE_FRAME_BYTES, whole, a group of blocks at a time."""
    nav = data.shape[:-2]
    frame_bytes = places.record - places.fhb
    blocks = _blocks(data, frame_bytes)
    sizes = [math.prod(s.stop - s.start for s in b) * frame_bytes for b in blocks]
    dtype = np.dtype(data.dtype)

    def write(group, arrays):
        for block, array in zip(group, arrays, strict=True):
            _write_block(files, block, array, nav, heads, places)
            if progress is not None:
                progress.update(math.prod(array.shape[:-2]))

    groups = _groups(blocks, sizes, BLOCK_BYTES)
    _pipelined(groups, lambda group: _load(data, group, dtype), write)


def _write_block(files, block, array, nav, heads, places) -> None:
    """Write a block's frames as runs of consecutive frames."""
    fhb, record, edges = places.fhb, places.record, places.edges
    starts = [np.arange(s.start, s.stop) for s in block[:-1]]
    last = block[-1]
    run = last.stop - last.start
    flat = array.reshape(-1, run, *array.shape[-2:])
    firsts = (
        np.ravel_multi_index(
            tuple(np.meshgrid(*starts, [last.start], indexing="ij")), nav
        ).reshape(-1)
        if starts
        else np.array([last.start])
    )
    frame_bytes = record - fhb
    for f0, frames in zip(firsts.tolist(), flat, strict=True):
        pixels = memoryview(frames.reshape(-1).view(np.uint8))
        for k in range(len(edges) - 1):
            lo, hi = max(f0, edges[k]), min(f0 + run, edges[k + 1])
            if lo >= hi:
                continue
            # written every EXTRA_BLOCK_BYTES or so: each buffer of a lazy
            # signal's header ends holds its whole chunk of them
            start, bufs, size = places.record_start(k, lo), [], 0
            for f in range(lo, hi):
                bufs += heads.of(f)
                bufs.append(pixels[(f - f0) * frame_bytes : (f - f0 + 1) * frame_bytes])
                size += record
                if size >= EXTRA_BLOCK_BYTES:
                    files.write(k, start, bufs)
                    start, bufs, size = start + size, [], 0
            if bufs:
                files.write(k, start, bufs)
