"""Place frames on a scan: frame tables.

A *frame table* is an integer array of the scan's shape whose entries are
the frame each scan point shows, or -1 for a point no frame was recorded for
(it reads as a blank frame). Every way of placing frames builds one:

- :func:`sequential_table`: frames in order from a start frame (fly-back
  raster, ``scan_shape`` given as a tuple);
- :func:`point_table`: frames placed by a per-frame scan-point index (from
  EM-Konos' rotator index or EM-Scan's beam positions, see :mod:`.detect`);
- :func:`wind`: snake scans, every other row reversed, then the hysteresis
  shift of those rows.

Each returns, with the table, a dict of what it did (counts of skipped,
blank, repeated and dropped frames) for the metadata.
"""

from __future__ import annotations

import math

import numpy as np

from .._reading.grid import consecutive

#: How the frame for a point is chosen when several frames have its index.
REPEAT_RULES = ("first", "last")
#: What a point with no frame shows.
MISSING_RULES = ("blank", "previous")


def check_shape(scan_shape) -> tuple:
    """Return ``scan_shape`` as a tuple of ints, or raise ValueError."""
    try:
        shape = tuple(int(n) for n in scan_shape)
        ok = len(shape) > 0 and all(
            n > 0 and n == m for n, m in zip(shape, scan_shape, strict=True)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = f"scan_shape must be a tuple of positive integers, got {scan_shape!r}"
        raise ValueError(msg)
    return shape


def sequential_table(n_frames: int, shape: tuple, start: int = 0):
    """Place frames in C order from ``start``.

    Parameters
    ----------
    n_frames : int
        Frames in the recording.
    shape : tuple of int
        Scan shape.
    start : int
        Frame at the first scan point; a negative value puts that many blank
        points first.

    Returns
    -------
    table : FrameGrid
        The table as a rule (no number per point, whatever the size).
    info : dict
    """
    table = consecutive(n_frames, shape, start)
    first, stop = table.placed_range()
    end = start + table.size
    info = {
        "method": "sequential",
        "start_frame": int(start),
        "stop_frame": int(end),
        "frames_before_scan": first,
        "frames_after_scan": n_frames - stop,
        "padded_points": max(0, min(-start, table.size)),
        "missing_points": max(0, min(end - n_frames, table.size)),
    }
    return table, info


def point_table(
    points: np.ndarray,
    first: int,
    shape: tuple,
    repeat: str = "first",
    missing: str = "blank",
):
    """Place the frames of a scan, ``first`` onwards, by their scan-point index.

    Parameters
    ----------
    points : numpy.ndarray of int
        Scan-point index (C order, 0-based) of each frame of the scan,
        non-decreasing.
    first : int
        The frame of ``points[0]``.
    shape : tuple of int
        Scan shape; frames whose index is past its end are not placed.
    repeat : {"first", "last"}
        Which of several frames with the same index a point shows.
    missing : {"blank", "previous"}
        What a point with no frame shows: a blank frame, or the frame of the
        nearest earlier point that has one.

    Returns
    -------
    table : numpy.ndarray of int64
    info : dict
        ``repeated_frames`` (frames not shown because another frame has
        their index), ``missing_points`` (points no frame has), ``filled_points``
        (missing points showing a neighbour), ``frames_past_end``.
    """
    if repeat not in REPEAT_RULES:
        raise ValueError(f"repeat rule must be one of {REPEAT_RULES}, got {repeat!r}")
    if missing not in MISSING_RULES:
        msg = f"missing-point rule must be one of {MISSING_RULES}, got {missing!r}"
        raise ValueError(msg)
    n_points = math.prod(shape)
    seg = np.asarray(points, dtype=np.int64)
    inside = seg < n_points
    frames = np.arange(first, first + seg.size, dtype=np.int64)[inside]
    seg = seg[inside]
    flat = np.full(n_points, -1, dtype=np.int64)
    if repeat == "first":
        values, where = np.unique(seg, return_index=True)
    else:
        values, where = np.unique(seg[::-1], return_index=True)
        where = seg.size - 1 - where
    flat[values] = frames[where]
    n_missing = n_points - values.size
    filled = 0
    if missing == "previous" and n_missing:
        # each point shows the frame of the nearest earlier point that has
        # one; points after the last recorded one stay blank (not recorded
        # at all: an interrupted scan)
        known = np.where(flat >= 0, np.arange(n_points), -1)
        source = np.maximum.accumulate(known)
        fill = (
            (flat < 0) & (source >= 0) & (np.arange(n_points) < values.max(initial=0))
        )
        flat[fill] = flat[source[fill]]
        filled = int(fill.sum())
    info = {
        "repeated_frames": int(seg.size - values.size),
        "missing_points": int(n_missing),
        "filled_points": filled,
        "frames_past_end": int((~inside).sum()),
    }
    return flat.reshape(shape), info


def wind(table: np.ndarray, axis: str, hysteresis: int = 0, wrap: bool = False):
    """Undo a snake scan: reverse every other row, then shift those rows.

    Rows 0, 2, 4, ... (the rows the TVIPS recorder script and RosettaSciIO
    reverse) run backwards along x (``axis="x"``), or columns 0, 2, 4, ...
    along y (``axis="y"``). They are then shifted by ``hysteresis`` points
    towards higher x (or y). Points the shift vacates are blank and frames
    shifted past the edge are not shown, unless ``wrap`` is True, which rolls
    them round to the other edge as RosettaSciIO does.

    Parameters
    ----------
    table : numpy.ndarray of int
        Frame table with at least two axes.
    axis : {"x", "y"}
        Fast axis of the snake.
    hysteresis : int
        Shift of the reversed rows, in scan points.
    wrap : bool
        Roll frames round instead of dropping them.

    Returns
    -------
    table : numpy.ndarray of int64
    info : dict
        ``hysteresis_blank_points`` and ``hysteresis_dropped_frames``.
    """
    if axis not in ("x", "y"):
        raise ValueError(f'winding_scan_axis must be "x", "y" or None, got {axis!r}')
    if table.ndim < 2:
        msg = f"winding needs a scan of at least two axes, got shape {table.shape}"
        raise ValueError(msg)
    out = np.array(table, dtype=np.int64)
    if axis == "y":
        out = np.swapaxes(out, -1, -2)
    nx = out.shape[-1]
    if abs(hysteresis) >= nx:
        msg = f"hysteresis {hysteresis} must be smaller than the scan's {nx} points"
        raise ValueError(msg)
    rows = out[..., ::2, :][..., ::-1]
    blank = dropped = 0
    if wrap:
        shifted = np.roll(rows, hysteresis, axis=-1)
    else:
        shifted = np.full_like(rows, -1)
        h = hysteresis
        if h > 0:
            shifted[..., h:] = rows[..., :-h]
            lost = rows[..., -h:]
        elif h < 0:
            shifted[..., :h] = rows[..., -h:]
            lost = rows[..., :-h]
        else:
            shifted = rows
            lost = rows[..., :0]
        dropped = int((lost >= 0).sum())
        blank = int(rows[..., 0:1].size * abs(h))
    out[..., ::2, :] = shifted
    if axis == "y":
        out = np.swapaxes(out, -1, -2)
    info = {"hysteresis_blank_points": blank, "hysteresis_dropped_frames": dropped}
    return np.ascontiguousarray(out), info
