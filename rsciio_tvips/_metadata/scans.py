"""Where each frame belongs, as the frame headers the writer makes say it.

Where each frame belongs is written so that the recording reads back as what
it was (:func:`scan_fields`): a stack, at most one navigation axis, with
nothing a reader could take for a scan; a scan with the rotator index and the
beam positions that give its shape to ``scan_shape="auto"``. The scan step
has no field at all (:func:`check_scan_step` says so). Reading scans back is
the :mod:`rsciio_tvips._scans` layer's.
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import warn
from .units import is_pixel_unit


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
    units = "" if is_pixel_unit(axis.get("units")) else str(axis["units"]).strip()
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
