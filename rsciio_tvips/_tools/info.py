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
from .._reading.recording import TvipsRecording
from .._scans.detect import find_scans, rotator_points
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


def describe(filename: str | os.PathLike, estimate_hysteresis: bool = False) -> dict:
    """Summarise a recording.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    estimate_hysteresis : bool, optional
        For a snake scan found from the rotator index, also estimate the
        hysteresis; this reads every frame of the scan once.

    Returns
    -------
    dict
        ``recording``, ``parts``, ``main_header``, ``frames``,
        ``first_frame_header``, ``time``, ``counter``, ``rotator``,
        ``scan_positions``, ``suggested`` (keyword arguments for
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
        out = _describe(rec, estimate_hysteresis)
    out["scan_warnings"] = []
    for w in caught:
        if issubclass(w.category, TvipsFormatWarning):
            out["scan_warnings"].append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _describe(rec, estimate_hysteresis: bool) -> dict:
    h = rec.header
    record = h.record_size
    headers = rec.header_fields
    names = headers.dtype.names
    counts = rec.chain.frames_per_part(record, rec.n_frames)
    parts = [
        {"name": part.name, "bytes": part.size, "frames": count}
        for part, count in zip(rec.chain.parts, counts, strict=True)
    ]
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
        "first_frame_header": {n: headers[n][0].item() for n in names if n != "extra"},
    }
    # one pass of the checks over the headers: the counts and the findings
    stream = frame_stream(rec, headers)
    checks = stream.summary()
    out["time"] = _times(headers, checks)
    out["counter"] = {
        "first": int(headers["num"][0]),
        "last": int(headers["num"][-1]),
        "gaps": checks["counter_gaps"],
        "missing": checks["counter_missing"],
        "resets": checks["counter_resets"],
    }
    out["rotator"] = _rotator(headers) if "rotidx" in names else None
    out["scan_positions"] = _positions(headers)
    suggestion = _suggest(rec, estimate_hysteresis)
    out["suggested"], out["suggested_explicit"], out["suggested_why"] = suggestion
    findings = worst_first(rec.findings + stream_findings(rec, stream))
    out["problems"] = [dataclasses.asdict(f) for f in findings]
    return _plain(out)


def _times(headers, checks: dict) -> dict:
    t = frame_times_ms(headers)
    return {
        "first_utc": _utc(int(t[0])),
        "last_utc": _utc(int(t[-1])),
        "duration_s": checks["duration_s"],
        "frame_interval_ms": checks["frame_interval_ms"],
        "frame_rate": checks["frame_rate"],
        "time_reversals": checks["time_reversals"],
    }


def _rotator(headers) -> dict:
    rot = headers["rotidx"].astype(np.int64)
    scans = find_scans(rotator_points(rot))
    return {
        "min": int(rot.min()),
        "max": int(rot.max()),
        "frames_with_index": int((rot > 0).sum()),
        "scans": [{"start_frame": a, "stop_frame": b} for a, b in scans],
    }


def _positions(headers):
    names = headers.dtype.names
    if not {"Scan_x", "Scan_y"} <= set(names):
        return None
    x, y = float_field(headers, "Scan_x"), float_field(headers, "Scan_y")
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or not (x.any() or y.any()):
        return {"present": False}
    return {
        "present": True,
        "x_range": [float(x.min()), float(x.max())],
        "y_range": [float(y.min()), float(y.max())],
    }


def _suggest(rec, estimate_hysteresis: bool):
    from .._scans.plan import plan_scan

    try:
        _, scan, _ = plan_scan(rec, "auto")
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
    lines += [f"problem: {Finding(**p)}" for p in d["problems"]]
    lines += [f"scan: {text}" for text in d["scan_warnings"]]
    return "\n".join(lines)
