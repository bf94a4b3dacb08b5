"""Reading benchmark: rsciio_tvips against rsciio.tvips and the machine's limits.

Usage::

    python benchmarks/bench_read.py [--size 2GiB] [--parts 4] [--repeat 5]
                                    [--dir /tmp/rsciio_tvips_bench]

Writes (once, reused afterwards) a version 2 recording of 256x256 uint16
frames with 60-byte frame headers, whole records per part so that
rsciio.tvips can read it, warms the page cache, then runs every measurement
in a fresh Python process ``--repeat`` times and prints the medians: wall
time of the operation and the peak RSS of the process (imports included).

The limits are what the machine does with the same bytes and no library:
``readinto`` of the files into one preallocated array with 2 threads (eager
load), ``np.memmap`` of the records summed by numpy with 2 threads (sum over
frames), ``os.pread`` of 100 frames (random frames), and reading the 256-byte
header (open).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def parse_size(text: str) -> int:
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def write_recording(folder: Path, size: int, parts: int) -> Path:
    """Write the benchmark recording unless it is there already."""
    n = size // (FRAME[0] * FRAME[1] * 2)
    per = -(-n // parts)
    first = folder / "bench_000.tvips"
    expected = [256 * (k == 0) + RECORD * min(per, n - k * per) for k in range(parts)]
    paths = [folder / f"bench_{k:03d}.tvips" for k in range(parts)]
    if all(p.exists() for p in paths) and [p.stat().st_size for p in paths] == expected:
        return first
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob("bench_*.tvips"):
        p.unlink()
    header = np.zeros(64, "<u4")
    header[:13] = [256, 2, FRAME[1], FRAME[0], 16, 0, 0, 1, 1, 1, 300, 100, FHB]
    block = 256
    for k in range(parts):
        with open(paths[k], "wb") as f:
            if k == 0:
                f.write(header.tobytes())
            start, stop = k * per, min(n, (k + 1) * per)
            for a in range(start, stop, block):
                b = min(stop, a + block)
                rec = np.zeros((b - a, RECORD // 2), "<u2")
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


# --- the measured operations, each run in a child process -------------------


def op_open(impl, first):
    if impl == "limit":
        with open(first, "rb") as f:
            f.read(256)
        return None
    (d,) = reader(impl)(str(first), lazy=True)
    return d["data"].shape


def op_eager(impl, first):
    if impl == "limit":
        paths = parts_of(first)
        sizes = [p.stat().st_size - 256 * (i == 0) for i, p in enumerate(paths)]
        buf = np.empty(sum(sizes), np.uint8)
        starts = np.cumsum([0, *sizes])

        def load(i):
            with open(paths[i], "rb", buffering=0) as f:
                f.seek(256 * (i == 0))
                f.readinto(memoryview(buf[starts[i] : starts[i + 1]]))

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(load, range(len(paths))))
        return buf.size
    (d,) = reader(impl)(str(first), lazy=False)
    return d["data"].shape


def op_sum(impl, first):
    if impl == "limit":
        paths = parts_of(first)
        maps = [
            np.memmap(p, "<u2", "r", offset=256 * (i == 0)).reshape(-1, RECORD // 2)
            for i, p in enumerate(paths)
        ]
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(lambda m: m.sum(axis=0, dtype=np.uint64), maps))
        return int(np.sum(parts, axis=0)[FHB // 2 :].sum())
    (d,) = reader(impl)(str(first), lazy=True)
    return int(d["data"].sum(axis=0).compute().sum())


def random_indices(n):
    return np.random.default_rng(0).integers(0, n, N_RANDOM)


def op_random(impl, first):
    """100 frames, each asked for on its own (browsing a stack)."""
    if impl == "limit":
        return random_limit(first)
    (d,) = reader(impl)(str(first), lazy=True)
    data = d["data"]
    np.asarray(data[0])  # the first compute pays dask's warm-up
    t = time.perf_counter()
    frames = [np.asarray(data[int(i)]) for i in random_indices(data.shape[0])]
    elapsed = time.perf_counter() - t
    assert len(frames) == N_RANDOM
    return elapsed


def op_random_batch(impl, first):
    """100 frames computed together: one dask.compute of 100 slices."""
    if impl == "limit":
        return random_limit(first)
    import dask

    (d,) = reader(impl)(str(first), lazy=True)
    data = d["data"]
    t = time.perf_counter()
    frames = dask.compute(*[data[int(i)] for i in random_indices(data.shape[0])])
    elapsed = time.perf_counter() - t
    assert len(frames) == N_RANDOM
    return elapsed


def op_random_direct(impl, first):
    """100 frames through the library's own frame API, no dask."""
    if impl == "limit":
        return random_limit(first)
    if impl != "rsciio_tvips":
        return float("nan")  # rsciio.tvips has no frame API
    from rsciio_tvips import TvipsRecording

    rec = TvipsRecording(first)
    t = time.perf_counter()
    frames = rec.read_frames(random_indices(rec.n_frames))
    elapsed = time.perf_counter() - t
    assert len(frames) == N_RANDOM
    return elapsed


def op_headers(impl, first):
    """Every frame header, no pixels (rotidx and times of every frame)."""
    paths = parts_of(first)
    if impl == "limit":
        fds = [os.open(p, os.O_RDONLY) for p in paths]
        sizes = [p.stat().st_size - 256 * (i == 0) for i, p in enumerate(paths)]
        t = time.perf_counter()
        headers = []
        for k, fd in enumerate(fds):
            for off in range(256 * (k == 0), 256 * (k == 0) + sizes[k], RECORD):
                headers.append(os.pread(fd, FHB, off))
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
    assert headers["rotidx"][-1] == headers.size
    return elapsed


SCAN = (128, 128)  # the 16384 frames of the 2 GiB recording as a scan
SNAKE = {"scan_shape": SCAN, "winding_scan_axis": "x", "hysteresis": 3}
BOX = (slice(108, 148), slice(108, 148))  # a 40 x 40 bright-field aperture


def scan_shape_for(first):
    n = sum(p.stat().st_size - 256 * (i == 0) for i, p in enumerate(parts_of(first)))
    n //= RECORD
    side = int(n**0.5)
    return (side, side)


def op_vbf(impl, first):
    """Virtual bright field (40 x 40 box) over a snake scan with hysteresis."""
    shape = scan_shape_for(first)
    if impl.startswith("limit"):
        paths = parts_of(first)
        maps = [
            np.memmap(p, "<u2", "r", offset=256 * (i == 0)).reshape(-1, RECORD // 2)
            for i, p in enumerate(paths)
        ]

        def vbf(m):
            frames = m[:, FHB // 2 :].reshape(-1, *FRAME)
            if impl == "limit":  # full frames
                return frames.sum(axis=(1, 2), dtype=np.uint64)
            return frames[:, BOX[0], BOX[1]].sum(axis=(1, 2), dtype=np.uint64)

        with ThreadPoolExecutor(2) as pool:
            return int(np.concatenate(list(pool.map(vbf, maps))).sum())
    kw = dict(SNAKE, scan_shape=shape)
    (d,) = reader(impl)(str(first), lazy=True, **kw)
    return int(d["data"][:, :, BOX[0], BOX[1]].sum(axis=(2, 3)).compute().sum())


def op_random_scan(impl, first):
    """100 random points of the snake scan, each asked for on its own."""
    if impl.startswith("limit"):
        return random_limit(first)
    shape = scan_shape_for(first)
    (d,) = reader(impl)(str(first), lazy=True, **dict(SNAKE, scan_shape=shape))
    data = d["data"]
    rng = np.random.default_rng(1)
    points = zip(
        rng.integers(0, shape[0], N_RANDOM),
        rng.integers(0, shape[1], N_RANDOM),
        strict=True,
    )
    np.asarray(data[0, 0])  # the first compute pays dask's warm-up
    t = time.perf_counter()
    frames = [np.asarray(data[int(y), int(x)]) for y, x in points]
    elapsed = time.perf_counter() - t
    assert len(frames) == N_RANDOM
    return elapsed


def random_limit(first):
    paths = parts_of(first)
    counts = [
        (p.stat().st_size - 256 * (i == 0)) // RECORD for i, p in enumerate(paths)
    ]
    starts = np.cumsum([0, *counts])
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    out = np.empty((N_RANDOM, *FRAME), np.uint16)
    t = time.perf_counter()
    for j, i in enumerate(random_indices(starts[-1])):
        k = int(np.searchsorted(starts, i, side="right") - 1)
        off = 256 * (k == 0) + (i - starts[k]) * RECORD + FHB
        os.preadv(fds[k], [memoryview(out[j])], int(off))
    elapsed = time.perf_counter() - t
    for fd in fds:
        os.close(fd)
    return elapsed


OPS = {
    "lazy open": op_open,
    "eager load": op_eager,
    "lazy sum over frames": op_sum,
    f"{N_RANDOM} random frames, 1 by 1": op_random,
    f"{N_RANDOM} random frames, 1 compute": op_random_batch,
    f"{N_RANDOM} random frames, read_frames": op_random_direct,
    "header-only pass, all frames": op_headers,
    "lazy VBF, snake scan (limit: full)": op_vbf,
    f"{N_RANDOM} random scan points, 1 by 1": op_random_scan,
}
#: Operations whose function returns the time of the part that is measured.
SELF_TIMED = ("random", "header-only")


def reader(impl):
    if impl == "rsciio_tvips":
        from rsciio_tvips import file_reader
    else:
        from rsciio.tvips import file_reader
    return file_reader


def child(op, impl, first):
    import dask.array

    # dask's first compute in a process imports more of dask (about 0.25 s
    # here); that one-time cost is neither ours nor rsciio's, so pay it first.
    dask.array.zeros(4, chunks=2).sum().compute()

    if impl == "rsciio_tvips":
        import rsciio_tvips  # noqa: F401
    elif impl == "rsciio.tvips":
        import rsciio.tvips  # noqa: F401
    t = time.perf_counter()
    result = OPS[op](impl, Path(first))
    elapsed = time.perf_counter() - t
    if any(word in op for word in SELF_TIMED):
        elapsed = result  # only the reads are timed, not the open
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"time": elapsed, "rss": rss}))


def measure(op, impl, first, repeat):
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", op, impl, str(first)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return (
        statistics.median(r["time"] for r in runs),
        statistics.median(r["rss"] for r in runs),
        [r["time"] for r in runs],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="2GiB")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/rsciio_tvips_bench")
    ap.add_argument("--compare", default="rsciio.tvips", help="'' to skip rsciio")
    ap.add_argument("--only", default="", help="run the operations whose name has this")
    ap.add_argument("--child", nargs=3, metavar=("OP", "IMPL", "PATH"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    size = parse_size(args.size)
    first = write_recording(Path(args.dir), size, args.parts)
    for p in parts_of(first):  # warm the page cache
        with open(p, "rb") as f:
            while f.read(64 * 2**20):
                pass
    total = sum(p.stat().st_size for p in parts_of(first))
    impls = ["rsciio_tvips", *([args.compare] if args.compare else []), "limit"]
    print(
        f"recording: {len(parts_of(first))} parts, {total / 2**30:.2f} GiB, "
        f"frames {FRAME[0]}x{FRAME[1]} uint16, {args.repeat} runs per cell "
        f"(median), {os.cpu_count()} cores, numpy {np.__version__}"
    )
    head = f"| {'operation':36s} | " + " | ".join(f"{i:>22s}" for i in impls)
    print(head + " | ours/limit | rsciio/ours |")
    print("|" + "---|" * (len(impls) + 3))
    for op in (op for op in OPS if args.only in op):
        cells = {impl: measure(op, impl, first, args.repeat) for impl in impls}

        row = f"| {op:36s} | "
        row += " | ".join(
            f"{t:8.3f} s {rss / 1e9:6.2f} GB" if t == t else f"{'n/a':>20s}"
            for t, rss, _ in cells.values()
        )
        ours, lim = cells["rsciio_tvips"][0], cells["limit"][0]
        ratio = f"{ours / lim:10.1f}x" if lim > 0 else "n/a"
        theirs = cells[args.compare][0] if args.compare else float("nan")
        other = f"{theirs / ours:10.1f}x" if theirs == theirs else f"{'n/a':>11s}"
        print(row + f" | {ratio} | {other} |", flush=True)
        if op.startswith("lazy VBF"):
            box = measure(op, "limit-box", first, args.repeat)
            note = f"numpy touching only the 40x40 box: {box[0]:.3f} s"
            print(f"| {note:36s} | ours / that: {ours / box[0]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
