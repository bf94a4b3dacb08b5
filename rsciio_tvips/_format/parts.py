"""Find the parts of a recording and treat them as one byte stream.

A recording is ``NAME_000.tvips``, ``NAME_001.tvips``, ...; only ``_000``
starts with the main header. :func:`siblings` finds the parts beside any part
and :func:`build_chain` returns them as a :class:`Chain`: the bytes after the
main header of every part, in order, seen as one logical stream. Frame records
are laid end to end in that stream, so a record that straddles two files needs
no special case, and the number of frames follows from the sizes of the files,
never from a count in a header.

Each :class:`Part` carries the :class:`Identity` of its file as opened (size,
modification time, inode and device): a read that opens the file again asks
:meth:`Identity.change` whether it is still that file. :func:`kind_of` names
what an entry that should be a part is when it is not a regular file (a
directory, a FIFO, a device, a dangling symbolic link), from ``stat`` alone.

:func:`first_part` is the file a name opens (``x.tvips`` opens
``x_000.tvips`` when no file ``x.tvips`` exists, by the rule the writer
names parts by) and :func:`first_parts` the recordings a folder holds.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .layout import (
    FIRST_PART_NUMBER,
    MAIN_HEADER_SIZE,
    PART_RE,
    part_name,
    recording_stem,
)

#: Ranges up to this many are placed by :meth:`Chain.pieces` in Python, more
#: with numpy (whose calls cost more than a loop over a few ranges).
FEW_RANGES = 4
#: What :meth:`Identity.change` calls a part that is no longer the file opened.
REPLACED, TRUNCATED, REWRITTEN = "replaced", "truncated", "rewritten"


class Change(NamedTuple):
    """How a part's file differs from the one sized when the recording was opened.

    Attributes
    ----------
    kind : str
        :data:`REPLACED`, :data:`TRUNCATED` or :data:`REWRITTEN`.
    text : str
        What changed, from what to what (``"inode 12 -> 34 (replaced)"``).
    """

    kind: str
    text: str


@dataclass(frozen=True)
class Identity:
    """What tells the file sized when the recording was opened from any other.

    Attributes
    ----------
    size : int
        Size of the file in bytes.
    mtime_ns : int
        Modification time, in ns since the epoch.
    inode : int
        Inode number (``st_ino``).
    device : int
        Device of the file system that holds it (``st_dev``).
    host : str
        The machine that took it. Device numbers are the mounting machine's
        own (a network file system seen from two machines has two), and
        some network file systems number inodes per client: inode and
        device are compared only on the machine that took them.
    """

    size: int
    mtime_ns: int
    inode: int
    device: int
    host: str = ""

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        """Return the identity ``os.stat`` or ``os.fstat`` gave, on this machine."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, _host())

    def change(self, now: os.stat_result) -> Change | None:
        """Return how the file ``now`` describes differs from this one, if it does.

        The rule, in order:

        1. another device or inode, on the machine that opened the
           recording: **replaced** (a file renamed over the part, as every
           atomic writer does, or moved in from elsewhere); on another
           machine (a dask.distributed worker) only the rules below apply;
        2. smaller: **truncated**;
        3. the same size and another modification time: **rewritten** in
           place;
        4. larger: **appended**, and allowed whatever the modification time
           says: an acquisition still writing only adds bytes after those
           known;
        5. otherwise the same file.

        What this cannot tell (the bytes themselves are never compared):

        - a file rewritten in place that ends up larger looks appended;
        - a same-size rewrite that keeps the modification time (restored
          with ``os.utime``, ``touch -r``, ``cp -p``; or made within the
          file system's timestamp granularity of the last write before the
          recording was opened) looks unchanged;
        - a file deleted and created anew may get the freed inode number
          back; it is then judged by its size and modification time;
        - a new modification time at the same size with the bytes unchanged
          (``touch``) counts as a rewrite.

        Parameters
        ----------
        now : os.stat_result or Identity
            ``os.fstat`` of the file as opened for a read, or the identity
            of the file a later sizing found (:meth:`Chain.growth`).

        Returns
        -------
        Change or None
            None for the same file, or the same file with bytes appended.
        """
        if not isinstance(now, Identity):
            now = Identity.of(now)
        if self.host == now.host and (now.device, now.inode) != (
            self.device, self.inode
        ):  # fmt: skip
            moved = [
                f"{what} {before} -> {after}"
                for what, before, after in (
                    ("device", self.device, now.device),
                    ("inode", self.inode, now.inode),
                )
                if before != after
            ]
            return Change(REPLACED, f"{', '.join(moved)} ({REPLACED})")
        if now.size < self.size:
            text = f"size {self.size} -> {now.size} bytes ({TRUNCATED})"
            return Change(TRUNCATED, text)
        if now.size == self.size and now.mtime_ns != self.mtime_ns:
            text = (
                f"modification time {_utc(self.mtime_ns)} -> {_utc(now.mtime_ns)} "
                f"at the same size of {self.size} bytes ({REWRITTEN})"
            )
            return Change(REWRITTEN, text)
        return None


@functools.cache
def _host() -> str:
    """Return this machine's name (and boot, where the system says)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return f"{os.uname().nodename if hasattr(os, 'uname') else ''}:{boot}"


def _utc(ns: int) -> str:
    """Return a time in ns since the epoch as ISO 8601 UTC, to the ns."""
    seconds, fraction = divmod(ns, 10**9)
    # time.strftime rather than datetime: datetime stops at microseconds,
    # and two writes within one microsecond must not print alike
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{fraction:09d}Z"
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
    identity : Identity
        The file as sized when the recording was opened; every read checks
        that the file it opens is still this one (and it is part of the dask
        token, so that a file rewritten with the same size gets new keys).
    """

    path: str
    file_offset: int
    length: int
    stream_start: int
    identity: Identity

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

    def growth(self, later: Chain, fixed: int | None = None) -> str | None:
        """Return what is wrong with ``later`` as this chain grown, or None.

        A recording being written grows only at its end: its last part gets
        longer, and new parts follow it. Every other change would move or
        alter frames already read (:meth:`Identity.change` says which):
        a part gone, replaced, truncated or rewritten, or a part that is
        no longer the last getting longer (every frame after it would
        shift), unless nothing after its old end was read (``fixed``).

        Parameters
        ----------
        later : Chain
            The same recording's parts, sized again.
        fixed : int, optional
            Stream bytes read so far: a part that ended at or after them may
            have grown (default: every byte sized, so only the last part).

        Returns
        -------
        str or None
            The sentence, naming the part and the byte offset; None when
            ``later`` only grew.
        """
        if len(later.parts) < len(self.parts):
            gone = self.parts[len(later.parts)]
            return (
                f"{gone.name}: the part is no longer there (or a part before it "
                f"is not): expected {gone.size} bytes at offset 0, found none"
            )
        for k, (was, now) in enumerate(zip(self.parts, later.parts, strict=False)):
            change = was.identity.change(now.identity)
            if was.path != now.path:
                change = Change(REPLACED, f"{now.name} instead ({REPLACED})")
            if change is not None:
                return (
                    f"{was.name}: the part changed since the recording was "
                    f"sized: {change.text}"
                )
            last = k == len(self.parts) - 1
            moves = fixed is None or was.stream_start + was.length < fixed
            if not last and now.size != was.size and moves:
                return (
                    f"{was.name} at offset {was.size}: expected the part to end "
                    f"there, as when {self.parts[k + 1].name} was found after it; "
                    f"found {now.size} bytes: every frame after it would shift"
                )
        return None

    def pieces(self, offsets, sizes) -> tuple:
        """Return where stream ranges lie in the parts, cut where a part ends.

        The one place that maps ranges of the stream to the files; the reads
        (:func:`~rsciio_tvips._reading.preadv.read_into`) and the read-ahead
        (:meth:`spans`) both ask it. Many ranges are planned with numpy,
        not range by range in Python (an eager load asks for two ranges per
        frame); up to :data:`FEW_RANGES` in Python, where numpy's calls
        would cost more (a frame read on its own).

        Parameters
        ----------
        offsets, sizes : array_like of int
            The stream offset and the length of each range.

        Returns
        -------
        piece, part, where, skip, length : ndarray of int64
            One entry per piece, in the order of the ranges and, within a
            range, of the stream: the range it belongs to, the index of the
            part that holds it, its offset in that file, how far into its
            range it starts and its length. A range that crosses the end of
            a part gives one piece per part; empty ranges and the share of
            an empty part give none.
        """
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
        if offsets.size <= FEW_RANGES:
            return self._few_pieces(offsets.tolist(), sizes.tolist())
        if offsets.size and min(offsets.min(), sizes.min()) < 0:
            bad = int(np.argmax((offsets < 0) | (sizes < 0)))
            self._before_the_start(int(offsets[bad]), int(sizes[bad]))
        start, end, file_offset = self._bounds
        if sizes.all():
            index = np.arange(sizes.size)
        else:  # empty ranges read nothing, even past the end
            index = np.flatnonzero(sizes)
            offsets, sizes = offsets[index], sizes[index]
        # A part holds the bytes before its end: for a range's first and last
        # byte, the first part that ends after it (an empty part ends where it
        # starts, so it is never chosen).
        first = np.searchsorted(end, offsets, side="right")
        last = np.searchsorted(end, offsets + sizes - 1, side="right")
        if last.size and int(last.max()) >= len(self.parts):
            bad = int(np.argmax(last >= len(self.parts)))
            self._past_the_end(int(offsets[bad]), int(sizes[bad]))
        if (first == last).all():  # the usual case: no range crosses a file end
            where = file_offset[first] + offsets - start[first]
            return index, first, where, np.zeros_like(offsets), sizes
        counts = last - first + 1
        piece = np.repeat(np.arange(offsets.size), counts)
        part = (
            first[piece]
            + np.arange(piece.size)
            - np.repeat(np.cumsum(counts) - counts, counts)
        )
        lo = np.maximum(offsets[piece], start[part])
        hi = np.minimum(offsets[piece] + sizes[piece], end[part])
        keep = hi > lo  # an empty part between the two
        piece, part, lo, hi = piece[keep], part[keep], lo[keep], hi[keep]
        where = file_offset[part] + lo - start[part]
        return index[piece], part, where, lo - offsets[piece], hi - lo

    def _few_pieces(self, offsets: list, sizes: list) -> tuple:
        """:meth:`pieces` of a few ranges, in Python: a frame read on its own.

        Its dozen numpy calls on arrays of one element cost more than these
        few lines of Python (about 7.5 us against 3 us a call).
        """
        ends = self._ends
        out = ([], [], [], [], [])
        for i, (offset, size) in enumerate(zip(offsets, sizes, strict=True)):
            if offset < 0 or size < 0:
                self._before_the_start(offset, size)
            if size == 0:
                continue
            if offset + size > ends[-1]:
                self._past_the_end(offset, size)
            k, skip = bisect.bisect_right(ends, offset), 0
            while skip < size:
                part = self.parts[k]
                n = min(size - skip, ends[k] - offset - skip)
                if n > 0:  # an empty part between gives no piece
                    where = part.file_offset + offset + skip - part.stream_start
                    for column, value in zip(out, (i, k, where, skip, n), strict=True):
                        column.append(value)
                    skip += n
                k += 1
        return tuple(np.array(column, dtype=np.int64) for column in out)

    def _past_the_end(self, offset: int, size: int):
        raise ValueError(
            f"stream bytes {offset} to {offset + size} run past the end of the "
            f"stream ({self.nbytes} bytes)"
        )

    @staticmethod
    def _before_the_start(offset: int, size: int):
        raise ValueError(
            f"stream range at {offset} of {size} bytes: expected an offset and "
            "a length of 0 or more"
        )

    def spans(self, start: int, stop: int) -> list[tuple[Part, int, int]]:
        """Return where stream bytes ``start`` to ``stop`` lie, part by part.

        Bytes before the start or past the end of the stream are left out.

        Returns
        -------
        list of (Part, int, int)
            Each part that holds some of the bytes, the file offset where
            they start in it and how many there are, in stream order;
            empty parts are left out.
        """
        start, stop = max(start, 0), min(stop, self.nbytes)
        _, part, where, _, length = self.pieces([start], [max(stop - start, 0)])
        found = zip(part.tolist(), where.tolist(), length.tolist(), strict=True)
        return [(self.parts[k], w, n) for k, w, n in found]

    def locate(self, stream_offset: int) -> tuple[Part, int]:
        """Return the part and the file offset of a stream offset.

        Unlike :meth:`pieces`, the end of the stream has a place: the end of
        the last part.
        """
        start, _, _ = self._bounds
        # The last part starting at or before the offset holds it; an empty
        # part shares its start with the next one and so is never chosen.
        index = int(np.searchsorted(start, stream_offset, side="right")) - 1
        part = self.parts[index]
        return part, part.file_offset + stream_offset - part.stream_start

    @functools.cached_property
    def _bounds(self) -> tuple:
        """The stream start, the stream end and the file offset of each part.

        Made once per chain, as every read asks; read-only, as shared. Not
        a field: the chain's equality and dask token are its parts alone.
        """
        start = np.array([p.stream_start for p in self.parts], dtype=np.int64)
        length = np.array([p.length for p in self.parts], dtype=np.int64)
        file_offset = np.array([p.file_offset for p in self.parts], dtype=np.int64)
        out = (start, start + length, file_offset)
        for a in out:
            a.flags.writeable = False
        return out

    @functools.cached_property
    def _ends(self) -> tuple:
        """The stream end of each part, as Python ints (for :meth:`_few_pieces`)."""
        return tuple(self._bounds[1].tolist())

    def __getstate__(self) -> dict:
        # The caches stay behind: pickled, they would go into every task of a
        # dask graph, and they are made again in a few microseconds.
        state = self.__dict__.copy()
        state.pop("_bounds", None)
        state.pop("_ends", None)
        return state


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
    irregular : dict of int to (Path, str)
        Part numbers whose entry is not a regular file (and which no regular
        file claims): the entry and what it is (see :func:`kind_of`).
    """

    stem: str
    found: dict
    duplicates: list
    others: list
    irregular: dict = field(default_factory=dict)


#: What :func:`kind_of` calls each kind of file that is not a regular one.
FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def kind_of(path) -> str | None:
    """Return what ``path`` is when it is not a regular file; None when it is.

    A symbolic link is followed, and named with its target: ``"a symbolic
    link to /dev/zero, a character device"``, ``"a dangling symbolic link to
    gone.tvips"``. Only ``stat`` is asked, nothing is opened: opening a FIFO
    for reading waits until something writes to it.

    Parameters
    ----------
    path : str or os.PathLike
        An entry that exists (as a name: a dangling link exists).

    Returns
    -------
    str or None
        ``"a directory"``, ``"a FIFO"``, ``"a character device"`` ... ; None
        for a regular file or a link to one.

    Raises
    ------
    FileNotFoundError
        If nothing of that name exists (any more).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if not os.path.islink(path):
            raise
        if isinstance(exc, FileNotFoundError):
            return f"a dangling symbolic link to {os.readlink(path)}"
        # a loop of links, or a target in a folder that cannot be searched
        return f"a symbolic link to {os.readlink(path)} that cannot be followed"
    if stat.S_ISREG(st.st_mode):
        return None
    kind = FILE_KINDS.get(stat.S_IFMT(st.st_mode), "a special file")
    if os.path.islink(path):
        return f"a symbolic link to {os.readlink(path)}, {kind}"
    return kind


def first_part(path: Path) -> Path | None:
    """Return the file that opens the recording ``path`` names, if any.

    ``path`` itself when there is anything of that name: any part, or a
    one-part recording renamed without the ``_NNN`` suffix (or a directory,
    a FIFO, a dangling link: the part chain's checks then say what it is
    instead of it being taken for nothing). Otherwise, for a name without
    that suffix, the recording's ``_000`` part by the rule the writer names
    its parts by (:func:`~.layout.recording_stem`): ``x.tvips`` opens
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
    # lexists: a dangling link is a name that is there, to be named as such
    if os.path.lexists(path):
        return path
    if PART_RE.match(path.name):
        return None  # a part that is not there: no other name to try
    stem, ext = recording_stem(path.name)
    first = path.parent / part_name(stem, FIRST_PART_NUMBER, ext)
    return first if os.path.lexists(first) else None


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
    """Return the parts ``<stem>_NNN.tvips`` beside ``path`` and the rest.

    Entries of the recording's name that are not regular files go to
    :attr:`Siblings.irregular`, so that the checks name them; those of other
    names are not this recording's concern and are left out.

    Parameters
    ----------
    path : pathlib.Path
        The file opened (it may be any kind of entry).

    Returns
    -------
    Siblings
    """
    match = PART_RE.match(path.name)
    if match is None:
        # A file renamed without the _NNN suffix is a one-part recording.
        kind = kind_of(path)
        if kind is not None:
            return Siblings(path.stem, {}, [], [], {FIRST_PART_NUMBER: (path, kind)})
        return Siblings(path.stem, {FIRST_PART_NUMBER: path}, [], [])
    stem, ext = match["stem"], match["ext"]
    found: dict[int, Path] = {}
    irregular: dict[int, tuple[Path, str]] = {}
    duplicates, others = [], []
    with os.scandir(path.parent) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            other = PART_RE.match(entry.name)
            if other is None:
                continue
            # is_file() takes the type from the folder listing, without a
            # stat, for all but links: a folder of thousands of parts costs
            # no more than before
            regular = entry.is_file()
            if other["stem"] != stem:
                if regular:
                    others.append(entry.name)
                continue
            number = int(other["part"])
            if not regular:
                _add_irregular(irregular, number, Path(entry.path))
            elif number in found:
                kept, dropped = found[number], Path(entry.path)
                if other["ext"] == ext:
                    kept, dropped = dropped, kept
                found[number] = kept
                duplicates.append((number, kept, dropped))
            else:
                found[number] = Path(entry.path)
    # a regular file of the number is read; the odd entry beside it is not
    irregular = {n: v for n, v in irregular.items() if n not in found}
    return Siblings(stem, found, duplicates, others, irregular)


def _add_irregular(irregular: dict, number: int, path: Path) -> None:
    """Record what the entry ``path`` for part ``number`` is, unless it is gone."""
    try:
        kind = kind_of(path)
    except FileNotFoundError:
        return  # removed while the folder was read: not there
    if kind is not None:  # a regular file only now: the next listing finds it
        irregular.setdefault(number, (path, kind))


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
        st = os.stat(near.found[number])
        offset = MAIN_HEADER_SIZE if number == FIRST_PART_NUMBER else 0
        length = max(0, st.st_size - offset)
        parts.append(
            Part(str(near.found[number]), offset, length, start, Identity.of(st))
        )
        start += length
    return Chain(tuple(parts))
