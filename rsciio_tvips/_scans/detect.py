"""Find scans in a recording's frame headers, and check the frame stream.

Two acquisition programs record where a frame belongs:

- EM-Konos writes ``rotidx``: the 1-based index of the scan point along the
  scan path, 0 before the scan, dropping back when it ends. Beam and camera
  are not synchronised, so an index may repeat or be skipped.
- EM-Scan writes the beam position ``Scan_x``, ``Scan_y`` (frame headers of
  76 bytes or more), in scan points, when it works.

Both become a *point index* per frame (C order, -1 outside a scan);
:func:`find_scans` cuts it into scans: runs of frames whose index does not
decrease. The counter and the clock are checked in :mod:`rsciio_tvips._checks`.
"""

from __future__ import annotations

import math

import numpy as np

from .._format.layout import MAX_POSITION

#: A step of the point index larger than this many times the usual step (and
#: than JUMP_MIN) is a corrupt header, not a scan moving on.
JUMP_FACTOR = 50
JUMP_MIN = 64


def rotator_points(rotidx) -> np.ndarray:
    """Return the 0-based point index of every frame from ``rotidx`` (-1: none)."""
    return np.asarray(rotidx, dtype=np.int64) - 1


def _runs(p: np.ndarray) -> list[tuple[int, int]]:
    """Return the runs of valid (>= 0), never decreasing values of ``p``."""
    valid = p >= 0
    breaks = np.ones(p.size, dtype=bool)
    breaks[1:] = (p[1:] < p[:-1]) | ~valid[:-1]
    begins = np.flatnonzero(valid & breaks)
    ends = np.append(np.flatnonzero(~valid | breaks), p.size)
    return [(int(a), int(ends[ends > a][0])) for a in begins]


def _cut_at_jump(p: np.ndarray, first: int, stop: int) -> int:
    """Return where a run ends if one index leaps far past the usual step.

    A corrupt header (``rotidx`` 4294967295, a beam position far outside the
    scan) would otherwise stretch the scan to absurd sizes.
    """
    steps = np.diff(p[first:stop])
    moves = steps[steps > 0]
    if moves.size == 0:
        return stop
    limit = max(JUMP_MIN, JUMP_FACTOR * float(np.median(moves)))
    leaps = np.flatnonzero(steps > limit)
    return first + int(leaps[0]) + 1 if leaps.size else stop


def _trim_waiting(p: np.ndarray, first: int, stop: int) -> tuple[int, int]:
    """Drop frames of the beam waiting at the first or the last point.

    More frames at the first (last) point than the median number per point
    are the beam parked before (after) the scan: the earliest (latest) of
    them are left out of the scan.
    """
    _, counts = np.unique(p[first:stop], return_counts=True)
    typical = max(1, int(np.ceil(np.median(counts))))
    lead = max(0, int(counts[0]) - typical)
    tail = max(0, int(counts[-1]) - typical) if counts.size > 1 else 0
    return first + lead, stop - tail


def find_scans(points: np.ndarray, start: int = 0) -> list[tuple[int, int]]:
    """Return the scans in a point-index sequence as ``(first, stop)`` frames.

    A scan is a run of frames with a point index >= 0 that never decreases;
    it ends where the index drops (a new scan or the return to 0) or leaps
    far past its usual step (a corrupt header). Frames of the beam waiting
    at the first or last point are left out (see :func:`_trim_waiting`).
    Runs that cover a single point are not scans.

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
    scans = []
    for first, stop in _runs(p):
        stop = _cut_at_jump(p, first, stop)
        first, stop = _trim_waiting(p, first, stop)
        if p[stop - 1] > p[first]:
            scans.append((start + first, start + stop))
    return scans


def position_points(scan_x, scan_y, start: int = 0, nx: int | None = None):
    """Turn beam positions into point indices and find the scans.

    A scan is a run of frames whose position (y, then x) never goes back,
    starting in the first row (y = 0), anywhere in the recording. Its row
    length is ``nx`` if given, else the most common row length (one more
    than a row's largest x; a frame dropped at the end of one row does not
    change it). Frames at x beyond the row or more than one row further down
    end the scan (a corrupt position).

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
    xi = np.where(ok, x, 0).astype(np.int64)
    yi = np.where(ok, y, 0).astype(np.int64)
    key = np.where(ok, yi * MAX_POSITION + xi, -1)
    points = np.full(x.size, -1, dtype=np.int64)
    scans = []
    for first, stop in _runs(key[start:]):
        first, stop = first + start, stop + start
        if yi[first] != 0:
            continue  # a scan starts in its first row
        rows = yi[first:stop]
        row_nx = nx
        if row_nx is None:
            ends = np.append(np.flatnonzero(np.diff(rows)), rows.size - 1)
            lengths, counts = np.unique(xi[first:stop][ends] + 1, return_counts=True)
            row_nx = int(lengths[counts == counts.max()].max())
        # a position past the row, or a leap of rows, ends the scan
        bad = (xi[first:stop] >= row_nx) | (np.diff(rows, prepend=0) > 2)
        if bad.any():
            stop = first + int(np.flatnonzero(bad)[0])
        p = yi[first:stop] * row_nx + xi[first:stop]
        if p.size == 0:
            continue
        lo, hi = _trim_waiting(p, 0, p.size)
        if p[hi - 1] <= p[lo]:
            continue
        points[first + lo : first + hi] = p[lo:hi]
        ny = int(yi[first + lo : first + hi].max()) + 1
        scans.append((first + lo, first + hi, row_nx, ny))
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
