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


class TvipsFormatError(ValueError):
    """A recording's bytes do not follow the TVIPS format."""


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
