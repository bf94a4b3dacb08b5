"""Find scans in a recording's frame headers, and check the frame stream.

Two acquisition programs record where a frame belongs:

- EM-Konos writes ``rotidx``: the 1-based index of the scan point along the
  scan path, 0 before the scan, dropping back when it ends. Beam and camera
  are not synchronised, so an index may repeat or be skipped.
- EM-Scan writes the beam position ``Scan_x``, ``Scan_y`` (frame headers of
  76 bytes or more), in scan points, when it works.

Both become a *point index* per frame (C order, -1 outside a scan);
:func:`find_scans` cuts it into scans: runs of frames whose index does not
decrease. :func:`frame_diagnostics` checks the counter and the clock.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest coordinate taken as a beam position; anything larger is garbage.
MAX_POSITION = 2**20


def rotator_points(rotidx) -> np.ndarray:
    """Return the 0-based point index of every frame from ``rotidx`` (-1: none)."""
    return np.asarray(rotidx, dtype=np.int64) - 1


def find_scans(points: np.ndarray, start: int = 0) -> list[tuple[int, int]]:
    """Return the scans in a point-index sequence as ``(first, stop)`` frames.

    A scan is a run of frames with a point index >= 0 that never decreases;
    it ends where the index drops (a new scan or the return to 0). Runs that
    cover a single point are not scans.

    Parameters
    ----------
    points : numpy.ndarray of int
        Point index of every frame, -1 outside a scan.
    start : int, optional
        Frames before this one are ignored.

    Returns
    -------
    list of tuple of int
    """
    p = np.asarray(points, dtype=np.int64)[start:]
    valid = p >= 0
    if not valid.any():
        return []
    breaks = np.ones(p.size, dtype=bool)
    breaks[1:] = (p[1:] < p[:-1]) | ~valid[:-1]
    begins = np.flatnonzero(valid & breaks)
    scans = []
    ends = np.flatnonzero(~valid | breaks)
    for first in begins.tolist():
        later = ends[ends > first]
        stop = int(later[0]) if later.size else p.size
        if p[stop - 1] > p[first]:
            scans.append((start + first, start + stop))
    return scans


def position_points(scan_x, scan_y, start: int = 0, nx: int | None = None):
    """Turn beam positions into point indices and find the scans.

    A scan starts at a frame at position (0, 0) followed by one at (1, 0),
    anywhere in the recording. Its row length is ``nx`` if given, else one
    more than the largest x before y first reaches 1.

    Parameters
    ----------
    scan_x, scan_y : numpy.ndarray
        ``Scan_x`` and ``Scan_y`` of every frame.
    start : int, optional
        Frames before this one are ignored.
    nx : int, optional
        Row length, when the caller knows the scan shape.

    Returns
    -------
    points : numpy.ndarray of int64
        Point index of every frame (-1 outside the scans found).
    scans : list of tuple
        ``(first, stop, nx, ny)`` for every scan found.
    """
    x = np.asarray(scan_x, dtype=np.float64)
    y = np.asarray(scan_y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (y >= 0)
    ok &= (x < MAX_POSITION) & (y < MAX_POSITION) & (x == np.round(x))
    ok &= y == np.round(y)
    xi = np.where(ok, x, -1).astype(np.int64)
    yi = np.where(ok, y, -1).astype(np.int64)
    n = x.size
    points = np.full(n, -1, dtype=np.int64)
    scans = []
    candidates = np.flatnonzero(
        (xi[:-1] == 0) & (yi[:-1] == 0) & (xi[1:] == 1) & (yi[1:] == 0)
    )
    stop = start
    for first in candidates.tolist():
        if first < stop:
            continue  # inside the scan found before
        row_nx = nx
        if row_nx is None:
            second_row = np.flatnonzero(yi[first:] >= 1)
            end = first + int(second_row[0]) if second_row.size else n
            valid_x = xi[first:end][xi[first:end] >= 0]
            row_nx = int(valid_x.max()) + 1
        p = np.where(ok & (xi < row_nx), yi * row_nx + xi, -1)
        stop = first + 1
        while stop < n and p[stop] >= p[stop - 1] and p[stop] >= 0:
            stop += 1
        points[first:stop] = p[first:stop]
        ny = int(yi[first:stop].max()) + 1
        scans.append((first, stop, row_nx, ny))
    return points, scans


def square_shape(n_points: int, source: str) -> tuple[int, int]:
    """Return ``(n, n)`` for a square number of points, or raise ValueError."""
    side = math.isqrt(n_points)
    if side * side != n_points:
        msg = (
            f"{source} go up to {n_points} points, which is not a square: give "
            "the scan shape, scan_shape=(ny, nx)"
        )
        raise ValueError(msg)
    return (side, side)


def frame_diagnostics(headers: np.ndarray) -> dict:
    """Check the frame counter and the frame times, from the headers alone.

    Parameters
    ----------
    headers : numpy.ndarray
        Frame headers of every frame.

    Returns
    -------
    dict
        ``counter_gaps`` (places where the counter jumps by more than 1),
        ``counter_missing`` (frames those jumps skip), ``counter_resets``
        (places where it does not increase), ``time_reversals`` (frames
        earlier than the one before), ``frame_interval_ms`` (median),
        ``frame_rate`` (frames per second from it, 0 if unknown),
        ``duration_s`` (last frame time minus first).
    """
    num = headers["num"].astype(np.int64)
    dn = np.diff(num)
    t = headers["timestamp"].astype(np.int64) * 1000 + headers["ms"].astype(np.int64)
    dt = np.diff(t)
    interval = float(np.median(dt)) if dt.size else 0.0
    return {
        "counter_gaps": int((dn > 1).sum()),
        "counter_missing": int((dn[dn > 1] - 1).sum()),
        "counter_resets": int((dn <= 0).sum()),
        "time_reversals": int((dt < 0).sum()),
        "frame_interval_ms": interval,
        "frame_rate": 1000.0 / interval if interval > 0 else 0.0,
        "duration_s": float(t[-1] - t[0]) / 1000 if t.size else 0.0,
    }
