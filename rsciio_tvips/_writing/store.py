"""Put frame records into part files safely: write under temporary names, commit.

:func:`write_parts` writes every record at its place in its part: part ``k``
holds the frames ``edges[k] .. edges[k + 1] - 1``, and frame ``f`` of it
starts at byte ``(256 if k == 0 else 0) + (f - edges[k]) * record``. Because
every record has a fixed place, blocks of frames can be written in any order:
lazy data is computed along its own chunk grid (each chunk once, whatever its
shape on the navigation axes) and each contiguous run of frames goes to the
file with one ``pwritev`` (frame headers and frames gathered from where they
are, no assembly copy). At most :data:`OPEN_FILES` parts are open at once.

:func:`commit` then moves the new parts into place, rolling back if that
fails, so that an earlier recording of the same name is never left mixed
with the new one.
"""

from __future__ import annotations

import errno as errno_codes
import itertools
import math
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .._format.layout import MAIN_HEADER_SIZE, PART_RE, part_name, recording_stem

#: Bytes of frames loaded (computed) and written at once.
BLOCK_BYTES = 64 * 2**20
#: Most buffers one ``pwritev`` call takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Whether the system has ``os.pwritev``; a module attribute so that the
#: portable path can be tested on systems that have it.
HAVE_WRITEV = hasattr(os, "pwritev")
#: Most part files held open at once.
OPEN_FILES = 16
TEMP_TAG = ".partial-"
STALE_TAG = ".stale-"


def temp_name(directory: Path, final: str, token: str) -> Path:
    """Return the hidden temporary name of part ``final``."""
    return directory / f".{final}{TEMP_TAG}{token}"


def _final_name(temp: Path) -> str:
    return temp.name[1 : temp.name.index(TEMP_TAG)]


def named_error(exc: OSError, name: str, what: str) -> OSError:
    """Return ``exc`` again with the part's name and what failed in its message."""
    reason = exc.strerror or errno_codes.errorcode.get(exc.errno or 0, str(exc))
    return type(exc)(exc.errno, f"{name}: {what} the part: {reason}")


class _PartFiles:
    """The temporary part files, opened on demand, a few at a time."""

    def __init__(self, temps):
        self.temps = temps
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
            raise named_error(exc, _final_name(self.temps[k]), "cannot create") from exc
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
            raise named_error(exc, _final_name(self.temps[k]), "cannot write") from exc

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


def _groups(blocks, frame_bytes: int) -> list[list]:
    """Group consecutive blocks into loads of about BLOCK_BYTES (one at least)."""
    groups, current, size = [], [], 0
    for block in blocks:
        frames = math.prod(s.stop - s.start for s in block)
        if current and size + frames * frame_bytes > BLOCK_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(block)
        size += frames * frame_bytes
    if current:
        groups.append(current)
    return groups


def _load(data, group, dtype) -> list[np.ndarray]:
    """Compute (or take) the blocks of a group as little-endian arrays."""
    parts = [data[block] for block in group]
    if hasattr(data, "dask"):
        import dask

        parts = dask.compute(*parts)
    out = []
    for block, part in zip(group, parts, strict=True):
        part = np.ascontiguousarray(part, dtype=dtype.newbyteorder("<"))
        expected = tuple(s.stop - s.start for s in block) + tuple(data.shape[-2:])
        if part.shape != expected:
            msg = f"a block of the data came out as {part.shape}, not {expected}"
            raise ValueError(msg)
        out.append(part)
    return out


def write_parts(temps, counts, header: bytes, headers, data, progress) -> None:
    """Write every part under its temporary name.

    Parameters
    ----------
    temps : list of pathlib.Path
        Temporary file of each part.
    counts : list of int
        Records in each part.
    header : bytes
        The main header (start of part 0).
    headers : numpy.ndarray
        Frame headers of all frames, in C order of the navigation axes.
    data : numpy.ndarray or dask.array.Array
        Frames, shape ``nav + (dimy, dimx)``; numpy data must have one
        navigation axis (flattened by the caller).
    progress : object or None
        Progress bar with ``update(n)``.
    """
    nav = data.shape[:-2]
    frame_bytes = math.prod(data.shape[-2:]) * data.dtype.itemsize
    fhb = headers.dtype.itemsize
    record = fhb + frame_bytes
    edges = np.cumsum([0, *counts]).tolist()
    heads = headers.view(np.uint8).reshape(-1)
    files = _PartFiles(temps)
    groups = _groups(_blocks(data, frame_bytes), frame_bytes)
    dtype = np.dtype(data.dtype)
    try:
        files.write(0, 0, [header])
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(_load, data, groups[0], dtype) if groups else None
            for i, group in enumerate(groups):
                arrays = future.result()
                if i + 1 < len(groups):
                    future = pool.submit(_load, data, groups[i + 1], dtype)
                for block, array in zip(group, arrays, strict=True):
                    _write_block(files, block, array, nav, heads, fhb, record, edges)
                    if progress is not None:
                        progress.update(math.prod(array.shape[:-2]))
    finally:
        files.close()


def _write_block(files, block, array, nav, heads, fhb, record, edges) -> None:
    """Write a block's frames as runs of consecutive frames."""
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
            offset = (MAIN_HEADER_SIZE if k == 0 else 0) + (lo - edges[k]) * record
            bufs = []
            for f in range(lo, hi):
                bufs.append(memoryview(heads[f * fhb : (f + 1) * fhb]))
                bufs.append(pixels[(f - f0) * frame_bytes : (f - f0 + 1) * frame_bytes])
            files.write(k, offset, bufs)


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

    Examples
    --------
    >>> folder, stem, ext = recording_names("/data/x_003.TVIPS")
    >>> stem, ext
    ('x', 'TVIPS')
    >>> recording_names("/data/x")[1:]
    ('x', 'tvips')
    """
    path = Path(os.fspath(filename)).absolute()
    # the reader resolves a name by the same rule (``first_part``)
    stem, ext = recording_stem(path.name)
    return path.parent, stem, ext


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
    """Return the hidden files ``.NAME_NNN.tvips<tag>TOKEN`` of ``stem``.

    Each with the name of the part it stands for.
    """
    found = []
    for entry in directory.iterdir():
        name = entry.name
        if name.startswith(f".{stem}_") and tag in name:
            original = name[1 : name.index(tag)]
            match = PART_RE.match(original)
            if match and match["stem"] == stem:
                found.append((entry, original))
    return sorted(found, key=lambda item: item[0].name)


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


def commit(directory: Path, stem: str, ext: str, temps, token: str) -> None:
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
            moved = directory / f".{name}{STALE_TAG}{token}"
            os.replace(directory / name, moved)
            aside.append((directory / name, moved))
        for k, temp in reversed(list(enumerate(temps))):
            final = directory / part_name(stem, k, ext)
            try:
                os.replace(temp, final)
            except OSError as exc:
                raise named_error(exc, final.name, "cannot put in place") from exc
            placed.append(final)
    except BaseException:
        for final in placed:
            final.unlink(missing_ok=True)
        for original, moved in aside:
            os.replace(moved, original)
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    for _, moved in aside:
        moved.unlink(missing_ok=True)
