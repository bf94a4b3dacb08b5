"""Place frames on navigation axes: which frame each scan point shows.

A *layout* maps every point of the navigation axes to a frame number, or to
-1 for a point no frame was recorded for (it reads as a blank frame). It
computes the frames of any block of points on demand, so a dask task reads
exactly the frames of its chunk and the layout itself stays a few numbers.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .exceptions import TvipsFormatWarning

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearLayout:
    """Scan points taken from consecutive frames, in C order.

    Attributes
    ----------
    nav_shape : tuple of int
        Shape of the navigation axes.
    start : int
        Frame at navigation index ``(0, ..., 0)``; may be negative.
    n_frames : int
        Frames in the recording; points outside ``0 .. n_frames - 1`` are
        blank.
    """

    nav_shape: tuple
    start: int
    n_frames: int

    def frames(self, key: tuple) -> np.ndarray:
        """Return the frame of every point of a block of the navigation axes.

        Parameters
        ----------
        key : sequence of numpy.ndarray
            The indices (1-D integer arrays) wanted along each navigation
            axis; the block is their outer product.

        Returns
        -------
        numpy.ndarray of int64
            Frame numbers, -1 for a blank point, of the block's shape.
        """
        index = np.asarray(self.start, dtype=np.int64)
        sizes = [0] * len(self.nav_shape)
        stride = 1
        for axis in range(len(self.nav_shape) - 1, -1, -1):
            ax = np.asarray(key[axis], dtype=np.int64)
            sizes[axis] = ax.size
            shape = [1] * len(self.nav_shape)
            shape[axis] = ax.size
            index = index + (ax * stride).reshape(shape)
            stride *= self.nav_shape[axis]
        index = np.broadcast_to(index, sizes)
        return np.where((index >= 0) & (index < self.n_frames), index, -1)


def sequential_layout(n_frames: int, scan_shape, scan_start_frame: int = 0):
    """Place the frames of a scan in order from ``scan_start_frame``.

    Parameters
    ----------
    n_frames : int
        Frames in the recording.
    scan_shape : tuple of int
        Shape of the navigation axes, slowest first (``(ny, nx)``, ``(n,)``,
        or more leading axes).
    scan_start_frame : int
        Frame at the first scan point. Frames before it are skipped; a
        negative value puts that many blank points before the first frame.

    Returns
    -------
    layout : LinearLayout
    info : dict
        ``scan_start_frame``, ``frames_before_scan`` and ``frames_after_scan``
        (frames of the recording outside the scan) and ``blank_points`` (scan
        points with no frame), for the metadata.

    Raises
    ------
    ValueError
        If ``scan_shape`` is not a tuple of positive integers.

    Warns
    -----
    TvipsFormatWarning
        If the recording ends before the scan does; the missing points are
        blank.
    """
    shape = _check_shape(scan_shape)
    start = int(scan_start_frame)
    points = math.prod(shape)
    first, stop = max(start, 0), min(start + points, n_frames)
    info = {
        "scan_start_frame": start,
        "frames_before_scan": min(first, n_frames),
        "frames_after_scan": max(0, n_frames - max(stop, first)),
        "blank_points": points - max(0, stop - first),
    }
    if start + points > n_frames:
        missing = start + points - max(n_frames, start)
        msg = (
            f"scan of shape {shape} from frame {start} needs frames up to "
            f"{start + points - 1} but the recording has {n_frames}: the last "
            f"{min(missing, points)} scan points are blank"
        )
        warnings.warn(msg, TvipsFormatWarning, stacklevel=3)
    _logger.info("scan placement: %s", info)
    return LinearLayout(shape, start, n_frames), info


def _check_shape(scan_shape) -> tuple:
    try:
        shape = tuple(int(n) for n in scan_shape)
        ok = len(shape) > 0 and all(
            n > 0 and n == m for n, m in zip(shape, scan_shape, strict=True)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = f"scan_shape must be a tuple of positive integers, got {scan_shape!r}"
        raise ValueError(msg)
    return shape
