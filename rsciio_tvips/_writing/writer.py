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
3. only when every part is complete are all parts of an earlier recording
   moved aside (``.NAME_NNN.tvips.stale-XXXX``, ``_000`` first), the new
   parts renamed into place (``os.replace``, atomic per file, ``_000`` last)
   and the parts moved aside deleted, so no stale ``_NNN`` part is left to
   be chained to the new recording.

A process killed during step 1 leaves the earlier recording intact and only
hidden ``.partial-`` files, which are not parts; the next write of the same
name removes them. Killed during step 3, it leaves no visible ``_000``: the
next write of the name puts the earlier recording back if the hidden parts
make it whole, and otherwise keeps them with a warning, never deleting what
may be its only copy. Lazy (dask) data is computed and written block by
block, and a frame larger than the block in pieces, so memory stays bounded
by the size of the data's chunks, whatever the size of the data or of a
frame (a chunk that dask cannot slice without computing it whole is
computed once for each of its pieces: see docs/writing.rst).

Whatever can be refused is refused before anything is written or moved
(:func:`~.checks._check`, :func:`_frame_header_bytes`, :func:`_prepare`): data or
options the format cannot hold, a name that is no file's, a part name
longer than the folder allows, a part's name that a folder or a device
has.

This module holds :func:`file_writer` and its four steps: the checks
(:mod:`.checks`), the size of the frame headers (:func:`_frame_header_bytes`),
the headers, the parts and the name made ready (:func:`_prepare`), and the
writing (:func:`_write`). The parts' names are :mod:`.names`, their
writing :mod:`.store` (large frames :mod:`.pieces`), their commit
:mod:`.commit`.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._docstrings import WRITE_FILENAME_DOC
from .._format.layout import (
    FULL_FRAME_HEADER_SIZE,
    MAIN_HEADER_SIZE,
    POSITIONS_FRAME_HEADER_SIZE,
    V1_FRAME_HEADER_SIZE,
    V2_BASE_FRAME_HEADER_SIZE,
    part_name,
)
from .._metadata.encode import (
    frame_headers,
    frame_times_ms,
    main_header,
    start_time_ms,
)
from .._metadata.scans import is_scan
from .._progress import Progress
from ..exceptions import warn
from .checks import _check, _check_frame_header_size, _check_scan, _Checked
from .commit import commit, recover_stale, remove_leftovers
from .names import (
    check_part_name,
    existing_parts,
    new_parts,
    not_part_files,
    recording_names,
)
from .store import write_parts

#: Part numbers have three digits.
MAX_PARTS = 1000


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
        order, and a signal with none is one frame. At most one navigation
        axis is a stack, written with rotator index 0 and no beam
        positions, so that it reads back as a stack everywhere; two or more
        are a scan, written with the rotator index 1, 2, ... and the beam
        positions ``Scan_x`` (the index along the last navigation axis) and
        ``Scan_y`` (the row), so that ``scan_shape="auto"`` reopens it in
        its shape. Frame headers the signal carries are written as they are.
    max_file_size : int, optional
        Largest size of a part in bytes; records are never split, so a part
        holds as many whole records as fit. Below the main header plus one
        record (RosettaSciIO's minimum), it is raised to that, with a
        warning. None: one part.
    version : {2, 1}
        Main header version: 2 writes frame headers of 60 +
        ``frame_header_extra_bytes`` bytes, 1 the 12-byte frame headers of
        version 1 (which hold no scan information).
    frame_header_extra_bytes : int, optional
        Version 2: bytes added to the 60-byte frame header (for example 48
        gives LiberTEM's 108-byte layout). By default as many as the frame
        headers of the recording the signal was read from have beyond 60,
        so that no header byte is dropped on a re-save; else 0 for a stack
        and 48 for a scan, whose beam positions need 76 bytes or more.
    mode : {None, 1, 2}
        1 imaging, 2 diffraction; None guesses it from the signal axes' units
        (a length or an inverse length), then ``Signal.signal_type``, then
        the original header, else 2.
    show_progressbar : bool, default True
        Show one progress bar for the whole write, on stderr: frames
        written of the total, the rate and the time left (on a terminal a
        bar redrawn in place, elsewhere a line every few seconds and a
        final one). False: nothing is shown.
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
        Before anything is written: if the signal does not have two signal
        axes, its frames have no rows or columns or more than the main
        header's ``dimx``/``dimy`` hold (4294967295), its data are complex,
        or not uint8/16/32/64 (and no ``dtype`` is given), its carried
        frame headers are not one value per frame, the frame headers would
        be larger than the reader accepts (16 MiB), ``filename`` is empty
        or ends with a path separator, or an option is invalid.
    IsADirectoryError
        If ``filename`` is a folder (before anything is written).
    FileExistsError
        If a recording of that name exists and ``overwrite_recording`` is
        False, or if anything other than a part file (a regular file, or a
        symbolic link to one) has the name of a part: a folder, a pipe, a
        device, a link to one or to nothing is never replaced (before
        anything is written).
    OSError
        ``ENAMETOOLONG`` before anything is written if the parts' names are
        longer than the folder allows; otherwise if a part cannot be
        written (the message names it). An earlier recording of the same
        name is left as it was.

    Warns
    -----
    UserWarning
        If the pixel size is changed by more than 1 %% by rounding to the
        integer the format stores, if the signal axes have offsets (not
        stored), if ``max_file_size`` is below one record, if a scan's
        navigation axes are calibrated (the scan step is not stored), if
        a scan's beam positions do not fit the frame headers, or if a scan
        has more than two navigation axes (the positions hold two).
    """
    # the name first: its refusals must not wait for a pass over the data
    _check_name(filename, overwrite_recording)
    checked = _check(signal, version, frame_header_extra_bytes, mode, dtype)
    fhb = _frame_header_bytes(checked)
    plan = _prepare(filename, checked, fhb, max_file_size, overwrite_recording)
    _write(checked, plan, show_progressbar)


file_writer.__doc__ %= (WRITE_FILENAME_DOC,)


@dataclass(frozen=True)
class _Plan:
    """What :func:`_prepare` made ready: the bytes and where they go."""

    header: bytes  # the main header, start of part 0
    headers: np.ndarray  # frame headers of all frames, in C order
    counts: list  # records in each part
    directory: Path
    stem: str
    ext: str


def _frame_header_bytes(checked: _Checked) -> int:
    """Return the size in bytes of each frame header to write.

    1. Version 1: the 12-byte frame header of that version.
    2. Version 2 with ``frame_header_extra_bytes`` given: 60 plus those.
    3. Version 2 without: 60 plus as many bytes as the frame headers of
       the version 2 recording the signal was read from had beyond 60
       (none if it was not read from one), so that a re-save drops no
       header byte. But a scan whose frame headers are not carried from
       that recording (they are made anew) needs 76 bytes for its beam
       positions: below that, it gets LiberTEM's 108-byte layout, which
       LiberTEM decodes in full.

    A size the reader would refuse (:func:`~.layout.frame_header_size_fits`)
    is refused here, with the option or the carried value that asks for it.
    """
    extra = checked.extra
    kept = False  # carried frame headers are written at their own size
    if extra is None:
        extra = 0
        # read whatever the version: a carried size that is no number is
        # refused (ValueError) rather than ignored
        carried = _carried_size(checked.source.get("frameheaderbytes", 0) or 0)
        if checked.version == 2 and checked.source.get("version") == 2 and carried:
            extra = max(0, carried - V2_BASE_FRAME_HEADER_SIZE)
            kept = checked.carried is not None
    if checked.version == 1:
        return V1_FRAME_HEADER_SIZE
    size = V2_BASE_FRAME_HEADER_SIZE + extra
    _check_frame_header_size(checked, size)
    if (
        checked.extra is None
        and not kept
        and is_scan(checked.nav_shape)
        and size < POSITIONS_FRAME_HEADER_SIZE
    ):
        return FULL_FRAME_HEADER_SIZE
    return size


def _carried_size(value) -> int:
    """Return a carried ``frameheaderbytes`` as an int, or raise ValueError."""
    try:
        size = int(value)
        ok = size == value
    except (TypeError, ValueError, OverflowError):  # text, a list, inf, NaN
        ok = False
    if not ok:
        msg = (
            "original_metadata.tvips_header.frameheaderbytes must be a whole "
            f"number of bytes, got {value!r}"
        )
        raise ValueError(msg)
    return size


def _prepare(filename, checked: _Checked, fhb: int, max_file_size, overwrite) -> _Plan:
    """Build the headers, split the frames into parts and clear the name.

    Nothing is written yet; the name is cleared by :func:`_clear_the_name`.
    Raises ValueError for a ``max_file_size`` that is invalid or needs more
    than :data:`MAX_PARTS` parts, ValueError or IsADirectoryError for a
    name that names no file (:func:`~.names.recording_names`), OSError
    (``ENAMETOOLONG``) for part names longer than the folder allows,
    FileExistsError from the name.
    """
    signal, data, n, mode = checked.signal, checked.data, checked.n, checked.mode
    little = np.dtype(data.dtype).newbyteorder("<")
    original = checked.original
    header = main_header(
        signal, checked.sig_axes, little, checked.version, fhb, mode, original
    )
    start = start_time_ms(signal)
    times = frame_times_ms(checked.nav_axes, n, start)
    headers = frame_headers(signal, checked.nav_shape, fhb, mode, start, times,
                            original)  # fmt: skip
    _check_scan(checked, fhb)
    record = fhb + math.prod(data.shape[-2:]) * data.dtype.itemsize
    counts = _part_counts(n, record, max_file_size)
    if len(counts) > MAX_PARTS:
        msg = (
            f"max_file_size {max_file_size} would split the recording into "
            f"{len(counts)} parts; part numbers have three digits, so at most "
            f"{MAX_PARTS}: give a larger max_file_size"
        )
        raise ValueError(msg)
    directory, stem, ext = recording_names(filename)
    # every part name has the same length: three digits
    check_part_name(directory, part_name(stem, 0, ext))
    _clear_the_name(directory, stem, overwrite)
    return _Plan(header, headers, counts, directory, stem, ext)


def _check_name(filename, overwrite: bool) -> None:
    """Refuse a name the recording cannot be written under, touching nothing.

    Run before anything else, so that a wrong name is refused before a pass
    over the data (a ``dtype`` conversion reads every chunk); the name is
    checked again, with the recovery of interrupted writes, just before
    writing (:func:`_clear_the_name`).
    """
    directory, stem, ext = recording_names(filename)
    # every part name has the same length: three digits
    check_part_name(directory, part_name(stem, 0, ext))
    _recover(directory, stem)
    _refuse_existing(directory, stem, overwrite)


def _recover(directory: Path, stem: str) -> None:
    """Put back an earlier recording an interrupted commit left hidden.

    It then counts as existing, and is never lost. Doing it twice is
    harmless: the second time finds nothing hidden.
    """
    restored = recover_stale(directory, stem)
    if restored:
        warn(
            f"{restored[0]}: an interrupted earlier write had left the recording "
            f"{stem!r} hidden; its {len(restored)} part(s) are back in place"
        )


def _refuse_existing(directory: Path, stem: str, overwrite: bool) -> None:
    """Refuse part names taken by what is no part file, and existing parts.

    An existing recording of that name is refused unless ``overwrite``.
    """
    existing = existing_parts(directory, stem)
    _refuse_what_is_no_part(directory, stem, existing)
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        msg = (
            f"{existing[0]}: a recording named {stem!r} exists ({shown}); pass "
            "overwrite_recording=True to replace it (with HyperSpy: "
            "s.save(..., overwrite_recording=True))"
        )
        raise FileExistsError(msg)


def _clear_the_name(directory: Path, stem: str, overwrite: bool) -> None:
    """Make the name ``stem`` ready for a new recording, or refuse it.

    1. An earlier recording an interrupted commit left hidden is put back
       first, so that it counts as existing (and is never lost).
    2. A part's name that something other than a part file has (a folder,
       a pipe, a device, a link to one or to nothing) is refused, with or
       without ``overwrite``: it could not be replaced, and the commit
       would fail after the new parts were placed.
    3. An existing recording is refused unless ``overwrite``.
    4. Hidden leftovers of interrupted writes are removed, except earlier
       parts that may be the only copy of a recording: those are kept,
       with a warning.
    """
    _recover(directory, stem)
    _refuse_existing(directory, stem, overwrite)
    kept = remove_leftovers(directory, stem)
    if kept:
        warn(
            f"{kept[0]}: an interrupted earlier write left {len(kept)} hidden "
            f"part(s) of an earlier recording {stem!r} ({', '.join(kept)}); they "
            "are kept: rename them without the leading dot and the .stale- "
            "suffix to recover it"
        )


def _refuse_what_is_no_part(directory: Path, stem: str, existing) -> None:
    """Raise FileExistsError if something other than a part file has a part's name.

    FileExistsError, as for a recording that exists: the name is taken,
    and by something the writer never replaces (see
    :func:`~.names.not_part_files`).
    """
    taken = not_part_files(directory, existing)
    if taken:
        name, what = taken[0]
        msg = (
            f"{name} is {what}: it has the name of a part of the recording "
            f"{stem!r} but is not a part file, and is never replaced: move or "
            "rename it, or choose another name"
        )
        raise FileExistsError(msg)


def _write(checked: _Checked, plan: _Plan, show_progressbar: bool) -> None:
    """Write the parts under temporary names, then commit them.

    On any failure (or interruption) while writing, the temporary files are
    removed and the error is raised again; an earlier recording of the name
    is untouched. :func:`~.commit.commit` then swaps the parts in.
    """
    frames = _as_frames(checked.data, checked.n)
    token = secrets.token_hex(4)
    parts = new_parts(plan.directory, plan.stem, plan.ext, len(plan.counts), token)
    # the bar ends with the write: its last line before the commit, or
    # "stopped at" before the error
    with _progress(checked.n, show_progressbar) as bar:
        try:
            write_parts(parts, plan.counts, plan.header, plan.headers, frames, bar)
        except BaseException:
            for part in parts:
                # the error to report is the one above: on a read-only file
                # system even removing a file never created fails (EROFS)
                with contextlib.suppress(OSError):
                    part.temp.unlink(missing_ok=True)
            raise
    commit(plan.directory, plan.stem, parts, token)


def _as_frames(data, n: int):
    """Return the data shaped as :func:`~.store.write_parts` takes it.

    Numpy data is flattened to ``(n, dimy, dimx)``. Dask data keeps its
    navigation axes and its chunks, on the signal axes too (each chunk is
    then computed once, and a frame larger than a block is computed in
    pieces of its chunks, never whole); a single frame gets a navigation
    axis.
    """
    if hasattr(data, "dask"):
        return data[None] if data.ndim == 2 else data
    return data.reshape((n, *data.shape[-2:]))


def _part_counts(n: int, record: int, max_file_size) -> list[int]:
    """Return the number of records in each part."""
    if max_file_size is None:
        return [n]
    try:
        size = int(max_file_size)
        ok = size == max_file_size and size > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        msg = (
            "max_file_size must be a positive whole number of bytes, got "
            f"{max_file_size!r}"
        )
        raise ValueError(msg)
    max_file_size = size
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


def _progress(total, show):
    """Return the progress of writing ``total`` frames (as ``None`` if not shown).

    A context manager either way: a :class:`~rsciio_tvips._progress.Progress`,
    or a null context whose value, None, tells the writing not to count.
    """
    if not show:
        return contextlib.nullcontext()
    return Progress("write", total)
