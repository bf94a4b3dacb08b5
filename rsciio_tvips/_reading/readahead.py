"""Keep the disk busy while dask reduces a chunk: read-ahead of its neighbours.

A lazy reduction of a recording on disk (not yet in the page cache) runs
like this on two threads: both read a chunk, then both reduce theirs, and
while they reduce the disk has nothing to do. The two threads share the disk
evenly, so they finish their reads together, and the idle times add up: a
cold lazy sum of 1 GiB took 1.1-1.2 times as long as ``cat`` of the files
(``docs/performance.rst``, "Cold reads").

So a task that has copied whole records (the default read) asks the kernel
(``POSIX_FADV_WILLNEED``) to read the records just after its chunk and just
before it, as many as it read, into the page cache, and returns at once:
the disk works on them while the chunk is reduced. Both sides, because
dask does not run the chunks in file order (a sum over frames took them
from the middle out, some upwards, some downwards); whichever the next
tasks are, they find their bytes in the cache or on their way there.

It is a hint and nothing else: it reads no bytes into Python, changes no
result, and any error it meets is the read's to report, not its own (it is
ignored here). Where both ends and the middle of a range are in the page
cache already (``preadv2`` with ``RWF_NOWAIT`` does not wait for the disk),
the range is left alone, so a warm computation pays a few system calls per
side. Where that probe is not supported (tmpfs, some network and FUSE file
systems) every range counts as not cached and is asked for again: a few
milliseconds per 200 MiB of cached neighbours (3 ms on ext4 here), against
about 45 ms to sum a 100 MiB chunk.

Only runs of two or more whole records, of at least :data:`MIN_BYTES`,
ask: a frame browsed on its own (however large), or a band of rows read for
a virtual detector, must not make the disk read whole chunks around it.
Chunks handed out as maps (``io="mmap"``) do not ask: the kernel reads
ahead of the reduction as it touches the pages, and asking as well made a
cold sum slower. (Chunks that ``io="mmap"`` copies, as it does where frames
are not a grid in one part, ask as copies do.)
"""

from __future__ import annotations

import functools
import os

import numpy as np

#: Whether this system has what the read-ahead needs (Linux does).
AVAILABLE = all(hasattr(os, n) for n in ("posix_fadvise", "preadv", "RWF_NOWAIT"))
#: Chunks of fewer bytes of records ask for no read-ahead.
MIN_BYTES = 8 * 2**20
#: Bytes per ``POSIX_FADV_WILLNEED`` call where the device's read-ahead
#: window is not known: Linux reads at most about that window per call (128
#: KiB unless set otherwise), the rest of a longer range not at all.
STEP = 128 * 1024


def neighbours(records, frames) -> list[tuple[int, int]]:
    """Return the stream byte ranges to read ahead around ``frames``.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    frames : numpy.ndarray of int
        The frames a task has read (-1: blank).

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of the records after the frames, then of those
        before them, as many as the frames, within the recording; empty
        unless the frames that are not blank are one run of two or more
        consecutive frames, each once, of at least :data:`MIN_BYTES` of
        records.
    """
    record = records.record_size
    if np.size(frames) * record < MIN_BYTES:  # blanks or not: too few to ask
        return []
    placed = np.asarray(frames).reshape(-1)
    placed = placed[placed >= 0]
    n = placed.size
    # two frames at least: a frame browsed on its own asks for nothing,
    # however large it is
    if n < 2 or n * record < MIN_BYTES:
        return []
    lo, hi = int(placed.min()), int(placed.max()) + 1
    if hi - lo != n or np.unique(placed).size != n:
        return []  # not one run: a sparse selection, or frames repeated
    end = records.n_frames
    ranges = [(hi, min(hi + n, end)), (max(lo - n, 0), lo)]
    return [(a * record, b * record) for a, b in ranges if a < b]


def read_ahead(records, frames) -> None:
    """Ask the kernel to read the records around ``frames`` that it has not.

    Returns as soon as the reads are asked for; does nothing where
    :data:`AVAILABLE` is false. Never raises for an ``OSError``.
    """
    if not AVAILABLE:
        return
    for start, stop in neighbours(records, frames):
        for part, offset, length in records.chain.spans(start, stop):
            _advise(part.path, offset, length)


def _advise(path: str, offset: int, length: int) -> None:
    """Ask for ``length`` bytes of ``path`` at ``offset`` unless already cached."""
    try:
        # non-blocking: a part replaced by a FIFO must not hang a hint
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        step = _window(os.fstat(fd).st_dev)
        # Not the ends alone: the page a range ends in holds the first bytes
        # of the chunk just read, and the kernel's own read-ahead past the
        # end of that chunk caches the first bytes of the range after it.
        # The start first: a probe that misses starts a small read there.
        probes = (offset, offset + length // 2, offset + length - 1)
        if all(_cached(fd, at) for at in probes):
            return
        for at in range(offset, offset + length, step):
            os.posix_fadvise(fd, at, min(step, offset + length - at),
                             os.POSIX_FADV_WILLNEED)  # fmt: skip
    except OSError:
        return  # a hint only: the read that needs the bytes reports errors
    finally:
        os.close(fd)


def _cached(fd: int, offset: int) -> bool:
    """Return whether the byte at ``offset`` is in the page cache.

    ``RWF_NOWAIT`` makes the read fail rather than wait for the disk. A
    file system that does not support it says so with an ``OSError``
    too: then the range counts as not cached (asking again for cached
    bytes costs little).
    """
    try:
        return os.preadv(fd, [bytearray(1)], offset, os.RWF_NOWAIT) == 1
    except OSError:
        return False


#: Where Linux shows its devices (a module attribute, so that tests can
#: give another tree).
SYS = "/sys"


@functools.lru_cache(maxsize=64)
def _window(device: int) -> int:
    """Return the read-ahead window of the device a file is on, in bytes.

    One ``POSIX_FADV_WILLNEED`` of that many bytes is read in large
    requests (Linux caps a call at the larger of this window and the
    device's largest request, so it is a safe step); smaller steps gained
    less (``docs/performance.rst``, "Cold reads"). Linux shows the window
    of a disk and of a network file system's mount (``class/bdi``) and,
    for a partition, of the disk it is on; where none is found (btrfs,
    overlay file systems), :data:`STEP`. Looked up once per device and
    process: a window changed later (``blockdev --setra``) is not seen.
    """
    dev = f"{os.major(device)}:{os.minor(device)}"
    for where in (
        f"{SYS}/class/bdi/{dev}/read_ahead_kb",
        f"{SYS}/dev/block/{dev}/queue/read_ahead_kb",
        f"{SYS}/dev/block/{dev}/../queue/read_ahead_kb",  # a partition's disk
    ):
        try:
            with open(where) as f:
                kb = int(f.read())
        except (OSError, ValueError):
            continue
        if kb > 0:
            return kb * 1024
    return STEP
