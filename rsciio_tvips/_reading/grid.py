"""Implicit frame tables: frames in order, without one number per point.

A stack, and a scan whose frames come in order from ``scan_start_frame``,
show frame ``start + k`` at point ``k`` (C order). Their frame table is a
few numbers, whatever the frame count, so that a lazy open of 200 million
frames does not hold 1.6 GB of frame numbers. :class:`FrameGrid` is such a
table. Slicing it with slices (the blocks of the lazy array) gives another
grid; indexing it with integer arrays (the points one read selects) gives
the frame numbers of those points only.
"""

from __future__ import annotations

import math

import numpy as np


class FrameGrid:
    """A frame table given by a rule: frame ``offset + sum(i_k * strides_k)``.

    Point ``(i_0, i_1, ...)`` shows that frame; a point whose frame is
    outside ``[0, n_frames)`` is blank (-1), as in an explicit table. It is
    picklable and small, and dask tokenizes it by its rule.

    Parameters
    ----------
    shape : tuple of int
        Shape of the navigation axes.
    offset : int
        Frame at point ``(0, 0, ...)`` (negative: blank points first).
    n_frames : int
        Frames in the recording: points at or past it are blank.
    strides : tuple of int, optional
        Frames between neighbouring points along each axis; by default C
        order (the last axis 1).
    """

    __slots__ = ("n_frames", "offset", "shape", "strides")

    dtype = np.dtype(np.int64)

    def __init__(self, shape, offset: int, n_frames: int, strides=None):
        self.shape = tuple(int(n) for n in shape)
        self.offset = int(offset)
        self.n_frames = int(n_frames)
        if strides is None:
            strides = _c_strides(self.shape)
        self.strides = tuple(int(s) for s in strides)

    @property
    def ndim(self) -> int:
        """Number of navigation axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of points."""
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"FrameGrid(shape={self.shape}, offset={self.offset}, "
            f"n_frames={self.n_frames}, strides={self.strides})"
        )

    def __dask_tokenize__(self):
        return ("FrameGrid", self.shape, self.offset, self.n_frames, self.strides)

    def __reduce__(self):
        return FrameGrid, (self.shape, self.offset, self.n_frames, self.strides)

    @property
    def is_consecutive(self) -> bool:
        """True when point ``k`` in C order shows frame ``offset + k``."""
        return self.strides == _c_strides(self.shape)

    def __getitem__(self, key):
        """Slices and integers give a grid; integer arrays the frames they pick.

        Arrays take one per axis, broadcast against each other as
        ``numpy.ix_`` makes them (a block's read), and give the frame
        numbers of the points they pick.
        """
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: {len(key)} for {self.ndim} axes")
        if all(isinstance(k, (slice, int, np.integer)) for k in key):
            return self._sliced(key)
        if len(key) != self.ndim or any(isinstance(k, slice) for k in key):
            msg = "index a frame grid with slices, or with one integer array per axis"
            raise IndexError(msg)
        frames = np.int64(self.offset)
        for k, stride in zip(key, self.strides, strict=True):
            frames = frames + np.asarray(k, dtype=np.int64) * stride
        return self._blanked(np.array(frames, dtype=np.int64))

    def _sliced(self, key) -> FrameGrid:
        offset, shape, strides = self.offset, [], []
        for axis, n in enumerate(self.shape):
            k = key[axis] if axis < len(key) else slice(None)
            stride = self.strides[axis]
            if isinstance(k, slice):
                start, _, step = k.indices(n)
                offset += start * stride
                shape.append(len(range(*k.indices(n))))
                strides.append(stride * step)
                continue
            i = int(k)
            if not -n <= i < n:
                msg = f"index {i} is out of bounds for an axis of size {n}"
                raise IndexError(msg)
            offset += (i % n) * stride
        return FrameGrid(shape, offset, self.n_frames, strides)

    def _blanked(self, frames: np.ndarray) -> np.ndarray:
        frames[(frames < 0) | (frames >= self.n_frames)] = -1
        return frames

    def __array__(self, dtype=None, copy=None):
        frames = np.full(self.shape, self.offset, dtype=np.int64)
        for axis, (n, stride) in enumerate(zip(self.shape, self.strides, strict=True)):
            along = [1] * self.ndim
            along[axis] = n
            frames += (np.arange(n, dtype=np.int64) * stride).reshape(along)
        frames = self._blanked(frames)
        return frames if dtype is None else frames.astype(dtype, copy=False)

    def reshape(self, *shape):
        """Return the grid of another shape over the same points (C order).

        Stays implicit when the grid is consecutive; otherwise the frame
        numbers are made (a block of a lazy array, small).
        """
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        if not self.is_consecutive:
            return np.asarray(self).reshape(shape)
        shape = tuple(int(n) for n in shape)
        if shape.count(-1) == 1:
            known = math.prod(n for n in shape if n != -1)
            if known and self.size % known == 0:
                shape = tuple(self.size // known if n == -1 else n for n in shape)
        if math.prod(shape) != self.size or min(shape, default=0) < 0:
            msg = f"cannot reshape a grid of {self.size} points into shape {shape}"
            raise ValueError(msg)
        return FrameGrid(shape, self.offset, self.n_frames)

    def placed_range(self) -> tuple[int, int]:
        """Return the first and one past the last frame shown (consecutive)."""
        first = min(max(self.offset, 0), self.n_frames)
        stop = max(min(self.offset + self.size, self.n_frames), first)
        return first, stop

    def blank_points(self) -> int:
        """Return how many points show no frame (consecutive grids)."""
        first, stop = self.placed_range()
        return self.size - (stop - first)


def _c_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def consecutive(n_frames: int, shape=None, start: int = 0) -> FrameGrid:
    """Return the table of frames ``start, start + 1, ...`` in C order.

    Parameters
    ----------
    n_frames : int
        Frames in the recording.
    shape : tuple of int, optional
        Navigation shape; by default a stack of all frames.
    start : int
        Frame at the first point (negative: that many blank points first).

    Returns
    -------
    FrameGrid
    """
    return FrameGrid((n_frames,) if shape is None else shape, start, n_frames)


def first_placed(table) -> int | None:
    """Return the frame at the first point (C order) that shows one, or None."""
    if isinstance(table, FrameGrid) and table.is_consecutive:
        first, stop = table.placed_range()
        return first if stop > first else None
    flat = np.asarray(table).reshape(-1)
    if flat.size == 0:
        return None
    # argmax stops at the first True, and copies no frame numbers
    at = int(np.argmax(flat >= 0))
    return int(flat[at]) if flat[at] >= 0 else None


def blank_points(table) -> int:
    """Return how many points of a frame table show no frame."""
    if isinstance(table, FrameGrid) and table.is_consecutive:
        return table.blank_points()
    return int((np.asarray(table) < 0).sum())
