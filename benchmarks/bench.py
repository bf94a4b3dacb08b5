"""The benchmark suite: rsciio_tvips against its peers and the machine's limits.

Usage::

    python benchmarks/bench.py [--size 1GiB,8GiB] [--repeat 3] [--parts 4]
                               [--compare rsciio.tvips] [--only TEXT]
                               [--libertem-python PATH] [--libertem-context KIND]
                               [--dir /tmp/rsciio_tvips_bench]

For each size it writes (once, reused afterwards) a version 2 recording of
256x256 uint16 frames with 60-byte frame headers in ``--parts`` parts, whole
records per part so that rsciio.tvips can read it, and a first part of at
least 4096 frames (``--first-part-frames``) so that LiberTEM can open it. It
warms the page cache, runs every measurement in a fresh Python process
``--repeat`` times and prints the medians: wall time of the operation and the
peak RSS of the process (imports included). With several sizes it ends with
the cost per GiB of each operation at each size, to show that the cost grows
linearly.

The peers: rsciio.tvips (``--compare``) in this environment, and LiberTEM's
TVIPS reader summed by its SumUDF, run by the Python of its own virtual
environment (``--libertem-python``; its rows are skipped, and the output says
so, when there is none). The rows marked *again* time a lazy sum computed
a second time in the same process (the first, untimed, pays what a process
pays once). The rows marked *cold* drop the page cache in the child process
just before the timing starts (``sync``, then ``3`` into
``/proc/sys/vm/drop_caches``; as root only, else they are skipped and the
output says so). The sums of every reader are checked against numpy's sum of
the records, and a mismatch is printed loudly and makes the exit status 1.

Last, ``watch`` rows (``benchmarks/watch_lag.py``; ``--only watch`` for them
alone): how far ``tvips watch`` stays behind a writer at 1 GB/s over
``--watch-size``, its CPU time and peak RSS: without the picture (reading
with ``pread``, then ``mmap``) and with it; then what it takes in at most
on one core, catching up with a recording already written (``pread``,
``mmap``, and ``pread`` with a loop busy on the other core).

The limits are what the machine does with the same bytes and no library:
``readinto`` of the files into one preallocated array with 2 threads (eager
loads), ``np.memmap`` of the records summed by numpy with 2 threads (lazy
sums; for the virtual bright field, numpy summing whole frames in place),
``cat`` of the files into ``/dev/null`` (cold lazy sums), ``os.preadv`` of
each frame (random frames) and of each frame header (header pass), reading the
256-byte header (open), ``write()`` of records assembled beforehand (eager
write; plus computing the dask data, lazy write).

A cell of rsciio.tvips is skipped when it would need more than 70 % of the
machine's memory (it reads a whole recording into memory about 2.2 times).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from peer_libertem import CONTEXTS

FRAME = (256, 256)
FHB = 60
RECORD = FHB + FRAME[0] * FRAME[1] * 2
N_RANDOM = 100
#: The header-pass recording: many small frames.
HEADER_FRAMES, HEADER_FRAME = 100_000, (32, 32)
BOX = (slice(108, 148), slice(108, 148))  # a 40 x 40 bright-field aperture
#: Peak RSS of rsciio.tvips as a multiple of the recording (measured at 2 GiB).
RSCIIO_RSS = {"read": 2.3, "eager write": 1.5, "lazy write": 0.5}
#: LiberTEM 0.16 guesses the scan from the frame headers of the first 4096
#: frames, all read from the first part: a shorter first part (of a longer
#: recording) makes it fail with an IndexError instead of opening.
LIBERTEM_FIRST_PART = 4096
#: Where the docs tell to make LiberTEM's own virtual environment.
LIBERTEM_PYTHON = Path.home() / "venvs" / "libertem" / "bin" / "python"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def parse_size(text: str) -> int:
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


# --- the recordings --------------------------------------------------------


def part_frames(n: int, parts: int, first_min: int) -> list[int]:
    """Frames per part: ``n`` in at most ``parts``, the first at least ``first_min``.

    The first part takes its even share or ``first_min`` frames, whichever is
    more (all of them if there are fewer); the rest share the other parts
    evenly.
    """
    first = min(n, max(-(-n // parts), first_min))
    rest = n - first
    if rest == 0:  # one part holds them all (so always when parts == 1)
        return [first]
    per = -(-rest // (parts - 1))
    return [first] + [min(per, rest - a) for a in range(0, rest, per)]


def write_recording(folder: Path, counts: list[int], frame=FRAME) -> Path:
    """Write parts of ``counts`` frames as ``bench_NNN.tvips`` unless they are there."""
    record = FHB + frame[0] * frame[1] * 2
    starts = np.cumsum([0, *counts])
    first = folder / "bench_000.tvips"
    expected = [256 * (k == 0) + record * c for k, c in enumerate(counts)]
    paths = [folder / f"bench_{k:03d}.tvips" for k in range(len(counts))]
    existing = sorted(folder.glob("bench_*.tvips"))
    if existing == paths and [p.stat().st_size for p in paths] == expected:
        return first
    folder.mkdir(parents=True, exist_ok=True)
    for p in existing:
        p.unlink()
    header = np.zeros(64, "<u4")
    header[:13] = [256, 2, frame[1], frame[0], 16, 0, 0, 1, 1, 1, 300, 100, FHB]
    block = max(1, 2**25 // record)
    for k in range(len(counts)):
        with open(paths[k], "wb") as f:
            if k == 0:
                f.write(header.tobytes())
            start, stop = int(starts[k]), int(starts[k + 1])
            for a in range(start, stop, block):
                b = min(stop, a + block)
                rec = np.zeros((b - a, record // 2), "<u2")
                idx = np.arange(a, b)
                hdr = rec[:, : FHB // 2].view("<u4")
                hdr[:, 0] = idx + 1  # counter
                hdr[:, 1] = 1_700_000_000 + idx // 100  # seconds
                hdr[:, 2] = (idx % 100) * 10  # ms
                hdr[:, 6] = 2  # diffraction
                hdr[:, 12] = idx + 1  # rotidx
                pix = rec[:, FHB // 2 :]
                pix[:] = (np.arange(pix.shape[1], dtype=np.uint32) % 251).astype("<u2")
                pix += (idx % 7).astype("<u2")[:, None]
                f.write(rec.tobytes())
    return first


def parts_of(first: Path) -> list[Path]:
    return sorted(first.parent.glob("bench_*.tvips"))


def stream_bytes(first: Path) -> int:
    return sum(p.stat().st_size - 256 * (i == 0) for i, p in enumerate(parts_of(first)))


def n_frames_of(first: Path) -> int:
    return stream_bytes(first) // RECORD


def scan_shape_for(first: Path) -> tuple:
    side = int(n_frames_of(first) ** 0.5)
    return (side, side)


def snake(first: Path) -> dict:
    return {"scan_shape": scan_shape_for(first), "winding_scan_axis": "x",
            "hysteresis": 3}  # fmt: skip


def record_maps(first: Path) -> list:
    return [
        np.memmap(p, "<u2", "r", offset=256 * (i == 0)).reshape(-1, RECORD // 2)
        for i, p in enumerate(parts_of(first))
    ]


def reader(impl):
    if impl == "rsciio_tvips":
        from rsciio_tvips import file_reader
    else:
        from rsciio.tvips import file_reader
    return file_reader


# --- the limits --------------------------------------------------------------


def limit_readinto(first):
    paths = parts_of(first)
    sizes = [p.stat().st_size - 256 * (i == 0) for i, p in enumerate(paths)]
    buf = np.empty(sum(sizes), np.uint8)
    starts = np.cumsum([0, *sizes])

    def load(i):
        with open(paths[i], "rb", buffering=0) as f:
            f.seek(256 * (i == 0))
            view = memoryview(buf[starts[i] : starts[i + 1]])
            while view:  # readinto reads at most 2 GiB at a time
                view = view[f.readinto(view) :]

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(load, range(len(paths))))


def limit_memmap_sum(first):
    with ThreadPoolExecutor(2) as pool:
        parts = list(
            pool.map(lambda m: m.sum(axis=0, dtype=np.uint64), record_maps(first))
        )
    return int(np.sum(parts, axis=0)[FHB // 2 :].sum())


def limit_memmap_frame_sums(first, box=False):
    def vbf(m):
        frames = m[:, FHB // 2 :].reshape(-1, *FRAME)
        if box:
            frames = frames[:, BOX[0], BOX[1]]
        return frames.sum(axis=(1, 2), dtype=np.uint64)

    with ThreadPoolExecutor(2) as pool:
        return int(np.concatenate(list(pool.map(vbf, record_maps(first)))).sum())


def limit_random(first, indices):
    paths = parts_of(first)
    counts = [
        (p.stat().st_size - 256 * (i == 0)) // RECORD for i, p in enumerate(paths)
    ]
    starts = np.cumsum([0, *counts])
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    out = np.empty((len(indices), *FRAME), np.uint16)
    t = time.perf_counter()
    for j, i in enumerate(indices):
        k = int(np.searchsorted(starts, i, side="right") - 1)
        off = 256 * (k == 0) + (int(i) - starts[k]) * RECORD + FHB
        os.preadv(fds[k], [memoryview(out[j])], int(off))
    elapsed = time.perf_counter() - t
    for fd in fds:
        os.close(fd)
    return elapsed


def limit_cat(first):
    """``cat`` of the files into /dev/null: the disk's sequential read speed.

    The peak RSS is that of the Python that runs cat, as for the other limits
    (cat's own is a few MB; getrusage cannot tell it, as it counts the
    pages of the forked Python before the exec).
    """
    paths = [str(p) for p in parts_of(first)]
    subprocess.run(["cat", *paths], stdout=subprocess.DEVNULL, check=True)


def drop_caches() -> None:
    """Empty the page cache (and the dentry and inode caches) of the machine.

    drop_caches drops clean pages only, so the dirty ones are written back
    first. Needs root; raises OSError where it is not allowed.
    """
    os.sync()
    DROP_CACHES.write_text("3")


def cold_unavailable() -> str:
    """Why the cold rows cannot run here, or '' when they can (drops the cache)."""
    try:
        drop_caches()
    except OSError as exc:
        return f"cannot write {DROP_CACHES} ({exc.strerror}; it needs root)"
    return ""


# --- the operations, each run in a child process -----------------------------
# Each returns None (the whole call is timed), the seconds of the part that
# is measured (the open or the set-up excluded), or a dict with any of
# "time" (those seconds), "rss" (bytes) and "value" (a result that the
# parent checks, the sums).


def random_indices(n):
    return np.random.default_rng(0).integers(0, n, N_RANDOM)


def op_open(impl, first):
    if impl == "limit":
        with open(first, "rb") as f:
            f.read(256)
        return None
    reader(impl)(str(first), lazy=True)
    return None


def op_open_scan(impl, first):
    if impl == "limit":
        return op_open(impl, first)
    reader(impl)(str(first), lazy=True, **snake(first))
    return None


def op_eager(impl, first):
    if impl == "limit":
        limit_readinto(first)
        return None
    reader(impl)(str(first), lazy=False)
    return None


def op_eager_scan(impl, first):
    if impl == "limit":
        limit_readinto(first)
        return None
    reader(impl)(str(first), lazy=False, **snake(first))
    return None


def op_sum(impl, first, io=None):
    """Lazy sum over frames; returns the sum, to be checked against numpy's."""
    if impl == "limit":
        limit_memmap_sum(first)
        return None
    if impl.startswith("libertem:"):  # "libertem:KIND", KIND its executor
        from peer_libertem import lazy_sum

        return {"value": lazy_sum(first, impl.partition(":")[2])}
    options = {"io": io} if io else {}
    (d,) = reader(impl)(str(first), lazy=True, **options)
    return {"value": d["data"].sum(axis=0).compute()}


def op_sum_again(impl, first, io=None):
    """The lazy sum computed a second time in the same process; returns the sum.

    What a session meets from its second computation on: the first one,
    untimed, has paid what a process pays once (new memory for the chunks,
    the reader's set-up; for LiberTEM, the same dataset used again).
    """
    if impl == "limit":
        limit_memmap_sum(first)
        t = time.perf_counter()
        limit_memmap_sum(first)
        return time.perf_counter() - t
    if impl.startswith("libertem:"):
        from peer_libertem import lazy_sum_again

        seconds, value = lazy_sum_again(first, impl.partition(":")[2])
        return {"time": seconds, "value": value}
    options = {"io": io} if io else {}
    (d,) = reader(impl)(str(first), lazy=True, **options)
    total = d["data"].sum(axis=0)
    total.compute()
    t = time.perf_counter()
    value = total.compute()
    return {"time": time.perf_counter() - t, "value": value}


def op_sum_cold(impl, first, io=None):
    """The same from disk: ``child`` has dropped the page cache just before."""
    if impl == "limit":
        return limit_cat(first)
    return op_sum(impl, first, io)


def op_vbf(impl, first):
    """Virtual bright field (40 x 40 box) over a snake scan with hysteresis."""
    if impl.startswith("limit"):
        limit_memmap_frame_sums(first, box=impl == "limit-box")
        return None
    (d,) = reader(impl)(str(first), lazy=True, **snake(first))
    d["data"][:, :, BOX[0], BOX[1]].sum(axis=(2, 3)).compute()
    return None


@contextlib.contextmanager
def gc_paused():
    """Run a loop of many small timed calls as ``timeit`` does: no cyclic GC.

    A full collection walks every object of the process, and whether one
    falls within the loop depends on what the process allocated before it,
    not on the reader being timed; the collection is only put off. The
    measurements behind this are in docs/performance.rst ("The peers, side
    by side").
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def op_random(impl, first):
    """100 frames of the stack, each asked for on its own (browsing)."""
    with gc_paused():
        return _random(impl, first)


def _random(impl, first):
    n = n_frames_of(first)
    if impl == "limit":
        return limit_random(first, random_indices(n))
    if impl == "dask floor":
        # the same computes of an in-memory dask array of tiny frames: what
        # dask costs per compute, whatever reads the data
        import dask.array as da

        data = da.zeros((n, 4, 4), np.uint16, chunks=(800, 4, 4))
    else:
        (d,) = reader(impl)(str(first), lazy=True)
        data = d["data"]
    np.asarray(data[0])  # the first compute pays dask's warm-up
    t = time.perf_counter()
    frames = [np.asarray(data[int(i)]) for i in random_indices(n)]
    assert len(frames) == N_RANDOM
    return time.perf_counter() - t


def op_random_direct(impl, first):
    """100 frames through the library's own frame API, no dask."""
    if impl == "limit":
        return limit_random(first, random_indices(n_frames_of(first)))
    if impl != "rsciio_tvips":
        return float("nan")  # rsciio.tvips has no frame API
    from rsciio_tvips import TvipsRecording

    rec = TvipsRecording(first)
    t = time.perf_counter()
    frames = rec.read_frames(random_indices(rec.n_frames))
    assert len(frames) == N_RANDOM
    return time.perf_counter() - t


def op_random_scan(impl, first):
    """100 random points of the snake scan, each asked for on its own."""
    with gc_paused():
        return _random_scan(impl, first)


def _random_scan(impl, first):
    shape = scan_shape_for(first)
    rng = np.random.default_rng(1)
    points = list(zip(rng.integers(0, shape[0], N_RANDOM),
                      rng.integers(0, shape[1], N_RANDOM), strict=True))  # fmt: skip
    if impl == "limit":
        return limit_random(first, [y * shape[1] + x for y, x in points])
    (d,) = reader(impl)(str(first), lazy=True, **snake(first))
    data = d["data"]
    np.asarray(data[0, 0])  # the first compute pays dask's warm-up
    t = time.perf_counter()
    frames = [np.asarray(data[int(y), int(x)]) for y, x in points]
    assert len(frames) == N_RANDOM
    return time.perf_counter() - t


def op_headers(impl, first):
    """Every frame header, no pixels, of a recording of 100k small frames."""
    first = header_recording(first)
    paths = parts_of(first)
    if impl == "limit":
        record = FHB + HEADER_FRAME[0] * HEADER_FRAME[1] * 2
        fds = [os.open(p, os.O_RDONLY) for p in paths]
        buf = bytearray(FHB)
        t = time.perf_counter()
        for k, fd in enumerate(fds):
            start = 256 * (k == 0)
            for off in range(start, paths[k].stat().st_size, record):
                os.preadv(fd, [buf], off)
        elapsed = time.perf_counter() - t
        for fd in fds:
            os.close(fd)
        return elapsed
    if impl != "rsciio_tvips":
        return float("nan")  # rsciio.tvips keeps the first frame header only
    from rsciio_tvips import TvipsRecording

    t = time.perf_counter()
    headers = TvipsRecording(first).frame_headers
    elapsed = time.perf_counter() - t
    assert headers["rotidx"][-1] == headers.size == HEADER_FRAMES
    return elapsed


def op_distributed(impl, first):
    """Lazy sum on a LocalCluster of 2 worker processes (warm workers)."""
    if impl == "limit":
        limit_memmap_sum(first)
        return None
    if impl != "rsciio_tvips":
        return float("nan")  # its graph holds np.memmap arrays: pickled whole
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     memory_limit="2GiB", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        (d,) = reader(impl)(str(first), lazy=True, **snake(first))
        # a max first, untimed: both workers start up and import what the
        # tasks need (a max: its keys differ, nothing of it is reused)
        client.compute(d["data"].max(axis=(0, 1))).result()
        t = time.perf_counter()
        client.compute(d["data"].sum(axis=(0, 1))).result()
        return time.perf_counter() - t


def write_signal(data, lazy):
    n = data.shape[0]
    return {
        "data": data,
        "axes": [
            {"name": "time", "size": n, "scale": 0.01, "offset": 0.0, "units": "s",
             "navigate": True},
            {"name": "y", "size": FRAME[0], "scale": 1.0, "offset": 0.0,
             "units": "1/nm", "navigate": False},
            {"name": "x", "size": FRAME[1], "scale": 1.0, "offset": 0.0,
             "units": "1/nm", "navigate": False},
        ],
        "metadata": {"General": {"date": "2026-01-01", "time": "00:00:00",
                                 "time_zone": "UTC"}},
        "attributes": {"_lazy": lazy},
    }  # fmt: skip


def write_data(n, lazy):
    if lazy:  # generated chunk by chunk: never in memory as a whole
        import dask.array as da

        per = max(1, 64 * 2**20 // (FRAME[0] * FRAME[1] * 2))
        ones = da.ones((n, *FRAME), dtype=np.uint16, chunks=(per, *FRAME))
        return ones * da.arange(n, dtype=np.uint16, chunks=per)[:, None, None]
    data = np.empty((n, *FRAME), np.uint16)
    data[:] = np.arange(FRAME[1], dtype=np.uint16)
    return data


def write_folder(first: Path) -> Path:
    folder = first.parent / "write"
    folder.mkdir(exist_ok=True)
    for p in folder.glob("*.tvips"):
        p.unlink()
    return folder


def op_write(impl, first, lazy):
    n = n_frames_of(first)
    folder = write_folder(first)
    try:
        if impl == "limit":
            return limit_write(folder, n, lazy)
        if impl == "rsciio_tvips":
            from rsciio_tvips import file_writer as writer
        else:
            from rsciio.tvips import file_writer as writer
        signal = write_signal(write_data(n, lazy), lazy)
        per = -(-n // 4)
        os.sync()  # start with no dirty pages of earlier runs to write back
        t = time.perf_counter()
        writer(str(folder / "w.tvips"), signal, max_file_size=256 + per * RECORD,
               show_progressbar=False)  # fmt: skip
        return time.perf_counter() - t
    finally:
        for p in folder.glob("*.tvips"):
            p.unlink()


def limit_write(folder, n, lazy):
    elapsed = 0.0
    if lazy:  # computing the dask data chunk by chunk, nothing written
        data = write_data(n, True)
        t = time.perf_counter()
        for a, b in itertools.pairwise(np.cumsum((0, *data.chunks[0]))):
            np.asarray(data[a:b])
        elapsed = time.perf_counter() - t
    records = np.ones((n, RECORD), np.uint8)
    per = -(-n // 4)
    os.sync()
    t = time.perf_counter()
    for k in range(4):
        with open(folder / f"lim_{k:03d}.tvips", "wb") as f:
            if k == 0:
                f.write(bytes(256))
            f.write(memoryview(records[k * per : (k + 1) * per]))
    return elapsed + time.perf_counter() - t


SUM = "lazy sum over frames"
#: the same through rsciio_tvips's opt-in memmap path
SUM_MMAP = "lazy sum (io=mmap)"
#: the suffix of the rows whose child drops the page cache before timing
COLD = ", cold"
#: the suffix of the rows that time a process's second lazy sum
AGAIN = ", again"
#: name: (function, whether the cost grows with the recording's size)
OPS = {
    "lazy open": (op_open, False),
    "lazy open, snake scan": (op_open_scan, False),
    "eager load": (op_eager, True),
    "eager load, snake scan": (op_eager_scan, True),
    SUM: (op_sum, True),
    SUM_MMAP: (lambda impl, first: op_sum(impl, first, io="mmap"), True),
    SUM + AGAIN: (op_sum_again, True),
    SUM_MMAP + AGAIN: (lambda impl, first: op_sum_again(impl, first, "mmap"), True),
    SUM + COLD: (op_sum_cold, True),
    SUM_MMAP + COLD: (lambda impl, first: op_sum_cold(impl, first, io="mmap"), True),
    "lazy VBF, snake scan (limit: full)": (op_vbf, True),
    "lazy sum, LocalCluster 2 procs": (op_distributed, True),
    f"{N_RANDOM} random frames, 1 by 1": (op_random, False),
    f"{N_RANDOM} random frames, read_frames": (op_random_direct, False),
    f"{N_RANDOM} random scan points, 1 by 1": (op_random_scan, False),
    f"header pass, {HEADER_FRAMES // 1000}k frames": (op_headers, False),
    "eager write": (lambda impl, first: op_write(impl, first, False), True),
    "lazy write": (lambda impl, first: op_write(impl, first, True), True),
}


#: The rows LiberTEM runs (its SumUDF); its cells of the others are n/a.
LIBERTEM_OPS = (SUM, SUM + AGAIN, SUM + COLD)


def header_recording(first: Path) -> Path:
    folder = first.parent.parent / "headers"
    return write_recording(folder, part_frames(HEADER_FRAMES, 2, 0), HEADER_FRAME)


def child(op, impl, first, save=None):
    import dask.array

    # dask's first compute in a process imports more of dask (about 0.25 s
    # here); that one-time cost is neither ours nor rsciio's, so pay it first.
    dask.array.zeros(4, chunks=2).sum().compute()
    if impl in ("rsciio_tvips", "rsciio.tvips"):
        reader(impl)
    elif impl.startswith("libertem:"):
        from peer_libertem import warm

        # made and warmed up once per process, its TVIPS path too, like dask
        # above
        warm(Path(first), impl.partition(":")[2])
    if op.endswith(COLD):
        # after the imports and warm-ups, just before the timing: only the
        # recording is read from disk then, not the libraries
        drop_caches()
    t = time.perf_counter()
    result = OPS[op][0](impl, Path(first))
    elapsed = time.perf_counter() - t
    if not isinstance(result, dict):  # None: the whole call; a float: the seconds
        result = {"time": elapsed if result is None else result}
    if save and result.get("value") is not None:
        np.save(save, np.asarray(result["value"]))
    # VmHWM: the peak RSS of this process since exec
    with open("/proc/self/status") as f:
        hwm = next(
            int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM")
        )
    print(json.dumps({"time": result.get("time", elapsed),
                      "rss": result.get("rss", hwm)}))  # fmt: skip


class ChildError(RuntimeError):
    """A measurement's child process failed; the message ends with its stderr."""


def run_child(op, impl, first, args) -> dict:
    """One run of ``op`` by ``impl`` in a fresh process: time, rss and its sum.

    ``value`` is the sum the child computed, or None for operations that
    return none. LiberTEM runs under the Python of its own environment.
    """
    python, name = sys.executable, impl
    if impl == "libertem":
        python, name = args.libertem_python, f"libertem:{args.libertem_context}"
    save = Path(first).parent / "child_sum.npy"
    save.unlink(missing_ok=True)
    proc = subprocess.run(
        [python, __file__, "--child", op, name, str(first), "--save", str(save)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode:
        err = "\n    ".join(proc.stderr.strip().splitlines()[-5:])
        msg = f"{op!r} by {name} exited with {proc.returncode}:\n    {err}"
        raise ChildError(msg)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["value"] = np.load(save) if save.exists() else None
    return out


def measure(op, impl, first, repeat, args):
    runs = [run_child(op, impl, first, args) for _ in range(repeat)]
    return (
        statistics.median(r["time"] for r in runs),
        statistics.median(r["rss"] for r in runs),
    )


def numpy_sum(first: Path) -> np.ndarray:
    """The sum over frames of every pixel, by numpy from the records' bytes."""
    total = np.zeros(FRAME[0] * FRAME[1], np.uint64)
    for m in record_maps(first):
        for a in range(0, len(m), 1024):  # a block at a time: little memory
            total += m[a : a + 1024, FHB // 2 :].sum(axis=0, dtype=np.uint64)
    return total.reshape(FRAME)


def sum_mismatch(value: np.ndarray, truth: np.ndarray) -> str:
    """'' when ``value`` equals ``truth`` exactly, else how they differ."""
    if value.shape != truth.shape:
        return f"shape {value.shape}, expected {truth.shape}"
    bad = value != truth  # uint64 against float32: compared as float64, exact
    if not bad.any():
        return ""
    worst = np.abs(value.astype(np.float64) - truth.astype(np.float64)).max()
    msg = (f"differs at {int(bad.sum())} of {bad.size} pixels "
           f"(largest difference {worst:g})")  # fmt: skip
    if value.dtype == np.float32 and truth.max() > 2**24:
        msg += "; float32 sums (SumUDF's default) hold integers exactly to 2**24 only"
    return msg


def applies(op, impl, args) -> bool:
    """Whether ``impl`` has ``op`` at all (its cell is n/a, no process, if not)."""
    if impl == "libertem":
        return op in LIBERTEM_OPS
    if impl == args.compare:
        return not op.startswith(SUM_MMAP)  # rsciio.tvips has no memmap option
    return True


def row_unavailable(op, args) -> str:
    """Why the row ``op`` cannot run here at all, or ''."""
    if op.endswith(COLD) and args.cold_reason:
        return f"cold rows: {args.cold_reason}"
    if op.startswith(SUM_MMAP) and args.mmap_reason:
        return f"io=mmap rows: {args.mmap_reason}"
    return ""


def too_big(op, first) -> float:
    """Peak RSS rsciio.tvips would need for ``op``, if more than 70 % of RAM."""
    kind = op if op.endswith("write") else "read"
    if any(word in op for word in ("header", "read_frames", "LocalCluster")):
        return 0.0  # rsciio.tvips has no such operation: nothing to skip
    need = RSCIIO_RSS[kind] * stream_bytes(first)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return need if need > 0.7 * total else 0.0


def warm(first: Path) -> None:
    for p in parts_of(first):
        with open(p, "rb") as f:
            while f.read(64 * 2**20):
                pass


def cell(t, rss):
    return f"{t:8.3f} s {rss / 1e9:6.2f} GB" if t == t else f"{'n/a':>20s}"


def times(a, b):
    """``a / b`` as a table cell, n/a where either is missing."""
    return f"{a / b:10.1f}x" if a == a and b == b and b > 0 else f"{'n/a':>11s}"


def run_size(args, size: int) -> dict:
    folder = Path(args.dir) / f"{size // 2**20}MiB"
    n = size // (FRAME[0] * FRAME[1] * 2)
    first = write_recording(folder, part_frames(n, args.parts, args.first_part_frames))
    header_recording(first)
    peers = [*([args.compare] if args.compare else []),
             *(["libertem"] if args.libertem else [])]  # fmt: skip
    impls = ["rsciio_tvips", *peers, "limit"]
    label = {"libertem": f"LiberTEM {args.libertem}"}
    paths = parts_of(first)
    total = sum(p.stat().st_size for p in paths)
    counts = "+".join(str((p.stat().st_size - 256 * (i == 0)) // RECORD)
                      for i, p in enumerate(paths))  # fmt: skip
    print(
        f"\nrecording: {len(paths)} parts ({counts} frames), {total / 2**30:.2f} "
        f"GiB, {n_frames_of(first)} frames {FRAME[0]}x{FRAME[1]} uint16, scan "
        f"{scan_shape_for(first)}, {args.repeat} runs per cell (median), "
        f"{os.cpu_count()} cores, numpy {np.__version__}"
    )
    ratios = " | ours/limit | rsciio/ours |" + (
        " LiberTEM/ours |" if args.libertem else ""
    )
    print(f"| {'operation':38s} | "
          + " | ".join(f"{label.get(i, i):>20s}" for i in impls) + ratios)  # fmt: skip
    print("|" + "---|" * (1 + len(impls) + ratios.count("/")))
    results, skipped, unavailable, failures = {}, [], {}, []
    truth, checked = None, set()
    for op in (op for op in OPS if args.only in op):
        why = row_unavailable(op, args)
        if why:
            unavailable.setdefault(why, []).append(op)
            continue
        cells = {impl: (float("nan"), 0) for impl in impls}
        runs = {impl: [] for impl in impls if applies(op, impl, args)}
        if args.compare in runs and too_big(op, first):
            skipped.append(op)
            del runs[args.compare]
        # Round robin: one run of each implementation in turn, so that the
        # machine's drift over a row (other tenants, the page cache) falls on
        # all of them alike instead of on whichever ran last.
        for _ in range(args.repeat):
            for impl in list(runs):
                if not op.endswith(COLD):
                    warm(first)  # a write or another cell may have evicted it
                try:
                    if impl == "libertem" and not args.libertem_primed:
                        # one run ever first, untimed: it compiles LiberTEM's
                        # numba kernels into their on-disk cache (about 2 s),
                        # which every later process loads instead
                        run_child(SUM, impl, first, args)
                        args.libertem_primed = True
                    got = run_child(op, impl, first, args)
                except ChildError as exc:
                    if impl not in peers:
                        raise  # ours or the limit: the benchmark itself is wrong
                    # a peer that fails is reported, and the run goes on
                    failures.append(f"{label.get(impl, impl)} failed: {exc}")
                    del runs[impl]
                    continue
                runs[impl].append((got["time"], got["rss"]))
                if got["value"] is not None:
                    truth = numpy_sum(first) if truth is None else truth
                    bad = sum_mismatch(got["value"], truth)
                    if bad:
                        msg = f"MISMATCH: {op}, {label.get(impl, impl)}: {bad}"
                        print(f"!!! {msg} !!!", flush=True)
                        args.mismatches.append(msg)
                    checked.add(label.get(impl, impl))
        for impl, got in runs.items():
            if got:
                cells[impl] = (statistics.median(t for t, _ in got),
                               statistics.median(r for _, r in got))  # fmt: skip
        ours, lim = cells["rsciio_tvips"][0], cells["limit"][0]
        ratio = times(ours, lim)
        other = times(cells[args.compare][0], ours) if args.compare else times(0, 0)
        if args.libertem:
            other += " | " + times(cells["libertem"][0], ours)
        row = " | ".join(cell(*c) for c in cells.values())
        print(f"| {op:38s} | {row} | {ratio} | {other} |", flush=True)
        results[op] = cells
        if op.startswith("lazy VBF"):
            box = measure(op, "limit-box", first, args.repeat, args)[0]
            note = f"numpy touching only the 40x40 box: {box:.3f} s"
            print(f"| {note:38s} | ours / that: {ours / box:.1f}x |", flush=True)
        if op.endswith("1 by 1") and "scan" not in op:
            floor = measure(op, "dask floor", first, args.repeat, args)[0]
            note = f"dask alone, in-memory array: {floor:.3f} s"
            print(f"| {note:38s} | ours / that: {ours / floor:.1f}x |", flush=True)
        if op.endswith(COLD):
            stream = stream_bytes(first) / 1e9
            note = f"cat, page cache dropped: {stream / lim:.2f} GB/s"
            print(f"| {note:38s} | ours: {stream / ours:.2f} GB/s |", flush=True)
    if skipped:
        print(f"{args.compare} skipped (needs > 70 % of RAM): {', '.join(skipped)}")
    for why, ops in unavailable.items():
        print(f"skipped {why}: {', '.join(ops)}")
    for failure in failures:
        print(f"!!! {failure}")
    if checked:
        state = "MISMATCHES ABOVE" if args.mismatches else "all equal"
        print(f"sums checked against numpy's sum of the records "
              f"({', '.join(sorted(checked))}): {state}")  # fmt: skip
    return {"bytes": total, "results": results}


def linearity(runs: dict) -> None:
    sizes = sorted(runs)
    print("\ncost per GiB of recording (s/GiB) at each size; last column: "
          "largest / smallest")  # fmt: skip
    head = " | ".join(f"{s / 2**30:>7.1f} GiB" for s in sizes)
    print(f"| {'operation':38s} | {head} | ratio |")
    print("|" + "---|" * (len(sizes) + 2))
    for op, (_, scales) in OPS.items():
        if not scales or not all(op in runs[s]["results"] for s in sizes):
            continue
        per = [runs[s]["results"][op]["rsciio_tvips"][0] / (runs[s]["bytes"] / 2**30)
               for s in sizes]  # fmt: skip
        cells = " | ".join(f"{p:11.3f}" for p in per)
        print(f"| {op:38s} | {cells} | {per[-1] / per[0]:5.2f} |")


def libertem_version(python: str) -> tuple[str, str]:
    """LiberTEM's version under ``python``, or '' and why there is none."""
    if not python:
        return "", "--libertem-python is ''"
    if not Path(python).exists():
        return "", f"no {python} (docs/performance.rst, Reproduce, says how to make it)"
    proc = subprocess.run(
        [python, "-c", "import libertem; print(libertem.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return "", f"{python} cannot import libertem ({last})"
    return proc.stdout.strip(), ""


def watch_row(args) -> None:
    """Print how far ``tvips watch`` stays behind a writer (watch_lag.py)."""
    script = Path(__file__).with_name("watch_lag.py")
    rows = ([], ["--io", "mmap"], ["--picture"], ["--catch-up"],
            ["--catch-up", "--io", "mmap"], ["--catch-up", "--busy"])  # fmt: skip
    for picture in rows:
        proc = subprocess.run(
            [sys.executable, str(script), "--size", args.watch_size, "--json",
             *picture], capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode:
            print(f"watch: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        import watch_lag

        print(watch_lag.describe(json.loads(proc.stdout.splitlines()[-1])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1GiB,8GiB", help="comma-separated sizes")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--first-part-frames", type=int, default=LIBERTEM_FIRST_PART,
                    help="least frames in the first part (0: even parts)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/rsciio_tvips_bench")
    ap.add_argument("--compare", default="rsciio.tvips", help="'' to skip rsciio")
    default_lt = str(LIBERTEM_PYTHON) if LIBERTEM_PYTHON.exists() else ""
    ap.add_argument("--libertem-python", default=default_lt,
                    help="Python of LiberTEM's venv ('' to skip LiberTEM)")  # fmt: skip
    ap.add_argument("--libertem-context", default="threads", choices=CONTEXTS,
                    help="LiberTEM's executor (threads: 2 of them)")  # fmt: skip
    ap.add_argument("--only", default="", help="run the operations whose name has this")
    ap.add_argument("--watch-size", default="4GiB",
                    help="the acquisition tvips watch follows")  # fmt: skip
    ap.add_argument("--child", nargs=3, metavar=("OP", "IMPL", "PATH"))
    ap.add_argument("--save", help="(child) where to save the sum it computed")
    args = ap.parse_args()
    if args.child:
        child(*args.child, save=args.save)
        return
    import dask

    import rsciio_tvips

    print(f"rsciio_tvips {rsciio_tvips.__version__}, dask {dask.__version__}, "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    selected = [op for op in OPS if args.only in op]
    args.libertem, why = "", "no row of it selected"
    if any(op in LIBERTEM_OPS for op in selected):
        args.libertem, why = libertem_version(args.libertem_python)
    if args.libertem:
        print(f"LiberTEM {args.libertem} (SumUDF, {args.libertem_context!r} "
              f"context) from {args.libertem_python}")  # fmt: skip
    else:
        print(f"LiberTEM skipped: {why}")
    args.cold_reason = ""
    if any(op.endswith(COLD) for op in selected):
        args.cold_reason = cold_unavailable()
    params = inspect.signature(rsciio_tvips.file_reader).parameters
    args.mmap_reason = "" if "io" in params else (
        f"rsciio_tvips {rsciio_tvips.__version__}: file_reader has no io= parameter"
    )  # fmt: skip
    args.mismatches, args.libertem_primed = [], False
    runs = {}
    for text in args.size.split(",") if args.only != "watch" else []:
        size = parse_size(text)
        runs[size] = run_size(args, size)
    if len(runs) > 1:
        linearity(runs)
    if args.only in ("", "watch"):
        watch_row(args)
    if args.mismatches:
        print("\n!!! sums that differ from numpy's:\n" + "\n".join(args.mismatches))
        sys.exit(1)


if __name__ == "__main__":
    main()
