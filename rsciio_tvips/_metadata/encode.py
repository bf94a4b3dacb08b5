"""Turn a RosettaSciIO signal dictionary into TVIPS headers.

The reverse of :mod:`.decode`: the main header and the frame headers are
built from the signal's axes and metadata, using the same metadata paths the
reader fills, so that read -> write -> read keeps every value. When the
signal carries what the reader found in the files (``original_metadata``
``tvips_header`` and ``frame_headers``), those are the starting point and
the bytes we do not decode are written back unchanged. Which field holds
which metadata value is the table of :mod:`.mapping`, the one the reader
walks too.

This module builds the headers: :func:`main_header` and :func:`frame_headers`,
from the mode (:func:`guess_mode`), the pixel size (:func:`pixel_size`) and
the frame times (:func:`start_time_ms`, :func:`frame_times_ms`), and warns
where the metadata no longer say what carried frame headers hold. Where each
frame belongs is :mod:`.scans`, the frame headers a signal carries are
:mod:`.carried`, and units are :mod:`.units`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from box import Box

from .._format.layout import (
    EXTRA_FIELD,
    FILLER_OFFSET,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    MODE_IMAGING,
    PIXEL_DTYPES,
    decoded_header_dtype,
    split_times_ms,
)
from .._format.layout import frame_times_ms as header_times_ms
from ..exceptions import warn
from .carried import (
    _check_fits,
    _computed,
    _length,
    _put_carried,
    carried_frame_headers,
)
from .mapping import FRAME, MAIN, TEM, rows
from .scans import is_scan, scan_fields
from .times import unix_ms
from .units import _quantity, is_pixel_unit, unit_kind

#: Filler of the main headers this package writes from scratch.
FILLER = b"TVIPS "

#: Relative change of the pixel size by rounding above which the writer warns.
ROUNDING_TOLERANCE = 0.01
#: Marks a metadata path that is not set at all (a value of None is set).
_UNSET = object()


def metadata_box(signal) -> Box:
    """Return the signal's metadata as a Box read with dotted paths."""
    return Box(signal.get("metadata") or {}, box_dots=True, default_box=False)


def guess_mode(signal, sig_axes, original) -> int:
    """Return the frame-header ``mode``: from the units, the signal type, or 2.

    A length unit on the signal axes means imaging (1), an inverse length
    diffraction (2). Otherwise a ``signal_type`` that mentions diffraction
    means 2, a magnification without a camera length means 1, the original
    first frame header's ``mode`` is kept, and lacking all of these the mode
    is 2, as RosettaSciIO writes.
    """
    kind = unit_kind(sig_axes[-1].get("units"))
    if kind is not None:
        return kind
    meta = metadata_box(signal)
    signal_type = str(meta.get("Signal.signal_type", "") or "")
    if "diffraction" in signal_type.lower():
        return MODE_DIFFRACTION
    if meta.get(f"{TEM}.magnification") and not meta.get(f"{TEM}.camera_length"):
        return MODE_IMAGING
    first = (original.get("frame_header") or {}) if original else {}
    if first.get("mode") in (MODE_IMAGING, MODE_DIFFRACTION):
        return int(first["mode"])
    return MODE_DIFFRACTION


def pixel_size(sig_axes, mode, previous: int) -> int:
    """Return the integer ``pixelsize`` for the signal axes' scale.

    The scale is converted to nm (imaging) or 1/nm (diffraction). Axes
    without a length unit keep the original header's value (0 if none).

    Warns
    -----
    UserWarning
        If rounding changes the value by more than 1 %, if the scale cannot
        be stored (negative, not finite), or if the axes have offsets (the
        format has no field for them).
    """
    axis = sig_axes[-1]
    for ax in sig_axes:
        if ax.get("offset", 0):
            warn(
                f"the signal axis {ax.get('name', '')!r} has offset "
                f"{ax['offset']}: TVIPS files store no calibration offset, so it "
                "is not written (a centred diffraction pattern reads back with "
                "offset 0)",
                UserWarning,
            )
            break
    kind = unit_kind(axis.get("units"))
    if kind is None:
        if not is_pixel_unit(axis.get("units")):
            warn(
                f"the signal axes' unit {axis.get('units')!r} is neither a length "
                f"nor an inverse length: pixelsize {int(previous)} is written",
                UserWarning,
            )
        return int(previous)
    target = "nm" if mode == MODE_IMAGING else "1/nm"
    scale = axis.get("scale")
    quantity = float(1.0 if scale is None else scale) * _quantity(axis["units"])
    import pint  # imported by _quantity above: this only binds the name

    try:
        value = quantity.to(target).magnitude
    except pint.errors.DimensionalityError:
        warn(
            f"the signal axes are in {axis['units']}, which cannot be stored for "
            f"mode {mode} (it needs {target}): pixelsize 0 is written",
            UserWarning,
        )
        return 0
    if not math.isfinite(value) or value < 0:
        warn(
            f"the pixel size {value} {target} cannot be stored: pixelsize 0 is written",
            UserWarning,
        )
        return 0
    stored = min(round(value), 2**32 - 1)
    if abs(stored - value) > ROUNDING_TOLERANCE * abs(value):
        warn(
            f"the pixel size {value:g} {target} is stored as the integer "
            f"{stored} {target} (the TVIPS field is an integer)",
            UserWarning,
        )
    return int(stored)


def _uint(value, default=0, factor=1.0) -> int:
    """Return ``value * factor`` as a uint32 field value; ``default`` if it has none."""
    try:
        value = float(value) * factor
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value) or value < 0:
        return default
    return min(round(value), 2**32 - 1)


def main_header(signal, sig_axes, dtype, version, fhb, mode, original) -> bytes:
    """Return the 256 bytes of the main header.

    Fields that the signal defines (size, dtype, version, frame-header size,
    pixel size, and the main-header rows of :data:`.mapping.MAPPING` that
    hold in ``mode``: high tension, magnification or camera length) come
    from it; a mapped value the metadata does not set comes from the
    original header, as do the read-out offsets, binning and filler, when
    the signal carries one, else 0, 1 and ``"TVIPS "``.
    """
    base = dict((original or {}).get("tvips_header") or {})
    header = np.zeros((), MAIN_HEADER_DTYPE)
    meta = metadata_box(signal)
    if base.get("dummy"):
        filler = bytes.fromhex(base["dummy"])
    else:
        filler = FILLER * (header["dummy"].size // len(FILLER) + 1)
    header["dummy"] = np.frombuffer(filler[: header["dummy"].size], np.uint8)
    values = {
        "size": MAIN_HEADER_DTYPE.itemsize,
        "version": version,
        "dimx": sig_axes[1]["size"],
        "dimy": sig_axes[0]["size"],
        "bitsperpixel": {v: k for k, v in PIXEL_DTYPES.items()}[dtype],
        "offsetx": _uint(base.get("offsetx", 0)),
        "offsety": _uint(base.get("offsety", 0)),
        "binx": _uint(base.get("binx", 1), 1),
        "biny": _uint(base.get("biny", 1), 1),
        "pixelsize": pixel_size(sig_axes, mode, _uint(base.get("pixelsize", 0))),
        "frameheaderbytes": fhb if version == 2 else _uint(
            base.get("frameheaderbytes", 0)),
    }  # fmt: skip
    for row in rows(MAIN, mode):
        value = meta.get(row.path, _UNSET)
        if value is _UNSET:
            # the original header's value is already stored units
            values[row.field] = _uint(base.get(row.field, 0))
        else:
            values[row.field] = _uint(value, factor=row.factor)
    for name, value in values.items():
        header[name] = value
    raw = header.tobytes()
    assert len(raw) == MAIN_HEADER_DTYPE.itemsize and FILLER_OFFSET < len(raw)
    return raw


class FrameHeaders(NamedTuple):
    """The frame headers to write, without every frame's bytes past the fields.

    A file may declare frame headers of up to 16 MiB; building them whole
    for every frame would take that much memory per frame. The decoded
    fields (at most 108 bytes a frame) are made for every frame; the bytes
    after them are zeros, or those the signal carries, which the writer
    takes a block of frames at a time.
    """

    #: The decoded fields of every frame
    #: (:func:`~rsciio_tvips._format.layout.decoded_header_dtype`).
    fields: np.ndarray
    #: The carried bytes past the fields, one row per frame (numpy or
    #: dask, ``uint8``), or None for zeros.
    extra: object
    #: Bytes of one frame header (``frameheaderbytes``).
    size: int


def frame_headers(
    signal, nav_shape, fhb, mode, start_ms, times_ms, original
) -> FrameHeaders:
    """Return the frame headers to write, one per frame in C order.

    Parameters
    ----------
    signal : dict
        The signal dictionary (its metadata is read).
    nav_shape : tuple of int
        The navigation shape of the data.
    fhb : int
        Frame-header size in bytes.
    mode : int
        The frame-header ``mode`` to write.
    start_ms : int
        Unix time of the first frame in ms (for the check of carried headers).
    times_ms : numpy.ndarray
        Unix time of every frame in ms.
    original : dict or None
        The signal's ``original_metadata``.

    Returns
    -------
    FrameHeaders
        The decoded fields of every frame and the bytes past them.

    Notes
    -----
    The original frame headers are written as they are when the signal
    carries them for exactly these frames (see :func:`~.carried.carried_frame_headers`)
    and they fit the frame-header size; bytes of fields a smaller header
    cannot hold are dropped, and a larger header gets zeros; their ``mode``
    is set to ``mode``; and a scan's fields of :func:`~.scans.scan_fields` are its
    C-order positions, whatever the carried ones say (after winding,
    hysteresis, padding or placement by the headers they say where a frame
    was recorded, not where it is written; a scan read from 60-byte headers
    and written with 108 gets its beam positions). Otherwise the headers are
    made: counter 1, 2, ...; times ``times_ms``; ``mode``; the frame-header rows of
    :data:`.mapping.MAPPING` (stage, tilt and beam current) from the
    metadata, 0 where it sets none; and :func:`~.scans.scan_fields`, as far as the
    header size holds them.
    """
    n = math.prod(nav_shape)
    dtype = decoded_header_dtype(fhb)
    out = np.zeros(n, dtype)
    carried = carried_frame_headers(original, n)
    meta = metadata_box(signal)
    if carried is not None:
        extra = _carried_extra(carried, fhb - dtype.itemsize)
        carried = _computed(carried, dtype.names)
        for name in dtype.names:
            if name in carried:
                _put_carried(out, name, np.asarray(carried[name]))
        if is_scan(nav_shape):
            # where a frame sits is where it is written: after winding,
            # hysteresis, padding or placement by the headers, the carried
            # rotator index and beam positions say where it was recorded,
            # and would reopen as another scan; C order is what they must say
            for name, value in scan_fields(nav_shape).items():
                if name in dtype.names:
                    out[name] = value
        if "mode" in dtype.names:
            # the mode decided from the units and the argument wins, so the
            # frame headers agree with the main header's calibration
            out["mode"] = mode
        _check_carried(meta, out, start_ms)
        return FrameHeaders(out, extra, fhb)
    if (original or {}).get("frame_headers"):
        lengths = sorted({_length(v) for v in original["frame_headers"].values()})
        warn(
            f"the signal carries frame headers for {lengths[0]} frames but has {n}: "
            "they are not written, and per-frame values the metadata does not "
            "hold (counters, rotator index, beam positions, times) are made anew",
            UserWarning,
        )
    seconds, ms = split_times_ms(times_ms)
    mapped = {r.field: r.to_field(_number(meta, r.path)) for r in rows(FRAME, mode)}
    values = {
        "num": np.arange(1, n + 1),
        "timestamp": seconds,
        "ms": ms,
        "mode": mode,
        **mapped,
        **scan_fields(nav_shape),
    }
    for name, value in values.items():
        if name in dtype.names:
            out[name] = value
    return FrameHeaders(out, None, fhb)


def _carried_extra(carried: dict, nbytes: int):
    """Return the carried bytes past the decoded fields, if they fit ``nbytes``.

    They are written back as they are when the header they come from was
    as large as the one written (else zeros: their fields are unknown, and
    cut or padded they would be other bytes). A lazy read carries them as a
    dask array, left lazy here: the writer computes a block at a time.
    """
    extra = carried.get(EXTRA_FIELD)
    if extra is None or nbytes == 0 or tuple(np.shape(extra)[1:]) != (nbytes,):
        return None
    if isinstance(extra, np.ndarray) or not hasattr(extra, "dask"):
        extra = np.asarray(extra)
        _check_fits(EXTRA_FIELD, extra, np.dtype(np.uint8))
        return np.ascontiguousarray(extra, dtype=np.uint8)
    return extra


def start_time_ms(signal) -> int:
    """Return the first frame's unix time in ms from ``General`` (0 if unset)."""
    meta = metadata_box(signal)
    date = meta.get("General.date")
    if not date:
        return 0
    return unix_ms(
        date,
        meta.get("General.time") or "00:00:00",
        meta.get("General.time_zone") or "UTC",
    )


#: A time axis offset beyond this (s) is an absolute unix time, as the
#: time axis of RosettaSciIO's TVIPS reader has.
ABSOLUTE_TIME_S = 1e8


def frame_times_ms(nav_axes, n: int, start_ms: int) -> np.ndarray:
    """Return the unix time in ms of every frame.

    With one time navigation axis (a unit convertible to seconds), frame
    ``i`` is at ``start + offset + i * scale`` (or at the axis's own values
    when it is not uniform); an offset larger than 1e8 s is taken as an
    absolute unix time. Otherwise every frame is at ``start``.
    """
    times = np.full(n, start_ms, dtype=np.int64)
    if len(nav_axes) != 1 or is_pixel_unit(nav_axes[0].get("units")):
        return times
    axis = nav_axes[0]
    quantity = _quantity(axis["units"])
    if quantity is None or not quantity.is_compatible_with("s"):
        return times
    to_ms = float(quantity.to("ms").magnitude)
    if axis.get("axis") is not None:
        values = np.asarray(axis["axis"], dtype=np.float64)
    else:
        offset = float(axis.get("offset") or 0.0)
        scale = float(1.0 if axis.get("scale") is None else axis["scale"])
        values = offset + np.arange(n) * scale
    values = values[:n] * to_ms
    if values.size and values[0] > ABSOLUTE_TIME_S * 1000:
        return np.floor(values + 0.5).astype(np.int64)
    return start_ms + np.floor(values + 0.5).astype(np.int64)


def _number(meta, path: str) -> float:
    """Return a metadata value as a float; 0 if unset, a warning if unreadable."""
    value = meta.get(path)
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        warn(f"metadata {path} = {value!r} is not a number: 0 is written", UserWarning)
        return 0.0


def _check_carried(meta, headers, start_ms) -> None:
    """Warn where the metadata no longer says what the carried headers hold.

    Carried frame headers are the per-frame truth and are written as they
    are; a value edited in the metadata (a stage position, the beam current,
    the start time) would silently not be written, so say so. The metadata
    describe the first frame the data show (the reader's rule), so the
    comparison is with the first header that is not a blank point's (all
    zero: no counter, no time).
    """
    names = headers.dtype.names
    stamps = [headers[n] for n in ("num", "timestamp", "ms") if n in names]
    shown = np.flatnonzero(np.any(stamps, axis=0)) if stamps else []
    first = headers[int(shown[0]) if len(shown) else 0]
    checks = []
    if "ms" in names and meta.get("General.date"):
        held = int(header_times_ms(first))
        checks.append(("General.date/time", start_ms, held))
    mode = first["mode"].item() if "mode" in names else None
    for row in rows(FRAME, mode):
        # every mapped per-frame value (stage, tilts, beam current): an edit
        # of any of them in the metadata would otherwise be dropped silently
        if row.field in names and meta.get(row.path) is not None:
            wanted = row.to_field(_number(meta, row.path))
            checks.append((row.path, wanted, first[row.field].item()))
    for path, wanted, held in checks:
        if not np.isclose(wanted, held, rtol=1e-6, atol=1e-3):
            warn(
                f"metadata {path} differs from the frame headers the signal "
                "carries; the frame headers are written as they are",
                UserWarning,
            )
