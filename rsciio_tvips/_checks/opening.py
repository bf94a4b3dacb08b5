"""The checks made when a recording is opened: part chain, sizes, part joins.

They read at most a few frame headers, through a function the reader gives.
"""

from __future__ import annotations

import itertools

import numpy as np

from .._format.layout import FIRST_PART_NUMBER, MAIN_HEADER_SIZE, PART_RE, part_name
from ..exceptions import Defect, Finding

#: Other recordings of the folder named in its remark; the rest are "...".
MAX_OTHERS_SHOWN = 5


def usable_last_part(near) -> int:
    """Return the number of the last part before the first missing one."""
    last = FIRST_PART_NUMBER
    while last + 1 in near.found:
        last += 1
    return last


def chain_defects(near, ext: str) -> list[Defect]:
    """Check the part chain: files claiming one number, missing parts, others.

    Parameters
    ----------
    near : Siblings
        What :func:`~rsciio_tvips._format.parts.siblings` found.
    ext : str
        Extension of the file opened, to name missing parts alike.

    Returns
    -------
    list of Defect
        In order: :func:`duplicate_part_defects`, then the parts that break
        the chain, :func:`irregular_part_defects` and
        :func:`missing_part_defects`, by part number (the first is where the
        chain breaks, and what strict reading raises), then
        :func:`other_recording_defects`.
    """
    breaks = [*irregular_part_defects(near), *missing_part_defects(near, ext)]
    breaks.sort(key=lambda d: _part_number(d.finding.file))
    return [
        *duplicate_part_defects(near),
        *breaks,
        *other_recording_defects(near),
    ]


def _part_number(name: str) -> int:
    """Return the part number a file name has (-1 for none)."""
    match = PART_RE.match(name)
    return int(match["part"]) if match else -1


def duplicate_part_defects(near) -> list[Defect]:
    """Return an ``error`` for each part number two files claim."""
    out = []
    for number, kept, dropped in near.duplicates:
        finding = Finding(
            "error", dropped.name, None, "part chain", f"one file for part {number}",
            f"{kept.name} and {dropped.name}", f"permissive=True reads {kept.name}",
        )  # fmt: skip
        message = (
            f"{dropped.name}: two files claim part {number} of recording "
            f"{near.stem!r}: {kept.name} and {dropped.name}"
        )
        out.append(Defect(finding, message, f"{kept.name} is read"))
    return out


def irregular_part_defects(near) -> list[Defect]:
    """Return a defect for each part that is not a regular file.

    A directory, a FIFO, a device, a dangling symbolic link where a part
    should be, named for what it is: ``fatal`` for ``_000`` (it holds the
    main header), ``error`` for any other (the chain ends before it, as at
    a missing part; the last part too, which was once dropped without a
    word). Nothing is opened to tell: a FIFO would make the reader wait.
    """
    out = []
    for number, (path, kind) in sorted(near.irregular.items()):
        fatal = number == FIRST_PART_NUMBER
        detail = (
            "it holds the main header" if fatal
            else "permissive=True reads the parts before it"
        )  # fmt: skip
        finding = Finding(
            "fatal" if fatal else "error", path.name, None, "part chain",
            "a regular file", kind, detail,
        )  # fmt: skip
        message = f"{path.name}: expected a regular file, found {kind}"
        out.append(Defect(finding, message, _workaround(near, number)))
    return out


def missing_part_defects(near, ext: str) -> list[Defect]:
    """Return one defect for the first missing part, naming the others.

    ``fatal`` if it is ``_000`` (it holds the main header), ``error``
    otherwise; parts that are there but not regular files are not missing
    (:func:`irregular_part_defects` names them).
    """
    stem, found = near.stem, near.found
    there = found.keys() | near.irregular.keys()
    last = max(there)
    missing = [n for n in range(FIRST_PART_NUMBER, last) if n not in there]
    if not missing:
        return []
    # one defect: the chain breaks at the first gap, and every part after
    # it is ignored anyway, missing or not
    number = missing[0]
    fatal = number == FIRST_PART_NUMBER
    name = part_name(stem, number, ext)
    detail = (
        "it holds the main header" if fatal
        else "permissive=True reads the parts before it"
    )  # fmt: skip
    if len(missing) > 1:
        more = ", ".join(part_name(stem, n, ext) for n in missing[1:])
        detail += f"; also missing: {more}"
    finding = Finding(
        "fatal" if fatal else "error", name, None, "part chain",
        f"part {number} of {stem!r} (parts up to {last} exist)", "no such file",
        detail,
    )  # fmt: skip
    message = (
        f"{name}: part {number} of the recording is missing (found parts up "
        f"to {part_name(stem, last, ext)}, {len(missing)} missing)"
    )
    return [Defect(finding, message, _workaround(near, number))]


def _workaround(near, number: int) -> str:
    """Return what permissive reading does when the chain breaks at ``number``."""
    ignored = ", ".join(near.found[n].name for n in sorted(near.found) if n > number)
    if not ignored:
        return "the parts before it are read"
    return f"the parts before it are read, {ignored} ignored"


def other_recording_defects(near) -> list[Defect]:
    """Return an ``info`` remark for the other recordings' parts in the folder.

    A folder shared by several recordings is usual, not a defect: the
    finding is a remark with nothing expected (see :class:`Finding`), and
    names each other recording once, by its first part, with its number of
    parts: ``info: a_000.tvips: the folder also holds another recording:
    b_000.tvips (2 parts); it was not checked``.
    """
    if not near.others:
        return []
    # near.others is sorted by name: each recording's first part comes first
    parts: dict[str, list[str]] = {}
    for name in near.others:
        parts.setdefault(PART_RE.match(name)["stem"], []).append(name)
    shown = [
        f"{names[0]} ({len(names)} part{'s' if len(names) > 1 else ''})"
        for names in list(parts.values())[:MAX_OTHERS_SHOWN]
    ]
    listed = ", ".join(shown) + (", ..." if len(parts) > MAX_OTHERS_SHOWN else "")
    if len(parts) == 1:
        found, detail = f"another recording: {listed}", "it was not checked"
    else:
        found = f"{len(parts)} other recordings: {listed}"
        detail = "they were not checked"
    # named at the recording's first entry: _000, or what there is instead
    number = min(near.found.keys() | near.irregular.keys())
    first = near.found.get(number) or near.irregular[number][0]
    finding = Finding(
        "info", first.name, None, "folder", "",
        f"the folder also holds {found}", detail,
    )  # fmt: skip
    return [Defect(finding, f"{first.name}: {finding.found}; {detail}")]


def size_defects(records) -> list[Defect]:
    """Check that whole frame records follow the main header, and the end.

    Returns
    -------
    list of Defect
        ``fatal`` when not one whole record follows the main header;
        ``warning`` when the last record is incomplete (its bytes are
        ignored).
    """
    chain, header = records.chain, records.header
    record = header.record_size
    n_frames, leftover = divmod(chain.nbytes, record)
    first = chain.first.name
    if n_frames == 0:
        h = header
        expected = (
            f"at least {record} bytes (frame header {h.frame_header_bytes} + "
            f"{h.shape[0]} x {h.shape[1]} pixels of {h.pixel_dtype.itemsize} bytes)"
        )
        found = f"{chain.nbytes} in {len(chain.parts)} part(s)"
        finding = Finding(
            "fatal", first, MAIN_HEADER_SIZE, "frame record", expected, found,
            "no whole frame record after the main header",
        )  # fmt: skip
        message = (
            f"{first}: no whole frame record after the main header at offset "
            f"{MAIN_HEADER_SIZE}: expected {expected}, found {found}"
        )
        return [Defect(finding, message)]
    if not leftover:
        return []
    part, offset = records.locate(n_frames)
    finding = Finding(
        "warning", part.name, offset, "frame record", f"{record} bytes",
        f"{leftover}", f"truncated last record: {n_frames} whole frames are read",
    )  # fmt: skip
    message = (
        f"{part.name}: frame record {n_frames} at offset {offset} is truncated: "
        f"expected {record} bytes, found {leftover}; the {leftover} bytes are "
        f"ignored and {n_frames} whole frames are read (interrupted acquisition?)"
    )
    return [Defect(finding, message)]


def _counting(header, n_frames: int, read_headers) -> bool:
    """Whether the frame counter counts up, judged at both ends of the recording.

    Two pairs of neighbouring frames, at the start and at the end, so that a
    loss inside the first part does not hide itself.
    """
    if "num" not in header.frame_header_dtype.names or n_frames < 2:
        return False
    n = n_frames
    num = read_headers([0, 1, n - 2, n - 1])["num"].astype(np.int64)
    return bool(num[1] == num[0] + 1 or num[3] == num[2] + 1)


def boundary_frames(chain, record_size: int, n_frames: int) -> set[int]:
    """Return the frames that start a part (after the first): where parts join."""
    return {f for f in chain.first_frames(record_size)[1:] if 0 < f < n_frames}


def joins_key(records) -> tuple:
    """Return what the checks of the part joins depend on besides the headers.

    :func:`boundary_defects` and :func:`counter_joins` judge the joins
    whose next part holds a whole frame: their verdicts change when a part
    is added or one before the last changes size, or when the last part's
    first frame completes. A recording
    being written is judged again then (``TvipsRecording.refresh``, ``tvips
    watch``), not at every look at its growing last part.
    """
    chain = records.chain
    last_first = chain.first_frames(records.record_size)[-1]
    # every part's length but the last's: one that grew after the next part
    # appeared (a follower's refresh allows it) is judged again
    lengths = tuple(p.length for p in chain.parts[:-1])
    return (lengths, last_first < records.n_frames, chain.parts[-1].length > 0)


def counter_joins(records, read_headers) -> set[int]:
    """Return the joins whose frame counter :func:`boundary_defects` compares.

    A counter jump there is the boundary's finding; elsewhere (and at every
    join when the counter does not count) it is the frame stream's.
    """
    if not _counting(records.header, records.n_frames, read_headers):
        return set()
    return boundary_frames(records.chain, records.record_size, records.n_frames)


def boundary_defects(records, read_headers) -> list[Defect]:
    """Check where parts join, for a part that looks cut short.

    A part that lost bytes (an interrupted copy) shifts every later frame.
    Two signs of it, both cheap:

    1. the frame counter, where it counts up from frame to frame, jumps at
       the start of the next part;
    2. where there is no such counter: acquisition software caps every part
       at one size, so every part but the last holds within one record (and
       the main header) as many bytes of frames as the largest, and never
       none at all.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    read_headers : callable
        Reads the frame headers of a list of frame numbers.

    Returns
    -------
    list of Defect
        One ``warning`` per suspect boundary, naming the part before it (the
        last empty one if any ends there) at its end; ``info`` for every other
        empty part (the last, one the frame counter runs across, one that
        another empty part follows).
    """
    chain, header, n_frames = records.chain, records.header, records.n_frames
    parts = chain.parts
    record = header.record_size
    if len(parts) < 2:
        return []
    out = []
    largest = max(p.length for p in parts[:-1])
    counting = _counting(header, n_frames, read_headers)
    firsts = chain.first_frames(record)
    for k, (part, following) in enumerate(itertools.pairwise(parts)):
        frame = firsts[k + 1]
        if following.length == 0 or frame >= n_frames:
            # the join is the next part's (an empty part ends where it starts),
            # or no whole frame follows it: nothing shifted
            if part.length == 0:
                out.append(_empty_part(part, "info", "the next part is empty too"))
            continue
        jump = None
        checked = counting and 0 < frame
        if checked:
            num = read_headers([frame - 1, frame])["num"].astype(np.int64)
            if num[1] != num[0] + 1:
                jump = (int(num[0]), int(num[1]))
        empty = part.length == 0
        # the sizes speak only where no counter does: some writers split parts
        # at odd sizes, and a counter that runs on proves nothing was lost
        short = not checked and (
            empty or part.length < largest - record - MAIN_HEADER_SIZE
        )
        if jump is None and not short:
            if empty:
                out.append(_empty_part(part, "info", "the frame counter runs on"))
            continue
        out.append(_boundary_defect(part, following, largest, jump))
    last = parts[-1]
    if last.length == 0:
        # the recorder opens the next part when one is full: an acquisition
        # that stops then leaves it empty, and nothing can be told lost
        out.append(_empty_part(last, "info", "the last part"))
    return out


def _empty_part(part, severity: str, detail: str) -> Defect:
    finding = Finding(
        severity, part.name, 0, "part size", "frame records", "an empty file", detail
    )
    message = f"{part.name}: the part is an empty file at offset 0 ({detail})"
    return Defect(finding, message)


def _boundary_defect(part, following, largest: int, jump) -> Defect:
    if jump is not None:
        expected = f"frame counter {jump[0] + 1} at the start of {following.name}"
        found = str(jump[1])
    else:
        expected = f"about {largest} bytes of frames, like the other parts"
        found = f"{part.length} bytes" if part.length else "no frame bytes"
    finding = Finding(
        "warning", part.name, part.size, "part boundary", expected, found,
        "the part may have lost bytes: every frame after it is shifted",
    )  # fmt: skip
    message = f"{part.name} at offset {part.size} (its end): "
    if part.length == 0:
        message += "the part holds no frame bytes, yet frames follow it; "
    elif jump is None:
        message += (
            f"the part holds {part.length} bytes of frames, far fewer than the "
            f"others ({largest}); "
        )
    if jump is not None:
        message += (
            f"the frame counter jumps from {jump[0]} to {jump[1]} at the start of "
            f"{following.name}; "
        )
    message += "if the part lost bytes, every frame after it is shifted"
    return Defect(finding, message)
