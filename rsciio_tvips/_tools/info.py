"""What a recording holds, in one dictionary: the ``tvips info`` command.

:func:`describe` reads the main header, the file sizes and every frame header
(no pixels, unless the hysteresis of a snake scan is to be estimated) and
summarises them: parts, frame layout, times, frame counter, rotator index,
beam positions, and the reader arguments that rebuild the scan.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import warnings

import numpy as np

from .._checks import frame_stream, stream_findings, worst_first
from .._format.layout import MODE_DIFFRACTION, MS_PER_S, float_field, frame_times_ms
from .._microed.geometry import round_angle, rounded_line
from .._microed.smv_format import format_number
from .._reading.recording import TvipsRecording
from .._scans.detect import RotatorScans, rotator_points
from ..exceptions import Finding, TvipsFormatWarning


def _utc(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / MS_PER_S, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _plain(value):
    """Return ``value`` with numpy scalars made Python numbers (for JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(
    filename: str | os.PathLike, estimate_hysteresis: bool = False, *, progress=None
) -> dict:
    """Summarise a recording.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    estimate_hysteresis : bool, optional
        For a snake scan found from the rotator index, also estimate the
        hysteresis; this reads every frame of the scan once.
    progress : callable, optional
        Called as ``progress(done, total)`` as the frame headers are read,
        a block at a time, in two passes: the checks' and the search for
        scans; ``total`` is twice the frames (``tvips info`` shows a bar
        with it).

    Returns
    -------
    dict
        ``recording``, ``parts``, ``main_header``, ``frames``,
        ``first_frame_header``, ``time``, ``counter``, ``rotator``,
        ``scan_positions``, ``tilt`` (the stage tilt ``stagea`` where it
        varies, as :meth:`_Summary.tilt` describes it; None where the frame headers
        hold none or it stays put), ``suggested`` (keyword arguments for
        ``file_reader``, or None with the reason in ``suggested_why``),
        ``suggested_explicit`` (the same scan as explicit arguments,
        ``scan_shape`` as a list and ``scan_start_frame``, plus
        ``winding_scan_axis`` and ``hysteresis`` when estimated, for
        RosettaSciIO or a script; None when there is no suggestion),
        ``problems`` (what :func:`rsciio_tvips.validate` finds, each a dict
        of a :class:`~rsciio_tvips.Finding`'s fields; the recording is
        opened as with ``permissive=True``) and ``scan_warnings`` (what the
        suggested scan would warn about). Only JSON types.

    Raises
    ------
    TvipsFormatError
        If the recording cannot be opened.
    """
    rec = TvipsRecording.inspect(filename)
    with warnings.catch_warnings(record=True) as caught:
        # what the suggested scan would warn about (a scan that runs past the
        # recording) goes into the summary, not to stderr
        warnings.simplefilter("always", TvipsFormatWarning)
        out = _describe(rec, estimate_hysteresis, progress)
    out["scan_warnings"] = []
    for w in caught:
        if issubclass(w.category, TvipsFormatWarning):
            out["scan_warnings"].append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _describe(rec, estimate_hysteresis: bool, progress=None) -> dict:
    h = rec.header
    record = h.record_size
    names = h.decoded_header_dtype.names
    counts = rec.chain.frames_per_part(record, rec.n_frames)
    parts = [
        {"name": part.name, "bytes": part.size, "frames": count}
        for part, count in zip(rec.chain.parts, counts, strict=True)
    ]
    # one pass over the headers, a block at a time: the checks' counts and
    # findings, and the summaries below, in the memory of one block
    summary = _Summary(rec.n_frames, names)
    # two passes for the bar: the checks', then the search for scans
    told = _passes(progress, rec.n_frames)
    stream = frame_stream(rec, progress=told(0), watch=summary.feed)
    checks = stream.summary()
    first, last = summary.ends[0], summary.ends[-1]
    out = {
        "recording": rec.chain.first.path,
        "parts": parts,
        "main_header": dict(h.fields),
        "frames": {
            "count": rec.n_frames,
            "shape": list(h.shape),
            "dtype": h.pixel_dtype.name,
            "frame_header_bytes": h.frame_header_bytes,
            "frame_header_fields": [n for n in names if n != "extra"],
            "record_bytes": record,
            "ignored_bytes": rec.ignored_bytes,
        },
        "first_frame_header": {n: first[n].item() for n in names if n != "extra"},
    }
    out["time"] = _times(summary.ends, checks)
    out["counter"] = {
        "first": int(first["num"]),
        "last": int(last["num"]),
        "gaps": checks["counter_gaps"],
        "missing": checks["counter_missing"],
        "resets": checks["counter_resets"],
    }
    out["rotator"] = summary.rotator()
    out["scan_positions"] = summary.positions()
    out["tilt"] = summary.tilt()
    suggestion = _suggest(rec, estimate_hysteresis, told(1))
    out["suggested"], out["suggested_explicit"], out["suggested_why"] = suggestion
    findings = worst_first(rec.findings + stream_findings(rec, stream))
    out["problems"] = [dataclasses.asdict(f) for f in findings]
    if progress is not None:  # a search that found nothing ends early
        progress(2 * rec.n_frames, 2 * rec.n_frames)
    return _plain(out)


def _passes(progress, n_frames: int):
    """Return ``told(k)``: the hook of pass ``k`` (0 or 1) of two over the frames.

    Each pass tells its own ``(done, total)``; the bar counts both.
    """

    def told(k: int):
        if progress is None:
            return None
        return lambda done, _total: progress(k * n_frames + done, 2 * n_frames)

    return told


def _times(ends, checks: dict) -> dict:
    t = frame_times_ms(ends)
    return {
        "first_utc": _utc(int(t[0])),
        "last_utc": _utc(int(t[-1])),
        "duration_s": checks["duration_s"],
        "frame_interval_ms": checks["frame_interval_ms"],
        "frame_rate": checks["frame_rate"],
        "time_reversals": checks["time_reversals"],
    }


class _Summary:
    """What ``tvips info`` says of the frame headers, fed a block at a time.

    Each summary keeps a few numbers (the rotator's scans a pair each), so
    that its memory does not grow with the recording.
    """

    def __init__(self, n_frames: int, names):
        self.n_frames = n_frames
        self.names = set(names)
        self.ends = None  # the decoded fields of the first and the last frame
        self.rot_range = [np.inf, -np.inf]
        self.rot_frames = 0  # frames with a rotator index
        self.scans = RotatorScans()
        self.pos_finite, self.pos_moved = True, False
        self.x_range, self.y_range = [np.inf, -np.inf], [np.inf, -np.inf]
        self.tilt_finite = True
        # the sums rounded_line takes, and whether the tilt ever goes down
        # (rising stays True) or up (falling stays True)
        self.tilt_sum = self.tilt_centred = 0.0
        self.rising = self.falling = True
        self.tilt_range = [np.inf, -np.inf]
        self.last_tilt = None

    def feed(self, start: int, fields: np.ndarray) -> None:
        """Take in the decoded fields of frames ``start ...``."""
        if fields.size == 0:
            return
        ends = fields[[0, -1]]
        if self.ends is not None:
            ends[0] = self.ends[0]
        self.ends = ends
        if "rotidx" in self.names:
            rot = fields["rotidx"].astype(np.int64)
            _widen(self.rot_range, rot)
            self.rot_frames += int((rot > 0).sum())
            self.scans.feed(start, rotator_points(rot))
        if {"Scan_x", "Scan_y"} <= self.names:
            x, y = float_field(fields, "Scan_x"), float_field(fields, "Scan_y")
            self.pos_finite &= bool(np.isfinite(x).all() and np.isfinite(y).all())
            self.pos_moved |= bool(x.any() or y.any())
            _widen(self.x_range, x)
            _widen(self.y_range, y)
        if "stagea" in self.names and self.tilt_finite:
            self._tilt(start, float_field(fields, "stagea"))

    def _tilt(self, start: int, alpha: np.ndarray) -> None:
        self.tilt_finite = bool(np.isfinite(alpha).all())
        if not self.tilt_finite:
            return
        index = np.arange(start, start + alpha.size, dtype=np.float64)
        self.tilt_sum += float(alpha.sum())
        self.tilt_centred += float((index - (self.n_frames - 1) / 2) @ alpha)
        before = [] if self.last_tilt is None else [self.last_tilt]
        moves = np.diff(np.concatenate([before, alpha]))
        self.rising &= bool((moves >= 0).all())
        self.falling &= bool((moves <= 0).all())
        _widen(self.tilt_range, alpha)
        self.last_tilt = float(alpha[-1])

    def rotator(self) -> dict | None:
        """Return the rotator index's range and the scans it shows."""
        if "rotidx" not in self.names:
            return None
        scans = self.scans.finish()
        return {
            "min": int(self.rot_range[0]),
            "max": int(self.rot_range[1]),
            "frames_with_index": self.rot_frames,
            "scans": [{"start_frame": a, "stop_frame": b} for a, b in scans],
        }

    def positions(self) -> dict | None:
        """Return whether the headers hold beam positions, and their ranges."""
        if not {"Scan_x", "Scan_y"} <= self.names:
            return None
        if not (self.pos_finite and self.pos_moved):
            return {"present": False}
        return {
            "present": True,
            "x_range": [float(v) for v in self.x_range],
            "y_range": [float(v) for v in self.y_range],
        }

    def tilt(self) -> dict | None:
        """Return the range of the stage tilt over the frames, or None.

        What a MicroED user checks first: ``first`` and ``last`` (degrees,
        the readings of the first and the last frame), ``min`` and ``max``,
        ``step_per_frame`` (the rotation per frame of the straight line
        that :func:`~rsciio_tvips.to_smv` fits, ``OSC_RANGE`` of one frame
        per image), ``direction`` (``"increasing"``, ``"decreasing"``, the
        sign of that step, or ``"none"`` when the line is flat: readings
        that go and come back) and ``monotonic`` (whether every reading
        goes that way or stays, which backlash at the start of a rotation
        breaks). Readings are rounded as ``to_smv`` rounds them
        (:func:`~rsciio_tvips._microed.geometry.round_angle`). None without
        ``stagea``, with a reading that is not finite, or with one tilt for
        every frame (no tilt series).
        """
        n, (low, high) = self.n_frames, self.tilt_range
        if "stagea" not in self.names or n < 2 or not self.tilt_finite or low == high:
            return None
        _, step = rounded_line(n, self.tilt_sum / n, self.tilt_centred)
        ends = float_field(self.ends, "stagea")
        return {
            "first": round_angle(ends[0]),
            "last": round_angle(ends[-1]),
            "min": round_angle(low),
            "max": round_angle(high),
            "step_per_frame": step,
            # a line through readings that go and come back may be flat
            "direction": _direction(step),
            "monotonic": {1: self.rising, -1: self.falling}.get(
                int(np.sign(step)), False
            ),
        }


def _direction(step: float) -> str:
    if step > 0:
        return "increasing"
    return "decreasing" if step < 0 else "none"


def _widen(bounds: list, values: np.ndarray) -> None:
    """Stretch ``[low, high]`` to take in ``values``."""
    bounds[0] = min(bounds[0], values.min())
    bounds[1] = max(bounds[1], values.max())


def _suggest(rec, estimate_hysteresis: bool, progress=None):
    from .._scans.plan import plan_scan

    try:
        _, scan, _ = plan_scan(rec, "auto", progress=progress)
    except ValueError as e:  # no scan information, or none that makes a scan
        return None, None, str(e)
    args = {"scan_shape": "auto"}
    if scan["scans_found"] > 1:
        args["scan_index"] = 0
    explicit = {"scan_shape": scan["shape"], "scan_start_frame": scan["start_frame"]}
    why = (
        f"the {scan['method']} information of the frame headers places frames "
        f"{scan['start_frame']} to {scan['stop_frame'] - 1} on a "
        f"{scan['shape'][0]} x {scan['shape'][1]} scan"
    )
    if scan["scans_found"] > 1:
        why += f"; {scan['scans_found']} scans found, scan_index chooses one"
    off = _sequential_mismatch(scan)
    if off:
        # the explicit arguments place frames one after another, as
        # RosettaSciIO does; the headers placed them by their index
        why += (
            f"; {off}: read with the explicit arguments, frames fall one after "
            "another and the scan comes out shifted from there on"
        )
    if scan["method"] == "rotator":
        # EM-Konos scans are snakes with a lag in every other row, but the
        # headers do not say so: only the pictures (tvips preview) can.
        why += (
            "; EM-Konos scans are usually snakes: if every other row looks "
            'mirrored, add winding_scan_axis="x", hysteresis="auto"'
        )
        if estimate_hysteresis:
            _, wound, _ = plan_scan(
                rec, "auto", winding_scan_axis="x", hysteresis="auto"
            )
            why += f" (estimated hysteresis for a snake along x: {wound['hysteresis']})"
            explicit.update(winding_scan_axis="x", hysteresis=wound["hysteresis"])
    return args, explicit, why


def _sequential_mismatch(scan: dict) -> str:
    """Say how a sequential read of the scan's frames would differ, or ""."""
    repeated = scan.get("repeated_frames", 0)
    # points missing at the end (an interrupted scan) shift nothing
    missing = scan.get("missing_points", 0) - scan.get("incomplete_points", 0)
    parts = []
    if repeated:
        parts.append(f"{repeated} frame(s) repeat a point")
    if missing:
        parts.append(f"{missing} point(s) have no frame")
    return " and ".join(parts)


def as_text(d: dict) -> str:
    """Return :func:`describe`'s summary as lines for a terminal."""
    f, mh = d["frames"], d["main_header"]
    lines = [f"recording {d['recording']}: {len(d['parts'])} part(s)"]
    lines += [f"  {p['name']:24s} {p['bytes']:>14,d} bytes {p['frames']:>9,d} frames"
              for p in d["parts"]]  # fmt: skip
    # magtotal is a camera length in diffraction mode (mode 2), as the
    # reader's metadata say
    diffraction = d["first_frame_header"].get("mode") == MODE_DIFFRACTION
    optics = "camera length" if diffraction else "magnification"
    lines.append(
        f"main header: version {mh['version']}, {mh['dimx']} x {mh['dimy']} pixels of "
        f"{mh['bitsperpixel']} bits, binning {mh['binx']} x {mh['biny']}, "
        f"{mh['ht']} kV, {optics} {mh['magtotal']}, pixel size {mh['pixelsize']}"
    )
    lines.append(
        f"frames: {f['count']:,d} of {f['shape'][0]} x {f['shape'][1]} {f['dtype']}, "
        f"{f['frame_header_bytes']}-byte frame headers ({len(f['frame_header_fields'])}"
        f" fields), {f['record_bytes']} bytes a record"
        + (
            f"; {f['ignored_bytes']} bytes ignored at the end"
            if f["ignored_bytes"]
            else ""
        )
    )
    t = d["time"]
    if t and not t["duration_s"]:
        # no interval to speak of: "0 ms (0 frames/s)" would read as a fact
        lines.append(
            f"time: {t['first_utc']} for every frame (the headers give no frame "
            f"interval), {t['time_reversals']} time reversal(s)"
        )
    elif t:
        lines.append(
            f"time: {t['first_utc']} to {t['last_utc']} ({t['duration_s']:g} s), "
            f"frame interval {t['frame_interval_ms']:g} ms ({t['frame_rate']:.4g} "
            f"frames/s), {t['time_reversals']} time reversal(s)"
        )
    c = d["counter"]
    if c:
        lines.append(
            f"frame counter: {c['first']} to {c['last']}, {c['gaps']} gap(s) "
            f"({c['missing']} frame(s) missing), {c['resets']} reset(s)"
        )
    r = d["rotator"]
    if r:
        scans = ", ".join(f"frames {s['start_frame']}-{s['stop_frame'] - 1}"
                          for s in r["scans"]) or "none"  # fmt: skip
        lines.append(
            f"rotator index: {r['min']} to {r['max']}, set in "
            f"{r['frames_with_index']:,d} frames; scans: {scans}"
        )
    p = d["scan_positions"]
    if p is not None:
        lines.append(
            "beam positions: "
            + (
                f"x {p['x_range'][0]:g} to {p['x_range'][1]:g}, y {p['y_range'][0]:g} "
                f"to {p['y_range'][1]:g}"
                if p["present"]
                else "absent"
            )
        )
    tilt = d.get("tilt")
    if tilt:
        deg = {k: format_number(v) for k, v in tilt.items() if k not in
               ("direction", "monotonic")}  # fmt: skip
        way = tilt["direction"]
        if way == "none":
            way = f"no direction overall: {deg['min']} to {deg['max']} and back"
        elif not tilt["monotonic"]:
            way += f" overall, not monotonic: {deg['min']} to {deg['max']}"
        lines.append(
            f"stage tilt: {deg['first']} to {deg['last']} degrees from frame 0 to "
            f"{f['count'] - 1}, {deg['step_per_frame']} degrees per frame ({way})"
        )
    if d["suggested"]:
        args = ", ".join(f"{k}={v!r}" for k, v in d["suggested"].items())
        lines.append(f"suggested reader arguments: {args}")
        explicit = d["suggested_explicit"]
        shape = tuple(explicit["scan_shape"])
        rest = [f"{k}={v!r}" for k, v in explicit.items() if k != "scan_shape"]
        lines.append(f"  explicitly: {', '.join([f'scan_shape={shape}', *rest])}")
        lines.append(f"  ({d['suggested_why']})")
    else:
        lines.append(f"no scan found in the frame headers: {d['suggested_why']}")
    # a remark (info) is no problem: it reads as validate prints it
    lines += [
        f"{'' if p['severity'] == 'info' else 'problem: '}{Finding(**p)}"
        for p in d["problems"]
    ]
    lines += [f"scan: {text}" for text in d["scan_warnings"]]
    return "\n".join(lines)
