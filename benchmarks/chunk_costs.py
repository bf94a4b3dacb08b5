"""Where the time of a lazy sum goes, by chunk size.

Usage::

    python benchmarks/chunk_costs.py [--size 1GiB] [--chunks 8,16,32,64,100]
                                     [--repeat 7] [--dir /tmp/rsciio_tvips_bench]

A lazy sum over frames is, per chunk, a read (``io="pread"``: a copy out of
the page cache into a buffer; ``io="mmap"``: a map of the chunk's bytes), a
reduction of the chunk (numpy's sum over frames), and dask's work around the
two (scheduling, the tree of partial sums, the chunk's ``BlockSource``).
This script times each part alone, on one thread, over the recording of
``benchmarks/bench.py`` (warm page cache), for each chunk size in MiB:

- *read*: ``read_frames_into`` a buffer used again for every chunk (the
  buffer pool's case once a computation runs);
- *read fresh*: into a new ``numpy.empty`` per chunk (a process's first
  chunks: the kernel zeroes every page first);
- *sum*: numpy's sum over frames of the chunk in its buffer;
- *sum map*: the same of the chunk's ``io="mmap"`` view;
- *1 thread*: the lazy sum of the same frames, ``scheduler="sync"``; *rest*
  is what it costs beyond read and sum (dask's scheduling and tree of
  partial sums, opening the recording, the chunks' sources);
- *2 thr pread*, *2 thr mmap*: the same lazy sum as users run it, on 2
  threads, with each ``io`` method; above the table, numpy summing a memmap
  of the whole recording with 2 threads (the limit of ``bench.py``).

The frames are the whole chunks that fit in the recording's first part (at
1 GiB, in its 4096 frames: 512 MiB), so that every chunk is one map. Every
figure is the median of ``--repeat`` runs, in seconds per GiB of frames.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import bench
import numpy as np


def timed(fn, repeat: int) -> float:
    """Return the median seconds of ``repeat`` calls of ``fn`` (after one more)."""
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def chunk_figures(first: Path, chunk_mib: int, repeat: int) -> dict:
    """Return the figures of one chunk size, in s/GiB (None: it does not fit)."""
    import dask

    from rsciio_tvips import TvipsRecording, file_reader
    from rsciio_tvips._reading.lazy import BlockSource
    from rsciio_tvips._reading.preadv import read_frames_into

    rec = TvipsRecording(str(first))
    records = rec.records
    per = max(1, chunk_mib * 2**20 // rec.header.frame_nbytes)
    # whole chunks inside the first part: the map covers every one
    first_part = rec.chain.frames_per_part(rec.header.record_size, rec.n_frames)[0]
    if first_part < per:
        return None  # no whole chunk of this size in the first part
    starts = range(0, first_part // per * per, per)
    gib = len(starts) * per * rec.header.frame_nbytes / 2**30
    recycled = np.empty((per, *rec.header.shape), rec.header.pixel_dtype)

    def each(fn):
        return lambda: [fn(np.arange(a, a + per)) for a in starts]

    def fresh(frames):
        read_frames_into(records, frames, np.empty_like(recycled))

    def summed(chunk):
        return chunk.sum(axis=0, dtype=np.uint64)  # what dask's sum does per chunk

    def mapped(frames):
        summed(BlockSource(records, frames, "mmap")[:])

    read = timed(each(lambda f: read_frames_into(records, f, recycled)), repeat)
    figures = {
        "read": read / gib,
        "read fresh": timed(each(fresh), repeat) / gib,
        "sum": timed(lambda: [summed(recycled) for _ in starts], repeat) / gib,
        "sum map": timed(each(mapped), repeat) / gib,
    }

    def lazy_sum(io, scheduler):
        def run():
            (d,) = file_reader(str(first), lazy=True, io=io,
                               rechunking=f"{chunk_mib}MiB")  # fmt: skip
            with dask.config.set(scheduler=scheduler, num_workers=2):
                d["data"][: starts[-1] + per].sum(axis=0).compute()

        return run

    sync = timed(lazy_sum("pread", "sync"), repeat) / gib
    figures["1 thread"] = sync
    figures["rest"] = sync - figures["read"] - figures["sum"]
    figures["2 thr pread"] = timed(lazy_sum("pread", "threads"), repeat) / gib
    figures["2 thr mmap"] = timed(lazy_sum("mmap", "threads"), repeat) / gib
    return figures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="1GiB")
    p.add_argument("--chunks", default="8,16,32,64,100", help="chunk sizes in MiB")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--dir", default="/tmp/rsciio_tvips_bench")
    args = p.parse_args()
    size = bench.parse_size(args.size)
    n = size // (bench.FRAME[0] * bench.FRAME[1] * 2)  # as bench.py sizes it
    folder = Path(args.dir) / f"{size >> 20}MiB"
    first = bench.write_recording(folder, bench.part_frames(n, 4, 4096))
    bench.warm(first)
    limit = timed(lambda: bench.limit_memmap_sum(first), args.repeat)
    limit /= bench.stream_bytes(first) / 2**30
    sizes = [int(s) for s in args.chunks.split(",")]
    measured = {s: chunk_figures(first, s, args.repeat) for s in sizes}
    rows = {s: f for s, f in measured.items() if f is not None}
    import rsciio_tvips

    where = Path(rsciio_tvips.__file__).parent
    print(f"rsciio_tvips {rsciio_tvips.__version__} from {where}")
    for s in sorted(set(measured) - set(rows)):
        print(f"{s} MiB: skipped, no whole chunk fits in the recording's first part")
    if not rows:
        return 1
    names = list(next(iter(rows.values())))
    print(f"recording: {first.parent}, {n} frames; medians of {args.repeat} runs")
    print(f"s/GiB; limit (numpy on a memmap, 2 threads): {limit:.3f} s/GiB")
    print("| chunk | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for s, figures in rows.items():
        cells = " | ".join(f"{figures[k]:.3f}" for k in names)
        print(f"| {s} MiB | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
