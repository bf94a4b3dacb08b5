"""The exception and the warning raised for problems with a recording's bytes.

Every problem found in a file's content is a :class:`TvipsFormatError` (a
``ValueError``) or, where the data that can be read is still correct, a
:class:`TvipsFormatWarning`. Messages name the file, the byte offset, what
was expected and what was found. Errors of the operating system (a file that
does not exist, a permission problem) stay ``OSError``.
"""


class TvipsFormatError(ValueError):
    """A recording's bytes do not follow the TVIPS format."""


class TvipsFormatWarning(UserWarning):
    """A recording has a defect that was worked around, with the data intact."""
