"""Check a recording from end to end and list what is wrong, without raising.

:func:`validate` opens the recording as the reader does, with the same checks
(:mod:`._checks`: part chain, main header, sizes, part boundaries) collected
instead of raised or warned, then runs the checks that need every frame
header (frame counter, frame times, rotator index, beam positions). It reads
headers only, never pixels, in blocks so that its memory does not grow with
the recording.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._checks import frame_stream, stream_findings, worst_first
from ._reading.recording import TvipsRecording
from .exceptions import Finding, TvipsFormatError


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
        found. Empty for a recording without any remark. A defect the reader
        raises or warns about is listed once, with the same file and offset
        as the reader's message.

    Raises
    ------
    OSError
        Only for a failure of the system while reading (a disk error); a
        missing file is a ``fatal`` finding.

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
    findings = rec.findings + stream_findings(rec, frame_stream(rec))
    return worst_first(findings)


def status(findings: list[Finding]) -> int:
    """Return 2 if nothing can be read, 1 for any other problem, else 0.

    ``info`` findings are remarks, not problems.
    """
    severities = {f.severity for f in findings}
    if "fatal" in severities:
        return 2
    return 1 if severities & {"error", "warning"} else 0
