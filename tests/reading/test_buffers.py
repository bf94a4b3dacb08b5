"""The recycled chunk memory: reused only when nothing can see it any more."""

from __future__ import annotations

import gc
import os
import sys
import time

import numpy as np
import pytest

from rsciio_tvips import TvipsRecording
from rsciio_tvips._reading.buffers import POOL, BufferPool
from rsciio_tvips._reading.lazy import BlockSource

MiB = 2**20


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def small_pool(**kw) -> BufferPool:
    return BufferPool(**{"min_bytes": 1024, "idle_seconds": 60.0, **kw})


def test_memory_comes_back_when_the_array_is_gone():
    pool = small_pool()
    a = pool.empty((16, 64), np.uint16)
    assert a.shape == (16, 64)
    assert a.dtype == np.uint16
    assert a.flags.c_contiguous
    assert a.flags.writeable
    where = address(a)
    assert pool.idle == 0
    del a
    assert pool.idle == 1
    b = pool.empty((16, 64), np.uint16)
    assert address(b) == where
    assert pool.idle == 0


def test_memory_seen_through_a_view_is_not_reused():
    pool = small_pool()
    a = pool.empty((16, 64), np.uint16)
    a[:] = 7
    view = a[3:5]
    del a
    assert pool.idle == 0
    b = pool.empty((16, 64), np.uint16)
    b[:] = 9
    np.testing.assert_array_equal(view, 7)
    del view
    assert pool.idle == 1
    del b
    assert pool.idle == 2


@pytest.mark.parametrize(
    "keep",
    [
        lambda a: a.reshape(-1),
        lambda a: a.view(np.uint8),
        lambda a: a.T,
        lambda a: np.lib.stride_tricks.as_strided(a, (2,), (2,)),
        lambda a: memoryview(a),
    ],
)
def test_every_kind_of_view_keeps_the_memory(keep):
    pool = small_pool()
    a = pool.empty((16, 64), np.uint16)
    held = keep(a)
    del a
    gc.collect()
    assert pool.idle == 0
    del held
    gc.collect()
    assert pool.idle == 1


def test_small_requests_are_not_recycled():
    pool = small_pool(min_bytes=4096)
    a = pool.empty((1024,), np.uint16)  # 2 KiB
    del a
    assert pool.idle == 0


def test_at_most_max_idle_buffers_are_kept():
    pool = small_pool(max_idle=2)
    arrays = [pool.empty((1024,), np.uint16) for _ in range(3)]
    del arrays
    assert pool.idle == 2
    pool.clear()
    assert pool.idle == 0


def test_a_buffer_serves_requests_up_to_a_quarter_smaller():
    pool = small_pool()
    a = pool.empty((4000,), np.uint8)
    where = address(a)
    del a
    too_big = pool.empty((4001,), np.uint8)
    assert address(too_big) != where
    too_small = pool.empty((2999,), np.uint8)
    assert address(too_small) != where
    fits = pool.empty((3000,), np.uint8)
    assert address(fits) == where
    assert fits.nbytes == 3000


def test_idle_buffers_are_released_after_a_while():
    pool = small_pool(idle_seconds=0.05)
    a = pool.empty((1024,), np.uint16)
    del a
    assert pool.idle == 1
    deadline = time.monotonic() + 10
    while pool.idle and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.idle == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_an_empty_pool():
    held = POOL.empty((POOL.min_bytes,), np.uint8)
    del held
    assert POOL.idle >= 1
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        os._exit(0 if POOL.idle == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert POOL.idle >= 1


def test_recycled_memory_never_leaks_into_a_chunk(make_tvips, monkeypatch):
    # A chunk that reuses the memory of an earlier one must not show any of
    # its bytes: blank points are zeros, every frame is the frame asked for.
    monkeypatch.setattr(POOL, "min_bytes", 1)
    POOL.clear()
    rec = make_tvips(n_frames=6, shape=(5, 7))
    r = TvipsRecording(rec.path)
    garbage = POOL.empty((4, 5, 7), np.uint16)
    garbage[:] = 0xFFFF
    where = address(garbage)
    del garbage
    source = BlockSource(r.records, np.array([3, -1, 0, -1]))
    chunk = source[:]
    assert address(chunk) == where
    expected = np.stack(
        [rec.frames[3], 0 * rec.frames[0], rec.frames[0], 0 * rec.frames[0]]
    )
    np.testing.assert_array_equal(chunk, expected)


def test_lazy_sum_recycles_chunks(make_tvips, monkeypatch):
    monkeypatch.setattr(POOL, "min_bytes", 1)
    POOL.clear()
    rec = make_tvips(n_frames=40, shape=(6, 8))
    x = TvipsRecording(rec.path).to_dask(chunks=(5, 6, 8))
    np.testing.assert_array_equal(
        x.sum(axis=0).compute(scheduler="threads"), rec.frames.sum(axis=0)
    )
    assert 1 <= POOL.idle <= 2
    np.testing.assert_array_equal(x.compute(), rec.frames)


def test_pool_ignores_interpreter_exit():
    # a finaliser that ran at exit would start a timer thread at shutdown
    code = (
        "import numpy as np\n"
        "from rsciio_tvips._reading.buffers import BufferPool\n"
        "pool = BufferPool(min_bytes=1)\n"
        "kept = pool.empty((10,), np.uint8)\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True
    )
    assert (out.returncode, out.stderr) == (0, "")
