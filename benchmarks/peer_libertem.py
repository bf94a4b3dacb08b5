"""LiberTEM as a peer in the benchmark: its TVIPS reader summed by its SumUDF.

``bench.py`` imports this module only inside a child process that runs under
the Python of a separate virtual environment holding LiberTEM (its pins of
numpy, numba and dask need not agree with ours). It needs nothing of
rsciio_tvips, and only LiberTEM's public API: ``libertem.api.Context``,
``Context.load("tvips", ...)``, ``Context.run_udf`` and
``libertem.udf.sum.SumUDF``.
"""

from __future__ import annotations

import atexit
import functools
import time
from pathlib import Path

import numpy as np

#: The executors this benchmark makes, by their ``Context.make_with`` names:
#: one thread, or a pool of WORKERS threads. Not "dask": its workers are other
#: processes, whose memory the peak RSS of this one would leave out, and on a
#: 64 MiB trial it was the slowest (0.9 s against 0.3-0.4 s).
CONTEXTS = ("inline", "threads")
#: Threads of the "threads" executor: the machine's 2 cores, as for dask's.
WORKERS = 2


@functools.cache
def context(kind: str):
    """The LiberTEM context of this process, made and warmed once.

    The warm-up runs a SumUDF over a tiny in-memory dataset, so that what any
    long-lived session pays once (the executor's start, the imports and
    set-up of a first run) is paid before the timing, as bench.py pays dask's
    first compute before timing the other readers. The kernels of the TVIPS
    path come from numba's on-disk cache, which bench.py fills with one
    untimed run before the first timed one.
    """
    import libertem.api as lt
    from libertem.udf.sum import SumUDF

    if kind not in CONTEXTS:
        msg = f"unknown LiberTEM context {kind!r} (known: {', '.join(CONTEXTS)})"
        raise ValueError(msg)
    if kind == "inline":
        ctx = lt.Context.make_with("inline")
    else:
        ctx = lt.Context.make_with(kind, cpus=WORKERS)
    # close the executor's pool before the interpreter's own teardown
    atexit.register(ctx.close)
    tiny = ctx.load("memory", data=np.zeros((8, 256, 256), np.uint16))
    ctx.run_udf(dataset=tiny, udf=SumUDF())
    return ctx


def warm(first: Path, kind: str) -> None:
    """Run LiberTEM's TVIPS path once over one frame of the recording.

    The first use of its TVIPS reader in a process costs about 0.4 s (the
    reader's set-up and its kernels' first run) that a long-lived session
    pays once: paid here, before the timing, as dask's first compute is for
    the other readers. It reads one frame; a cold row drops the page cache
    after it.
    """
    from libertem.udf.sum import SumUDF

    ctx = context(kind)
    dataset = ctx.load("tvips", path=str(first))
    roi = np.zeros(tuple(dataset.shape.nav), dtype=bool)
    roi.flat[0] = True
    ctx.run_udf(dataset=dataset, udf=SumUDF(), roi=roi)


def lazy_sum(first: Path, kind: str) -> np.ndarray:
    """Sum every frame of the recording whose first part is ``first``.

    Opening is part of the work, as ``file_reader(lazy=True)`` is for the
    other readers. ``context(kind)`` is cached: the caller makes it before the
    timing starts.
    """
    from libertem.udf.sum import SumUDF

    ctx = context(kind)
    dataset = ctx.load("tvips", path=str(first))
    result = ctx.run_udf(dataset=dataset, udf=SumUDF())
    return np.asarray(result["intensity"].data)


def lazy_sum_again(first: Path, kind: str) -> tuple[float, np.ndarray]:
    """Sum every frame twice over one dataset; return the second's seconds and sum.

    The counterpart of computing a lazy sum again in the other readers: the
    dataset is loaded once, and the first run pays what a session pays once.
    """
    from libertem.udf.sum import SumUDF

    ctx = context(kind)
    dataset = ctx.load("tvips", path=str(first))
    ctx.run_udf(dataset=dataset, udf=SumUDF())
    t = time.perf_counter()
    result = ctx.run_udf(dataset=dataset, udf=SumUDF())
    return time.perf_counter() - t, np.asarray(result["intensity"].data)
