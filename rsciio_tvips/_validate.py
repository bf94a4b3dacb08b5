"""Check a recording from end to end and list what is wrong, without raising.

:func:`validate` opens the recording as the reader does, with the same checks
(:mod:`._checks`: part chain, main header, sizes, part boundaries) collected
instead of raised or warned, then runs the checks that need every frame
header (frame counter, frame times, rotator index, beam positions). It reads
the decoded fields of the headers only (records of tiny frames are read
whole, which is faster), in blocks, so that its memory grows neither with
the recording nor with the header size it declares.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._checks import frame_stream, stream_findings, worst_first
from ._reading.recording import TvipsRecording
from .exceptions import Finding, TvipsFormatError


def validate(filename: str | os.PathLike, *, progress=None) -> list[Finding]:
    """Check a recording and return every problem found; never raise on them.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block of frame
        headers checked (``tvips validate`` shows a bar with it).

    Returns
    -------
    list of Finding
        Worst first (``fatal``, ``error``, ``warning``, ``info``), each with
        the file, the byte offset, the field, what was expected and what was
        found. Empty for a recording without any remark. A defect the reader
        raises or warns about is listed once, with the same file and offset
        as the reader's message.

    Never raises for what it finds: a missing file, a file it may not read
    (``PermissionError``), a disk error or any other ``OSError`` is a
    ``fatal`` finding naming the file, with the system's message.

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
    path = Path(os.fspath(filename))
    try:
        rec = TvipsRecording.inspect(path)
    except FileNotFoundError:
        # the reader's own check: no file, or not a regular file
        return [Finding("fatal", path.name, None, "file", "a file", "nothing")]
    except TvipsFormatError as e:
        return worst_first(e.findings)
    except OSError as e:
        return [system_finding(path, e)]
    try:
        stream = frame_stream(rec, progress=progress)
    except OSError as e:  # a part became unreadable while its headers are read
        return worst_first([*rec.findings, system_finding(path, e)])
    except TvipsFormatError as e:  # a part changed while its headers are read
        changed = e.findings or [changed_finding(path, e)]
        return worst_first([*rec.findings, *changed])
    return recording_findings(rec, stream)


def recording_findings(rec: TvipsRecording, stream) -> list[Finding]:
    """Return what :func:`validate` lists for an open recording, worst first.

    Parameters
    ----------
    rec : TvipsRecording
        The recording (its :attr:`~TvipsRecording.findings`: the checks of
        opening).
    stream : FrameStream
        Fed with every frame header (``tvips watch`` feeds it as the
        frames arrive).
    """
    return worst_first(rec.findings + stream_findings(rec, stream))


def changed_finding(path: Path, error: TvipsFormatError) -> Finding:
    """Return a part that changed during a pass as a fatal finding."""
    # the reader's messages start with the part's name
    name, _, what = str(error).partition(": ")
    return Finding("fatal", name or path.name, None, "part", "unchanged", what)


def system_finding(path: Path, error: OSError) -> Finding:
    """Return a failure of the system (permission, disk) as a fatal finding."""
    failed = Path(os.fspath(error.filename)).name if error.filename else path.name
    found = f"{type(error).__name__}: {error.strerror or error}"
    return Finding("fatal", failed, None, "file", "a readable file", found)


def status(findings: list[Finding]) -> int:
    """Return 2 if nothing can be read, 1 for any other problem, else 0.

    ``info`` findings are remarks, not problems.
    """
    severities = {f.severity for f in findings}
    if "fatal" in severities:
        return 2
    return 1 if severities & {"error", "warning"} else 0
