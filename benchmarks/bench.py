"""The benchmark suite: rsciio_tvips against rsciio.tvips and the machine's limits.

Usage::

    python benchmarks/bench.py [--size 1GiB,8GiB] [--repeat 3] [--parts 4]
                               [--compare rsciio.tvips] [--only TEXT]
                               [--dir /tmp/rsciio_tvips_bench]

For each size it writes (once, reused afterwards) a version 2 recording of
256x256 uint16 frames with 60-byte frame headers in ``--parts`` parts, whole
records per part so that rsciio.tvips can read it, warms the page cache, runs
every measurement in a fresh Python process ``--repeat`` times and prints the
medians: wall time of the operation and the peak RSS of the process (imports
included). With several sizes it ends with the cost per GiB of each
operation at each size, to show that the cost grows linearly.

The limits are what the machine does with the same bytes and no library:
``readinto`` of the files into one preallocated array with 2 threads (eager
loads), ``np.memmap`` of the records summed by numpy with 2 threads (lazy
sums; for the virtual bright field, numpy summing whole frames in place),
``os.preadv`` of each frame (random frames) and of each frame header (header
pass), reading the 256-byte header (open), ``write()`` of records assembled
beforehand (eager write; plus computing the dask data, lazy write).

A cell of rsciio.tvips is skipped when it would need more than 70 % of the
machine's memory (it reads a whole recording into memory about 2.2 times).
"""

from __future__ import annotations

import argparse
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

FRAME = (256, 256)
FHB = 60
RECORD = FHB + FRAME[0] * FRAME[1] * 2
N_RANDOM = 100
#: The header-pass recording: many small frames.
HEADER_FRAMES, HEADER_FRAME = 100_000, (32, 32)
BOX = (slice(108, 148), slice(108, 148))  # a 40 x 40 bright-field aperture
#: Peak RSS of rsciio.tvips as a multiple of the recording (measured at 2 GiB).
RSCIIO_RSS = {"read": 2.3, "eager write": 1.5, "lazy write": 0.5}


def parse_size(text: str) -> int:
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


# --- the recordings --------------------------------------------------------


def write_recording(folder: Path, n: int, parts: int, frame=FRAME) -> Path:
    """Write ``n`` frames as ``bench_NNN.tvips`` unless they are there already."""
    record = FHB + frame[0] * frame[1] * 2
    per = -(-n // parts)
    parts = -(-n // per)
    first = folder / "bench_000.tvips"
    expected = [256 * (k == 0) + record * min(per, n - k * per) for k in range(parts)]
    paths = [folder / f"bench_{k:03d}.tvips" for k in range(parts)]
    existing = sorted(folder.glob("bench_*.tvips"))
    if existing == paths and [p.stat().st_size for p in paths] == expected:
        return first
    folder.mkdir(parents=True, exist_ok=True)
    for p in existing:
        p.unlink()
    header = np.zeros(64, "<u4")
    header[:13] = [256, 2, frame[1], frame[0], 16, 0, 0, 1, 1, 1, 300, 100, FHB]
    block = max(1, 2**25 // record)
    for k in range(parts):
        with open(paths[k], "wb") as f:
            if k == 0:
                f.write(header.tobytes())
            start, stop = k * per, min(n, (k + 1) * per)
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


# --- the operations, each run in a child process -----------------------------
# Each returns None (the whole call is timed) or the seconds of the part that
# is measured (the open or the set-up excluded).


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


def op_sum(impl, first):
    if impl == "limit":
        limit_memmap_sum(first)
        return None
    (d,) = reader(impl)(str(first), lazy=True)
    d["data"].sum(axis=0).compute()
    return None


def op_vbf(impl, first):
    """Virtual bright field (40 x 40 box) over a snake scan with hysteresis."""
    if impl.startswith("limit"):
        limit_memmap_frame_sums(first, box=impl == "limit-box")
        return None
    (d,) = reader(impl)(str(first), lazy=True, **snake(first))
    d["data"][:, :, BOX[0], BOX[1]].sum(axis=(2, 3)).compute()
    return None


def op_random(impl, first):
    """100 frames of the stack, each asked for on its own (browsing)."""
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


#: name: (function, whether the cost grows with the recording's size)
OPS = {
    "lazy open": (op_open, False),
    "lazy open, snake scan": (op_open_scan, False),
    "eager load": (op_eager, True),
    "eager load, snake scan": (op_eager_scan, True),
    "lazy sum over frames": (op_sum, True),
    "lazy VBF, snake scan (limit: full)": (op_vbf, True),
    "lazy sum, LocalCluster 2 procs": (op_distributed, True),
    f"{N_RANDOM} random frames, 1 by 1": (op_random, False),
    f"{N_RANDOM} random frames, read_frames": (op_random_direct, False),
    f"{N_RANDOM} random scan points, 1 by 1": (op_random_scan, False),
    f"header pass, {HEADER_FRAMES // 1000}k frames": (op_headers, False),
    "eager write": (lambda impl, first: op_write(impl, first, False), True),
    "lazy write": (lambda impl, first: op_write(impl, first, True), True),
}


def header_recording(first: Path) -> Path:
    folder = first.parent.parent / "headers"
    return write_recording(folder, HEADER_FRAMES, 2, HEADER_FRAME)


def child(op, impl, first):
    import dask.array

    # dask's first compute in a process imports more of dask (about 0.25 s
    # here); that one-time cost is neither ours nor rsciio's, so pay it first.
    dask.array.zeros(4, chunks=2).sum().compute()
    if impl in ("rsciio_tvips", "rsciio.tvips"):
        reader(impl)
    t = time.perf_counter()
    result = OPS[op][0](impl, Path(first))
    elapsed = time.perf_counter() - t if result is None else result
    # VmHWM: the peak RSS of this process since exec
    with open("/proc/self/status") as f:
        hwm = next(
            int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM")
        )
    print(json.dumps({"time": elapsed, "rss": hwm}))


def measure(op, impl, first, repeat):
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", op, impl, str(first)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return (
        statistics.median(r["time"] for r in runs),
        statistics.median(r["rss"] for r in runs),
    )


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


def run_size(args, size: int) -> dict:
    folder = Path(args.dir) / f"{size // 2**20}MiB"
    first = write_recording(folder, size // (FRAME[0] * FRAME[1] * 2), args.parts)
    header_recording(first)
    impls = ["rsciio_tvips", *([args.compare] if args.compare else []), "limit"]
    total = sum(p.stat().st_size for p in parts_of(first))
    print(
        f"\nrecording: {len(parts_of(first))} parts, {total / 2**30:.2f} GiB, "
        f"{n_frames_of(first)} frames {FRAME[0]}x{FRAME[1]} uint16, scan "
        f"{scan_shape_for(first)}, {args.repeat} runs per cell (median), "
        f"{os.cpu_count()} cores, numpy {np.__version__}"
    )
    print(f"| {'operation':38s} | " + " | ".join(f"{i:>20s}" for i in impls)
          + " | ours/limit | rsciio/ours |")  # fmt: skip
    print("|" + "---|" * (len(impls) + 3))
    results, skipped = {}, []
    for op in (op for op in OPS if args.only in op):
        cells = {}
        runs = {impl: [] for impl in impls}
        if args.compare and too_big(op, first):
            skipped.append(op)
            del runs[args.compare]
            cells[args.compare] = (float("nan"), 0)
        # Round robin: one run of each implementation in turn, so that the
        # machine's drift over a row (other tenants, the page cache) falls on
        # all of them alike instead of on whichever ran last.
        for _ in range(args.repeat):
            for impl in runs:
                warm(first)  # a write or another cell may have evicted it
                runs[impl].append(measure(op, impl, first, 1))
        for impl, got in runs.items():
            cells[impl] = (statistics.median(t for t, _ in got),
                           statistics.median(r for _, r in got))  # fmt: skip
        cells = {impl: cells[impl] for impl in impls}  # table order
        ours, lim = cells["rsciio_tvips"][0], cells["limit"][0]
        theirs = cells[args.compare][0] if args.compare else float("nan")
        ratio = f"{ours / lim:10.1f}x" if lim > 0 else f"{'n/a':>11s}"
        other = f"{theirs / ours:10.1f}x" if theirs == theirs else f"{'n/a':>11s}"
        row = " | ".join(cell(*c) for c in cells.values())
        print(f"| {op:38s} | {row} | {ratio} | {other} |", flush=True)
        results[op] = cells
        if op.startswith("lazy VBF"):
            box = measure(op, "limit-box", first, args.repeat)[0]
            note = f"numpy touching only the 40x40 box: {box:.3f} s"
            print(f"| {note:38s} | ours / that: {ours / box:.1f}x |", flush=True)
        if op.endswith("1 by 1") and "scan" not in op:
            floor = measure(op, "dask floor", first, args.repeat)[0]
            note = f"dask alone, in-memory array: {floor:.3f} s"
            print(f"| {note:38s} | ours / that: {ours / floor:.1f}x |", flush=True)
    if skipped:
        print(f"{args.compare} skipped (needs > 70 % of RAM): {', '.join(skipped)}")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1GiB,8GiB", help="comma-separated sizes")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/rsciio_tvips_bench")
    ap.add_argument("--compare", default="rsciio.tvips", help="'' to skip rsciio")
    ap.add_argument("--only", default="", help="run the operations whose name has this")
    ap.add_argument("--child", nargs=3, metavar=("OP", "IMPL", "PATH"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    import dask

    import rsciio_tvips

    print(f"rsciio_tvips {rsciio_tvips.__version__}, dask {dask.__version__}, "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    runs = {}
    for text in args.size.split(","):
        size = parse_size(text)
        runs[size] = run_size(args, size)
    if len(runs) > 1:
        linearity(runs)


if __name__ == "__main__":
    main()
