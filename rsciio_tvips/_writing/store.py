"""Put frame records into part files safely: write under temporary names, commit.

:func:`write_parts` writes every record at its place in its part: part ``k``
holds the frames ``edges[k] .. edges[k + 1] - 1``, and frame ``f`` of it
starts at byte ``(256 if k == 0 else 0) + (f - edges[k]) * record``. Because
every record has a fixed place, blocks of frames can be written in any order:
lazy data is computed along its own chunk grid (each chunk once, whatever its
shape on the navigation axes) and each contiguous run of frames goes to the
file with one ``pwritev`` (frame headers and frames gathered from where they
are, no assembly copy). A frame larger than :data:`LARGE_FRAME_BYTES` is
computed and written in pieces instead (rows, or parts of a row, each within
one chunk of the data), so that no frame is ever held whole. At most
:data:`OPEN_FILES` parts are open at once.

Parts are written under hidden names (:func:`hidden_name`), which the next
write of the same name recognises when a killed write left them behind.
:func:`commit` then moves the new parts into place, rolling back if that
fails, so that an earlier recording of the same name is never left mixed
with the new one. :func:`not_part_files` finds the names of parts that
something other than a part file has taken, which the writer refuses
before anything is written.
"""

from __future__ import annotations

import bisect
import errno as errno_codes
import hashlib
import itertools
import math
import os
import re
import stat
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._format.layout import MAIN_HEADER_SIZE, PART_RE, part_name, recording_stem

#: Bytes of frames loaded (computed) and written at once.
BLOCK_BYTES = 64 * 2**20
#: Most buffers one ``pwritev`` call takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Whether the system has ``os.pwritev``; a module attribute so that the
#: portable path can be tested on systems that have it.
HAVE_WRITEV = hasattr(os, "pwritev")
#: Frames larger than this are computed and written in pieces of at most
#: this many bytes (rows, or parts of a row) instead of whole.
LARGE_FRAME_BYTES = 64 * 2**20
#: Most part files held open at once.
OPEN_FILES = 16
#: Longest file name in bytes where the folder does not say (``NAME_MAX``
#: of Linux, macOS and Windows).
NAME_MAX = 255
TEMP_TAG = ".partial-"
STALE_TAG = ".stale-"
#: A hidden name: ``.`` the part's name, the tag, the writer's token.
HIDDEN_RE = re.compile(
    rf"^\.(?P<original>.+)(?P<tag>{re.escape(TEMP_TAG)}|{re.escape(STALE_TAG)})"
    r"(?P<token>[0-9a-f]{8})$",
    re.DOTALL,
)
#: A shortened hidden name, for a part whose name is too long to take the
#: tag and token: a digest of the recording's name stands for it. It ends
#: with ``~`` where a hidden name ends with its token, so that neither is
#: ever taken for the other, whatever the recording's name.
SHORT_RE = re.compile(
    rf"^\.(?P<digest>[0-9a-f]{{16}})_(?P<part>\d{{3}})\.(?P<ext>tvips)"
    rf"(?P<tag>{re.escape(TEMP_TAG)}|{re.escape(STALE_TAG)})(?P<token>[0-9a-f]{{8}})~$",
    re.IGNORECASE,
)


class Part(NamedTuple):
    """A part to write: its final name, and the hidden name it is written under."""

    final: Path
    temp: Path


def new_parts(
    directory: Path, stem: str, ext: str, count: int, token: str
) -> list[Part]:
    """Return the :class:`Part` of each of ``count`` parts of the recording ``stem``."""
    names = [part_name(stem, k, ext) for k in range(count)]
    return [
        Part(directory / name, hidden_name(directory, name, TEMP_TAG, token))
        for name in names
    ]


def name_limit(directory: Path) -> int:
    """Return the longest file name, in bytes, that ``directory`` allows."""
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf, no such folder
        return NAME_MAX
    return limit if limit > 0 else NAME_MAX  # -1: the system does not say


def check_part_name(directory: Path, name: str) -> None:
    """Refuse a part name longer than ``directory`` allows.

    Raises
    ------
    OSError
        ``ENAMETOOLONG``, naming the part and the limit.
    """
    size, limit = len(os.fsencode(name)), name_limit(directory)
    if size > limit:
        msg = (
            f"{name}: the part's name is {size} bytes long, and its folder allows "
            f"names of at most {limit} bytes (PC_NAME_MAX): choose a shorter name"
        )
        raise OSError(errno_codes.ENAMETOOLONG, msg)


def hidden_name(directory: Path, final: str, tag: str, token: str) -> Path:
    """Return the hidden name of the part ``final``, being written or moved aside.

    ``.FINAL<tag>TOKEN`` (``tag`` is :data:`TEMP_TAG` or :data:`STALE_TAG`).
    A part name longer than the folder's limit less those 18 bytes (16 for
    :data:`STALE_TAG`) gets the shortened name ``.DIGEST_NNN.ext<tag>TOKEN~``
    instead (:data:`SHORT_RE`), which the next write of the recording
    recognises just as well.
    """
    name = f".{final}{tag}{token}"
    if len(os.fsencode(name)) <= name_limit(directory):
        return directory / name
    part = PART_RE.match(final)
    short = f".{_digest(part['stem'])}_{part['part']}.{part['ext']}{tag}{token}~"
    return directory / short


def _digest(stem: str) -> str:
    """Return the 16 hex digits that stand for ``stem`` in shortened hidden names."""
    return hashlib.sha256(os.fsencode(stem)).hexdigest()[:16]


def named_error(exc: OSError, name: str, what: str) -> OSError:
    """Return ``exc`` again with the part's name and what failed in its message."""
    reason = exc.strerror or errno_codes.errorcode.get(exc.errno or 0, str(exc))
    return type(exc)(exc.errno, f"{name}: {what} the part: {reason}")


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
    i = 0
    while i < len(bufs):
        written = os.pwritev(fd, bufs[i : i + IOV_MAX], offset)
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


def _groups(items, sizes, budget: int) -> list[list]:
    """Group consecutive items into loads of about ``budget`` bytes (one at least)."""
    groups, current, size = [], [], 0
    for item, nbytes in zip(items, sizes, strict=True):
        if current and size + nbytes > budget:
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += nbytes
    if current:
        groups.append(current)
    return groups


def _load(data, indices, dtype) -> list[np.ndarray]:
    """Compute (or take) ``data[index]`` of each index as little-endian arrays."""
    parts = [data[index] for index in indices]
    expected = [tuple(part.shape) for part in parts]
    if hasattr(data, "dask"):
        import dask

        parts = dask.compute(*parts)
    out = []
    for shape, part in zip(expected, parts, strict=True):
        part = np.ascontiguousarray(part, dtype=dtype.newbyteorder("<"))
        if part.shape != shape:
            msg = f"a block of the data came out as {part.shape}, not {shape}"
            raise ValueError(msg)
        out.append(part)
    return out


def _pipelined(jobs, load, write) -> None:
    """Run ``write(job, load(job))`` for each job, loading the next one meanwhile.

    Loading (a dask computation) runs in a thread while the job before it
    is written, so the disk and the computation work at the same time;
    at most two jobs' data are held at once.
    """
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(load, jobs[0]) if jobs else None
        for i, job in enumerate(jobs):
            loaded = future.result()
            if i + 1 < len(jobs):
                future = pool.submit(load, jobs[i + 1])
            write(job, loaded)


def write_parts(parts, counts, header: bytes, headers, data, progress) -> None:
    """Write every part under its temporary name.

    Parameters
    ----------
    parts : list of Part
        Each part's final and temporary name (:func:`new_parts`).
    counts : list of int
        Records in each part.
    header : bytes
        The main header (start of part 0).
    headers : numpy.ndarray
        Frame headers of all frames, in C order of the navigation axes.
    data : numpy.ndarray or dask.array.Array
        Frames, shape ``nav + (dimy, dimx)``, chunked in any way; numpy
        data must have one navigation axis (flattened by the caller).
    progress : object or None
        Progress bar with ``update(n)``.
    """
    frame_bytes = math.prod(data.shape[-2:]) * data.dtype.itemsize
    fhb = headers.dtype.itemsize
    places = _Places(np.cumsum([0, *counts]).tolist(), fhb, fhb + frame_bytes)
    heads = headers.view(np.uint8).reshape(-1)
    files = _PartFiles(parts)
    try:
        files.write(0, 0, [header])
        if frame_bytes > LARGE_FRAME_BYTES:
            _write_large_frames(files, data, heads, places, progress)
        else:
            _write_frames(files, data, heads, places, progress)
    finally:
        files.close()


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
            bufs = []
            for f in range(lo, hi):
                bufs.append(memoryview(heads[f * fhb : (f + 1) * fhb]))
                bufs.append(pixels[(f - f0) * frame_bytes : (f - f0 + 1) * frame_bytes])
            files.write(k, places.record_start(k, lo), bufs)


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
        head = heads[f * places.fhb : (f + 1) * places.fhb]
        segments = [(start, memoryview(head))] if g == 0 else []
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


def recording_names(filename: str | os.PathLike) -> tuple[Path, str, str]:
    """Return the folder, the stem and the extension of a recording's parts.

    The parts of the recording ``filename`` names are
    ``FOLDER / part_name(STEM, k, EXT)``. The writer, and every tool that
    must know which files a write will replace, ask here, so that they
    agree on which files a name means; the rule itself is
    :func:`rsciio_tvips._format.layout.recording_stem`, which the reader
    follows too.

    Parameters
    ----------
    filename : str or os.PathLike
        A recording's name as a user gives it: ``x.tvips`` or ``x`` (the
        recording ``x``), or one of its parts, ``x_003.tvips``.

    Returns
    -------
    folder : pathlib.Path
        The folder of the parts, made absolute (symbolic links are kept).
    stem : str
        The name the part numbers are appended to.
    ext : str
        The extension of the parts, without the dot; its case is kept from
        ``filename`` (``TVIPS`` stays upper case), and it is ``tvips`` when
        ``filename`` has none.

    Raises
    ------
    ValueError
        If ``filename`` is empty, or ends with a path separator (it names a
        folder): an empty name would otherwise mean the current folder,
        and the recording would be named after it, in the folder above.
    IsADirectoryError
        If ``filename`` is an existing folder: as ``open`` raises, for what
        is on disk, not for the name itself.

    Examples
    --------
    >>> folder, stem, ext = recording_names("/data/x_003.TVIPS")
    >>> stem, ext
    ('x', 'TVIPS')
    >>> recording_names("/data/x")[1:]
    ('x', 'tvips')
    """
    text = os.fspath(filename)
    _check_names_a_file(text)
    path = Path(text).absolute()
    # the reader resolves a name by the same rule (``first_part``)
    stem, ext = recording_stem(path.name)
    return path.parent, stem, ext


def _check_names_a_file(text: str) -> None:
    """Refuse a recording's name that names no file: empty, or a folder."""
    example = os.path.join(text, "x.tvips")
    if not text:
        msg = (
            "the file name is empty: name the recording, e.g. 'x.tvips' (its "
            "parts are then x_000.tvips, x_001.tvips, ...)"
        )
        raise ValueError(msg)
    if os.path.isdir(text):
        msg = f"{text}: is a folder, not a recording: name one in it, e.g. {example}"
        raise IsADirectoryError(errno_codes.EISDIR, msg)
    if text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        msg = (
            f"{text}: ends with a path separator, so it names a folder, not a "
            f"recording: name the recording, e.g. {example}"
        )
        raise ValueError(msg)


def existing_parts(directory: Path, stem: str) -> list[str]:
    """Return the names of the parts of a recording ``stem`` in ``directory``.

    Parameters
    ----------
    directory : pathlib.Path
        The folder to look in (see :func:`recording_names`); a folder that
        does not exist holds no part.
    stem : str
        The recording's name without part number and extension.

    Returns
    -------
    list of str
        The file names ``STEM_NNN.tvips`` (any case of the extension) found
        in ``directory``, sorted.
    """
    if not directory.is_dir():
        return []
    return sorted(
        entry.name
        for entry in directory.iterdir()
        if (match := PART_RE.match(entry.name)) and match["stem"] == stem
    )


def _hidden(directory: Path, stem: str, tag: str) -> list[tuple[Path, str]]:
    """Return the hidden files of ``stem`` with ``tag`` (:func:`hidden_name`).

    Each with the name of the part it stands for.
    """
    digest = _digest(stem)
    found = [
        (entry, original)
        for entry in directory.iterdir()
        if (original := _hidden_part(entry.name, stem, digest, tag))
    ]
    return sorted(found, key=lambda item: item[0].name)


def _hidden_part(name: str, stem: str, digest: str, tag: str) -> str | None:
    """Return the part of ``stem`` the hidden file ``name`` stands for, or None."""
    if (hidden := HIDDEN_RE.match(name)) and hidden["tag"] == tag:
        part = PART_RE.match(hidden["original"])
        return hidden["original"] if part and part["stem"] == stem else None
    short = SHORT_RE.match(name)
    if short and short["tag"] == tag and short["digest"] == digest:
        return part_name(stem, int(short["part"]), short["ext"])
    return None


def recover_stale(directory: Path, stem: str) -> list[str]:
    """Put back an earlier recording that an interrupted commit left hidden.

    :func:`commit` moves every earlier part aside (``.NAME.stale-TOKEN``),
    ``_000`` first, before it places the new parts, ``_000`` last. A process
    killed in between leaves no visible ``_000``; if no visible part takes
    the name of a hidden one either, the hidden files are the earlier
    recording, whole, and are renamed back.

    Returns
    -------
    list of str
        The names of the parts put back (empty if none).
    """
    if not directory.is_dir():
        return []
    visible = set(existing_parts(directory, stem))
    stale = _hidden(directory, stem, STALE_TAG)
    originals = [original for _, original in stale]
    if (
        not stale
        or any(PART_RE.match(n)["part"] == "000" for n in visible)
        or len(set(originals)) != len(originals)  # two copies: not ours to choose
        or visible & set(originals)  # a new part in the way
    ):
        return []
    for entry, original in stale:
        os.replace(entry, directory / original)
    return originals


def remove_leftovers(directory: Path, stem: str) -> list[str]:
    """Remove temporary files an interrupted earlier write of ``stem`` left.

    Unfinished new parts (``.partial-``) always go. Earlier parts moved
    aside (``.stale-``) go only once a whole recording is in place (its
    ``_000`` is visible: :func:`commit` places it last); otherwise they may
    be the only copy of the earlier recording and are kept.

    Returns
    -------
    list of str
        The hidden files kept, for a warning.
    """
    for entry, _ in _hidden(directory, stem, TEMP_TAG):
        entry.unlink(missing_ok=True)
    stale = _hidden(directory, stem, STALE_TAG)
    first = [
        n for n in existing_parts(directory, stem) if PART_RE.match(n)["part"] == "000"
    ]
    if first:
        for entry, _ in stale:
            entry.unlink(missing_ok=True)
        return []
    return [entry.name for entry, _ in stale]


def commit(directory: Path, stem: str, parts, token: str) -> None:
    """Put the new parts in place of any earlier recording of the same name.

    Every earlier part is first moved aside (``_000`` first), then the new
    parts are renamed into place, ``_000`` last: a process killed in between
    leaves no ``_000``, so no reader takes the parts in place for a whole
    recording. If a rename fails, the new parts are removed and the earlier
    ones moved back, and the error names the part.
    """
    aside = []
    placed = []
    try:
        for name in existing_parts(directory, stem):
            moved = hidden_name(directory, name, STALE_TAG, token)
            os.replace(directory / name, moved)
            aside.append((directory / name, moved))
        for part in reversed(parts):
            try:
                os.replace(part.temp, part.final)
            except OSError as exc:
                raise named_error(exc, part.final.name, "cannot put in place") from exc
            placed.append(part.final)
    except BaseException:
        for final in placed:
            final.unlink(missing_ok=True)
        for original, moved in aside:
            os.replace(moved, original)
        for part in parts:
            part.temp.unlink(missing_ok=True)
        raise
    for _, moved in aside:
        moved.unlink(missing_ok=True)


#: What else than a part file may have a part's name, by the test of its mode.
_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def not_part_files(directory: Path, names) -> list[tuple[str, str]]:
    """Return the names among ``names`` that something other than a part file has.

    A part file is a regular file, or a symbolic link to one (the reader
    reads through it; :func:`commit` replaces the link and never writes
    through it, so its target stays as it was). Anything else is never
    replaced: a folder or a link to one would be moved aside and could not
    be deleted, and a pipe or a device is not ours to remove.

    Returns
    -------
    list of (str, str)
        Each such name with what has it: ``"folder"``, ``"named pipe
        (FIFO)"``, ``"symbolic link to a folder"``, ``"symbolic link that
        leads nowhere"`` ...
    """
    found = [(name, _what_is(directory / name)) for name in names]
    return [(name, what) for name, what in found if what is not None]


def _what_is(path: Path) -> str | None:
    """Return what ``path`` is when it is no part file, else None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:  # gone since the folder was listed
        return None
    if not stat.S_ISLNK(mode):
        return _kind(mode)
    try:
        kind = _kind(os.stat(path).st_mode)
    except OSError:  # nothing there, or a loop of links
        return "symbolic link that leads nowhere"
    return None if kind is None else f"symbolic link to a {kind}"


def _kind(mode: int) -> str | None:
    """Return the kind of file of a mode, None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "special file")
