"""Turn a RosettaSciIO signal dictionary into TVIPS headers.

The reverse of :mod:`._metadata`: the main header and the frame headers are
built from the signal's axes and metadata, using the same metadata paths the
reader fills, so that read -> write -> read keeps every value. When the
signal carries what the reader found in the files (``original_metadata``
``tvips_header`` and ``frame_headers``), those are the starting point and
the bytes we do not decode are written back unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pint
from box import Box

from ._format import (
    FILLER_OFFSET,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    MODE_IMAGING,
    PIXEL_DTYPES,
    frame_header_dtype,
)
from ._metadata import NM_PER_MM
from ._times import unix_ms
from .exceptions import warn

#: Filler of the main headers this package writes from scratch.
FILLER = b"TVIPS "
#: Units that name a pixel, not a length (pint reads "px" as a CSS length).
PIXEL_UNITS = {"px", "pixel", "pixels", "pix", "<undefined>", ""}
#: Relative change of the pixel size by rounding above which the writer warns.
ROUNDING_TOLERANCE = 0.01
_UREG = pint.UnitRegistry()
TEM = "Acquisition_instrument.TEM"


def metadata_box(signal) -> Box:
    """Return the signal's metadata as a Box read with dotted paths."""
    return Box(signal.get("metadata") or {}, box_dots=True, default_box=False)


def _unit_kind(units) -> int | None:
    """Return MODE_IMAGING for a length, MODE_DIFFRACTION for 1/length."""
    if units is None or str(units).strip().lower() in PIXEL_UNITS:
        return None
    try:
        quantity = _UREG(str(units))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError):
        return None
    if not isinstance(quantity, pint.Quantity):
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
    means 2, the original first frame header's ``mode`` is kept, and lacking
    all of these the mode is 2, as RosettaSciIO writes.
    """
    kind = _unit_kind(sig_axes[-1].get("units"))
    if kind is not None:
        return kind
    signal_type = str(metadata_box(signal).get("Signal.signal_type", "") or "")
    if "diffraction" in signal_type.lower():
        return MODE_DIFFRACTION
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
    kind = _unit_kind(axis.get("units"))
    if kind is None:
        return int(previous)
    target = "nm" if mode == MODE_IMAGING else "1/nm"
    quantity = float(axis.get("scale", 1.0)) * _UREG(str(axis["units"]))
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


def _uint(value, default=0) -> int:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value) or value < 0:
        return default
    return min(round(value), 2**32 - 1)


def main_header(signal, sig_axes, dtype, version, fhb, mode, original) -> bytes:
    """Return the 256 bytes of the main header.

    Fields that the signal defines (size, dtype, version, frame-header size,
    pixel size, high tension, magnification or camera length) come from it;
    the read-out offsets, binning and filler come from the original header
    when the signal carries one, else 0, 1 and ``"TVIPS "``.
    """
    base = dict((original or {}).get("tvips_header") or {})
    header = np.zeros((), MAIN_HEADER_DTYPE)
    meta = metadata_box(signal)
    if base.get("dummy"):
        filler = bytes.fromhex(base["dummy"])
    else:
        filler = FILLER * (header["dummy"].size // len(FILLER) + 1)
    header["dummy"] = np.frombuffer(filler[: header["dummy"].size], np.uint8)
    key = "camera_length" if mode == MODE_DIFFRACTION else "magnification"
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
        "ht": _uint(meta.get(f"{TEM}.beam_energy", base.get("ht", 0))),
        "magtotal": _uint(meta.get(f"{TEM}.{key}", base.get("magtotal", 0))),
        "frameheaderbytes": fhb if version == 2 else _uint(
            base.get("frameheaderbytes", 0)),
    }  # fmt: skip
    for name, value in values.items():
        header[name] = value
    raw = header.tobytes()
    assert len(raw) == MAIN_HEADER_DTYPE.itemsize and FILLER_OFFSET < len(raw)
    return raw


def frame_headers(signal, n, fhb, mode, start_ms, step_ms, original) -> np.ndarray:
    """Return the ``n`` frame headers to write.

    The original frame headers are written as they are when the signal
    carries them for exactly these frames (``original_metadata.frame_headers``,
    as the reader puts them) and they fit the frame-header size; bytes of
    fields a smaller header cannot hold are dropped, and a larger header gets
    zeros. Otherwise the headers are made: counter 1, 2, ...; times from
    ``start_ms`` every ``step_ms``; ``mode``; stage, tilt and beam current
    from the metadata; ``rotidx`` 1, 2, ... as RosettaSciIO writes.
    """
    dtype = frame_header_dtype(fhb)
    out = np.zeros(n, dtype)
    carried = (original or {}).get("frame_headers")
    if carried and all(len(np.asarray(v)) == n for v in carried.values()):
        for name in dtype.names:
            if name in carried:
                value = np.asarray(carried[name])
                if value.shape[1:] == out[name].shape[1:]:
                    out[name] = value
        return out
    meta = metadata_box(signal)
    t = start_ms + np.round(np.arange(n) * step_ms).astype(np.int64)
    values = {
        "num": np.arange(1, n + 1),
        "timestamp": t // 1000,
        "ms": t % 1000,
        "mode": mode,
        "fcurrent": meta.get(f"{TEM}.beam_current", 0) or 0,
        "stagex": (meta.get(f"{TEM}.Stage.x", 0) or 0) * NM_PER_MM,
        "stagey": (meta.get(f"{TEM}.Stage.y", 0) or 0) * NM_PER_MM,
        "stagez": (meta.get(f"{TEM}.Stage.z", 0) or 0) * NM_PER_MM,
        "stagea": meta.get(f"{TEM}.Stage.tilt_alpha", 0) or 0,
        "stageb": meta.get(f"{TEM}.Stage.tilt_beta", 0) or 0,
        "rotidx": np.arange(1, n + 1),
    }
    for name, value in values.items():
        if name in dtype.names:
            out[name] = value
    return out


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


def frame_step_ms(nav_axes) -> float:
    """Return the time between frames in ms from a time navigation axis, or 0."""
    if len(nav_axes) != 1:
        return 0.0
    axis = nav_axes[0]
    units = axis.get("units")
    if units is None or str(units).strip().lower() in PIXEL_UNITS:
        return 0.0
    try:
        step = (float(axis.get("scale", 1.0)) * _UREG(str(units))).to("ms")
    except (pint.errors.PintError, AttributeError, TypeError, ValueError):
        return 0.0
    return max(float(step.magnitude), 0.0)
