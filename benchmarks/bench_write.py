"""Writing benchmark: rsciio_tvips against rsciio.tvips and plain write().

Usage::

    python benchmarks/bench_write.py [--size 2GiB] [--repeat 3]
                                     [--dir /tmp/rsciio_tvips_bench_write]

Writes ``--size`` of 256x256 uint16 frames as a 4-part recording, eagerly
from a numpy array and lazily from a dask array (64 MiB chunks, generated on
the fly so that the data never exist in memory as a whole), each run in a
fresh process, and prints medians of wall time and peak RSS. The limit is
``write()`` of the same bytes (records assembled beforehand, not timed)
into fresh files without ``fsync``. Output files are deleted after each run
and ``sync`` runs before each timing, so that no run pays for writing back
the dirty pages of the one before.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FRAME = (256, 256)
FHB = 60
RECORD = FHB + FRAME[0] * FRAME[1] * 2


def parse_size(text: str) -> int:
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def signal_of(data):
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
        "attributes": {"_lazy": False},
    }  # fmt: skip


def make_data(n, lazy):
    if lazy:
        import dask.array as da

        per = max(1, 64 * 2**20 // (FRAME[0] * FRAME[1] * 2))
        chunk = da.ones((n, *FRAME), dtype=np.uint16, chunks=(per, *FRAME))
        return chunk * da.arange(n, dtype=np.uint16, chunks=per)[:, None, None]
    data = np.empty((n, *FRAME), np.uint16)
    data[:] = np.arange(FRAME[1], dtype=np.uint16)
    return data


def child(impl, kind, folder, n):
    folder = Path(folder)
    max_size = 256 + -(-n // 4) * RECORD
    lazy = kind == "lazy"
    if impl == "compute":
        # the lazy data computed chunk by chunk and dropped: what the lazy
        # write costs before any byte is written
        data = make_data(n, True)
        t = time.perf_counter()
        edges = np.cumsum((0, *data.chunks[0]))
        for a, b in itertools.pairwise(edges):
            np.asarray(data[a:b])
        elapsed = time.perf_counter() - t
    elif impl == "limit":
        records = np.ones((n, RECORD), np.uint8)
        per = -(-n // 4)
        os.sync()  # start with no dirty pages of earlier runs to write back
        t = time.perf_counter()
        for k in range(4):
            with open(folder / f"lim_{k:03d}.tvips", "wb") as f:
                if k == 0:
                    f.write(bytes(256))
                f.write(memoryview(records[k * per : (k + 1) * per]))
        elapsed = time.perf_counter() - t
    else:
        data = make_data(n, lazy)
        if impl == "rsciio_tvips":
            from rsciio_tvips import file_writer
        else:
            from rsciio.tvips import file_writer
        signal = signal_of(data)
        signal["attributes"]["_lazy"] = lazy
        os.sync()  # start with no dirty pages of earlier runs to write back
        t = time.perf_counter()
        file_writer(str(folder / "w.tvips"), signal, max_file_size=max_size,
                    show_progressbar=False)  # fmt: skip
        elapsed = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for p in folder.glob("*.tvips"):
        p.unlink()
    print(json.dumps({"time": elapsed, "rss": rss}))


def measure(impl, kind, folder, n, repeat):
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", impl, kind, str(folder), str(n)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return (
        statistics.median(r["time"] for r in runs),
        statistics.median(r["rss"] for r in runs),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="2GiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/rsciio_tvips_bench_write")
    ap.add_argument("--child", nargs=4, metavar=("IMPL", "KIND", "DIR", "N"))
    args = ap.parse_args()
    if args.child:
        impl, kind, folder, n = args.child
        child(impl, kind, folder, int(n))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    n = parse_size(args.size) // (FRAME[0] * FRAME[1] * 2)
    size = n * RECORD / 2**30
    print(f"writing {n} frames of {FRAME[0]}x{FRAME[1]} uint16 ({size:.2f} GiB) in 4 "
          f"parts, {args.repeat} runs per cell")  # fmt: skip
    print("| operation   | rsciio_tvips         | rsciio.tvips         | limit "
          "| ours/limit | rsciio/ours |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    write_limit = measure("limit", "eager", folder, n, args.repeat)
    compute = measure("compute", "lazy", folder, n, args.repeat)
    for kind in ("eager", "lazy"):
        ours = measure("rsciio_tvips", kind, folder, n, args.repeat)
        theirs = measure("rsciio.tvips", kind, folder, n, args.repeat)
        # lazy: the limit is computing the data plus writing it
        limit = (write_limit[0] + (compute[0] if kind == "lazy" else 0.0),)
        print(
            f"| {kind} write | {ours[0]:7.3f} s {ours[1] / 1e9:5.2f} GB | "
            f"{theirs[0]:7.3f} s {theirs[1] / 1e9:5.2f} GB | {limit[0]:7.3f} s | "
            f"{ours[0] / limit[0]:9.1f}x | {theirs[0] / ours[0]:10.1f}x |",
            flush=True,
        )
    print(
        f"limit: write() of the bytes {write_limit[0]:.3f} s; for the lazy write "
        f"plus computing the dask data without writing it, {compute[0]:.3f} s"
    )


if __name__ == "__main__":
    main()
