"""The names of a recording's parts, and of the hidden files a write leaves.

- :func:`recording_names` and :func:`existing_parts`: the files a
  recording's name stands for, and those of them on disk;
- :func:`name_limit` and :func:`check_part_name`: a part's name no longer
  than its folder allows;
- :func:`hidden_name` and :func:`new_parts`: the hidden names parts are
  written under (:data:`TEMP_TAG`) or moved aside to (:data:`STALE_TAG`),
  which the next write of the same name recognises (:func:`_hidden`) when
  a killed write left them behind;
- :func:`not_part_files`: the names of parts that something other than a
  part file has taken, which the writer refuses before anything is
  written;
- :func:`named_error`: an OS error that names the part.
"""

from __future__ import annotations

import errno as errno_codes
import hashlib
import os
import re
from pathlib import Path
from typing import NamedTuple

from .._format.layout import PART_RE, part_name, recording_stem
from .._format.parts import kind_of

#: Longest file name in bytes where the folder does not say (``NAME_MAX``
#: of Linux, macOS and Windows).
NAME_MAX = 255
TEMP_TAG = ".partial-"
STALE_TAG = ".stale-"
#: A hidden name: ``.`` the part's name, the tag, the writer's token.
HIDDEN_RE = re.compile(
    rf"^\.(?P<original>.+)(?P<tag>{re.escape(TEMP_TAG)}|{re.escape(STALE_TAG)})"
    r"(?P<token>[0-9a-f]{8})$",
    re.DOTALL,
)
#: A shortened hidden name, for a part whose name is too long to take the
#: tag and token: a digest of the recording's name stands for it. It ends
#: with ``~`` where a hidden name ends with its token, so that neither is
#: ever taken for the other, whatever the recording's name.
SHORT_RE = re.compile(
    rf"^\.(?P<digest>[0-9a-f]{{16}})_(?P<part>\d{{3}})\.(?P<ext>tvips)"
    rf"(?P<tag>{re.escape(TEMP_TAG)}|{re.escape(STALE_TAG)})(?P<token>[0-9a-f]{{8}})~$",
    re.IGNORECASE,
)


class Part(NamedTuple):
    """A part to write: its final name, and the hidden name it is written under."""

    final: Path
    temp: Path


def new_parts(
    directory: Path, stem: str, ext: str, count: int, token: str
) -> list[Part]:
    """Return the :class:`Part` of each of ``count`` parts of the recording ``stem``."""
    names = [part_name(stem, k, ext) for k in range(count)]
    return [
        Part(directory / name, hidden_name(directory, name, TEMP_TAG, token))
        for name in names
    ]


def name_limit(directory: Path) -> int:
    """Return the longest file name, in bytes, that ``directory`` allows."""
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf, no such folder
        return NAME_MAX
    return limit if limit > 0 else NAME_MAX  # -1: the system does not say


def check_part_name(directory: Path, name: str) -> None:
    """Refuse a part name longer than ``directory`` allows.

    Raises
    ------
    OSError
        ``ENAMETOOLONG``, naming the part and the limit.
    """
    size, limit = len(os.fsencode(name)), name_limit(directory)
    if size > limit:
        msg = (
            f"{name}: the part's name is {size} bytes long, and its folder allows "
            f"names of at most {limit} bytes (PC_NAME_MAX): choose a shorter name"
        )
        raise OSError(errno_codes.ENAMETOOLONG, msg)


def hidden_name(directory: Path, final: str, tag: str, token: str) -> Path:
    """Return the hidden name of the part ``final``, being written or moved aside.

    ``.FINAL<tag>TOKEN`` (``tag`` is :data:`TEMP_TAG` or :data:`STALE_TAG`).
    A part name longer than the folder's limit less those 18 bytes (16 for
    :data:`STALE_TAG`) gets the shortened name ``.DIGEST_NNN.ext<tag>TOKEN~``
    instead (:data:`SHORT_RE`), which the next write of the recording
    recognises just as well.
    """
    name = f".{final}{tag}{token}"
    if len(os.fsencode(name)) <= name_limit(directory):
        return directory / name
    part = PART_RE.match(final)
    short = f".{_digest(part['stem'])}_{part['part']}.{part['ext']}{tag}{token}~"
    return directory / short


def _digest(stem: str) -> str:
    """Return the 16 hex digits that stand for ``stem`` in shortened hidden names."""
    return hashlib.sha256(os.fsencode(stem)).hexdigest()[:16]


def named_error(exc: OSError, name: str, what: str) -> OSError:
    """Return ``exc`` again with the part's name and what failed in its message."""
    reason = exc.strerror or errno_codes.errorcode.get(exc.errno or 0, str(exc))
    return type(exc)(exc.errno, f"{name}: {what} the part: {reason}")


def recording_names(filename: str | os.PathLike) -> tuple[Path, str, str]:
    """Return the folder, the stem and the extension of a recording's parts.

    The parts of the recording ``filename`` names are
    ``FOLDER / part_name(STEM, k, EXT)``. The writer, and every tool that
    must know which files a write will replace, ask here, so that they
    agree on which files a name means; the rule itself is
    :func:`rsciio_tvips._format.layout.recording_stem`, which the reader
    follows too.

    Parameters
    ----------
    filename : str or os.PathLike
        A recording's name as a user gives it: ``x.tvips`` or ``x`` (the
        recording ``x``), or one of its parts, ``x_003.tvips``.

    Returns
    -------
    folder : pathlib.Path
        The folder of the parts, made absolute (symbolic links are kept).
    stem : str
        The name the part numbers are appended to.
    ext : str
        The extension of the parts, without the dot; its case is kept from
        ``filename`` (``TVIPS`` stays upper case), and it is ``tvips`` when
        ``filename`` has none.

    Raises
    ------
    ValueError
        If ``filename`` is empty, or ends with a path separator (it names a
        folder): an empty name would otherwise mean the current folder,
        and the recording would be named after it, in the folder above.
    IsADirectoryError
        If ``filename`` is an existing folder: as ``open`` raises, for what
        is on disk, not for the name itself.

    Examples
    --------
    >>> folder, stem, ext = recording_names("/data/x_003.TVIPS")
    >>> stem, ext
    ('x', 'TVIPS')
    >>> recording_names("/data/x")[1:]
    ('x', 'tvips')
    """
    text = os.fspath(filename)
    _check_names_a_file(text)
    path = Path(text).absolute()
    # the reader resolves a name by the same rule (``first_part``)
    stem, ext = recording_stem(path.name)
    return path.parent, stem, ext


def _check_names_a_file(text: str) -> None:
    """Refuse a recording's name that names no file: empty, or a folder."""
    example = os.path.join(text, "x.tvips")
    if not text:
        msg = (
            "the file name is empty: name the recording, e.g. 'x.tvips' (its "
            "parts are then x_000.tvips, x_001.tvips, ...)"
        )
        raise ValueError(msg)
    if os.path.isdir(text):
        msg = f"{text}: is a folder, not a recording: name one in it, e.g. {example}"
        raise IsADirectoryError(errno_codes.EISDIR, msg)
    if text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        msg = (
            f"{text}: ends with a path separator, so it names a folder, not a "
            f"recording: name the recording, e.g. {example}"
        )
        raise ValueError(msg)


def existing_parts(directory: Path, stem: str) -> list[str]:
    """Return the names of the parts of a recording ``stem`` in ``directory``.

    Parameters
    ----------
    directory : pathlib.Path
        The folder to look in (see :func:`recording_names`); a folder that
        does not exist holds no part.
    stem : str
        The recording's name without part number and extension.

    Returns
    -------
    list of str
        The file names ``STEM_NNN.tvips`` (any case of the extension) found
        in ``directory``, sorted.
    """
    if not directory.is_dir():
        return []
    return sorted(
        entry.name
        for entry in directory.iterdir()
        if (match := PART_RE.match(entry.name)) and match["stem"] == stem
    )


def _hidden(directory: Path, stem: str, tag: str) -> list[tuple[Path, str]]:
    """Return the hidden files of ``stem`` with ``tag`` (:func:`hidden_name`).

    Each with the name of the part it stands for.
    """
    digest = _digest(stem)
    found = [
        (entry, original)
        for entry in directory.iterdir()
        if (original := _hidden_part(entry.name, stem, digest, tag))
    ]
    return sorted(found, key=lambda item: item[0].name)


def _hidden_part(name: str, stem: str, digest: str, tag: str) -> str | None:
    """Return the part of ``stem`` the hidden file ``name`` stands for, or None."""
    if (hidden := HIDDEN_RE.match(name)) and hidden["tag"] == tag:
        part = PART_RE.match(hidden["original"])
        return hidden["original"] if part and part["stem"] == stem else None
    short = SHORT_RE.match(name)
    if short and short["tag"] == tag and short["digest"] == digest:
        return part_name(stem, int(short["part"]), short["ext"])
    return None


def not_part_files(directory: Path, names) -> list[tuple[str, str]]:
    """Return the names among ``names`` that something other than a part file has.

    A part file is a regular file, or a symbolic link to one (the reader
    reads through it; :func:`~.commit.commit` replaces the link and never writes
    through it, so its target stays as it was). Anything else is never
    replaced: a folder or a link to one would be moved aside and could not
    be deleted, and a pipe or a device is not ours to remove.

    Returns
    -------
    list of (str, str)
        Each such name with what has it, in the reader's words
        (:func:`~rsciio_tvips._format.parts.kind_of`): ``"a directory"``,
        ``"a FIFO"``, ``"a symbolic link to /dev/null, a character
        device"``, ``"a dangling symbolic link to gone.tvips"`` ...
    """
    found = []
    for name in names:
        try:
            what = kind_of(directory / name)
        except FileNotFoundError:  # gone since the folder was listed
            continue
        if what is not None:
            found.append((name, what))
    return found
