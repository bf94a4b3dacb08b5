"""Write frames larger than :data:`LARGE_FRAME_BYTES` in pieces, never whole.

:func:`~.store.write_parts` hands such frames to :func:`_write_large_frames`:
each frame is computed a group of pieces at a time (:func:`_pieces`: rows,
or parts of a row, each within one chunk of the data), and the pieces' rows
go to their places in the record (:func:`_segments`), those that follow
each other in the file in one call (:func:`_runs`), so that memory stays
bounded whatever the size of a frame.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np

from .loading import _groups, _load, _pipelined

#: Frames larger than this are computed and written in pieces of at most
#: this many bytes (rows, or parts of a row) instead of whole.
LARGE_FRAME_BYTES = 64 * 2**20


def _write_large_frames(files, data, heads, places, progress) -> None:
    """Write frames larger than LARGE_FRAME_BYTES, each in pieces.

    Each frame is computed a group of pieces (:func:`_pieces`) at a time;
    the pieces' rows go to their places in the record, those that follow
    each other in the file in one call.
    """
    nav, (_, dimx) = data.shape[:-2], data.shape[-2:]
    dtype = np.dtype(data.dtype)
    pieces = _pieces(data)
    sizes = [
        (r.stop - r.start) * (c.stop - c.start) * dtype.itemsize for r, c in pieces
    ]
    groups = _groups(pieces, sizes, LARGE_FRAME_BYTES)
    jobs = [(f, g) for f in range(math.prod(nav)) for g in range(len(groups))]

    def load(job):
        f, g = job
        index = tuple(int(i) for i in np.unravel_index(f, nav))
        return _load(data, [(*index, rows, cols) for rows, cols in groups[g]], dtype)

    def write(job, arrays):
        f, g = job
        k = bisect.bisect_right(places.edges, f) - 1
        start = places.record_start(k, f)
        # the frame header goes with the first piece, in the same call
        segments = []
        if g == 0:
            at = start
            for buf in heads.of(f):
                segments.append((at, buf))
                at += len(buf)
        for (rows, cols), array in zip(groups[g], arrays, strict=True):
            segments += _segments(array, rows, cols, start + places.fhb, dimx)
        for offset, bufs in _runs(segments):
            files.write(k, offset, bufs)
        if progress is not None and g == len(groups) - 1:
            progress.update(1)

    _pipelined(jobs, load, write)


def _pieces(data) -> list[tuple[slice, slice]]:
    """Return the pieces a large frame is computed in: (rows, columns) slices.

    Each piece lies within one chunk of the data's signal axes (numpy data:
    one chunk), so that computing it never needs a second chunk, and holds
    at most :data:`LARGE_FRAME_BYTES`: rows of the chunk, or parts of one
    row where a single row is larger. In the order of the chunks, so that
    consecutive pieces are computed together.
    """
    chunks = getattr(data, "chunks", None) or [(n,) for n in data.shape]
    rows, cols = ([0, *np.cumsum(c).tolist()] for c in chunks[-2:])
    pieces = []
    for r0, r1 in itertools.pairwise(rows):
        for c0, c1 in itertools.pairwise(cols):
            pieces += _split(r0, r1, c0, c1, data.dtype.itemsize)
    return pieces


def _split(r0: int, r1: int, c0: int, c1: int, itemsize: int) -> list:
    """Split rows r0..r1, columns c0..c1 into pieces of at most LARGE_FRAME_BYTES."""
    width = (c1 - c0) * itemsize
    if width <= LARGE_FRAME_BYTES:
        step = LARGE_FRAME_BYTES // width
        return [
            (slice(a, min(r1, a + step)), slice(c0, c1)) for a in range(r0, r1, step)
        ]
    step = max(1, LARGE_FRAME_BYTES // itemsize)
    return [
        (slice(r, r + 1), slice(a, min(c1, a + step)))
        for r in range(r0, r1)
        for a in range(c0, c1, step)
    ]


def _segments(array, rows: slice, cols: slice, base: int, dimx: int) -> list:
    """Return ``(offset, bytes)`` of each row of a piece of the frame at ``base``."""
    item = array.dtype.itemsize
    if cols.start == 0 and cols.stop == dimx:  # whole rows: one run of bytes
        flat = memoryview(array.reshape(-1).view(np.uint8))
        return [(base + rows.start * dimx * item, flat)]
    return [
        (
            base + ((rows.start + i) * dimx + cols.start) * item,
            memoryview(row.view(np.uint8)),
        )
        for i, row in enumerate(array)
    ]


def _runs(segments) -> list[tuple[int, list]]:
    """Join ``(offset, bytes)`` segments that follow each other in the file.

    Returns ``(offset, buffers)`` for each run, for one ``pwritev`` each.
    """
    runs, end = [], None
    for offset, buf in sorted(segments, key=lambda segment: segment[0]):
        if offset == end:
            runs[-1][1].append(buf)
        else:
            runs.append((offset, [buf]))
        end = offset + len(buf)
    return runs
