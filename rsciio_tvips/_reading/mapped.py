"""Frames as read-only views of a memory map of their part (``io="mmap"``).

The default reads (:mod:`.preadv`) copy every chunk out of the page cache
into a buffer, which a reduction then reads again. A memory map skips that
copy: numpy reads the frames where the kernel keeps the file. Each task
maps only the bytes of its own frames, when it runs, so the dask graph
holds no map and no open file, pickles, and runs on dask.distributed.

The price is safety. A file truncated while it is mapped makes the process
that touches the lost pages die of ``SIGBUS``, where the default reads
raise a :class:`~rsciio_tvips.TvipsFormatError` naming the part. The
identity of the part (size, modification time, inode) is checked when the
map is made, as every read checks it; what happens to the file afterwards,
while the chunk is in use, is not seen. Hence opt-in.

A view is possible where a block's frames form a regular grid (frame
``f0 + sum(i_k * s_k)``: a stack, a scan read in order, whole rows or
columns of one) inside one part, none of them blank. Other blocks (snake
scans, padded points, frames straddling two parts) are read as by default.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .preadv import check_unchanged


def grid_strides(frames: np.ndarray) -> tuple[int, tuple] | None:
    """Return ``(f0, strides)`` when ``frames`` is ``f0 + sum(i_k * s_k)``, else None.

    Parameters
    ----------
    frames : numpy.ndarray of int
        The frame of each point of a block (any number of axes, -1 blank).
    """
    if frames.size == 0 or frames.min() < 0:
        return None
    origin = (0,) * frames.ndim
    f0 = int(frames[origin])
    strides = []
    for axis, n in enumerate(frames.shape):
        step = (0,) * axis + (1 if n > 1 else 0,) + (0,) * (frames.ndim - axis - 1)
        strides.append(int(frames[step]) - f0 if n > 1 else 0)
    index = np.indices(frames.shape, dtype=np.int64)
    rule = f0 + np.tensordot(np.asarray(strides, np.int64), index, axes=1)
    if not np.array_equal(rule, frames):
        return None
    return f0, tuple(strides)


def _map(part, file_start: int, file_end: int):
    """Map bytes ``file_start`` to ``file_end`` of a part, read-only.

    Returns the map and where ``file_start`` is in it, or None when the
    part is shorter than that (the default read then says which bytes are
    missing).

    Raises
    ------
    TvipsFormatError
        If the part is no longer the file the recording opened.
    """
    fd = os.open(part.path, os.O_RDONLY)
    try:
        if check_unchanged(part, fd, file_end).st_size < file_end:
            return None
        # a map starts at a multiple of the allocation granularity
        base = file_start - file_start % mmap.ALLOCATIONGRANULARITY
        mapped = mmap.mmap(fd, file_end - base, offset=base, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    return mapped, file_start - base


def mapped_band(records, frames: np.ndarray, row_start: int, n_rows: int):
    """Return rows of frames as a read-only view of a map, or None where not possible.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    frames : numpy.ndarray of int
        The frame of each point of the block.
    row_start, n_rows : int
        The band of rows wanted of each frame.

    Returns
    -------
    numpy.ndarray or None
        Shape ``frames.shape + (n_rows, dimx)``, a view of a map of the one
        part that holds every frame's band; None when the frames are no
        regular grid inside one part (or a part is shorter than when
        opened: the default read then says which bytes are missing).

    Raises
    ------
    TvipsFormatError
        If the part is no longer the file the recording opened (see
        :func:`~.preadv.check_unchanged`).
    """
    grid = grid_strides(frames)
    if grid is None or n_rows == 0:
        return None
    f0, strides = grid
    header = records.header
    record = header.record_size
    dtype = header.pixel_dtype
    row_bytes = header.shape[1] * dtype.itemsize
    # the grid's first and last frame in the file, whatever the signs
    spans = [(n - 1) * s for n, s in zip(frames.shape, strides, strict=True)]
    low = f0 + sum(min(0, span) for span in spans)
    high = f0 + sum(max(0, span) for span in spans)
    start = int(records.pixel_offsets([low], row_start)[0])
    end = int(records.pixel_offsets([high], row_start)[0]) + n_rows * row_bytes
    part, file_start = records.chain.locate(start)
    if end > part.stream_start + part.length:
        return None  # the band runs into the next part
    made = _map(part, file_start, file_start + (end - start))
    if made is None:
        return None
    mapped, at = made
    first = int(records.pixel_offsets([f0], row_start)[0]) - start + at
    return np.ndarray(
        (*frames.shape, n_rows, header.shape[1]),
        dtype=dtype,
        buffer=mapped,
        offset=first,
        strides=(*tuple(s * record for s in strides), row_bytes, dtype.itemsize),
    )


def mapped_records(records, first: int, n: int):
    """Return frames ``first`` to ``first + n - 1`` as views of a map of their part.

    For a follower (:mod:`.follow`) that takes in whole consecutive frames:
    their pixels and the decoded fields of their headers, both read where
    the kernel keeps the file, in one map.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    first, n : int
        The frames.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray) or None
        The decoded header fields (a strided structured view:
        ``header.decoded_header_dtype``'s fields, one element per frame)
        and the pixels, ``(n, dimy, dimx)``; None when a record runs into
        the next part (or the part is shorter than when sized).

    Raises
    ------
    TvipsFormatError
        If the part is no longer the file the recording opened.
    """
    header = records.header
    record = header.record_size
    start = first * record
    part, file_start = records.chain.locate(start)
    if n <= 0 or start + n * record > part.stream_start + part.length:
        return None
    made = _map(part, file_start, file_start + n * record)
    if made is None:
        return None
    mapped, offset = made
    decoded = header.decoded_header_dtype
    # the decoded fields at their offsets in a record: one element a record
    fields = np.dtype({
        "names": list(decoded.names),
        "formats": [decoded.fields[k][0] for k in decoded.names],
        "offsets": [decoded.fields[k][1] for k in decoded.names],
        "itemsize": record,
    })  # fmt: skip
    heads = np.ndarray((n,), dtype=fields, buffer=mapped, offset=offset)
    dtype = header.pixel_dtype
    pixels = np.ndarray(
        (n, *header.shape), dtype=dtype, buffer=mapped,
        offset=offset + header.frame_header_bytes,
        strides=(record, header.shape[1] * dtype.itemsize, dtype.itemsize),
    )  # fmt: skip
    return heads, pixels
