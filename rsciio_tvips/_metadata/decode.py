"""Turn headers into RosettaSciIO's ``axes``, ``metadata`` and ``original_metadata``.

This is the only module that knows HyperSpy's metadata names. What goes
where, and why it differs from ``rsciio.tvips``:

- Signal axes ``dy``, ``dx`` (RosettaSciIO's names), scaled by the main
  header's ``pixelsize`` in nm (imaging) or 1/nm (diffraction, the unit
  RosettaSciIO's writer stores); uncalibrated when ``pixelsize`` is 0. Their
  offset is 0: ``offsetx``/``offsety`` are the read-out window's position on
  the chip, not a calibration, and stay in ``original_metadata``.
- A stack's navigation axis is ``time`` in s starting at 0, its scale the
  mean frame interval between the first and the last frame. A single frame,
  or frames that all carry the same time, give an uncalibrated ``frame`` axis
  instead of a scale of 0.
- Dates and times are UTC (the frame headers hold unix time).
- ``Acquisition_instrument.TEM`` is filled by walking the table of
  :mod:`.mapping` (stage positions, for one, converted from nm to mm).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone

import numpy as np

from .._format.layout import (
    EXTRA_FIELD,
    FILLER_OFFSET,
    MODE_DIFFRACTION,
    MODE_IMAGING,
    PART_RE,
    frame_times_ms,
)
from .mapping import MAIN, MAPPING

#: The unit of the signal axes for each ``mode``.
SIGNAL_UNITS = {MODE_IMAGING: "nm", MODE_DIFFRACTION: "1/nm"}
#: pyxem's signal type of electron diffraction patterns.
DIFFRACTION_SIGNAL_TYPE = "electron_diffraction"
#: Unix time 0: frame times are counted from it.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _field(frame_header, name, default=None):
    """Return a frame-header field as a Python number, if the header has it."""
    if name in frame_header.dtype.names:
        return frame_header[name].item()
    return default


def signal_axes(header, mode) -> list[dict]:
    """Return the two signal axes of a frame.

    Parameters
    ----------
    header : MainHeader
        The main header.
    mode : int or None
        The first frame's ``mode`` (None when the frame header lacks it).

    Returns
    -------
    list of dict
    """
    pixelsize = header.fields["pixelsize"]
    axes = []
    for name, size in zip(("dy", "dx"), header.shape, strict=True):
        axis = {"name": name, "size": size, "offset": 0.0, "navigate": False}
        if pixelsize:
            axis["scale"] = float(pixelsize)
            axis["units"] = SIGNAL_UNITS.get(mode, "nm")
        axes.append(axis)
    return axes


def time_axis(n_frames: int, first_header, last_header) -> dict:
    """Return the navigation axis of a stack of frames.

    Parameters
    ----------
    n_frames : int
        Frames in the stack.
    first_header, last_header : numpy.void
        Headers of the first and the last frame.

    Returns
    -------
    dict
    """
    span = int(frame_times_ms(last_header) - frame_times_ms(first_header))
    if n_frames > 1 and span > 0:
        scale = span / 1000 / (n_frames - 1)
        return {
            "name": "time",
            "size": n_frames,
            "scale": scale,
            "offset": 0.0,
            "units": "s",
            "navigate": True,
        }
    return {"name": "frame", "size": n_frames, "offset": 0.0, "navigate": True}


def scan_axes(nav_shape: tuple) -> list[dict]:
    """Return the navigation axes of a scan: the last two are ``y`` and ``x``.

    A line scan has one axis, ``x``; axes before ``y`` have no name. The scan
    step is not recorded in the files, so the axes are uncalibrated.
    """
    names = [None] * max(0, len(nav_shape) - 2) + ["y", "x"][-len(nav_shape) :]
    axes = []
    for name, size in zip(names, nav_shape, strict=True):
        axis = {"size": int(size), "offset": 0.0, "navigate": True}
        if name:
            axis["name"] = name
        axes.append(axis)
    return axes


def header_dict(frame_header) -> dict:
    """Return a frame header as a dict of Python numbers (raw bytes as hex)."""
    out = {}
    for name in frame_header.dtype.names:
        value = frame_header[name]
        out[name] = value.tobytes().hex() if name == EXTRA_FIELD else value.item()
    return out


def frame_header_fields(headers) -> dict:
    """Return a structured array of frame headers as one array per field.

    A dask array stays lazy: its fields are dask arrays that share the one
    read of the headers when they are computed together.
    """
    if not isinstance(headers, np.ndarray):
        return {name: headers[name] for name in headers.dtype.names}
    return {name: np.ascontiguousarray(headers[name]) for name in headers.dtype.names}


def utc_datetime(frame_header) -> datetime:
    """Return the UTC date and time of a frame."""
    return EPOCH + timedelta(milliseconds=int(frame_times_ms(frame_header)))


def metadata(path: str, header, first_header) -> dict:
    """Return HyperSpy's ``metadata`` for a recording.

    Parameters
    ----------
    path : str
        Path of the first part.
    header : MainHeader
        The main header.
    first_header : numpy.void
        The first frame's header.

    Returns
    -------
    dict
    """
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    when = utc_datetime(first_header)
    meta = {
        "General": {
            "title": match["stem"] if (match := PART_RE.match(name)) else stem,
            "original_filename": name,
            "date": when.date().isoformat(),
            "time": when.time().isoformat(),
            "time_zone": "UTC",
        },
        "Signal": {},
    }
    mode = _field(first_header, "mode")
    for row in MAPPING:
        if not row.applies(mode):
            continue
        if row.header == MAIN:
            # every main header has every field, and the recorder writes 0
            # for a value it does not have: 0 is "not recorded"
            stored = header.fields[row.field] or None
        else:
            # a short frame header lacks the field; a 0 in it is a reading
            stored = _field(first_header, row.field)
        if stored is not None:
            _set_path(meta, row.path, row.to_metadata(stored))
    if mode == MODE_DIFFRACTION and diffraction_type_known():
        meta["Signal"]["signal_type"] = DIFFRACTION_SIGNAL_TYPE
    return meta


def _set_path(tree: dict, path: str, value) -> None:
    """Set ``tree[a][b][c] = value`` for ``path`` ``"a.b.c"``, making the nodes."""
    *nodes, key = path.split(".")
    for node in nodes:
        tree = tree.setdefault(node, {})
    tree[key] = value


def diffraction_type_known() -> bool:
    """Return whether a diffraction signal type can be set without a warning.

    pyxem turns ``"electron_diffraction"`` into its diffraction class; plain
    HyperSpy does not know the type and warns about it on every load. So the
    type is set when HyperSpy is not in use (nothing warns) or when an
    installed extension (pyxem) provides it.
    """
    if "hyperspy" not in sys.modules:
        return True
    try:
        from hyperspy.extensions import ALL_EXTENSIONS
    except ImportError:
        return True
    for signal in ALL_EXTENSIONS.get("signals", {}).values():
        names = [signal.get("signal_type"), *signal.get("signal_type_aliases", [])]
        if DIFFRACTION_SIGNAL_TYPE in names:
            return True
    return False


def original_metadata(
    chain,
    header,
    first_header,
    n_frames,
    ignored,
    scan=None,
    checks=None,
    frame_headers=None,
) -> dict:
    """Return ``original_metadata``: the headers as read, the chain, the scan.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        The main header.
    first_header : numpy.void
        The first frame's header.
    n_frames : int
        Whole frames in the recording.
    ignored : int
        Bytes of an incomplete last record.
    scan : dict, optional
        How frames were placed on the scan (``Scan`` node).
    checks : dict, optional
        Frame counter and time checks (``Diagnostics`` node).
    frame_headers : dict, optional
        Every frame header, field by field (``frame_headers`` node).

    Returns
    -------
    dict
    """
    om = {
        # the filler as hex, so that a writer can reproduce the header exactly
        "tvips_header": {**header.fields, "dummy": header.raw[FILLER_OFFSET:].hex()},
        "frame_header": header_dict(first_header),
        "Recording": {
            "parts": [p.name for p in chain.parts],
            "part_sizes": [p.file_offset + p.length for p in chain.parts],
            "n_frames": int(n_frames),
            "frame_header_bytes": header.frame_header_bytes,
            "record_size": header.record_size,
            "ignored_bytes": int(ignored),
        },
    }
    if scan is not None:
        om["Scan"] = dict(scan)
    if checks is not None:
        om["Diagnostics"] = dict(checks)
    if frame_headers is not None:
        om["frame_headers"] = frame_headers
    return om
