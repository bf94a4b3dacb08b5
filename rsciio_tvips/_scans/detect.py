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


class RunSplitter:
    """Cut values fed block by block into runs of valid (>= 0), never decreasing values.

    A run ends where a value is invalid or smaller than the one before. A run
    is kept run-length encoded: its distinct values and how many frames hold
    each, so that its memory grows with the points it covers, not with its
    frames (a stack whose beam positions never move is one run of one
    value). Runs of one frame are dropped: they cover one point, and no scan
    is made of them.
    """

    def __init__(self):
        self._first = None  # frame of the open run's first value
        self._pieces = []  # the open run's (values, counts), one per block
        self._last = -1  # the value before the next block
        self._end = None  # the frame after the last fed

    def feed(self, offset: int, values: np.ndarray) -> list[tuple]:
        """Feed the values of frames ``offset ...``; return the runs they close.

        Blocks come in frame order, each starting where the last one ended.
        Each run is ``(first frame, values, counts)``.
        """
        v = np.asarray(values, dtype=np.int64)
        if v.size == 0:
            return []
        if self._end is not None and offset != self._end:
            raise ValueError(f"block at frame {offset}, expected frame {self._end}")
        prev = np.empty_like(v)
        prev[0], prev[1:] = self._last, v[:-1]
        goes_on = (v >= 0) & (prev >= 0) & (v >= prev)
        ends = np.flatnonzero(~goes_on)
        starts = np.flatnonzero((v >= 0) & ~goes_on)
        closed = []
        if self._first is not None:
            stop = int(ends[0]) if ends.size else v.size
            self._pieces.append(_encoded(v[:stop]))
            if ends.size:
                closed.append(self._close())
        stops = np.append(ends, v.size)[np.searchsorted(ends, starts, side="right")]
        # runs of one frame closed within the block are dropped before the
        # loop, which stays short on a stream of scattered indices
        keep = (stops - starts >= 2) | (stops == v.size)
        for a, b in zip(starts[keep].tolist(), stops[keep].tolist(), strict=True):
            if b < v.size:
                closed.append((offset + a, *_encoded(v[a:b])))
            else:
                self._first, self._pieces = offset + a, [_encoded(v[a:])]
        self._last = int(v[-1])
        self._end = offset + v.size
        return [run for run in closed if run[2].sum() >= 2]

    def finish(self) -> list[tuple]:
        """Return the run still open at the end of the stream (if any)."""
        run = self._close() if self._first is not None else None
        return [run] if run is not None and run[2].sum() >= 2 else []

    def _close(self) -> tuple:
        values = np.concatenate([p[0] for p in self._pieces])
        counts = np.concatenate([p[1] for p in self._pieces])
        # a value may go on from one block into the next: one entry
        new = np.ones(values.size, dtype=bool)
        new[1:] = values[1:] != values[:-1]
        run = (self._first, values[new], np.add.reduceat(counts, np.flatnonzero(new)))
        self._first, self._pieces = None, []
        return run


def _encoded(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values of a run of frames and the frames of each."""
    if v.size == 0:
        return v, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.diff(v)) + 1
    edges = np.concatenate([[0], starts, [v.size]])
    return v[edges[:-1]], np.diff(edges)


def _cut_at_jump(values: np.ndarray) -> int:
    """Return how many of a run's distinct values come before a leap, if any.

    A step far past the usual one (``JUMP_FACTOR`` times the median step, and
    more than ``JUMP_MIN``) is a corrupt header (``rotidx`` 4294967295, a
    beam position far outside the scan) that would otherwise stretch the
    scan to absurd sizes: the run ends before it.
    """
    steps = np.diff(values)
    if steps.size == 0:
        return values.size
    limit = max(JUMP_MIN, JUMP_FACTOR * float(np.median(steps)))
    leaps = np.flatnonzero(steps > limit)
    return int(leaps[0]) + 1 if leaps.size else values.size


def _trim_waiting(counts: np.ndarray) -> tuple[int, int]:
    """Return the frames of the beam waiting at the first and the last point.

    More frames at the first (last) point than the median number per point
    are the beam parked before (after) the scan: the earliest (latest) of
    them are left out of the scan.
    """
    typical = max(1, int(np.ceil(np.median(counts))))
    lead = max(0, int(counts[0]) - typical)
    tail = max(0, int(counts[-1]) - typical) if counts.size > 1 else 0
    return lead, tail


class RotatorScans:
    """Find the scans in point indices fed block by block (see :func:`find_scans`).

    Feed :func:`rotator_points` of every block in frame order, then
    :meth:`finish` returns the scans as ``(first, stop)`` frames.
    """

    def __init__(self):
        self._runs = RunSplitter()
        self.scans = []

    def feed(self, offset: int, points: np.ndarray) -> None:
        """Feed the point indices of frames ``offset ...``."""
        for run in self._runs.feed(offset, points):
            self._add(*run)

    def finish(self) -> list[tuple[int, int]]:
        """Return every scan found."""
        for run in self._runs.finish():
            self._add(*run)
        return self.scans

    def _add(self, first: int, values: np.ndarray, counts: np.ndarray) -> None:
        k = _cut_at_jump(values)
        values, counts = values[:k], counts[:k]
        lead, tail = _trim_waiting(counts)
        if values[-1] > values[0]:
            self.scans.append((first + lead, first + int(counts.sum()) - tail))


def find_scans(points: np.ndarray, start: int = 0) -> list[tuple[int, int]]:
    """Return the scans in a point-index sequence as ``(first, stop)`` frames.

    A scan is a run of frames with a point index >= 0 that never decreases;
    it ends where the index drops (a new scan or the return to 0) or leaps
    far past its usual step (a corrupt header). Frames of the beam waiting
    at the first or last point are left out (see :func:`_trim_waiting`).
    Runs that cover a single point are not scans. :class:`RotatorScans`
    does the same over blocks.

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
    finder = RotatorScans()
    finder.feed(start, np.asarray(points, dtype=np.int64)[start:])
    return finder.finish()


def position_key(scan_x, scan_y) -> np.ndarray:
    """Return ``y * MAX_POSITION + x`` of usable beam positions, -1 elsewhere.

    The key orders positions along the scan (row, then column), so a scan is
    a run of keys that never decreases.
    """
    x = np.asarray(scan_x, dtype=np.float64)
    y = np.asarray(scan_y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (y >= 0)
    ok &= (x < MAX_POSITION) & (y < MAX_POSITION) & (x == np.round(x))
    ok &= y == np.round(y)
    xi = np.where(ok, x, 0).astype(np.int64)
    yi = np.where(ok, y, 0).astype(np.int64)
    return np.where(ok, yi * MAX_POSITION + xi, -1)


class PositionScans:
    """Find the scans in beam positions fed block by block.

    A scan is a run of frames whose position (y, then x) never goes back,
    starting in the first row (y = 0), anywhere in the recording. Its row
    length is ``nx`` if given, else the most common row length (one more
    than a row's largest x; a frame dropped at the end of one row does not
    change it). Frames at x beyond the row or more than one row further down
    end the scan (a corrupt position).

    Parameters
    ----------
    nx : int, optional
        Row length, when the caller knows the scan shape.
    """

    def __init__(self, nx: int | None = None):
        self.nx = nx
        self._runs = RunSplitter()
        self.scans = []

    def feed(self, offset: int, scan_x, scan_y) -> None:
        """Feed ``Scan_x`` and ``Scan_y`` of frames ``offset ...``."""
        for run in self._runs.feed(offset, position_key(scan_x, scan_y)):
            self._add(*run)

    def finish(self) -> list[tuple[int, int, int, int]]:
        """Return ``(first, stop, nx, ny)`` of every scan found."""
        for run in self._runs.finish():
            self._add(*run)
        return self.scans

    def _add(self, first: int, keys: np.ndarray, counts: np.ndarray) -> None:
        # one entry per distinct position: its row, its column, its frames
        rows, cols = np.divmod(keys, MAX_POSITION)
        if rows[0] != 0:
            return  # a scan starts in its first row
        row_nx = self.nx
        if row_nx is None:
            ends = np.append(np.flatnonzero(np.diff(rows)), rows.size - 1)
            lengths, n = np.unique(cols[ends] + 1, return_counts=True)
            row_nx = int(lengths[n == n.max()].max())
        # a position past the row, or a leap of rows, ends the scan
        bad = (cols >= row_nx) | (np.diff(rows, prepend=0) > 2)
        k = int(np.flatnonzero(bad)[0]) if bad.any() else rows.size
        if k == 0:
            return
        p = rows[:k] * row_nx + cols[:k]
        lead, tail = _trim_waiting(counts[:k])
        if p[-1] <= p[0]:
            return
        ny = int(rows[k - 1]) + 1
        stop = first + int(counts[:k].sum()) - tail
        self.scans.append((first + lead, stop, row_nx, ny))


def position_scan_points(scan_x, scan_y, nx: int) -> np.ndarray:
    """Return the point index (C order, rows of ``nx``) of a scan's frames."""
    rows, cols = np.divmod(position_key(scan_x, scan_y), MAX_POSITION)
    return rows * nx + cols


def position_points(scan_x, scan_y, start: int = 0, nx: int | None = None):
    """Turn beam positions into point indices and find the scans.

    See :class:`PositionScans`, which does the same over blocks.

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
    finder = PositionScans(nx)
    finder.feed(start, x[start:], y[start:])
    scans = finder.finish()
    points = np.full(x.size, -1, dtype=np.int64)
    for first, stop, row_nx, _ in scans:
        points[first:stop] = position_scan_points(x[first:stop], y[first:stop], row_nx)
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
