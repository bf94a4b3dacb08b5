"""Sums of frames for the live view: pixel by pixel, and through virtual detectors.

Both run on every frame ``tvips watch`` takes in, on one core: summed as
integers where they can be, and the detectors over tiles that stay in the
processor's cache (measured in ``benchmarks/watch_lag.py``).
"""

from __future__ import annotations

import functools

import numpy as np

#: Pixels converted to float64 at a time by :func:`weighted_sums` (2 MiB:
#: in the processor's cache; 2.1 times faster than 8 MiB behind a camera's
#: 256 x 256 frames, measured over 2**17 to 2**20).
TILE = 2**18


def pixel_sums(flat: np.ndarray) -> np.ndarray:
    """Return the sum of frames ``(n, pixels)``, pixel by pixel, as float64.

    Summed as integers (a vectorised add of whole frames, no conversion of
    every pixel to float), in a type that cannot overflow.
    """
    kind = wide(flat.dtype)
    if flat.dtype.itemsize <= 2 and flat.shape[0] < 2**16:
        # 65535 frames of 16 bits fit in 32 bits, twice as fast to add
        kind = np.int32 if flat.dtype.kind == "i" else np.uint32
    return np.add.reduce(flat, axis=0, dtype=kind).astype(np.float64)


def wide(dtype: np.dtype):
    """Return the 64-bit integer type that sums of ``dtype`` values need."""
    if dtype.kind == "f":
        return np.float64
    return np.int64 if dtype.kind == "i" else np.uint64


def weighted_sums(flat: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return every frame's sums through ``weights`` (virtual detectors).

    The pixels are converted to float64 :data:`TILE` values at a time into
    one buffer that stays in the processor's cache, where a matrix-vector
    product per detector gives the sums: the frames leave memory once,
    whatever the number of detectors. Integer pixels sum exactly (float64 holds integers
    up to 2**53).

    Parameters
    ----------
    flat : numpy.ndarray
        Frames, ``(n, pixels)`` (a view of some pixels of each is enough).
    weights : numpy.ndarray
        ``(pixels, k)``: one column per detector (a mask).

    Returns
    -------
    numpy.ndarray
        ``(n, k)``.
    """
    n, pixels = flat.shape
    rows = max(1, min(n, TILE // pixels))
    cols = pixels if rows > 1 else min(pixels, TILE)
    sums = np.zeros((weights.shape[1], n))
    columns = np.ascontiguousarray(weights.T)
    buf = np.empty(rows * cols)
    # one BLAS thread: a product this small gains nothing from more, and
    # more, on a core shared with the camera's writer, wait for each other
    with _blas().limit(limits=1, user_api="blas"):
        for a in range(0, n, rows):
            b = min(n, a + rows)
            for c in range(0, pixels, cols):
                d = min(pixels, c + cols)
                tile = buf[: (b - a) * (d - c)].reshape(b - a, d - c)
                np.copyto(tile, flat[a:b, c:d])
                # a matrix-vector product per detector: three times faster
                # than one product with a two-column matrix (measured)
                for k, column in enumerate(columns):
                    sums[k, a:b] += tile @ column[c:d]
    return sums.T


@functools.cache
def _blas():
    """Return threadpoolctl's controller of the BLAS libraries, found once.

    threadpool_limits() looks for them at every call (1.5 ms, measured:
    0.4 s over a 4 GiB acquisition).
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
