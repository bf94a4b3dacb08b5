"""The lazy array: a dask graph of small, picklable frame readers.

A *frame table* says which frame every navigation point shows (-1: none, a
blank frame). :func:`frame_table_to_dask` cuts it into chunks and gives each
chunk its own :class:`BlockSource`: the recording's
:class:`~rsciio_tvips._format.records.Records` (the parts' paths and sizes,
the main header) and the chunk's part of the table, nothing else (no memmap, no data,
no open file). Each task is dask's own ``getter(source, slices)``, the pattern
dask's graph optimisation knows, so a slice of the array (``x[5]``,
``x[..., 100:140, :]``) is fused into the read itself: one frame reads one
frame, a virtual detector reads only its rows.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

import numpy as np

from .buffers import POOL
from .grid import FrameGrid
from .mapped import mapped_band
from .preadv import read_frames_into, read_headers
from .readahead import read_ahead

#: Default size of a dask chunk, in bytes.
CHUNK_BYTES = 100 * 2**20
#: Most frames in a default chunk: a read plans a few numbers per frame, so
#: 100 MiB of 1 x 1 frames (52 million) would plan gigabytes; frames of
#: 32 x 32 pixels and more never reach it.
CHUNK_FRAMES = 2**16
#: Ways the lazy reads may read pixels (see :class:`BlockSource`).
IO_METHODS = ("pread", "mmap")


def check_io(io) -> str:
    """Return ``io`` if it is one of :data:`IO_METHODS`, else raise ValueError."""
    if not isinstance(io, str) or io not in IO_METHODS:
        raise ValueError(f"io must be 'pread' or 'mmap', got {io!r}")
    return io


class BlockSource:
    """A picklable, read-only array-like over some frames of a recording.

    Its shape is the shape of its frame table followed by ``(dimy, dimx)``.
    Indexing takes integers, slices and 1-D integer lists on every axis
    (outer indexing, as dask expects of a source); it reads the frames
    selected and, of each, only the band of rows selected.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie (paths, sizes, main header).
    frames : numpy.ndarray of int or FrameGrid
        The frame of each navigation point of the block, -1 for blank; a
        :class:`~rsciio_tvips._reading.grid.FrameGrid` stays implicit.
    io : {"pread", "mmap"}, optional
        How pixels are read: copied into a buffer (the default), or, where
        the frames allow it, handed out as read-only views of a memory map
        made by the read (see :mod:`.mapped`).
    """

    def __init__(self, records, frames, io: str = "pread"):
        self.records = records
        self.io = check_io(io)
        header = records.header
        if not isinstance(frames, FrameGrid):
            # int32 halves the graph for every recording of < 2**31 frames
            small = frames.size == 0 or int(frames.max()) < 2**31
            frames = np.ascontiguousarray(frames, np.int32 if small else np.int64)
        self.frames = frames
        self.shape = self.frames.shape + tuple(header.shape)
        self.dtype = header.pixel_dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = _expand(key, self.ndim)
        squeeze = tuple(i for i, k in enumerate(key) if _is_scalar(k))
        nav = self.ndim - 2
        index = [_indices(k, n) for k, n in zip(key[:nav], self.shape, strict=False)]
        if nav > 1:
            frames = self.frames[np.ix_(*index)]
        else:  # one axis: no grid to make of the indices
            frames = self.frames[index[0]] if nav else np.asarray(self.frames)
        # Rows and columns as index arrays only when a key takes some: a
        # whole frame (nearly every read) is a plain read of every pixel.
        rows, cols = (
            _indices_unless_whole(k, n)
            for k, n in zip(key[nav:], self.shape[nav:], strict=True)
        )
        if rows is None:
            r0, r1 = 0, self.shape[-2]
        else:
            r0, r1 = (int(rows.min()), int(rows.max()) + 1) if rows.size else (0, 0)
        # Read the band of rows that covers the selection, and only that.
        out = None
        if self.io == "mmap" and frames.size:
            out = mapped_band(self.records, frames, r0, r1 - r0)
        if out is None:
            flat = POOL.empty((frames.size, r1 - r0, self.shape[-1]), self.dtype)
            if flat.size:
                read_frames_into(self.records, frames, flat, row_start=r0)
            out = flat.reshape(frames.shape + flat.shape[1:])
            if r1 - r0 == self.shape[-2]:
                # whole frames: the disk reads on while this chunk is reduced
                read_ahead(self.records, frames)
        if rows is not None and not np.array_equal(rows, np.arange(r0, r1)):
            out = out[..., rows - r0, :]
        if cols is not None:
            out = out[..., cols]
        return out.squeeze(axis=squeeze) if squeeze else out

    @property
    def chain(self):
        """The recording's parts (what a task opens)."""
        return self.records.chain


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
    """Whether an axis's key is one index (its axis then leaves the result)."""
    if isinstance(key, (int, np.integer)):  # a frame on its own: no numpy call
        return True
    return not isinstance(key, slice) and np.ndim(key) == 0


def _indices_unless_whole(key, size: int) -> np.ndarray | None:
    """Return :func:`_indices` of ``key``, or None when it takes the whole axis."""
    if isinstance(key, slice) and key.indices(size) == (0, size, 1):
        return None
    index = _indices(key, size)
    return None if np.array_equal(index, np.arange(size)) else index


def _indices(key, size: int) -> np.ndarray:
    """Return the indices one axis's key selects, as a 1-D int64 array."""
    if isinstance(key, slice):
        return np.arange(*key.indices(size), dtype=np.int64)
    if (
        isinstance(key, (int, np.integer))
        and not isinstance(key, bool)
        and (-size <= key < size)
    ):
        # a frame on its own: 0.5 us here, where the checks below take 3.4 us
        return np.array([key % size], dtype=np.int64)
    index = np.asarray(key)
    integral = index.size == 0 or np.issubdtype(index.dtype, np.integer)
    if index.ndim > 1 or not integral:
        msg = f"unsupported index {key!r}: use integers, slices or 1-D lists"
        raise IndexError(msg)
    index = index.astype(np.int64).reshape(-1)
    bad = (index < -size) | (index >= size)
    if bad.any():
        msg = f"index {int(index[bad][0])} is out of bounds for an axis of size {size}"
        raise IndexError(msg)
    return index % size


def auto_chunks(nav_shape: tuple, frame_nbytes: int, target: int = CHUNK_BYTES):
    """Return chunks of about ``target`` bytes: whole frames, C-order blocks.

    The last navigation axes are kept whole as long as a chunk stays under
    ``target`` (and :data:`CHUNK_FRAMES` frames); signal axes are never
    split.

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
    budget = max(1, min(target // frame_nbytes, CHUNK_FRAMES))
    chunks = []
    for size in reversed(nav_shape):
        take = max(1, min(size, budget))
        chunks.append(take)
        budget = max(1, budget // size) if take == size else 1
    return tuple(reversed(chunks))


def cut_at_parts(chunks: tuple, table, records) -> tuple:
    """Return ``chunks`` with the first axis also cut where a part ends.

    For ``io="mmap"``: a chunk whose frames lie in two parts cannot be one
    map, and is copied as by default (a recording of 1 GiB in 4 parts had
    3 such chunks of its 11, each a fresh 100 MiB buffer in a new process).
    Each run of the first axis between two cuts is shared evenly by as few
    chunks as keep them at most as long as the longest chunk given. A frame
    whose pixels straddle two files gets a run of its own (it is copied); a
    part that starts inside a frame header, before the pixels, is a cut
    before that frame (its pixels lie in the new part). The cuts are by the
    pixels, not by the records as in
    :meth:`~rsciio_tvips._format.parts.Chain.first_frames`: a map holds
    pixels only.

    Only tables in frame order are cut (a
    :class:`~rsciio_tvips._reading.grid.FrameGrid` that is consecutive:
    stacks, scans in order); other tables never map whole chunks. Only the
    first axis is cut: in a scan cut by whole rows, a row in which a part
    starts after its first frame is a chunk of its own, and is copied;
    where the first axis is already one index a chunk (rows longer than a
    chunk, the second axis split; scans of three or more axes) nothing
    changes. Chunks with blank points are copied whatever the cut.

    Parameters
    ----------
    chunks : tuple of tuple of int
        Normalised chunks of the array (navigation axes, then signal axes).
    table : FrameGrid or numpy.ndarray
        The frame table.
    records : Records
        Where the recording's frame records lie.

    Returns
    -------
    tuple of tuple of int
    """
    consecutive = isinstance(table, FrameGrid) and table.is_consecutive
    if not consecutive or table.ndim == 0 or table.size == 0:
        return chunks
    record = records.header.record_size
    header_bytes = records.header.frame_header_bytes
    n0 = table.shape[0]
    slab = table.size // n0  # frames per index of the first axis
    frame_cuts = set()
    for part in records.chain.parts[1:]:
        frame, into = divmod(part.stream_start, record)
        # past the header: the part starts inside the frame's pixels
        frame_cuts.update((frame, frame + 1) if into > header_bytes else (frame,))
    cuts = {0, n0}
    for frame in frame_cuts:
        at, inside = divmod(frame - table.offset, slab)
        cuts.update(c for c in ((at, at + 1) if inside else (at,)) if 0 < c < n0)
    longest = max(chunks[0], default=1)
    first_axis = []
    for a, b in itertools.pairwise(sorted(cuts)):
        pieces = -(-(b - a) // longest)
        base, extra = divmod(b - a, pieces)
        first_axis += [base + 1] * extra + [base] * (pieces - extra)
    return (tuple(first_axis), *chunks[1:])


def default_chunks(records, table, io: str = "pread", target: int = CHUNK_BYTES):
    """Return the chunks the lazy array gets unless others are asked for.

    :func:`auto_chunks` of about ``target`` bytes, signal axes whole; for
    ``io="mmap"``, also cut where a part starts (:func:`cut_at_parts`).

    Returns
    -------
    tuple of tuple of int
        Normalised chunks of the whole array.
    """
    from dask.array.core import normalize_chunks

    header = records.header
    shape = table.shape + tuple(header.shape)
    nav = auto_chunks(table.shape, header.frame_nbytes, target)
    chunks = normalize_chunks(nav + tuple(header.shape), shape)
    return cut_at_parts(chunks, table, records) if io == "mmap" else chunks


def frame_table_to_dask(records, table: np.ndarray, chunks=None, io: str = "pread"):
    """Return the dask array of the frames a frame table places.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    table : numpy.ndarray of int
        Frame of each navigation point (-1: blank), of the navigation shape.
    chunks : optional
        Anything :func:`dask.array.core.normalize_chunks` takes; by default
        about 100 MiB of whole frames.
    io : {"pread", "mmap"}, optional
        How each task reads its pixels (see :class:`BlockSource`).

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da

    # The task spec is what dask's slice fusion inspects; the source must be
    # a DataNode in it (a bare object in a legacy tuple breaks the fusion).
    from dask._task_spec import DataNode, Task
    from dask.array.core import getter, normalize_chunks
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    header = records.header
    shape = table.shape + tuple(header.shape)
    if chunks is None:
        chunks = default_chunks(records, table, io)
    chunks = normalize_chunks(chunks, shape, dtype=header.pixel_dtype)
    # the pixel type is part of the name: the same bytes read signed and
    # unsigned are two different arrays
    # (and how it is read: a map's chunks are read-only, the default's not)
    name = "tvips-" + tokenize(
        records.chain, header.raw, header.pixel_dtype.str, table, chunks,
        *(() if io == "pread" else (io,)),
    )  # fmt: skip
    nav = table.ndim
    edges = [np.cumsum((0, *c)).tolist() for c in chunks]
    dsk = {}
    for block in itertools.product(*(range(len(c)) for c in chunks[:nav])):
        where = tuple(slice(edges[a][i], edges[a][i + 1]) for a, i in enumerate(block))
        source = DataNode(None, BlockSource(records, table[where], io))
        whole = tuple(slice(0, s.stop - s.start) for s in where)
        for sig in itertools.product(*(range(len(c)) for c in chunks[nav:])):
            inside = tuple(
                slice(edges[nav + a][i], edges[nav + a][i + 1])
                for a, i in enumerate(sig)
            )
            key = (name, *block, *sig)
            dsk[key] = Task(key, getter, source, whole + inside, False, None)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    meta = np.empty((0,) * len(shape), header.pixel_dtype)
    return da.Array(graph, name, chunks, meta=meta)


#: Frame headers per task of :func:`frame_headers_to_dask`, and per block of
#: the passes over every header (:meth:`TvipsRecording.header_field_blocks`).
HEADER_BLOCK = 2**16
#: Most bytes of whole frame headers one task of :func:`frame_headers_to_dask`
#: reads: with headers of up to 16 MiB, a task of HEADER_BLOCK of them would
#: not fit in memory, nor in :data:`HEADER_CACHE`.
HEADER_TASK_BYTES = 16 * 2**20


def frame_headers_to_dask(records, table, block: int = HEADER_BLOCK):
    """Return the frame headers of the points a frame table places, lazily.

    Nothing is read until the array is computed; then each task reads the
    headers of its block of points, and no pixels.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    table : numpy.ndarray of int or FrameGrid
        Frame of each navigation point (-1: blank); points in C order.
    block : int, optional
        Points per task, at most; fewer where their headers would hold more
        than :data:`HEADER_TASK_BYTES`.

    Returns
    -------
    dask.array.Array
        1-D structured array of ``header.frame_header_dtype``, one element
        per point; blank points have all-zero headers.
    """
    import dask.array as da
    from dask._task_spec import DataNode, Task
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    # a view (or a grid) of the table: each task holds its own slice only,
    # where dask.array.from_array would copy the whole table first
    flat = table.reshape(-1)
    dtype = records.header.frame_header_dtype
    name = "tvips-headers-" + tokenize(records.chain, records.header.raw, table)
    fhb = records.header.frame_header_bytes
    block = max(1, min(block, HEADER_TASK_BYTES // max(fhb, 1)))
    edges = [*range(0, flat.size, block), flat.size]
    dsk = {}
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        key = (name, i)
        dsk[key] = Task(key, _read_point_headers, DataNode(None, flat[a:b]), records)
    chunks = (tuple(b - a for a, b in itertools.pairwise(edges)),)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, chunks, meta=np.empty(0, dtype))


def _read_point_headers(frames: np.ndarray, records) -> np.ndarray:
    """Read the headers of ``frames`` (-1: an all-zero header).

    HyperSpy's writers (``.hspy``, ``.zspy``) compute the fields of
    ``original_metadata.frame_headers`` one at a time, and each would read
    the headers again: the blocks read last are kept (:data:`HEADER_CACHE`),
    so that the fields of one recording share one read.
    """
    from dask.base import tokenize

    key = tokenize(records.chain, records.header.raw, frames)
    cached = HEADER_CACHE.get(key)
    if cached is not None:
        return cached
    frames = np.asarray(frames, dtype=np.int64)
    out = np.zeros(frames.size, records.header.frame_header_dtype)
    placed = frames >= 0
    if placed.any():
        out[placed] = read_headers(records, frames[placed])
    HEADER_CACHE.put(key, out)
    return out


class _BlockCache:
    """The header blocks read last, up to a number of bytes (thread-safe).

    Values are returned as they are: callers must not write into them
    (dask's field access makes copies).
    """

    def __init__(self, budget: int):
        self.budget = budget
        self._blocks = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
            return block

    def put(self, key, block: np.ndarray) -> None:
        if block.nbytes > self.budget:
            return
        with self._lock:
            if key in self._blocks:
                return
            self._blocks[key] = block
            self._bytes += block.nbytes
            while self._bytes > self.budget:
                _, dropped = self._blocks.popitem(last=False)
                self._bytes -= dropped.nbytes


#: Header blocks kept for the next field: 64 MiB, the headers of about
#: 600 000 frames of 108-byte headers (beyond, each field reads again).
HEADER_CACHE = _BlockCache(64 * 2**20)
