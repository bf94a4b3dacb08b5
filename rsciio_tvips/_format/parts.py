"""Find the parts of a recording and treat them as one byte stream.

A recording is ``NAME_000.tvips``, ``NAME_001.tvips``, ...; only ``_000``
starts with the main header. :func:`siblings` finds the parts beside any part
and :func:`build_chain` returns them as a :class:`Chain`: the bytes after the
main header of every part, in order, seen as one logical stream. Frame records
are laid end to end in that stream, so a record that straddles two files needs
no special case, and the number of frames follows from the sizes of the files,
never from a count in a header.

:func:`first_part` is the file a name opens (``x.tvips`` opens
``x_000.tvips`` when no file ``x.tvips`` exists, by the rule the writer
names parts by) and :func:`first_parts` the recordings a folder holds.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layout import (
    FIRST_PART_NUMBER,
    MAIN_HEADER_SIZE,
    PART_RE,
    part_name,
    recording_stem,
)


@dataclass(frozen=True)
class Part:
    """One file of a recording.

    Attributes
    ----------
    path : str
        Absolute path of the file.
    file_offset : int
        Where the part's frame data start in the file (256 for the first
        part, 0 for the others).
    length : int
        Bytes of frame data in the part, as sized when the recording was opened.
    stream_start : int
        Offset of the part's first frame-data byte in the chain's stream.
    mtime_ns : int
        Modification time when the recording was opened; part of the dask
        token, so that a file rewritten with the same size gets new keys.
    """

    path: str
    file_offset: int
    length: int
    stream_start: int
    mtime_ns: int = 0

    @property
    def name(self) -> str:
        """The file name, for messages."""
        return os.path.basename(self.path)

    @property
    def size(self) -> int:
        """Size of the file in bytes, as sized when the recording was opened."""
        return self.file_offset + self.length


@dataclass(frozen=True)
class Chain:
    """The parts of a recording as one stream of frame-record bytes.

    Attributes
    ----------
    parts : tuple of Part
        The parts in order; the first holds the main header.
    """

    parts: tuple

    @property
    def first(self) -> Part:
        """The part that holds the main header."""
        return self.parts[0]

    @property
    def nbytes(self) -> int:
        """Total bytes of the stream (frame data of all parts)."""
        last = self.parts[-1]
        return last.stream_start + last.length

    def first_frames(self, record_size: int) -> list[int]:
        """Return, for every part, the first frame whose record starts in it.

        A record that straddles two files belongs to the part it starts in;
        a part in which no record starts gets the number of the next one
        that does (so ``first_frames[k + 1] - first_frames[k]`` is the number
        of records starting in part ``k``; the last part's end is
        ``nbytes // record_size``).
        """
        return [-(-p.stream_start // record_size) for p in self.parts]

    def frames_per_part(self, record_size: int, n_frames: int) -> list[int]:
        """Return how many of the first ``n_frames`` records start in each part."""
        bounds = [min(f, n_frames) for f in self.first_frames(record_size)]
        return [b - a for a, b in itertools.pairwise([*bounds, n_frames])]

    def locate(self, stream_offset: int) -> tuple[Part, int]:
        """Return the part and the file offset of a stream offset."""
        starts = [p.stream_start for p in self.parts]
        # The last part starting at or before the offset holds it; an empty
        # part shares its start with the next one and so is never chosen.
        index = int(np.searchsorted(starts, stream_offset, side="right")) - 1
        part = self.parts[index]
        return part, part.file_offset + stream_offset - part.stream_start


@dataclass
class Siblings:
    """What lies beside a part: the recording's parts and everything else.

    Attributes
    ----------
    stem : str
        The recording's name (``x`` of ``x_000.tvips``).
    found : dict of int to Path
        One file per part number; of two files that claim a number, the one
        with the extension spelled as in the file opened.
    duplicates : list of (int, Path, Path)
        Part numbers claimed by two files: the number, the file kept, the
        other one.
    others : list of str
        Names of the other ``*_NNN.tvips`` files of the folder (other
        recordings).
    """

    stem: str
    found: dict
    duplicates: list
    others: list


def first_part(path: Path) -> Path | None:
    """Return the file that opens the recording ``path`` names, if any.

    ``path`` itself when it is a file: any part, or a one-part recording
    renamed without the ``_NNN`` suffix. Otherwise, for a name without that
    suffix, the recording's ``_000`` part by the rule the writer names its
    parts by (:func:`~.layout.recording_stem`): ``x.tvips`` opens
    ``x_000.tvips``.

    Parameters
    ----------
    path : pathlib.Path
        The name a user gave, made absolute.

    Returns
    -------
    pathlib.Path or None
        The file to open; None when there is none.
    """
    if path.is_file():
        return path
    if PART_RE.match(path.name):
        return None  # a part that is not there: no other name to try
    stem, ext = recording_stem(path.name)
    first = path.parent / part_name(stem, FIRST_PART_NUMBER, ext)
    return first if first.is_file() else None


def opens_a_recording(name: str) -> bool:
    """Return whether a file of this name would be opened as a recording's start.

    A ``_000`` part, or a ``.tvips`` file without the ``_NNN`` suffix (a
    one-part recording); a later part is not the start of one.
    """
    match = PART_RE.match(name)
    if match:
        return int(match["part"]) == FIRST_PART_NUMBER
    return Path(name).suffix.lower() == ".tvips"


def first_parts(folder: Path) -> list[str]:
    """Return the names of the files in ``folder`` that start a recording.

    Parameters
    ----------
    folder : pathlib.Path
        An existing folder.

    Returns
    -------
    list of str
        The names, sorted (see :func:`opens_a_recording`).

    Raises
    ------
    OSError
        If the folder cannot be listed.
    """
    with os.scandir(folder) as entries:
        # the name first: in a folder of thousands of parts it rules out
        # most entries without a stat
        return sorted(
            e.name for e in entries if opens_a_recording(e.name) and e.is_file()
        )


def siblings(path: Path) -> Siblings:
    """Return the parts ``<stem>_NNN.tvips`` beside ``path`` and the rest."""
    match = PART_RE.match(path.name)
    if match is None:
        # A file renamed without the _NNN suffix is a one-part recording.
        return Siblings(path.stem, {FIRST_PART_NUMBER: path}, [], [])
    stem, ext = match["stem"], match["ext"]
    found: dict[int, Path] = {}
    duplicates, others = [], []
    with os.scandir(path.parent) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            other = PART_RE.match(entry.name)
            if other is None or not entry.is_file():
                continue
            if other["stem"] != stem:
                others.append(entry.name)
                continue
            number = int(other["part"])
            if number in found:
                kept, dropped = found[number], Path(entry.path)
                if other["ext"] == ext:
                    kept, dropped = dropped, kept
                found[number] = kept
                duplicates.append((number, kept, dropped))
            else:
                found[number] = Path(entry.path)
    return Siblings(stem, found, duplicates, others)


def build_chain(near: Siblings, last: int) -> Chain:
    """Return the parts ``_000`` to ``last`` as one stream, sized now.

    Parameters
    ----------
    near : Siblings
        The parts found beside the file opened; every number from
        ``_000`` to ``last`` must be among them (the part chain's checks,
        :func:`rsciio_tvips._checks.chain_defects`, say when one is not).
    last : int
        Number of the last part to use.

    Returns
    -------
    Chain
        The first part's frame data start after the main header; a first
        part shorter than that holds none (its header is checked apart).
    """
    parts = []
    start = 0
    for number in range(FIRST_PART_NUMBER, last + 1):
        stat = os.stat(near.found[number])
        offset = MAIN_HEADER_SIZE if number == FIRST_PART_NUMBER else 0
        length = max(0, stat.st_size - offset)
        parts.append(
            Part(str(near.found[number]), offset, length, start, stat.st_mtime_ns)
        )
        start += length
    return Chain(tuple(parts))
