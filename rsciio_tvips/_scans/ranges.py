"""Ranges of frames or pixels written as text: ``"START:STOP"``.

The command line and the keyword arguments of :func:`rsciio_tvips.to_smv`
take a range of frames as text, and ``tvips convert`` takes the rows and
columns of a crop the same way; :func:`parse_range` is the one reading of
that text, so that every caller accepts and refuses the same strings with
the same message.
"""

from __future__ import annotations

#: What separates START from STOP.
RANGE_SEPARATOR = ":"


def parse_range(text: str, what: str) -> slice:
    """Return the slice that ``"START:STOP"`` describes.

    Parameters
    ----------
    text : str
        Two integers around one colon; either may be left out (or be
        blank), as in a Python slice: ``"2:10"``, ``":10"``, ``"2:"``,
        ``":"``. Negative numbers count from the end.
    what : str
        What the range selects, for the message (``"frames"``, ``"crop
        rows"``).

    Returns
    -------
    slice
        ``slice(START, STOP)``, with None for a part left out; its
        ``indices(n)`` gives the bounds for ``n`` items.

    Raises
    ------
    ValueError
        If ``text`` does not hold exactly one colon, or a part is not an
        integer: ``"frames takes START:STOP (either may be left out), got
        'x'"``.

    Examples
    --------
    >>> parse_range("2:10", "frames")
    slice(2, 10, None)
    >>> parse_range(":-1", "frames")
    slice(None, -1, None)
    """
    parts = text.split(RANGE_SEPARATOR)
    try:
        if len(parts) != 2:
            # one path for every malformed text, so all get the same message
            raise ValueError
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        msg = f"{what} takes START:STOP (either may be left out), got {text!r}"
        raise ValueError(msg) from None
    return slice(start, stop)
