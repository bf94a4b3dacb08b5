"""How far ``tvips watch`` stays behind a camera writing at 1 GB/s.

Usage::

    python benchmarks/watch_lag.py [--size 4GiB] [--rate 1e9] [--part 1GiB]
                                   [--picture] [--io pread|mmap]
                                   [--dir /dev/shm/rsciio_tvips_watch]
    python benchmarks/watch_lag.py --catch-up [--busy] [--size ...] [--io ...]

A writer process (pinned to the second core) writes a version 2 recording of
256 x 256 uint16 frames, 60-byte frame headers, at ``--rate`` bytes a second
into parts of ``--part`` bytes, and logs when each block of frames was
written. The watcher (``rsciio_tvips._tools.watch.Watch``, as ``tvips
watch --scan-shape`` runs it, pinned to the first core: one core) follows
it and notes when it has taken in each block. The lag of a frame is the
time from its last byte written to the watcher having taken it in; the
output is its median, 99th percentile and maximum, with the watcher's CPU
time and peak RSS. The watch starts :data:`START_DELAY` seconds before the
first byte. ``--picture`` also draws the picture every 2 s (``-o``), in its
process beside the watcher's (on the same core), whose CPU time is given;
``--io mmap`` reads the frames as ``tvips watch --io mmap`` does.

The writer cannot always keep its rate: the rate it reached is printed,
and the lag is behind that. ``--catch-up`` times the watcher taking in a
recording written beforehand instead: what one core takes in at most
(``--busy``: while a loop runs on the other core). :func:`measure` and
:func:`catch_up` are what ``benchmarks/bench.py`` runs for its ``watch``
rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FRAME = (256, 256)
FHB = 60
RECORD = FHB + FRAME[0] * FRAME[1] * 2
#: Frames written per write() of the camera (16 MiB: fewer calls, so that
#: the writer can keep its rate).
BLOCK = 128
MAIN_HEADER = 256
#: tmpfs: this benchmark measures the watcher, and a disk of the machine it
#: was written on takes writes at 0.3 GB/s (``dd``), too slow for a camera's
#: rate; the watcher reads the page cache either way.
DIR = "/dev/shm/rsciio_tvips_watch"
#: Seconds the writer waits before its first byte: the watch is started
#: before the acquisition (and its picture's process starts up meanwhile).
START_DELAY = 3.0

WRITER = r"""
import os, sys, time
import numpy as np
folder, log = sys.argv[1], sys.argv[5]
total, rate, part = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
FHB, BLOCK = int(sys.argv[6]), int(sys.argv[7])
FRAME = (int(sys.argv[8]), int(sys.argv[9]))
record = FHB + FRAME[0] * FRAME[1] * 2
os.sched_setaffinity(0, {1})
time.sleep(float(sys.argv[10]))  # the watch is started first, as it would be
# size, version, dimx, dimy, bitsperpixel, offsets, binning, pixel size,
# high tension, magnification, frame header bytes (format.md)
header = np.zeros(64, "<u4")
header[:13] = [256, 2, FRAME[1], FRAME[0], 16, 0, 0, 1, 1, 1, 300, 100, FHB]
yy, xx = np.indices(FRAME)
disk = (np.hypot(yy - 128, xx - 128) <= 20) * 3000
rng = np.random.default_rng(0)
recs = np.zeros((BLOCK, record), np.uint8)
noise = rng.integers(0, 100, (BLOCK, *FRAME))
recs[:, FHB:].view("<u2").reshape(BLOCK, *FRAME)[:] = disk + noise
fields = recs[:, :FHB].view("<u4")  # counter, seconds, ms, ...
fields[:, 6] = 2  # diffraction
per_ms = rate / 1000 / record  # frames a millisecond
times = []
start = time.monotonic()
k, frame = 0, 0
f = open(os.path.join(folder, "live_000.tvips"), "wb")
f.write(header.tobytes())
room = part - 256
while frame * record < total:
    idx = np.arange(frame, frame + BLOCK)
    fields[:, 0] = idx + 1
    t = (idx / per_ms).astype(np.int64)
    fields[:, 1], fields[:, 2] = 1_700_000_000 + t // 1000, t % 1000
    data = memoryview(recs).cast("B")
    while len(data):
        if room == 0:
            f.close()
            k += 1
            f = open(os.path.join(folder, f"live_{k:03d}.tvips"), "wb")
            room = part
        n = min(room, len(data))
        f.write(data[:n])
        f.flush()
        data, room = data[n:], room - n
    frame += BLOCK
    times.append((time.monotonic(), frame))
    pause = start + frame * record / rate - time.monotonic()
    if pause > 0:
        time.sleep(pause)
f.close()
np.save(log, np.array(times))
"""


def _writer(folder: Path, size: int, rate: float, part: int, delay: float) -> list:
    """Return the command of the writer (its log: ``writer.npy`` in ``folder``)."""
    return [sys.executable, "-c", WRITER, str(folder), str(size), str(rate),
            str(part), str(folder / "writer.npy"), str(FHB), str(BLOCK),
            *map(str, FRAME), str(delay)]  # fmt: skip


def _one_core() -> None:
    """Pin every thread of this process (the watcher) to the first core."""
    for task in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(task), {0})


def _scan(size: int) -> dict:
    """Return the reader options of the scan a recording of ``size`` bytes is."""
    n_frames = -(-size // RECORD)
    return {"scan_shape": (max(n_frames // 256, 1), 256)}


def measure(folder: Path, size: int, rate: float, part: int, picture: bool,
            io: str = "pread") -> dict:  # fmt: skip
    """Run one acquisition and its watcher; return the figures."""
    import resource

    from rsciio_tvips._tools.watch import Watch

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = folder / "writer.npy"
    _one_core()
    writer = subprocess.Popen(_writer(folder, size, rate, part, START_DELAY))
    seen = []
    scan = _scan(size)
    out = folder / "live.png" if picture else None
    before = resource.getrusage(resource.RUSAGE_SELF)
    # the process drawing the pictures: a child, joined before run() returns
    # (the writer is waited for after, so that its time is not counted)
    drawer_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    def taken(block):
        seen.append((time.monotonic(), block.stop))

    watcher = Watch(folder / "live_000.tvips", out, idle=START_DELAY + 1, scan=scan,
                    io=io, quiet=True, on_block=taken)  # fmt: skip
    findings = watcher.run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    drawer_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    writer.wait()
    written = np.load(log)
    with open("/proc/self/status") as f:
        rss = next(int(v.split()[1]) * 1024 for v in f if v.startswith("VmHWM"))
    t_seen = np.array([t for t, _ in seen])
    f_seen = np.array([n for _, n in seen])
    # when the frame before each block's end was written (the writer logs
    # every BLOCK frames; a block may end between two logs: the later one)
    k = np.searchsorted(written[:, 1], f_seen, side="left")
    lag = t_seen - written[np.minimum(k, len(written) - 1), 0]
    span = written[-1, 0] - written[0, 0]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    drawer_cpu = (drawer_after.ru_utime - drawer_before.ru_utime) + (
        drawer_after.ru_stime - drawer_before.ru_stime
    )
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "frames": int(f_seen[-1]) if f_seen.size else 0,
        "written_frames": int(written[-1, 1]),
        "rate_GBps": float(written[-1, 1] * RECORD / span / 1e9) if span else 0.0,
        "lag_median_s": float(np.median(lag)),
        "lag_p99_s": float(np.percentile(lag, 99)),
        "lag_max_s": float(lag.max()),
        "cpu_s": float(cpu),
        "drawer_cpu_s": float(drawer_cpu),
        "pictures": watcher.pictures,
        "acquisition_s": float(span),
        "peak_rss_GB": rss / 1e9,
        "findings": [str(f) for f in findings],
        # (seconds since the first frame was written, lag) of every block
        "lags": np.column_stack([t_seen - written[0, 0], lag]).round(3).tolist(),
        "picture": picture,
        "io": io,
    }


#: A loop that keeps the second core busy without touching memory.
SPIN = """
import os, time
os.sched_setaffinity(0, {1})
end = time.monotonic() + 600
while time.monotonic() < end:
    pass
"""


def catch_up(folder: Path, size: int, part: int, io: str = "pread",
             busy: bool = False) -> dict:  # fmt: skip
    """Time the watcher taking in a recording already written, on one core.

    What one core of this machine takes in at most, with no writer beside
    it; with ``busy``, while a loop that touches no memory runs on the
    other core (on a virtual machine whose two cores share one physical
    core, that alone slows the watcher).
    """
    import resource

    from rsciio_tvips._tools.watch import Watch

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    subprocess.run(_writer(folder, size, 1e15, part, 0), check=True)
    _one_core()
    spin = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        watcher = Watch(folder / "live_000.tvips", idle=0, scan=_scan(size), io=io,
                        quiet=True)  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        watcher.run()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if spin is not None:
            spin.kill()
            spin.wait()
        shutil.rmtree(folder, ignore_errors=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    nbytes = watcher.follower.given * RECORD
    return {"catch_up": True, "io": io, "busy": busy,
            "frames": watcher.follower.given, "GBps": nbytes / wall / 1e9,
            "cpu_s_per_GiB": cpu / (nbytes / 2**30)}  # fmt: skip


def describe(r: dict) -> str:
    """Return the figures of :func:`measure` (or :func:`catch_up`) as one line."""
    if r.get("catch_up"):
        beside = "the other core busy" if r["busy"] else "the other core idle"
        return (
            f"watch catching up ({r['frames']} frames written, io={r['io']}, "
            f"{beside}): {r['GBps']:.2f} GB/s on one core, "
            f"{r['cpu_s_per_GiB']:.2f} s of CPU per GiB"
        )
    picture = ", picture every 2 s" if r["picture"] else ""
    picture += ", io=mmap" if r.get("io") == "mmap" else ""
    share = 100 * r["cpu_s"] / max(r["acquisition_s"], 1e-9)
    drawn = ""
    if r["picture"]:
        drawn = (f"; {r['pictures']} pictures drawn in {r['drawer_cpu_s']:.1f} s "
                 "of CPU beside")  # fmt: skip
    return (
        f"watch, writer at {r['rate_GBps']:.2f} GB/s for {r['acquisition_s']:.1f} s "
        f"({r['written_frames']} frames{picture}): lag median "
        f"{r['lag_median_s']:.3f} s, p99 {r['lag_p99_s']:.3f} s, max "
        f"{r['lag_max_s']:.3f} s; CPU {r['cpu_s']:.1f} s ({share:.0f} % of one "
        f"core){drawn}; peak RSS {r['peak_rss_GB']:.2f} GB; frames taken in "
        f"{r['frames']}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="4GiB")
    p.add_argument("--rate", type=float, default=1e9)
    p.add_argument("--part", default="1GiB")
    p.add_argument("--picture", action="store_true")
    p.add_argument("--io", choices=("pread", "mmap"), default="pread")
    p.add_argument("--dir", default=DIR)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--catch-up",
        action="store_true",
        help="time the watcher taking in a recording already written",
    )
    p.add_argument(
        "--busy",
        action="store_true",
        help="with --catch-up: a loop runs on the other core",
    )
    args = p.parse_args()
    units = {"GiB": 2**30, "MiB": 2**20}

    def size(text):
        for unit, factor in units.items():
            if text.endswith(unit):
                return int(float(text[: -len(unit)]) * factor)
        return int(text)

    if args.catch_up:
        r = catch_up(Path(args.dir), size(args.size), size(args.part), args.io,
                     args.busy)  # fmt: skip
    else:
        r = measure(Path(args.dir), size(args.size), args.rate, size(args.part),
                    args.picture, args.io)  # fmt: skip
    if args.json:
        print(json.dumps(r))
        return 0
    print(describe(r))
    for f in r.get("findings", ()):
        print("  finding:", f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
