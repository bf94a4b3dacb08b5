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
whatever the size of the data or of a frame.

Whatever can be refused is refused before anything is written or moved
(:func:`_check`, :func:`_frame_header_bytes`, :func:`_prepare`): data or
options the format cannot hold, a name that is no file's, a part name
longer than the folder allows, a part's name that a folder or a device
has.
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
    MAIN_HEADER_DTYPE,
    MAIN_HEADER_SIZE,
    MODE_DIFFRACTION,
    PIXEL_DTYPES,
    POSITIONS_FRAME_HEADER_SIZE,
    SUPPORTED_VERSIONS,
    V1_FRAME_HEADER_SIZE,
    V2_BASE_FRAME_HEADER_SIZE,
    V2_MAX_FRAME_HEADER_SIZE,
    frame_header_dtype,
    frame_header_size_fits,
    part_name,
)
from .._metadata.encode import (
    carried_frame_headers,
    check_scan_step,
    frame_headers,
    frame_times_ms,
    guess_mode,
    is_scan,
    main_header,
    metadata_box,
    start_time_ms,
    unit_kind,
)
from .._metadata.mapping import FRAME, MAPPING
from ..exceptions import warn
from .store import (
    check_part_name,
    commit,
    existing_parts,
    new_parts,
    not_part_files,
    recording_names,
    recover_stale,
    remove_leftovers,
    write_parts,
)

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
    checked = _check(signal, version, frame_header_extra_bytes, mode, dtype)
    fhb = _frame_header_bytes(checked)
    plan = _prepare(filename, checked, fhb, max_file_size, overwrite_recording)
    _write(checked, plan, show_progressbar)


file_writer.__doc__ %= (WRITE_FILENAME_DOC,)


@dataclass(frozen=True)
class _Checked:
    """A signal :func:`_check` accepted, with what the later steps need."""

    signal: dict  # as given: the metadata is read from it again
    data: object  # numpy or dask array, converted to its pixel type
    nav_axes: list  # axis dicts, in the order of the data
    sig_axes: list  # the two signal axis dicts, rows then columns
    n: int  # frames: the product of the navigation sizes (> 0)
    version: int  # main header version, 1 or 2
    extra: int | None  # frame_header_extra_bytes as given and checked
    mode: int  # 1 imaging, 2 diffraction (guessed if not given)
    original: dict  # original_metadata ({} if none)
    source: dict  # original_metadata's tvips_header ({} if none)

    @property
    def nav_shape(self) -> tuple:
        """The navigation shape: () for a single frame."""
        return tuple(int(k) for k in self.data.shape[:-2])

    @property
    def carried(self) -> dict | None:
        """The frame headers the signal carries for exactly these frames."""
        return carried_frame_headers(self.original, self.n)


@dataclass(frozen=True)
class _Plan:
    """What :func:`_prepare` made ready: the bytes and where they go."""

    header: bytes  # the main header, start of part 0
    headers: np.ndarray  # frame headers of all frames, in C order
    counts: list  # records in each part
    directory: Path
    stem: str
    ext: str


def _check(signal, version, frame_header_extra_bytes, mode, dtype) -> _Checked:
    """Check the signal and the options; return what the writing needs.

    The checks keep the order :func:`file_writer` always had, so that a
    signal with several faults gets the same first message: signal axes,
    frame size, pixel type (converting to ``dtype``), shape, version, frame
    headers a re-save would lose (warning), extra bytes, mode, what version
    1 cannot store (warning), frame count.
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
    # first: a conversion (dtype=) looks for the range of the values, and
    # frames without pixels have none
    _check_frame_shape([axis["size"] for axis in sig_axes])
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
    if source and not original.get("frame_headers"):
        warn(
            "the signal comes from a TVIPS recording but carries no frame headers "
            "(it was read with frame_headers=False): "
            "per-frame values the metadata does not hold (counters, rotator "
            "index, beam positions, frame times) are not kept",
            UserWarning,
        )
    extra = _check_extra(frame_header_extra_bytes, version)
    if mode not in (None, 1, 2):
        raise ValueError(
            f"mode must be 1 (imaging), 2 (diffraction) or None, got {mode!r}"
        )
    mode = mode or guess_mode(signal, sig_axes, original)
    if version == 1 and _loses_in_version1(signal, sig_axes):
        warn(
            "version 1 frame headers have no mode, stage or beam fields: the "
            "diffraction calibration reads back in real-space units and the "
            "stage positions are not stored; write version 2 to keep them",
            UserWarning,
        )
    n = math.prod(data.shape[:-2])
    if n == 0:
        raise ValueError("the signal has no frame to write")
    return _Checked(
        signal, data, nav_axes, sig_axes, n, version, extra, mode, original, source
    )


def _check_frame_shape(shape) -> None:
    """Refuse frames without pixels, or larger than the main header describes.

    The reader refuses a recording of 0 rows or columns; ``dimx`` and
    ``dimy`` are unsigned fields that a larger size would overflow.
    """
    dimy, dimx = (int(size) for size in shape)
    for field, size, what in (("dimy", dimy, "rows"), ("dimx", dimx, "columns")):
        if size == 0:
            msg = (
                f"frames of {dimy} x {dimx} pixels have no {what}: a TVIPS frame "
                "has at least one row and one column"
            )
            raise ValueError(msg)
        kind = MAIN_HEADER_DTYPE.fields[field][0]
        if size > np.iinfo(kind).max:
            msg = (
                f"frames of {dimy} x {dimx} pixels have too many {what}: the main "
                f"header's {field} ({kind.name}) holds at most {np.iinfo(kind).max}"
            )
            raise ValueError(msg)


def _check_extra(frame_header_extra_bytes, version: int) -> int | None:
    """Return ``frame_header_extra_bytes`` as an int, None if not given.

    Only a value the user gave is checked here; the size it makes, or the
    one :func:`_frame_header_bytes` takes from the original header, is
    checked against the reader's limit there.
    """
    if frame_header_extra_bytes is None:
        return None
    try:
        extra = int(frame_header_extra_bytes)
    except (TypeError, ValueError, OverflowError):  # text, NaN, infinity
        extra = -1
    if extra < 0 or extra != frame_header_extra_bytes:
        msg = (
            "frame_header_extra_bytes must be a whole number >= 0, got "
            f"{frame_header_extra_bytes!r}"
        )
        raise ValueError(msg)
    if version == 1 and extra:
        raise ValueError("version 1 frame headers are 12 bytes: no extra bytes")
    return extra


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
        carried = int(checked.source.get("frameheaderbytes", 0) or 0)
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


def _check_frame_header_size(checked: _Checked, size: int) -> None:
    """Refuse version 2 frame headers of a size the reader refuses."""
    if frame_header_size_fits(size):
        return
    most = V2_MAX_FRAME_HEADER_SIZE
    extra = most - V2_BASE_FRAME_HEADER_SIZE
    if checked.extra is not None:
        asked, advice = f"frame_header_extra_bytes={checked.extra}", ""
    else:
        carried = checked.source.get("frameheaderbytes")
        asked = f"original_metadata.tvips_header.frameheaderbytes={carried}"
        advice = " to choose the size"
    msg = (
        f"{asked} asks for frame headers of {size} bytes, but the reader accepts "
        f"at most {most}: give frame_header_extra_bytes of at most {extra}{advice}"
    )
    raise ValueError(msg)


def _prepare(filename, checked: _Checked, fhb: int, max_file_size, overwrite) -> _Plan:
    """Build the headers, split the frames into parts and clear the name.

    Nothing is written yet; the name is cleared by :func:`_clear_the_name`.
    Raises ValueError for a ``max_file_size`` that is invalid or needs more
    than :data:`MAX_PARTS` parts, ValueError or IsADirectoryError for a
    name that names no file (:func:`~.store.recording_names`), OSError
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


def _check_scan(checked: _Checked, fhb: int) -> None:
    """Warn what of a scan's shape and calibration the recording cannot hold.

    A stack has nothing to warn about: it reads back as a stack whatever
    its frame headers. For a scan: its calibration (never stored); beam
    positions that do not fit the frame headers (except when the carried
    headers, written as they are, had none either: the recording then
    reads back as the one it was read from); and more navigation axes than
    the two the positions hold.
    """
    shape = checked.nav_shape
    if not is_scan(shape):
        return
    check_scan_step(checked.nav_axes)
    carried = checked.carried
    # positions are made here unless carried; carried headers that never
    # held any lose nothing (they read back as the recording they came from)
    made = carried is None or "Scan_y" not in carried
    fits = fhb >= POSITIONS_FRAME_HEADER_SIZE
    if checked.version == 1:
        # 12 bytes: neither a rotator index nor positions
        held = {"rotidx", "Scan_y"} & set(carried or ())
        lost = carried is None or bool(held)
    else:
        lost = not fits and (carried is None or "Scan_y" in carried)
    if lost and checked.version == 1:
        warn(
            "version 1 frame headers hold no scan information (no rotator "
            f"index, no beam positions): the scan of shape {shape} is written "
            f"as frames in C order; read it back with scan_shape={shape}, or "
            "write version 2 to keep its shape in the frame headers",
            UserWarning,
        )
    elif lost:
        warn(
            f"{fhb}-byte frame headers cannot hold the beam positions Scan_x, "
            f"Scan_y (they need {POSITIONS_FRAME_HEADER_SIZE} bytes or more): "
            f"the scan of shape {shape} is written without them, and "
            'scan_shape="auto" finds only square scans, from the rotator '
            f"index; read it back with scan_shape={shape}, or write it with "
            "frame_header_extra_bytes="
            f"{FULL_FRAME_HEADER_SIZE - V2_BASE_FRAME_HEADER_SIZE} to keep them",
            UserWarning,
        )
    elif fits and made and len(shape) > 2:
        *leading, nx = shape
        warn(
            f"the beam positions hold two scan axes, the scan of shape {shape} "
            f"has {len(shape)}: Scan_y is the row counted over the leading axes "
            f'{tuple(leading)}, so scan_shape="auto" reads it back as '
            f"({math.prod(leading)}, {nx}); read it with scan_shape={shape}",
            UserWarning,
        )


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
    restored = recover_stale(directory, stem)
    if restored:
        warn(
            f"{restored[0]}: an interrupted earlier write had left the recording "
            f"{stem!r} hidden; its {len(restored)} part(s) are back in place"
        )
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
    :func:`~.store.not_part_files`).
    """
    taken = not_part_files(directory, existing)
    if taken:
        name, what = taken[0]
        msg = (
            f"{name}: a {what} has the name of a part of the recording {stem!r}; "
            "it is not a part file and is never replaced: move or rename it, or "
            "choose another name"
        )
        raise FileExistsError(msg)


def _write(checked: _Checked, plan: _Plan, show_progressbar: bool) -> None:
    """Write the parts under temporary names, then commit them.

    On any failure (or interruption) while writing, the temporary files are
    removed and the error is raised again; an earlier recording of the name
    is untouched. :func:`~.store.commit` then swaps the parts in.
    """
    frames = _as_frames(checked.data, checked.n)
    token = secrets.token_hex(4)
    parts = new_parts(plan.directory, plan.stem, plan.ext, len(plan.counts), token)
    bar = _progress(checked.n, show_progressbar)
    try:
        write_parts(parts, plan.counts, plan.header, plan.headers, frames, bar)
    except BaseException:
        for part in parts:
            # the error to report is the one above: on a read-only file
            # system even removing a file never created fails (EROFS)
            with contextlib.suppress(OSError):
                part.temp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
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


def _loses_in_version1(signal, sig_axes) -> bool:
    """Return whether version 1 would drop a diffraction calibration or stage.

    Its 12-byte frame headers hold the counter and the time only: every
    per-frame value of the metadata mapping (stage, tilts, beam current)
    that the signal sets is lost.
    """
    meta = metadata_box(signal)
    inverse = unit_kind(sig_axes[-1].get("units")) == MODE_DIFFRACTION
    kept = frame_header_dtype(V1_FRAME_HEADER_SIZE).names
    held = any(
        meta.get(row.path) is not None
        for row in MAPPING
        if row.header == FRAME and row.field not in kept
    )
    return inverse or held


def _convert(data, dtype):
    """Return data of an unsigned pixel type the format holds."""
    if np.issubdtype(data.dtype, np.complexfloating):
        # a conversion would silently drop the imaginary part
        msg = (
            f"TVIPS stores unsigned pixels, and the data are {data.dtype}: "
            "complex values cannot be converted without losing their imaginary "
            "part; write their modulus or real part (e.g. abs(s) or s.real in "
            "HyperSpy), converted with dtype='uint16' after checking its range"
        )
        raise ValueError(msg)
    if dtype is None:
        if np.dtype(data.dtype).newbyteorder("<") not in PIXEL_DTYPES.values():
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
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"data values {low} .. {high} are not all finite numbers")
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
    """Return a progress bar over ``total`` frames, or None."""
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="frame", desc="Writing TVIPS")
