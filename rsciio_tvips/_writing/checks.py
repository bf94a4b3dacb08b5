"""Check a signal and the writer's options before anything is written.

:func:`_check` is the first step of :func:`~.writer.file_writer`: it
refuses what the format cannot hold (signal axes, frame shape, pixel type,
shape, version, extra bytes, mode, frame count), converts the data to
``dtype`` (:func:`_convert`), warns what a re-save or version 1 would lose,
and returns a :class:`_Checked`, what the later steps need. The checks the
later steps make are here too: :func:`_check_frame_header_size` (frame
headers of a size the reader accepts) and :func:`_check_scan` (what of a
scan's shape and calibration the recording cannot hold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._format.layout import (
    FULL_FRAME_HEADER_SIZE,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    PIXEL_DTYPES,
    POSITIONS_FRAME_HEADER_SIZE,
    SUPPORTED_VERSIONS,
    V1_FRAME_HEADER_SIZE,
    V2_BASE_FRAME_HEADER_SIZE,
    V2_MAX_FRAME_HEADER_SIZE,
    frame_header_dtype,
    frame_header_size_fits,
)
from .._metadata.carried import carried_frame_headers
from .._metadata.encode import guess_mode, metadata_box
from .._metadata.mapping import FRAME, MAPPING
from .._metadata.scans import check_scan_step, is_scan
from .._metadata.units import unit_kind
from ..exceptions import warn


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


def _check(signal, version, frame_header_extra_bytes, mode, dtype) -> _Checked:
    """Check the signal and the options; return what the writing needs.

    They run after the name's checks (a wrong name is refused before the
    pass over the data a ``dtype`` conversion makes), in the order
    :func:`~.writer.file_writer` always had, so that a signal with several
    faults gets the same first message: signal axes,
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
    one :func:`~.writer._frame_header_bytes` takes from the original header, is
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
