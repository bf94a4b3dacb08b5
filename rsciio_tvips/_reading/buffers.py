"""Recycled memory for the chunks of lazy arrays.

A dask computation over a recording reads one chunk after another (about
100 MiB each) and usually drops each one as soon as it is reduced. A fresh
``numpy.empty`` of that size is a new ``mmap`` from the C library, and the
kernel zeroes every page of it before the chunk's bytes are copied in: on the
machine of ``docs/performance.rst`` that zeroing was a third of the cost of a
lazy sum over data in the page cache.

:class:`BufferPool` hands out arrays whose memory comes back to it once
nothing refers to the array any more (nor to any view of it), and gives that
memory to the next chunk of about the same size. Memory is recycled only when
the last reference is gone (the array's base, :class:`_Lease`, is finalised),
so an array is never written while anyone can see it. The pool keeps few
idle buffers and lets them go after a short time, so an idle process does not
hold on to chunk memory.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref

import numpy as np

#: Arrays smaller than this come from ``numpy.empty``: the C library already
#: reuses small blocks, and recycling them would save nothing.
MIN_BYTES = 8 * 2**20
#: Most idle buffers kept for reuse.
MAX_IDLE = 2
#: Idle buffers are released after this many seconds without reuse.
IDLE_SECONDS = 1.0
#: A buffer serves a request of up to this fraction smaller than itself, so
#: the last, shorter chunk of a recording reuses the memory of the others
#: while no array holds much more memory than its ``nbytes`` says.
SLACK = 0.25


class BufferPool:
    """Hand out uninitialised arrays whose memory is recycled after use.

    Parameters
    ----------
    max_idle : int, optional
        Most idle buffers kept.
    idle_seconds : float, optional
        How long an idle buffer is kept.
    min_bytes : int, optional
        Smaller requests are not recycled.
    """

    def __init__(
        self, max_idle=MAX_IDLE, idle_seconds=IDLE_SECONDS, min_bytes=MIN_BYTES
    ):
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self.min_bytes = min_bytes
        self._reset()

    def _reset(self) -> None:
        # Re-entrant: a garbage collection inside a locked section may
        # finalise a pooled array, which gives its memory back here.
        self._lock = threading.RLock()
        self._idle = []  # (raw uint8 array, time it came back)
        self._timer = None

    def empty(self, shape, dtype) -> np.ndarray:
        """Return an uninitialised C-contiguous array, like ``numpy.empty``.

        The caller must write every element before anyone else sees it.
        """
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize  # not np.prod: 5 us a call
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        raw = self._take(nbytes)
        if raw is None:
            raw = np.empty(nbytes, np.uint8)
        lease = _Lease(raw, shape, dtype)
        finalizer = weakref.finalize(lease, self._give_back, raw)
        finalizer.atexit = False  # at exit there is nothing to recycle for
        return np.asarray(lease)

    @property
    def idle(self) -> int:
        """Number of idle buffers held."""
        with self._lock:
            return len(self._idle)

    def clear(self) -> None:
        """Release every idle buffer."""
        with self._lock:
            self._idle.clear()

    def _take(self, nbytes: int):
        with self._lock:
            for i, (raw, _) in enumerate(self._idle):
                if nbytes <= raw.size and (raw.size - nbytes) <= SLACK * raw.size:
                    return self._idle.pop(i)[0]
        return None

    def _give_back(self, raw) -> None:
        with self._lock:
            self._idle.append((raw, time.monotonic()))
            # keep the newest: they are the sizes in use now
            excess = len(self._idle) - self.max_idle
            if excess > 0:
                del self._idle[:excess]
            if self._idle and self._timer is None:
                self._schedule(self.idle_seconds)

    def _trim(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._idle = [
                (raw, t) for raw, t in self._idle if now - t < self.idle_seconds
            ]
            self._timer = None
            if self._idle:
                oldest = min(t for _, t in self._idle)
                self._schedule(max(self.idle_seconds - (now - oldest), 0.01))

    def _schedule(self, delay: float) -> None:
        # called with the lock held
        timer = threading.Timer(delay, self._trim)
        timer.daemon = True
        try:
            timer.start()
        except RuntimeError:  # no new threads at interpreter shutdown
            self._idle.clear()
            return
        self._timer = timer


class _Lease:
    """The owner of pooled memory for as long as numpy uses it.

    numpy makes the object that exposes ``__array_interface__`` the base of
    the array, and every view of the array keeps the array (or this object)
    alive, so this object lives exactly as long as anything can reach the
    memory through numpy; only then does its finaliser give the memory back.
    """

    def __init__(self, raw: np.ndarray, shape, dtype: np.dtype):
        self.raw = raw
        self.__array_interface__ = {
            "data": (raw.__array_interface__["data"][0], False),
            "shape": tuple(int(n) for n in shape),
            "typestr": dtype.str,
            "descr": dtype.descr,
            "version": 3,
        }


#: The pool of every lazy chunk of this process.
POOL = BufferPool()
# A forked child (multiprocessing, dask's process pool) starts with an empty
# pool and a free lock, whatever another thread was doing at the fork.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL._reset)
