"""Write a signal as a TVIPS recording: ``file_writer``.

Frames are written as records (frame header, pixels) into parts
``NAME_000.tvips``, ``NAME_001.tvips``, ... of at most ``max_file_size``
bytes each, never splitting a record. Nothing a user already has is lost on
failure:

1. every part is first written under a hidden temporary name
   (``.NAME_000.tvips.partial-XXXX``) beside its final place;
2. if anything fails (a full disk, no permission, an error in a lazy
   computation), the temporary files are removed and the error, naming the
   file, is raised: an earlier recording of the same name is untouched;
3. only when every part is complete are the parts of an earlier recording
   beyond the new last part moved aside, the new parts renamed into place
   (``os.replace``, atomic per file) and the old extra parts deleted, so no
   stale ``_NNN`` part is left to be chained to the new recording.

A process killed during step 1 leaves the earlier recording intact and only
hidden ``.partial-`` files, which are not parts; the next write of the same
name removes them. Lazy (dask) data is computed and written block by block,
so memory stays bounded whatever the size.
"""

from __future__ import annotations

import errno as errno_codes
import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._docstrings import WRITE_FILENAME_DOC
from ._encode import (
    frame_headers,
    frame_step_ms,
    guess_mode,
    main_header,
    start_time_ms,
)
from ._format import (
    MAIN_HEADER_SIZE,
    PART_RE,
    PIXEL_DTYPES,
    SUPPORTED_VERSIONS,
    V1_FRAME_HEADER_SIZE,
    part_name,
)
from .exceptions import warn

#: Frame-header size RosettaSciIO's writer uses, before any extra bytes.
V2_BASE_FRAME_HEADER_SIZE = 60
#: Bytes of frames converted to records and written at once.
BLOCK_BYTES = 64 * 2**20
#: Most buffers one ``writev`` call takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Whether the system has ``os.writev``; a module attribute so that the
#: portable path can be tested on systems that have it.
HAVE_WRITEV = hasattr(os, "writev")
TEMP_TAG = ".partial-"
STALE_TAG = ".stale-"


def file_writer(
    filename,
    signal,
    max_file_size=None,
    version: int = 2,
    frame_header_extra_bytes=None,
    mode=None,
    show_progressbar: bool = True,
    *,
    dtype=None,
    overwrite_recording: bool = False,
):
    """Write a signal as a TVIPS recording.

    Parameters
    ----------
    %s
    signal : dict
        RosettaSciIO's signal dictionary: ``data`` (numpy or dask array),
        ``axes`` (with ``navigate``), ``metadata``, and optionally
        ``original_metadata`` (what :func:`file_reader` found in the files:
        ``tvips_header`` and ``frame_headers`` are written back as they
        were) and ``attributes`` (not needed). Exactly two signal axes; the
        navigation axes, any number of them, are written as frames in C
        order, and a signal with none is one frame.
    max_file_size : int, optional
        Largest size of a part in bytes; records are never split, so a part
        holds as many whole records as fit. Below the main header plus one
        record (RosettaSciIO's minimum), it is raised to that, with a
        warning. None: one part.
    version : {2, 1}
        Main header version: 2 writes frame headers of 60 +
        ``frame_header_extra_bytes`` bytes, 1 the 12-byte frame headers of
        version 1.
    frame_header_extra_bytes : int, optional
        Version 2: bytes added to the 60-byte frame header (for example 48
        gives LiberTEM's 108-byte layout). By default 0, or as many as the
        frame headers the signal carries from the files it was read from
        have beyond 60, so that no header byte is dropped on a re-save.
    mode : {None, 1, 2}
        1 imaging, 2 diffraction; None guesses it from the signal axes' units
        (a length or an inverse length), then ``Signal.signal_type``, then
        the original header, else 2.
    show_progressbar : bool, default True
        Show one progress bar for the whole write (when ``tqdm`` is
        installed).
    dtype : numpy dtype, optional
        Convert the data to this unsigned type first (values must fit; floats
        are rounded). Without it, signed or float data is refused.
    overwrite_recording : bool, default False
        Replace an existing recording of the same name (all its parts). By
        default a recording is never replaced: HyperSpy's ``overwrite``
        looks for a file named literally ``x.tvips``, not for the parts
        ``x_000.tvips`` ..., so this is the safeguard
        (``s.save("x.tvips", overwrite_recording=True)``).

    Raises
    ------
    ValueError
        If the signal does not have two signal axes, its data type is not
        uint8/16/32/64 (and no ``dtype`` is given), or an option is invalid.
    FileExistsError
        If a recording of that name exists and ``overwrite_recording`` is
        False.
    OSError
        If a part cannot be written (the message names it); an earlier
        recording of the same name is left as it was.

    Warns
    -----
    UserWarning
        If the pixel size is changed by more than 1 %% by rounding to the
        integer the format stores, if the signal axes have offsets (not
        stored), or if ``max_file_size`` is below one record.
    """
    data = signal["data"]
    axes = list(signal["axes"])
    nav_axes = [a for a in axes if a.get("navigate", False)]
    sig_axes = [a for a in axes if not a.get("navigate", False)]
    if len(sig_axes) != 2:
        msg = (
            "a TVIPS recording holds 2-D frames: the signal has "
            f"{len(sig_axes)} signal axes"
        )
        raise ValueError(msg)
    data = _convert(data, dtype)
    if tuple(data.shape[-2:]) != (sig_axes[0]["size"], sig_axes[1]["size"]):
        msg = (
            f"data of shape {tuple(data.shape)} does not match signal axes of sizes "
            f"{sig_axes[0]['size']} x {sig_axes[1]['size']}"
        )
        raise ValueError(msg)
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"version must be 1 or 2, got {version!r}")
    original = signal.get("original_metadata") or {}
    source = original.get("tvips_header") or {}
    if frame_header_extra_bytes is None:
        frame_header_extra_bytes = 0
        carried = int(source.get("frameheaderbytes", 0) or 0)
        if version == 2 and source.get("version") == 2 and carried:
            frame_header_extra_bytes = max(0, carried - V2_BASE_FRAME_HEADER_SIZE)
    if source and not original.get("frame_headers"):
        warn(
            "the signal comes from a TVIPS recording but carries no frame headers "
            "(it was read with lazy=True and without frame_headers=True): "
            "per-frame values the metadata does not hold (counters, rotator "
            "index, beam positions, frame times) are not kept",
            UserWarning,
        )
    extra = int(frame_header_extra_bytes)
    if extra < 0 or extra != frame_header_extra_bytes:
        msg = (
            "frame_header_extra_bytes must be a whole number >= 0, got "
            f"{frame_header_extra_bytes!r}"
        )
        raise ValueError(msg)
    if version == 1 and extra:
        raise ValueError("version 1 frame headers are 12 bytes: no extra bytes")
    if mode not in (None, 1, 2):
        raise ValueError(
            f"mode must be 1 (imaging), 2 (diffraction) or None, got {mode!r}"
        )
    fhb = V1_FRAME_HEADER_SIZE if version == 1 else V2_BASE_FRAME_HEADER_SIZE + extra
    mode = mode or guess_mode(signal, sig_axes, original)
    n = math.prod(data.shape[:-2])
    frames = data.reshape((n, *data.shape[-2:]))
    header = main_header(signal, sig_axes, data.dtype, version, fhb, mode, original)
    headers = frame_headers(
        signal, n, fhb, mode, start_time_ms(signal), frame_step_ms(nav_axes), original
    )
    record = fhb + frames[0].nbytes
    counts = _part_counts(n, record, max_file_size)
    directory, stem, ext = _names(filename)
    existing = _existing_parts(directory, stem)
    if existing and not overwrite_recording:
        msg = (
            f"{existing[0]}: a recording named {stem!r} exists "
            f"({', '.join(existing)}); pass overwrite_recording=True to replace it "
            "(with HyperSpy: s.save(..., overwrite_recording=True))"
        )
        raise FileExistsError(msg)
    _remove_leftovers(directory, stem)
    token = secrets.token_hex(4)
    temps = [
        directory / f".{part_name(stem, k, ext)}{TEMP_TAG}{token}"
        for k in range(len(counts))
    ]
    try:
        _write_parts(temps, counts, header, headers, frames, show_progressbar)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    _commit(directory, stem, ext, temps, token)


file_writer.__doc__ %= (WRITE_FILENAME_DOC,)


def _convert(data, dtype):
    """Return data of an unsigned pixel type the format holds."""
    if dtype is None:
        if np.dtype(data.dtype) not in PIXEL_DTYPES.values():
            msg = (
                f"TVIPS stores unsigned pixels (uint8, uint16, uint32, uint64), not "
                f"{data.dtype}: convert the data first (e.g. s.change_dtype('uint16') "
                f"after checking its range) or pass dtype='uint16' to convert and "
                f"check here"
            )
            raise ValueError(msg)
        return data
    target = np.dtype(dtype)
    if target not in PIXEL_DTYPES.values():
        raise ValueError(f"dtype must be uint8, uint16, uint32 or uint64, got {target}")
    lo, hi = np.iinfo(target).min, np.iinfo(target).max
    low, high = _range(data)
    if low < lo or high > hi:
        msg = f"data values {low} .. {high} do not fit {target} ({lo} .. {hi})"
        raise ValueError(msg)
    if np.issubdtype(data.dtype, np.floating):
        data = data.round()
    return data.astype(target)


def _range(data):
    low, high = data.min(), data.max()
    if hasattr(low, "compute"):
        import dask

        low, high = dask.compute(low, high)
    return low, high


def _part_counts(n: int, record: int, max_file_size) -> list[int]:
    """Return the number of records in each part."""
    if max_file_size is None:
        return [n]
    smallest = MAIN_HEADER_SIZE + record
    if max_file_size < smallest:
        warn(
            f"max_file_size {max_file_size} is smaller than the main header and "
            f"one frame record ({smallest} bytes): it is raised to {smallest}",
            UserWarning,
        )
        max_file_size = smallest
    first = (max_file_size - MAIN_HEADER_SIZE) // record
    later = max(1, max_file_size // record)
    counts = [min(n, first)]
    while sum(counts) < n:
        counts.append(min(later, n - sum(counts)))
    return counts


def _names(filename):
    """Return the folder, the stem and the extension of the parts."""
    path = Path(os.fspath(filename)).absolute()
    match = PART_RE.match(path.name)
    if match:
        return path.parent, match["stem"], match["ext"]
    ext = path.suffix[1:] if path.suffix.lower() == ".tvips" else "tvips"
    stem = path.stem if path.suffix.lower() == ".tvips" else path.name
    return path.parent, stem, ext


def _existing_parts(directory: Path, stem: str) -> list[str]:
    """Return the names of the parts of a recording ``stem`` in ``directory``."""
    if not directory.is_dir():
        return []
    names = []
    for entry in directory.iterdir():
        match = PART_RE.match(entry.name)
        if match and match["stem"] == stem:
            names.append(entry.name)
    return sorted(names)


def _remove_leftovers(directory: Path, stem: str) -> None:
    """Remove temporary files an interrupted earlier write of ``stem`` left."""
    prefix = f".{stem}_"
    for entry in directory.iterdir():
        name = entry.name
        if name.startswith(prefix) and (TEMP_TAG in name or STALE_TAG in name):
            rest = name[1 : name.index(TEMP_TAG if TEMP_TAG in name else STALE_TAG)]
            match = PART_RE.match(rest)
            if match and match["stem"] == stem:
                entry.unlink(missing_ok=True)


def _write_parts(temps, counts, header, headers, frames, show_progressbar):
    """Write every part under its temporary name.

    Frames are taken in blocks of about BLOCK_BYTES (whole dask chunks for
    lazy data, so that no chunk is computed twice); the next block is
    computed while the current one is written.
    """
    n = frames.shape[0]
    record = (
        headers.dtype.itemsize + math.prod(frames.shape[1:]) * frames.dtype.itemsize
    )
    edges = np.cumsum([0, *counts]).tolist()
    blocks = _blocks(frames, max(1, BLOCK_BYTES // record))
    bar = _progress(n, show_progressbar)
    files = []
    try:
        for k, temp in enumerate(temps):
            files.append(_open_for_writing(temp))
            if k == 0:
                _write(files[0], header, temp)
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(_load, frames, *blocks[0]) if blocks else None
            for i, (a, b) in enumerate(blocks):
                pixels = future.result()
                if i + 1 < len(blocks):
                    future = pool.submit(_load, frames, *blocks[i + 1])
                for k, temp in enumerate(temps):
                    lo, hi = max(a, edges[k]), min(b, edges[k + 1])
                    if lo < hi:
                        part = pixels[lo - a : hi - a]
                        _write_records(files[k], headers[lo:hi], part, temp)
                if bar is not None:
                    bar.update(b - a)
    finally:
        for f in files:
            f.close()
        if bar is not None:
            bar.close()


def _blocks(frames, per_block: int) -> list[tuple[int, int]]:
    """Return ``(start, stop)`` frame ranges to load at once."""
    n = frames.shape[0]
    chunks = getattr(frames, "chunks", None)
    if not chunks:
        return [(a, min(n, a + per_block)) for a in range(0, n, per_block)]
    blocks, start, stop = [], 0, 0
    for size in chunks[0]:
        if stop > start and stop + size - start > per_block:
            blocks.append((start, stop))
            start = stop
        stop += size
    if stop > start:
        blocks.append((start, stop))
    return blocks


def _load(frames, a: int, b: int) -> np.ndarray:
    """Return frames ``a .. b - 1`` as a C-contiguous little-endian array."""
    block = np.ascontiguousarray(frames[a:b])
    return block.astype(block.dtype.newbyteorder("<"), copy=False)


def _progress(total, show):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="frame", desc="Writing TVIPS")


def _final_name(temp: Path) -> str:
    return temp.name[1 : temp.name.index(TEMP_TAG)]


def _open_for_writing(temp: Path):
    try:
        return open(temp, "xb", buffering=0)
    except OSError as exc:
        raise _named(exc, _final_name(temp), "cannot create") from exc


def _write_records(f, headers, pixels, temp: Path) -> None:
    """Write records (header, frame) from where they are, without assembling.

    ``os.writev`` gathers each frame header and frame into the file in one
    system call per few hundred frames; without it (Windows), the records
    are assembled in a buffer first.
    """
    n = len(headers)
    heads = headers.view(np.uint8).reshape(n, -1)
    frames = pixels.reshape(n, -1).view(np.uint8)
    if not HAVE_WRITEV:
        _write(f, np.concatenate([heads, frames], axis=1), temp)
        return
    h, p = heads.shape[1], frames.shape[1]
    hv, pv = memoryview(heads.reshape(-1)), memoryview(frames.reshape(-1))
    bufs = [
        v for i in range(n) for v in (hv[i * h : (i + 1) * h], pv[i * p : (i + 1) * p])
    ]
    try:
        _writev_all(f.fileno(), bufs)
    except OSError as exc:
        raise _named(exc, _final_name(temp), "cannot write") from exc


def _writev_all(fd: int, bufs: list) -> None:
    """Write every buffer, in order, resuming after partial writes."""
    i = 0
    while i < len(bufs):
        written = os.writev(fd, bufs[i : i + IOV_MAX])
        while written and i < len(bufs):
            if written >= len(bufs[i]):
                written -= len(bufs[i])
                i += 1
            else:
                bufs[i] = bufs[i][written:]
                written = 0


def _write(f, buffer, temp: Path) -> None:
    try:
        f.write(memoryview(buffer).cast("B"))
    except OSError as exc:
        raise _named(exc, _final_name(temp), "cannot write") from exc


def _named(exc: OSError, name: str, what: str) -> OSError:
    reason = exc.strerror or errno_codes.errorcode.get(exc.errno or 0, str(exc))
    return type(exc)(exc.errno, f"{name}: {what} the part: {reason}")


def _commit(directory: Path, stem: str, ext: str, temps, token: str) -> None:
    """Put the new parts in place and remove the earlier recording's others."""
    finals = {part_name(stem, k, ext) for k in range(len(temps))}
    aside = []
    for entry in directory.iterdir():
        match = PART_RE.match(entry.name)
        if match and match["stem"] == stem and entry.name not in finals:
            # a part past the new last one, or one with another case of
            # extension: either would be chained to the new recording
            moved = directory / f".{entry.name}{STALE_TAG}{token}"
            os.replace(entry, moved)
            aside.append(moved)
    for k, temp in enumerate(temps):
        os.replace(temp, directory / part_name(stem, k, ext))
    for moved in aside:
        moved.unlink(missing_ok=True)
