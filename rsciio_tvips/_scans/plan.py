"""Decide where every frame of a scan goes, from the reader's options.

:func:`plan_scan` turns ``scan_shape``, ``scan_start_frame``,
``winding_scan_axis``, ``hysteresis`` and the options that go beyond
RosettaSciIO's into a frame table (see :mod:`.tables`) and a record of what
was done, for the metadata and the log.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .._format.layout import float_field
from .._reading.grid import blank_points
from ..exceptions import TvipsFormatError, warn
from .detect import (
    PositionScans,
    RotatorScans,
    find_scans,
    position_points,
    position_scan_points,
    rotator_points,
    square_shape,
)
from .hysteresis import estimate_shift, frame_moments
from .tables import check_shape, point_table, sequential_table, wind

_logger = logging.getLogger(__name__)

#: ``scan_method`` values.
SCAN_METHODS = ("sequential", "rotator", "positions")
#: A scan may have at most this many times more points than frames (plus
#: MAX_BLANK_POINTS): beyond, the shape is taken for a mistake, not padded.
MAX_BLANK_FACTOR = 16
MAX_BLANK_POINTS = 65536
#: Largest shift ``hysteresis="auto"`` tries, in scan points.
MAX_AUTO_HYSTERESIS = 10


def plan_scan(
    rec,
    scan_shape,
    scan_start_frame: int = 0,
    winding_scan_axis=None,
    hysteresis=0,
    *,
    scan_method=None,
    scan_index: int = 0,
    hysteresis_wrap: bool = False,
    repeated_points: str = "first",
    missing_points: str = "blank",
    incomplete_scan: str = "pad",
    progress=None,
):
    """Return the frame table of a scan and a record of how it was made.

    Parameters are those of :func:`rsciio_tvips.file_reader`, and
    ``progress``, a callable told ``progress(done, total)`` as the search
    for scans in the frame headers goes (``tvips info``'s bar).

    Returns
    -------
    table : numpy.ndarray of int64
        Frame of every scan point, -1 for blank.
    info : dict
        What was done, for ``original_metadata.Scan``.
    placed_by_headers : bool
        Whether the frames were placed by their headers (which were read,
        block by block, to do so).
    """
    shape = None if _is_auto(scan_shape) else check_shape(scan_shape)
    if incomplete_scan not in ("pad", "error"):
        msg = f'incomplete_scan must be "pad" or "error", got {incomplete_scan!r}'
        raise ValueError(msg)
    start = _integer(scan_start_frame, "scan_start_frame")
    scan_index = _integer(scan_index, "scan_index")
    winding_scan_axis = winding_axis(winding_scan_axis)
    hysteresis = 0 if hysteresis is None else hysteresis
    method = scan_method or ("sequential" if shape else "auto")
    if method not in (*SCAN_METHODS, "auto"):
        msg = f"scan_method must be one of {SCAN_METHODS} or None, got {method!r}"
        raise ValueError(msg)
    if method == "sequential" and shape is None:
        raise ValueError('scan_method="sequential" needs scan_shape as a tuple')
    # RosettaSciIO ignores what cannot apply, and scripts rely on that (they
    # pass hysteresis always and toggle the winding); ignore it too, but say so
    ignored = []
    if hysteresis and winding_scan_axis is None:
        ignored.append(
            f"hysteresis={hysteresis!r} (it shifts the reversed rows of snake "
            "scans: give winding_scan_axis too)"
        )
        hysteresis = 0
    if shape is None and start >= rec.n_frames:
        ignored.append(
            f"scan_start_frame={start} (past the last frame, {rec.n_frames - 1}: "
            "the scan is searched for from frame 0)"
        )
        start = 0
    if start >= rec.n_frames:
        msg = (
            f"scan_start_frame {start} is past the last frame of the recording "
            f"({rec.n_frames - 1})"
        )
        raise ValueError(msg)
    placed_by_headers = False
    if method == "sequential":
        _check_size(math.prod(shape), rec.n_frames - max(start, 0), shape)
        _check_start(rec, start, shape)
        table, info = sequential_table(rec.n_frames, shape, start)
        info["incomplete_points"] = info["missing_points"]
    else:
        if start < 0:
            ignored.append(
                f"scan_start_frame={start} (blank points pad sequential scans "
                "only: frames placed by their headers' index are not shifted)"
            )
            start = 0
        placed_by_headers = True
        table, info = _place_by_headers(
            rec, method, shape, max(start, 0), scan_index, repeated_points,
            missing_points, progress,
        )  # fmt: skip
    _check_complete(rec, table, info, incomplete_scan)
    if winding_scan_axis is not None and info["method"] == "positions":
        ignored.append(
            f"winding_scan_axis={winding_scan_axis!r} (frames placed by their "
            "beam positions are already in place)"
        )
        winding_scan_axis = None
    info["winding_scan_axis"] = winding_scan_axis or ""
    info["hysteresis"] = 0
    info["hysteresis_wrap"] = bool(hysteresis_wrap)
    if winding_scan_axis is not None:
        if isinstance(hysteresis, str) and hysteresis == "auto":
            hysteresis = _auto_hysteresis(rec, table, winding_scan_axis)
            info["hysteresis_estimated"] = True
        elif isinstance(hysteresis, str) or int(hysteresis) != hysteresis:
            msg = f'hysteresis must be an integer or "auto", got {hysteresis!r}'
            raise ValueError(msg)
        table, wound = wind(table, winding_scan_axis, int(hysteresis), hysteresis_wrap)
        info.update(wound)
        info["hysteresis"] = int(hysteresis)
    info["shape"] = list(table.shape)
    info["blank_points"] = blank_points(table)
    ignore_options(rec, ignored)
    _logger.info("%s: scan placement %s", rec.chain.first.name, info)
    return table, info, placed_by_headers


def stack_options(rec, scan_start_frame, winding_scan_axis, hysteresis) -> None:
    """Warn about the scan options given for a stack (no ``scan_shape``).

    RosettaSciIO ignores them without a word; here they are ignored too, so
    that its scripts run, in one warning that names each.
    """
    given = (
        ("scan_start_frame", _integer(scan_start_frame, "scan_start_frame") or None),
        ("winding_scan_axis", winding_axis(winding_scan_axis)),
        ("hysteresis", hysteresis or None),
    )
    ignore_options(
        rec,
        [
            f"{name}={value!r} (it applies to scans: give scan_shape too)"
            for name, value in given
            if value is not None
        ],
    )


#: RosettaSciIO also takes the axis numbers 0 and 1 for "x" and "y".
WINDING_AXES = {0: "x", 1: "y"}


def winding_axis(value):
    """Return ``winding_scan_axis`` as "x", "y" or None (0 and 1 as RosettaSciIO)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return WINDING_AXES.get(value, value)


def ignore_options(rec, ignored: list[str]) -> None:
    """Say in one warning which options were ignored because they cannot apply."""
    if ignored:
        warn(
            f"{rec.chain.first.name}: ignored " + "; ".join(ignored),
            UserWarning,
        )


#: Frames on each side of ``scan_start_frame`` whose headers are looked at
#: to check that a sequential scan starts where the headers say it does, and
#: the most bytes of headers that check reads (for very large headers).
START_WINDOW = 64
START_WINDOW_BYTES = 2**22


def _check_start(rec, start: int, shape) -> None:
    """Warn when the headers place the first scan point at another frame.

    A sequential scan trusts ``scan_start_frame``; when the rotator index or
    the beam positions near that frame show a scan starting elsewhere, the
    data come out shifted without a word. Headers that agree are left
    alone: beam positions whose scan (the beam parked before it left out)
    starts there, ``rotidx`` 1 (EM-Konos's first point), or a ``rotidx``
    that counts up by one from that frame (RosettaSciIO's writer numbers
    frames so, from 0 or 1), beam positions that run in C order from that
    frame along rows of ``shape[-1]`` (this package's writer writes them
    so). A negative start pads on purpose and is not checked. Only the
    headers of a window around ``start`` are read (:data:`START_WINDOW`
    frames each side, at most :data:`START_WINDOW_BYTES`), so that opening
    stays quick whatever the recording's length.
    """
    if start < 0:
        return
    first = start
    size = rec.header.frame_header_bytes
    window = max(2, min(START_WINDOW, START_WINDOW_BYTES // max(size, 1) // 2))
    lo = max(0, first - window)
    frames = np.arange(lo, min(rec.n_frames, first + window))
    headers = rec.read_header_fields(frames)
    names, at = headers.dtype.names, first - lo
    found = None
    if "Scan_y" in names:
        nx = shape[-1] if len(shape) > 1 else None
        x, y = float_field(headers, "Scan_x"), float_field(headers, "Scan_y")
        if _in_c_order(x[at:], y[at:], shape):
            return
        points, scans = position_points(x, y, 0, nx)
        found = _scan_near(points, [s[:2] for s in scans], at, "beam positions")
    if found is None and "rotidx" in names:
        index = headers["rotidx"].astype(np.int64)
        ahead = index[at : at + math.prod(shape)]
        if index[at] == 1 or np.array_equal(ahead, index[at] + np.arange(ahead.size)):
            return
        points = rotator_points(index)
        found = _scan_near(points, find_scans(points), at, "rotator indices")
    if found is None or found[0] + lo == start:
        return
    begin, source = found[0] + lo, found[1]
    warn(
        f"{rec.chain.first.name}: the {source} place the first scan point at "
        f"frame {begin}, not at scan_start_frame={start}: pass "
        f'scan_start_frame={begin} (or scan_shape="auto") to read the scan the '
        "headers describe",
        UserWarning,
    )


def _in_c_order(x, y, shape) -> bool:
    """Return whether beam positions run in C order along rows of ``shape[-1]``.

    From the first frame given: x counts 0, 1, ... along a row, y goes up
    by one a row (from whatever row the first frame is in).
    """
    k = np.arange(min(x.size, math.prod(shape)))
    if k.size < 2:
        return False
    nx = shape[-1]
    return bool(np.all(x[k] == k % nx) and np.all(y[k] - y[0] == k // nx))


def _scan_near(points, scans, at: int, source: str):
    """Return ``(frame of point 0, source)`` of the scan nearest frame ``at``.

    Only a scan that shows its first point (index 0) counts; None when the
    window shows none (no scan information, or a scan begun before it).
    """
    starts = [a for a, b in scans if points[a] == 0]
    if not starts:
        return None
    return min(starts, key=lambda a: abs(a - at)), source


def _is_auto(scan_shape) -> bool:
    return isinstance(scan_shape, str) and scan_shape == "auto"


def _integer(value, name: str) -> int:
    """Return ``value`` as an int, or raise ValueError naming the option."""
    try:
        number = int(value)
        ok = number == value
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return number


def _check_size(n_points: int, frames: int, shape) -> None:
    """Refuse scans so much larger than the recording that they are mistakes."""
    limit = MAX_BLANK_FACTOR * max(frames, 1) + MAX_BLANK_POINTS
    if n_points > limit:
        msg = (
            f"a scan of shape {tuple(shape)} has {n_points} points, far more than "
            f"the {frames} frames it can be made of: check scan_shape"
        )
        raise ValueError(msg)


def _pick(scans, scan_index, source, shape):
    if not scans:
        hint = "" if shape else ": give scan_shape as a tuple"
        raise ValueError(f"no scan found in the {source}{hint}")
    if not -len(scans) <= scan_index < len(scans):
        msg = (
            f"scan_index {scan_index} is out of range: the {source} hold "
            f"{len(scans)} scan(s)"
        )
        raise ValueError(msg)
    return scans[scan_index]


def _place_by_headers(
    rec, method, shape, start, scan_index, repeated, missing, progress=None
):
    """Place frames by their headers' point index, in two bounded passes.

    The first pass finds the scans block by block and keeps only where each
    lies; the second reads the point indices of the scan chosen. Memory is
    that of a block and of the scan, whatever the length of the recording.
    """
    names = rec.header.decoded_header_dtype.names
    if method in ("auto", "positions") and "Scan_y" in names:
        finder = PositionScans(shape[-1] if shape else None)
        for offset, fields in _told(rec.header_field_blocks(start), rec, progress):
            finder.feed(offset, *_positions(fields))
        scans = finder.finish()
        if scans or method == "positions":
            first, stop, nx, ny = _pick(scans, scan_index, "beam positions", shape)
            if shape is None:
                shape = (ny, nx)
            elif len(shape) > 2:
                msg = f"beam positions place frames on 2 axes, not {len(shape)}"
                raise ValueError(msg)
            points = np.concatenate([
                position_scan_points(*_positions(fields), nx)
                for _, fields in rec.header_field_blocks(first, stop)
            ])  # fmt: skip
            return _finish(rec, points, scans, scan_index, first, stop, shape,
                           "positions", repeated, missing)  # fmt: skip
    if method == "positions":
        msg = (
            f"{rec.chain.first.name}: scan_method='positions' needs frame headers "
            f"of at least 76 bytes with Scan_x/Scan_y, found "
            f"{rec.header.frame_header_bytes}-byte headers"
        )
        raise ValueError(msg)
    if "rotidx" not in names:
        msg = (
            f"{rec.chain.first.name}: its {rec.header.frame_header_bytes}-byte "
            "frame headers have no rotator index or beam positions to find the "
            "scan from: give scan_shape as a tuple"
        )
        raise ValueError(msg)
    finder = RotatorScans()
    for offset, fields in _told(rec.header_field_blocks(start), rec, progress):
        finder.feed(offset, rotator_points(fields["rotidx"]))
    scans = finder.finish()
    first, stop = _pick(scans, scan_index, "rotator indices", shape)
    points = np.concatenate([
        rotator_points(fields["rotidx"])
        for _, fields in rec.header_field_blocks(first, stop)
    ])  # fmt: skip
    if shape is None:
        shape = square_shape(int(points.max()) + 1, "the rotator indices")
    return _finish(rec, points, scans, scan_index, first, stop, shape, "rotator",
                   repeated, missing)  # fmt: skip


def _told(blocks, rec, progress):
    """Yield the blocks, telling ``progress(done, total)`` after each."""
    for offset, fields in blocks:
        yield offset, fields
        if progress is not None:
            progress(offset + fields.size, rec.n_frames)


def _positions(fields):
    return float_field(fields, "Scan_x"), float_field(fields, "Scan_y")


def _finish(rec, points, scans, scan_index, first, stop, shape, method, rep, miss):
    """Place the frames of the scan chosen; ``points`` are its frames' indices."""
    _check_size(math.prod(shape), stop - first, shape)
    table, placed = point_table(points, first, shape, rep, miss)
    last = int(points[points < table.size].max(initial=-1))
    # points after the last recorded one mean an interrupted acquisition only
    # if the scan runs to the end of the recording; else they were skipped
    unrecorded = table.size - 1 - last if stop == rec.n_frames else 0
    info = {
        "method": method,
        "scans_found": len(scans),
        "scan_index": int(scan_index) % len(scans),
        "start_frame": int(first),
        "stop_frame": int(stop),
        "frames_before_scan": int(first),
        "frames_after_scan": int(rec.n_frames - stop),
        "repeated_points_rule": rep,
        "missing_points_rule": miss,
        **placed,
        "incomplete_points": int(unrecorded),
    }
    return table, info


def _check_complete(rec, table, info, incomplete_scan):
    missing = info["incomplete_points"]
    if not missing:
        return
    msg = (
        f"{rec.chain.first.name}: the scan of shape {table.shape} ends before "
        f"its last {missing} point(s): the recording has {rec.n_frames} frames"
    )
    if incomplete_scan == "error":
        raise TvipsFormatError(msg)
    warn(msg + "; they are blank")


def _auto_hysteresis(rec, table, axis) -> int:
    unshifted, _ = wind(table, axis, 0)
    maps = frame_moments(rec.records, unshifted)
    if axis == "y":
        maps = [np.swapaxes(m, -1, -2) for m in maps]
    limit = min(MAX_AUTO_HYSTERESIS, maps[0].shape[-1] - 1)
    return estimate_shift(maps, limit)
