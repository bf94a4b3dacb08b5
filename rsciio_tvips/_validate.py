"""Check a recording from end to end and list what is wrong, without raising.

:func:`validate` runs the checks the reader runs when it opens a recording
(part chain, main header, sizes, part boundaries) and those that need every
frame header (frame counter, frame times, rotator index, beam positions). It
reads headers only, never pixels, in blocks of :data:`BLOCK` frames so that
its memory does not grow with the recording.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ._format.header import decode_fields, header_problems
from ._format.layout import (
    FIRST_PART_NUMBER,
    FRAME_HEADER_FIELDS,
    MAIN_HEADER_SIZE,
    PART_RE,
    part_name,
)
from ._format.parts import siblings
from .exceptions import SEVERITIES, Finding, TvipsFormatError

#: Frame headers read at a time.
BLOCK = 2**18
#: Frame-header sizes seen in files of known origin (format.md).
KNOWN_FRAME_HEADER_SIZES = (60, 108, 180)
#: A frame interval this many times the median is reported as a pause.
PAUSE_FACTOR = 10
#: Earliest plausible frame time: 2000-01-01 UTC (unix seconds).
EARLIEST_TIME = 946_684_800


def validate(filename: str | os.PathLike) -> list[Finding]:
    """Check a recording and return every problem found; never raise on them.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.

    Returns
    -------
    list of Finding
        Worst first (``fatal``, ``error``, ``warning``, ``info``), each with
        the file, the byte offset, the field, what was expected and what was
        found. Empty for a recording without any remark.

    Raises
    ------
    OSError
        Only for a failure of the system while reading (a disk error); a
        missing or unreadable file is a ``fatal`` finding.

    See Also
    --------
    status : the exit status of ``python -m rsciio_tvips validate``.

    Examples
    --------
    >>> from rsciio_tvips import validate
    >>> for finding in validate("scan_000.tvips"):  # doctest: +SKIP
    ...     print(finding)
    warning: scan_001.tvips at offset 0: num: expected 5001, found 5004 ...
    """
    findings: list[Finding] = []
    _check(Path(os.fspath(filename)), findings)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])


def status(findings: list[Finding]) -> int:
    """Return 2 if nothing can be read, 1 for any other problem, else 0.

    ``info`` findings are remarks, not problems.
    """
    severities = {f.severity for f in findings}
    if "fatal" in severities:
        return 2
    return 1 if severities & {"error", "warning"} else 0


def _check(path: Path, findings: list) -> None:
    name = path.name
    if not path.is_file():
        findings.append(Finding("fatal", name, None, "file", "a file", "nothing"))
        return
    near = siblings(path.absolute())
    stem, found = near.stem, near.found
    ext = PART_RE.match(name)["ext"] if PART_RE.match(name) else "tvips"
    last = max(found)
    for number in range(FIRST_PART_NUMBER, last):
        if number not in found:
            severity = "fatal" if number == FIRST_PART_NUMBER else "error"
            findings.append(
                Finding(
                    severity,
                    part_name(stem, number, ext),
                    None,
                    "part chain",
                    f"part {number} of {stem!r} (parts up to {last} exist)",
                    "no such file",
                    "permissive=True reads the parts before it"
                    if severity == "error"
                    else "it holds the main header",
                )
            )
    for number, kept, dropped in near.duplicates:
        findings.append(
            Finding(
                "error",
                dropped.name,
                None,
                "part chain",
                f"one file for part {number}",
                f"{kept.name} and {dropped.name}",
                f"permissive=True reads {kept.name}",
            )
        )
    if near.others:
        shown = ", ".join(near.others[:5]) + (", ..." if len(near.others) > 5 else "")
        findings.append(
            Finding(
                "info",
                name,
                None,
                "folder",
                f"only parts of {stem!r}",
                f"{len(near.others)} other part files ({shown})",
                "other recordings, not read with this one",
            )
        )
    for number in sorted(found):
        size = found[number].stat().st_size
        if number != FIRST_PART_NUMBER and size == 0:
            findings.append(
                Finding(
                    "warning",
                    found[number].name,
                    0,
                    "part size",
                    "frame records",
                    "an empty file",
                )
            )
    if FIRST_PART_NUMBER not in found:
        return
    first = found[FIRST_PART_NUMBER]
    with open(first, "rb") as f:
        raw = f.read(MAIN_HEADER_SIZE)
    if len(raw) < MAIN_HEADER_SIZE:
        findings.append(
            Finding(
                "fatal",
                first.name,
                0,
                "main header",
                f"{MAIN_HEADER_SIZE} bytes",
                f"{len(raw)} bytes",
            )
        )
        return
    fields = decode_fields(raw)
    problems = header_problems(fields)
    for p in problems:
        findings.append(
            Finding(
                "fatal", first.name, p.offset, p.field, p.expected, str(p.found), p.what
            )
        )
    if problems:
        return
    fhb = fields["frameheaderbytes"]
    if fields["version"] == 2 and fhb not in KNOWN_FRAME_HEADER_SIZES:
        findings.append(
            Finding(
                "info",
                first.name,
                48,
                "frameheaderbytes",
                " or ".join(map(str, KNOWN_FRAME_HEADER_SIZES)) + " (sizes seen)",
                str(fhb),
                "the fields that fit are decoded, the rest kept raw",
            )
        )
    _check_frames(path, findings)


def _check_frames(path: Path, findings: list) -> None:
    from ._reading.recording import TvipsRecording

    with warnings.catch_warnings():
        # every warning of the open is also in rec.problems
        warnings.simplefilter("ignore")
        try:
            rec = TvipsRecording(path, permissive=True)
        except TvipsFormatError as e:
            name, _, rest = str(e).partition(": ")
            findings.append(Finding("fatal", name, None, "recording", "frames", rest))
            return
    findings.extend(rec.problems)
    names = set(rec.header.frame_header_dtype.names)
    record = rec.header.record_size
    state = _FrameChecks(rec, names)
    for start in range(0, rec.n_frames, BLOCK):
        stop = min(rec.n_frames, start + BLOCK)
        # one frame of overlap: the differences across blocks are checked too
        lo = max(0, start - 1)
        state.feed(lo, rec.read_headers(np.arange(lo, stop)))
    findings.extend(state.findings(lambda frame: rec.chain.locate(frame * record)))


class _FrameChecks:
    """Checks over every frame header, fed block by block."""

    def __init__(self, rec, names):
        self.rec = rec
        self.names = names
        self.counts = {}  # kind -> [count, first frame, expected, found]
        self.median = None  # frame interval, from the first block
        self.pause = None  # [count, first frame, interval]

    def note(self, kind, frames, expected, found):
        if frames.size == 0:
            return
        entry = self.counts.setdefault(
            kind, [0, int(frames[0]), str(expected[0]), str(found[0])]
        )
        entry[0] += int(frames.size)

    def feed(self, lo: int, h: np.ndarray) -> None:
        frames = np.arange(lo, lo + h.size)
        if "num" in self.names:
            num = h["num"].astype(np.int64)
            dn = np.diff(num)
            gap, back = np.flatnonzero(dn > 1), np.flatnonzero(dn <= 0)
            self.note("counter gap", frames[gap + 1], num[gap] + 1, num[gap + 1])
            self.note("counter reset", frames[back + 1], num[back] + 1, num[back + 1])
        if {"timestamp", "ms"} <= self.names:
            sec = h["timestamp"].astype(np.int64)
            ms = h["ms"].astype(np.int64)
            bad_ms = np.flatnonzero(ms > 999)
            self.note("ms", frames[bad_ms], ["0 to 999"], ms[bad_ms])
            early = np.flatnonzero(sec < EARLIEST_TIME)
            self.note("clock", frames[early], ["a time after 2000"], sec[early])
            t = sec * 1000 + ms
            dt = np.diff(t)
            rev = np.flatnonzero(dt < 0)
            self.note("time reversal", frames[rev + 1], t[rev], t[rev + 1])
            if self.median is None and (dt > 0).any():
                self.median = float(np.median(dt[dt > 0]))
            if self.median:
                long = np.flatnonzero(dt > PAUSE_FACTOR * self.median)
                if long.size and self.pause is None:
                    self.pause = [0, int(frames[long[0] + 1]), int(dt[long[0]])]
                if long.size:
                    self.pause[0] += int(long.size)
        if "rotidx" in self.names:
            rot = h["rotidx"].astype(np.int64)
            big = np.flatnonzero(rot > self.rec.n_frames * 4 + 16)
            self.note(
                "rotidx", frames[big], [f"at most ~{self.rec.n_frames}"], rot[big]
            )
        for field in ("Scan_x", "Scan_y"):
            if field in self.names:
                v = h[field].astype(np.float64)
                odd = np.flatnonzero(~np.isfinite(v) | (v < 0) | (v > 2**20))
                self.note(field, frames[odd], ["a finite position >= 0"], v[odd])

    def findings(self, locate) -> list:
        out = []
        offsets = {name: off for off, name, _alias, _t in FRAME_HEADER_FIELDS}
        labels = {
            "counter gap": (
                "num",
                "warning",
                "frame counter skips: frames dropped",
            ),
            "counter reset": ("num", "warning", "frame counter does not increase"),
            "ms": ("ms", "warning", "milliseconds out of range"),
            "clock": ("timestamp", "info", "the camera clock was not set?"),
            "time reversal": (
                "timestamp",
                "warning",
                "frame earlier than the one before",
            ),
            "rotidx": ("rotidx", "warning", "rotator index beyond any scan"),
            "Scan_x": ("Scan_x", "warning", "beam position not usable"),
            "Scan_y": ("Scan_y", "warning", "beam position not usable"),
        }
        for kind, (count, frame, expected, found) in self.counts.items():
            field, severity, what = labels[kind]
            part, offset = locate(frame)
            out.append(
                Finding(
                    severity,
                    part.name,
                    offset + offsets[field],
                    field,
                    expected,
                    found,
                    f"{what}; first at frame {frame}, {count} frame(s)",
                )
            )
        out.extend(self.pauses(locate))
        return out

    def pauses(self, locate) -> list:
        if self.pause is None:
            return []
        count, frame, interval = self.pause
        part, offset = locate(frame)
        return [
            Finding(
                "info",
                part.name,
                offset + 4,
                "timestamp",
                f"about {self.median:g} ms after the frame before (median interval)",
                f"{interval} ms",
                f"a pause in the acquisition; first at frame {frame}, {count} pause(s)",
            )
        ]
