"""The read-ahead of cold chunks, on and off: a cold lazy sum and the disk's use.

Usage (as root: each run empties the machine's page cache)::

    python benchmarks/cold_readahead.py [--size 1GiB] [--runs 8]
                                        [--dir /tmp/rsciio_tvips_bench]

On the recording of ``benchmarks/bench.py`` (written there if it is not), in
fresh processes taking turns, each just after the page cache is dropped:

- *cat*: ``cat`` of the files into ``/dev/null``;
- *off*: the lazy sum over frames with the read-ahead switched off
  (``rsciio_tvips._reading.readahead.AVAILABLE = False``), as before it;
- *on*: the same as users run it.

For each: the median wall time and the median share of it in which the disk
had a request in flight (``/proc/diskstats``, the disk or partition the
recording is on). The wall time varies with what else
uses the disk; the share says how much of the time it stood idle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench

MODES = ("cat", "off", "on")


def device_name(path: Path) -> str:
    """Return the /proc/diskstats name of the disk ``path`` is on."""
    st = os.stat(path)
    block = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    # a disk or a partition: /proc/diskstats has a line for each
    return block.resolve().name


def busy_ms(device: str) -> int:
    """Milliseconds the device has had a request in flight since boot."""
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            if fields[2] == device:
                return int(fields[12])
    raise LookupError(f"{device} is not in /proc/diskstats")


def child(mode: str, first: Path, device: str) -> None:
    """One run: print the wall seconds and the disk's busy share."""
    import dask.array as da

    da.zeros(4, chunks=2).sum().compute()  # dask's one-time imports first
    from rsciio_tvips import file_reader
    from rsciio_tvips._reading import readahead

    readahead.AVAILABLE = mode == "on"
    bench.drop_caches()
    busy = busy_ms(device)
    t = time.perf_counter()
    if mode == "cat":
        bench.limit_cat(first)
    else:
        (d,) = file_reader(str(first), lazy=True)
        d["data"].sum(axis=0).compute()
    wall = time.perf_counter() - t
    print(wall, (busy_ms(device) - busy) / 1000 / wall)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="1GiB")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--dir", default="/tmp/rsciio_tvips_bench")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        mode, first, device = args.child
        child(mode, Path(first), device)
        return 0
    if why := bench.cold_unavailable():
        print(f"skipped: {why}")
        return 1
    size = bench.parse_size(args.size)
    n = size // (bench.FRAME[0] * bench.FRAME[1] * 2)  # as bench.py sizes it
    folder = Path(args.dir) / f"{size >> 20}MiB"
    first = bench.write_recording(folder, bench.part_frames(n, 4, 4096))
    device = device_name(first)
    runs = {m: [] for m in MODES}
    for _ in range(args.runs):
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(first), device],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[mode].append(tuple(map(float, out.stdout.split())))
    gib = bench.stream_bytes(first) / 2**30
    print(f"{gib:.2f} GiB on {device}, {args.runs} runs each (median)")
    print("| | wall s | GB/s | disk busy |")
    print("|---|---|---|---|")
    for mode, got in runs.items():
        wall = statistics.median(w for w, _ in got)
        busy = statistics.median(b for _, b in got)
        rate = bench.stream_bytes(first) / wall / 1e9
        print(f"| {mode} | {wall:.3f} | {rate:.2f} | {busy:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
