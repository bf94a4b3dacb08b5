"""The exception and the warning raised for problems with a recording's bytes.

Every problem found in a file's content is a :class:`TvipsFormatError` (a
``ValueError``) or, where the data that can be read is still correct, a
:class:`TvipsFormatWarning`. Messages name the file, the byte offset, what
was expected and what was found. Errors of the operating system (a file that
does not exist, a permission problem) stay ``OSError``.
"""

import os
import sys
import warnings
from dataclasses import dataclass


class TvipsFormatError(ValueError):
    """A recording's bytes do not follow the TVIPS format.

    Attributes
    ----------
    findings : list of Finding
        Raised on opening a recording: every defect found before the one
        raised, that one, and the others its check found with it (all the
        bad fields of a main header, say); empty when raised elsewhere.
    """

    def __init__(self, *args, findings=()):
        super().__init__(*args)
        self.findings = list(findings)


class TvipsFormatWarning(UserWarning):
    """A recording has a defect that was worked around, with the data intact."""


def warn(message: str, category=TvipsFormatWarning) -> None:
    """Issue a warning attributed to the first caller outside this package.

    Warnings are then shown at the line of the user's code that opened or
    wrote the recording, however deep in the package they were found.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


#: Severities of a :class:`Finding`, from worst to mildest.
SEVERITIES = ("fatal", "error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem found in a recording, where it is and what it is.

    Attributes
    ----------
    severity : str
        ``"fatal"``: no frame can be read; ``"error"``: the reader refuses
        the recording (unless ``permissive=True``) or would give wrong data;
        ``"warning"``: the data can be read, with a defect (dropped frames, a
        truncated end); ``"info"``: unusual, not a defect.
    file : str
        Name of the file concerned.
    offset : int or None
        Byte offset in that file, where there is one.
    field : str
        The header field or the property checked (``"num"``, ``"part
        chain"`` ...).
    expected : str
        What the format or the rest of the recording calls for; empty for a
        remark, which calls for nothing (other recordings in the folder).
    found : str
        What the file holds.
    detail : str
        Anything else: how often, what it means.
    """

    severity: str
    file: str
    offset: int | None
    field: str
    expected: str
    found: str
    detail: str = ""

    def __str__(self) -> str:
        """Return the finding as one line: severity, file, offset, field.

        A remark (nothing ``expected``) reads as a sentence: severity, file,
        what was found, then ``; detail``.
        """
        where = f" at offset {self.offset}" if self.offset is not None else ""
        if not self.expected:
            # "expected , found ..." would read as a mismatch where there is none
            text = f"{self.severity}: {self.file}{where}: {self.found}"
            return f"{text}; {self.detail}" if self.detail else text
        text = (
            f"{self.severity}: {self.file}{where}: {self.field}: expected "
            f"{self.expected}, found {self.found}"
        )
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class Defect:
    """A :class:`Finding` with the sentences the reader raises or warns.

    Every check of :mod:`rsciio_tvips._checks` returns these, so that the
    strict error, the permissive warning and the validator's finding of one
    defect come from one place.

    Attributes
    ----------
    finding : Finding
        What the validator lists.
    message : str
        The sentence raised (``fatal``, or ``error`` when strict) or warned
        (``warning``): it names the file, the offset, what was expected and
        what was found.
    workaround : str
        ``error`` only: what permissive reading does instead of raising,
        added to the warning after a semicolon.
    """

    finding: Finding
    message: str
    workaround: str = ""
