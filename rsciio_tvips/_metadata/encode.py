"""Turn a RosettaSciIO signal dictionary into TVIPS headers.

The reverse of :mod:`.decode`: the main header and the frame headers are
built from the signal's axes and metadata, using the same metadata paths the
reader fills, so that read -> write -> read keeps every value. When the
signal carries what the reader found in the files (``original_metadata``
``tvips_header`` and ``frame_headers``), those are the starting point and
the bytes we do not decode are written back unchanged. Which field holds
which metadata value is the table of :mod:`.mapping`, the one the reader
walks too.

Where each frame belongs is written so that the recording reads back as what
it was (:func:`scan_fields`): a stack, at most one navigation axis, with
nothing a reader could take for a scan; a scan with the rotator index and the
beam positions that give its shape to ``scan_shape="auto"``. The scan step
has no field at all (:func:`check_scan_step` says so).

pint is imported, and its unit registry built, only when a unit is first
converted (:func:`unit_registry`): building the registry takes a noticeable
time, and reading a file never needs it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

import numpy as np
from box import Box

from .._format.layout import (
    FILLER_OFFSET,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    MODE_IMAGING,
    PIXEL_DTYPES,
    frame_header_dtype,
    split_times_ms,
)
from .._format.layout import frame_times_ms as header_times_ms
from ..exceptions import warn
from .mapping import FRAME, MAIN, TEM, rows
from .times import unix_ms

#: Filler of the main headers this package writes from scratch.
FILLER = b"TVIPS "
#: Units that name a pixel, not a length (pint reads "px" as a CSS length).
PIXEL_UNITS = {"px", "pixel", "pixels", "pix", "<undefined>", ""}
#: Relative change of the pixel size by rounding above which the writer warns.
ROUNDING_TOLERANCE = 0.01
#: Marks a metadata path that is not set at all (a value of None is set).
_UNSET = object()


@functools.cache
def unit_registry():
    """Return the pint unit registry, built on the first call.

    Returns
    -------
    pint.UnitRegistry
    """
    import pint

    return pint.UnitRegistry()


def metadata_box(signal) -> Box:
    """Return the signal's metadata as a Box read with dotted paths."""
    return Box(signal.get("metadata") or {}, box_dots=True, default_box=False)


def _is_pixel_unit(units) -> bool:
    return units is None or str(units).strip().lower() in PIXEL_UNITS


def _quantity(units):
    """Return the pint quantity of a unit name, or None.

    Electron microscopy writes Å as "A" (which pint reads as ampere) and
    pyxem writes "k_A^-1" for 1/Å; both are read as ångström here.
    """
    text = str(units).strip().replace("Å", "angstrom").replace("k_A", "angstrom")
    text = re.sub(r"(?<![A-Za-z_])A(?![A-Za-z_])", "angstrom", text)
    registry = unit_registry()
    import pint  # imported by unit_registry: this only binds the name

    try:
        quantity = registry(text)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError):
        return None
    return quantity if isinstance(quantity, pint.Quantity) else None


def unit_kind(units) -> int | None:
    """Return MODE_IMAGING for a length, MODE_DIFFRACTION for 1/length."""
    if _is_pixel_unit(units):
        return None
    quantity = _quantity(units)
    if quantity is None:
        return None
    if quantity.is_compatible_with("m"):
        return MODE_IMAGING
    if quantity.is_compatible_with("1/m"):
        return MODE_DIFFRACTION
    return None


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
        if not _is_pixel_unit(axis.get("units")):
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


def is_scan(nav_shape) -> bool:
    """Return whether frames of this navigation shape are a scan.

    Two or more navigation axes are a scan; none (one frame) or one (a
    movie, a tilt series, any stack, whatever its units) are a stack.
    """
    return len(nav_shape) >= 2


def scan_fields(nav_shape) -> dict:
    """Return the frame-header fields that say where each frame belongs.

    Parameters
    ----------
    nav_shape : tuple of int
        The navigation shape; frames are in C order.

    Returns
    -------
    dict
        ``rotidx``, ``Scan_x`` and ``Scan_y``, one value per frame. A stack
        gets 0 in all three: nothing a reader could take for a scan (a
        rotator index 1, 2, ... would make a movie of a square number of
        frames reopen as a scan with ``scan_shape="auto"``). A scan gets
        ``rotidx`` 1, 2, ..., as RosettaSciIO writes (its ``"auto"`` then
        finds square scans), and the EM-Scan beam positions, which make any
        scan shape self-describing: ``Scan_x`` is the index along the last
        navigation axis, ``Scan_y`` the row, counted over all the axes
        before it (the positions hold two axes only).
    """
    n = math.prod(nav_shape)
    if not is_scan(nav_shape):
        zeros = np.zeros(n, dtype=np.int64)
        return {"rotidx": zeros, "Scan_x": zeros, "Scan_y": zeros}
    flat = np.arange(n)
    nx = nav_shape[-1]
    return {"rotidx": flat + 1, "Scan_x": flat % nx, "Scan_y": flat // nx}


def carried_frame_headers(original, n: int) -> dict | None:
    """Return the frame headers the signal carries, if they are for ``n`` frames.

    Parameters
    ----------
    original : dict or None
        The signal's ``original_metadata``.
    n : int
        Frames to write.

    Returns
    -------
    dict or None
        ``original_metadata.frame_headers`` (one array per field, as the
        reader puts them) when every field has ``n`` values; None when the
        signal carries none, or carries them for other frames (a crop).

    Raises
    ------
    ValueError
        If they are not a mapping of fields to one value per frame (a
        single value, a ragged list): no frame count fits them, and
        taking them for a crop would silently drop what they hold.
    """
    carried = (original or {}).get("frame_headers")
    if not carried:
        return None
    _check_per_frame(carried)
    if all(_length(v) == n for v in carried.values()):
        return carried
    return None


def _check_per_frame(carried) -> None:
    """Raise ValueError unless every carried field has one value per frame."""
    where = "original_metadata.frame_headers"
    if not isinstance(carried, Mapping):
        msg = (
            f"{where} must map frame-header fields to one value per frame, "
            f"found a value of type {type(carried).__name__}"
        )
        raise ValueError(msg)
    for name, values in carried.items():
        try:
            shape = np.shape(values)
        except ValueError:  # numpy's word for a ragged list
            shape = None
        if not shape:
            what = "a ragged list" if shape is None else f"a single value {values!r}"
            msg = (
                f"{where}[{name!r}] is {what}, not one value per frame: give "
                "an array with a value for each frame, or remove the field"
            )
            raise ValueError(msg)


def _computed(carried: dict, names) -> dict:
    """Return the carried fields the header holds, computed into numpy.

    A lazy read carries dask arrays that share one read of the frame
    headers: computed together, that read happens once, not field by field.
    """
    import dask

    wanted = [k for k in names if k in carried]
    return dict(zip(wanted, dask.compute(*(carried[k] for k in wanted)), strict=True))


def _length(values) -> int:
    """Return how many frames a carried field has, without computing it.

    The reader can carry the frame headers of a lazy signal as dask arrays:
    their shape is known, and reading every header only to count them would
    cost a pass over the recording.
    """
    shape = np.shape(values)
    return int(shape[0]) if shape else 0


def frame_headers(
    signal, nav_shape, fhb, mode, start_ms, times_ms, original
) -> np.ndarray:
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
    numpy.ndarray
        Structured array of :func:`~.layout.frame_header_dtype` ``(fhb)``.

    Notes
    -----
    The original frame headers are written as they are when the signal
    carries them for exactly these frames (see :func:`carried_frame_headers`)
    and they fit the frame-header size; bytes of fields a smaller header
    cannot hold are dropped, and a larger header gets zeros; their ``mode``
    is set to ``mode``; and a scan's fields of :func:`scan_fields` are its
    C-order positions, whatever the carried ones say (after winding,
    hysteresis, padding or placement by the headers they say where a frame
    was recorded, not where it is written; a scan read from 60-byte headers
    and written with 108 gets its beam positions). Otherwise the headers are
    made: counter 1, 2, ...; times ``times_ms``; ``mode``; the frame-header rows of
    :data:`.mapping.MAPPING` (stage, tilt and beam current) from the
    metadata, 0 where it sets none; and :func:`scan_fields`, as far as the
    header size holds them.
    """
    n = math.prod(nav_shape)
    dtype = frame_header_dtype(fhb)
    out = np.zeros(n, dtype)
    carried = carried_frame_headers(original, n)
    meta = metadata_box(signal)
    if carried is not None:
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
        return out
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
    return out


def _put_carried(out, name: str, value) -> None:
    """Write a carried field into the headers, if its per-frame shape fits."""
    if value.shape[1:] != out[name].shape[1:]:
        return
    try:
        out[name] = value
    except (TypeError, ValueError) as exc:  # None, text: not numbers
        msg = (
            f"original_metadata.frame_headers[{name!r}] holds values of type "
            f"{value.dtype} that are not numbers for the {out.dtype[name]} field"
        )
        raise ValueError(msg) from exc


def _axis_name(axis, index: int, count: int) -> str:
    """Return a navigation axis' name; the reader's names if it has none."""
    name = axis.get("name")
    if name is not None and str(name) not in ("", "<undefined>"):
        return str(name)
    # the names the reader gives a scan's axes (x last, y before it)
    from_end = count - index
    return {1: "x", 2: "y"}.get(from_end, f"axis {index}")


def _calibration(axis) -> tuple[str, bool] | None:
    """Return how a navigation axis is calibrated, None if it is not.

    An axis of scale 1, offset 0 and no units (or a pixel unit) is a bare
    point index, which is all a recording can give back. Otherwise the
    description (``2.5 nm``, ``1 from 2``, ``non-uniform``) and whether
    it has an origin other than 0.
    """
    units = "" if _is_pixel_unit(axis.get("units")) else str(axis["units"]).strip()
    unit = f" {units}" if units else ""
    values = axis.get("axis")
    if values is not None:
        values = np.asarray(values, dtype=np.float64)
        if np.array_equal(values, np.arange(values.size)) and not units:
            return None
        return f"non-uniform{unit}", bool(values.size and values[0] != 0)
    scale = float(1.0 if axis.get("scale") is None else axis["scale"])
    offset = float(axis.get("offset") or 0.0)
    if scale == 1 and offset == 0 and not units:
        return None
    if offset:
        return f"{scale:g}{unit} from {offset:g}{unit}", True
    return f"{scale:g}{unit}", False


def check_scan_step(nav_axes) -> None:
    """Warn, once, if a scan's navigation axes carry a calibration.

    Nothing in a TVIPS recording stores the scan step, its origin or its
    units: the reader gives a scan uncalibrated axes. A stack (one
    navigation axis) is not checked: its time axis is stored as frame
    times.

    Parameters
    ----------
    nav_axes : list of dict
        The navigation axes, in the order of the data.

    Warns
    -----
    UserWarning
        One warning naming every calibrated axis: ``x: 2.5 nm`` (step and
        units), ``x: 1 from 2`` (the origin a crop leaves).
    """
    if len(nav_axes) < 2:
        return
    described = [
        (_axis_name(axis, i, len(nav_axes)), *found)
        for i, axis in enumerate(nav_axes)
        if (found := _calibration(axis)) is not None
    ]
    if not described:
        return
    # x first, as HyperSpy lists navigation axes (the data order is y, x)
    items = ", ".join(f"{name}: {text}" for name, text, _ in reversed(described))
    if any(origin for _, _, origin in described):
        what, pronoun, verb = "scan step and origin", "them", "are"
    else:
        what, pronoun, verb = "scan step", "it", "is"
    warn(
        f"the {what} ({items}) {verb} not stored in a TVIPS recording: pass "
        f"{pronoun} again after reading",
        UserWarning,
    )


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
    if len(nav_axes) != 1 or _is_pixel_unit(nav_axes[0].get("units")):
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
