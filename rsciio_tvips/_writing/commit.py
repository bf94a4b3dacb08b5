"""Put the new parts in place, and put back what an interrupted commit left.

:func:`commit` moves the new parts, written under hidden names
(:func:`~.names.hidden_name`), into place, rolling back if that fails, so
that an earlier recording of the same name is never left mixed with the new
one. Before a write, :func:`recover_stale` puts back an earlier recording
that a killed commit left hidden, and :func:`remove_leftovers` removes the
hidden files interrupted writes left, keeping what may be the only copy of
an earlier recording.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._format.layout import PART_RE
from .names import (
    STALE_TAG,
    TEMP_TAG,
    _hidden,
    existing_parts,
    hidden_name,
    named_error,
)


def recover_stale(directory: Path, stem: str) -> list[str]:
    """Put back an earlier recording that an interrupted commit left hidden.

    :func:`commit` moves every earlier part aside (``.NAME.stale-TOKEN``),
    ``_000`` first, before it places the new parts, ``_000`` last. A process
    killed in between leaves no visible ``_000``; if no visible part takes
    the name of a hidden one either, the hidden files are the earlier
    recording, whole, and are renamed back.

    Returns
    -------
    list of str
        The names of the parts put back (empty if none).
    """
    if not directory.is_dir():
        return []
    visible = set(existing_parts(directory, stem))
    stale = _hidden(directory, stem, STALE_TAG)
    originals = [original for _, original in stale]
    if (
        not stale
        or any(PART_RE.match(n)["part"] == "000" for n in visible)
        or len(set(originals)) != len(originals)  # two copies: not ours to choose
        or visible & set(originals)  # a new part in the way
    ):
        return []
    for entry, original in stale:
        os.replace(entry, directory / original)
    return originals


def remove_leftovers(directory: Path, stem: str) -> list[str]:
    """Remove temporary files an interrupted earlier write of ``stem`` left.

    Unfinished new parts (``.partial-``) always go. Earlier parts moved
    aside (``.stale-``) go only once a whole recording is in place (its
    ``_000`` is visible: :func:`commit` places it last); otherwise they may
    be the only copy of the earlier recording and are kept.

    Returns
    -------
    list of str
        The hidden files kept, for a warning.
    """
    for entry, _ in _hidden(directory, stem, TEMP_TAG):
        entry.unlink(missing_ok=True)
    stale = _hidden(directory, stem, STALE_TAG)
    first = [
        n for n in existing_parts(directory, stem) if PART_RE.match(n)["part"] == "000"
    ]
    if first:
        for entry, _ in stale:
            entry.unlink(missing_ok=True)
        return []
    return [entry.name for entry, _ in stale]


def commit(directory: Path, stem: str, parts, token: str) -> None:
    """Put the new parts in place of any earlier recording of the same name.

    Every earlier part is first moved aside (``_000`` first), then the new
    parts are renamed into place, ``_000`` last: a process killed in between
    leaves no ``_000``, so no reader takes the parts in place for a whole
    recording. If a rename fails, the new parts are removed and the earlier
    ones moved back, and the error names the part.
    """
    aside = []
    placed = []
    try:
        for name in existing_parts(directory, stem):
            moved = hidden_name(directory, name, STALE_TAG, token)
            os.replace(directory / name, moved)
            aside.append((directory / name, moved))
        for part in reversed(parts):
            try:
                os.replace(part.temp, part.final)
            except OSError as exc:
                raise named_error(exc, part.final.name, "cannot put in place") from exc
            placed.append(part.final)
    except BaseException:
        for final in placed:
            final.unlink(missing_ok=True)
        for original, moved in aside:
            os.replace(moved, original)
        for part in parts:
            part.temp.unlink(missing_ok=True)
        raise
    for _, moved in aside:
        moved.unlink(missing_ok=True)
