"""What ``tvips watch`` shows of a recording being written, fed block by block.

:class:`LiveView` takes each block of new frames once and keeps what the
picture draws:

- the sum of every frame (the mean pattern), and the latest frame;
- for a scan, the virtual bright-field and annular dark-field value of
  every scan point reached so far (NaN elsewhere), through apertures found
  (as ``tvips preview`` finds them) on the mean of the scan's first
  :data:`APERTURE_FRAMES` frames and kept from then on, so that the images
  fill in alike;
- the intensity of the frames, and the frame rate against the camera's
  clock, in :class:`Binned` series of at most :data:`BINS` bins.

Memory is a few frames, the scan's images (a value per scan point) and the
bins, whatever the length of the recording.

Where a frame goes on the scan (:class:`Placement`) follows the reader's
options: a given ``scan_shape`` places frames in order from
``scan_start_frame`` (snake and hysteresis by
:func:`~rsciio_tvips._scans.tables.wind`, as the reader does); ``rotator``
places them by the rotator index, ``positions`` by the beam positions: there
a run of frames at one position shows its last frame (the beam waits at the
scan's start before it moves on, as LiberTEM's detection takes it), and a
position met again after the beam moved away keeps what it had.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from .._checks.stream import rotator_bound as _rotator_bound
from .._format.layout import MAX_POSITION, float_field, frame_times_ms
from .._scans.detect import position_key, rotator_points
from .._scans.tables import check_shape, sequential_table, wind
from .preview import aperture_masks, find_apertures
from .sums import pixel_sums, weighted_sums, wide

#: Most bins of a :class:`Binned` series: two doubled when it is full.
BINS = 1024
#: The apertures are found on the mean of the scan's first this many frames
#: (or of as many as make APERTURE_PIXELS, for large frames): held, and then
#: placed, until then. The latest frames before ``auto`` placement has
#: decided are held within APERTURE_PIXELS too (or one frame, if larger): 8 M
#: pixels, 32 MiB of 32-bit pixels, for each of the two (64 frames of
#: 256 x 256 are 4 M).
APERTURE_FRAMES = 64
APERTURE_PIXELS = 2**23
#: The first width of the frame-rate bins, in ms of the camera's clock.
RATE_BIN_MS = 100
#: The beam position key's row length (see ``position_key``).
ROW = MAX_POSITION
#: How frames may be placed; ``auto`` decides from the frame headers.
PLACEMENTS = ("sequential", "rotator", "positions", "auto")
#: The index of a frame placed ``auto`` before the headers decided how.
UNDECIDED = -2


class Binned:
    """Sums of a value over bins of a growing axis, in at most :data:`BINS` bins.

    Bins start ``width`` wide; when a value falls past the last bin, pairs
    of bins are merged (and the width doubled) until it fits.
    """

    def __init__(self, bins: int = BINS, width: float = 1.0):
        self.width = float(width)
        self.sums = np.zeros(bins)
        self.counts = np.zeros(bins, dtype=np.int64)

    def add(self, x, values) -> None:
        """Add ``values`` at the places ``x`` (>= 0) of the axis."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return
        while x.max() >= self.width * self.sums.size:
            half = self.sums.size // 2
            self.sums = np.concatenate([self.sums.reshape(-1, 2).sum(axis=1),
                                        np.zeros(half)])  # fmt: skip
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1),
                                          np.zeros(half, np.int64)])  # fmt: skip
            self.width *= 2
        index = (x // self.width).astype(np.int64)
        self.sums += np.bincount(index, values, self.sums.size)
        self.counts += np.bincount(index, minlength=self.counts.size)

    def used(self) -> int:
        """Return the bins up to the last one with anything in it."""
        filled = np.flatnonzero(self.counts)
        return int(filled[-1]) + 1 if filled.size else 0

    def centres(self) -> np.ndarray:
        """Return the middle of every bin used, on the axis."""
        return (np.arange(self.used()) + 0.5) * self.width


class Placement:
    """Where each frame of a scan goes.

    Frames get an index: their place along the scan (``sequential``: from
    ``scan_start_frame``; ``rotator``: the rotator index, 0-based, until the
    index runs back, which ends the scan) or, for ``positions``, the beam
    position ``(y, x)``. :meth:`image` lays values by index out as an image.

    Parameters
    ----------
    method : {"sequential", "rotator", "positions", "auto"}
        How frames are placed; ``auto`` places them by the beam positions
        once they move, or by the rotator index once it counts up (frames
        before that are held, and placed then).
    shape : tuple of int, optional
        The scan shape: required for ``sequential``; for ``rotator`` found
        when the scan ends, if its number of points is a square; for
        ``positions``, the extent of the positions seen.
    start : int, optional
        ``scan_start_frame`` (``sequential``).
    winding : {"x", "y"}, optional
        Snake scan axis (``sequential`` and ``rotator``).
    hysteresis : int, optional
        Shift of the reversed rows (with ``winding``).
    """

    def __init__(self, method, shape=None, start=0, winding=None, hysteresis=0):
        self.method = method
        self.shape = None if shape is None else check_shape(shape)
        self.start, self.winding, self.hysteresis = start, winding, hysteresis
        self.ended = False  # a rotator scan ran back: later frames are not it
        self.top = 0  # points reached along the scan
        self._key = None  # auto: the last usable beam position seen
        self._rotator = set()  # auto: the positive rotator indices seen (2 at most)
        if method not in PLACEMENTS:
            raise ValueError(f"scan_method must be one of {PLACEMENTS}, got {method!r}")
        if method == "sequential" and self.shape is None:
            raise ValueError("a sequential scan needs its scan_shape")
        if winding is not None and self.shape is not None:
            # the reader's checks of winding and hysteresis, now, not when a
            # picture is drawn
            wind(np.zeros(self.shape, dtype=np.int64), winding, hysteresis)

    def decide(self, headers) -> bool:
        """Choose beam positions or rotator index, once the headers show one.

        As the reader's ``scan_shape="auto"`` does: the beam positions
        where they move, else the rotator index where it counts up. Returns
        whether the method is known (``method`` is no longer ``auto``).
        """
        if self.method != "auto":
            return True
        names = headers.dtype.names
        if {"Scan_x", "Scan_y"} <= set(names):
            key = position_key(
                float_field(headers, "Scan_x"), float_field(headers, "Scan_y")
            )
            key = key[key >= 0]
            if self._key is not None:
                key = np.concatenate([[self._key], key])
            if np.unique(key).size > 1:
                self.method = "positions"
                return True
            if key.size:
                self._key = int(key[-1])
        if "rotidx" in names:
            positive = np.unique(headers["rotidx"][headers["rotidx"] > 0])
            self._rotator.update(positive[:2].tolist())
            if len(self._rotator) > 1:
                self.method = "rotator"
        return self.method != "auto"

    def index(self, frames: np.ndarray, headers: np.ndarray) -> np.ndarray:
        """Return every frame's index on the scan (-1: not on it)."""
        # at most this many points: a corrupt header must not make an image
        # of terabytes (a scan has no more points than a few per frame)
        most = _rotator_bound(int(frames.max(initial=-1)) + 1)
        if self.method == "auto":  # see decide()
            return np.full(frames.size, UNDECIDED, dtype=np.int64)
        if self.method == "positions":
            key = position_key(
                float_field(headers, "Scan_x"), float_field(headers, "Scan_y")
            )
            old = self.shape or (0, 0)
            y, x = key // ROW, key % ROW
            area = np.maximum(old[0], y + 1) * np.maximum(old[1], x + 1)
            key[(key < 0) | (area > most)] = -1  # not placed
            ok = key >= 0
            if ok.any():
                extent = (int(y[ok].max()) + 1, int(x[ok].max()) + 1)
                self.shape = (max(old[0], extent[0]), max(old[1], extent[1]))
            return key
        if self.method == "sequential":
            k = frames - self.start
            return np.where((k >= 0) & (k < math.prod(self.shape)), k, -1)
        p = rotator_points(headers["rotidx"])
        if self.ended:
            return np.full(p.size, -1, dtype=np.int64)
        # an index beyond any scan is a corrupt header: it ends the scan, as
        # the index running back does, and holds no point
        p[p >= (most if self.shape is None else math.prod(self.shape))] = -1
        highest = np.maximum.accumulate(np.concatenate([[self.top - 1], p[:-1]]))
        back = np.flatnonzero(p < highest)
        if back.size:  # the index ran back (to 0, or a new scan): this one is over
            p[back[0] :] = -1
            self.ended = True
        self.top = max(self.top, int(p.max(initial=-1)) + 1)
        if self.ended:
            self.finish()
        return p

    def finish(self) -> None:
        """End a rotator scan with the recording: its shape, if square."""
        if self.method == "rotator" and self.shape is None:
            side = math.isqrt(self.top)
            if side and side * side == self.top:
                self.shape = (side, side)

    def image(self, values) -> np.ndarray | None:
        """Lay values by index out as the scan's image (None: shape not known)."""
        if self.shape is None:
            return None
        if self.method == "positions":
            return values[: self.shape[0], : self.shape[1]]
        n = math.prod(self.shape)
        flat = np.full(n, np.nan)
        known = values[:n]
        flat[: known.size] = known
        if self.method == "sequential":
            table, _ = sequential_table(self.start + n, self.shape, self.start)
            table = np.asarray(table)
            table = np.where(table >= 0, table - self.start, -1)
        else:
            table = np.arange(n, dtype=np.int64).reshape(self.shape)
        if self.winding is not None and len(self.shape) > 1:
            table, _ = wind(table, self.winding, self.hysteresis)
        # points no frame is for (before a negative start frame, vacated by
        # the hysteresis shift) are blank, 0, as the reader shows them
        return np.where(table >= 0, flat[np.clip(table, 0, None)], 0.0)


@dataclass(frozen=True)
class LivePicture:
    """What one picture of ``tvips watch`` shows: a copy, taken at one time.

    A few arrays, whatever the length of the recording: it is sent to the
    process that draws it (:mod:`.drawer`) while the view takes more frames.

    Attributes
    ----------
    frames : int
        The frames seen so far.
    scan : bool
        Whether the frames are placed on a scan (False: a movie).
    images : dict
        ``"vbf"`` / ``"vadf"`` -> image, NaN where not reached yet (a scan).
    waiting : str or None
        Why the scan's images are not there yet.
    mean : numpy.ndarray
        The mean pattern.
    apertures : dict or None
        The apertures of the images (pixels).
    rate : Binned
        Frames by the camera's clock (ms).
    latest : numpy.ndarray or None
        The last frame (a movie).
    intensity : Binned
        Intensity by frame number (a movie).
    """

    frames: int
    scan: bool
    images: dict
    waiting: str | None
    mean: np.ndarray
    apertures: dict | None
    rate: Binned
    latest: np.ndarray | None
    intensity: Binned


class LiveView:
    """What the picture of a recording being written shows, fed block by block.

    Parameters
    ----------
    frame_shape : tuple of int
        ``(dimy, dimx)``.
    placement : Placement, optional
        For a scan; None for a movie.
    """

    def __init__(self, frame_shape, placement: Placement | None = None):
        self.frame_shape = tuple(frame_shape)
        self.placement = placement
        self.total = np.zeros(self.frame_shape)
        self.frames = 0
        self.latest = None
        self.intensity = Binned()  # by frame number
        # frames by 100 ms of the camera clock, at first
        self.rate = Binned(width=RATE_BIN_MS)
        self.t0 = None  # ms of the first frame
        self.apertures = None
        self._weights = None  # (pixels, k), from the first block
        self._open_position = None  # the beam position of the last frame
        self._pending = []  # (places, frames) held until the apertures are found
        self._held = []  # (numbers, headers, frames) held until placed (auto)
        self.values = {}  # "vbf" / "vadf" -> (scan shape, flat image)
        self.version = 0  # counts the changes: a picture of it is up to date

    def feed(self, block) -> None:
        """Take the frames of one :class:`~rsciio_tvips.FrameBlock`."""
        frames = block.frames
        n = frames.shape[0]
        if n == 0:
            return
        flat = frames.reshape(n, -1)
        self.total += pixel_sums(flat).reshape(self.frame_shape)
        self.frames += n
        self.version += 1
        self.latest = frames[-1].copy()
        numbers = block.frame_numbers
        if {"timestamp", "ms"} <= set(block.headers.dtype.names):
            t = frame_times_ms(block.headers).astype(np.float64)
            if self.t0 is None:
                self.t0 = t[0]
            # in ms, whole numbers: bins of 0.1 s hold what they should
            self.rate.add(np.clip(t - self.t0, 0, None), np.ones(t.size))
        if self.placement is None:  # a movie: its intensity per frame
            self.intensity.add(numbers, flat.sum(axis=1, dtype=wide(flat.dtype)))
            return
        if not self.placement.decide(block.headers):
            # frames before the headers say how they are placed: the latest
            # are held (APERTURE_PIXELS, or one frame if it is larger), the
            # oldest go: frames long before any scan
            keep = max(1, APERTURE_PIXELS // flat.shape[1])
            headers = block.headers
            if n > keep:
                numbers, headers, flat = numbers[-keep:], headers[-keep:], flat[-keep:]
            self._held.append((numbers, headers, flat.copy()))
            while len(self._held) > 1 and (
                sum(f.size for _, _, f in self._held) > APERTURE_PIXELS
            ):
                self._held.pop(0)
            return
        held, self._held = self._held, []
        for args in held:
            self._scan(*args)
        self._scan(numbers, block.headers, flat)

    def _scan(self, numbers, headers, flat) -> None:
        """Place the frames ``flat`` (numbers, headers) of a decided scan."""
        n = flat.shape[0]
        index = self.placement.index(numbers, headers)
        on = np.flatnonzero(index >= 0)
        if on.size == 0:
            return  # frames before (or after) the scan
        placed = flat if on.size == n else flat[on]
        if self._weights is not None:
            self._place(index[on], placed)
            return
        # the apertures come from the scan's own first frames: the frames
        # before it (the beam blanked, or waiting) would show no disk
        self._pending.append((index[on], placed.copy()))
        held = sum(p.shape[0] for _, p in self._pending)
        if held >= APERTURE_FRAMES or held * flat.shape[1] >= APERTURE_PIXELS:
            self._flush()

    def _flush(self) -> None:
        """Find the apertures on the frames held, then place those frames."""
        if not self._pending:
            return
        index = np.concatenate([i for i, _ in self._pending])
        frames = np.concatenate([p for _, p in self._pending])
        self._pending = []
        shown = frames
        if self.placement.method == "positions":
            shown = frames[_run_ends(index)]  # a wait shows its last frame only
        mean = shown.mean(axis=0, dtype=np.float64).reshape(self.frame_shape)
        self._weights = self._weights_for(mean)
        self._place(index, frames)

    def _weights_for(self, mean) -> tuple[int, np.ndarray]:
        """Return the BF and ADF masks as columns, over the pixels they span.

        Returns the first pixel (in C order) the columns start at, and the
        columns: the rows of the frame that no aperture reaches are never
        converted.
        """
        self.apertures = find_apertures(mean)
        bf, adf = aperture_masks(mean.shape, self.apertures)
        masks = np.stack([bf.reshape(-1), adf.reshape(-1)], axis=1)
        inside = np.flatnonzero(masks.any(axis=1))
        if inside.size == 0:
            return 0, masks[:1].astype(np.float64)
        return int(inside[0]), masks[inside[0] : inside[-1] + 1].astype(np.float64)

    def _place(self, index, flat) -> None:
        """Sum the frames ``flat`` (of places ``index``) and put them in the images."""
        first, weights = self._weights
        sums = weighted_sums(flat[:, first : first + weights.shape[0]], weights)
        by_position = self.placement.method == "positions"
        again = False
        if by_position:
            # a run of frames at one position (the beam waiting at the scan's
            # start, or dwelling) shows its last frame; a later run there
            # (the beam parked at the start after the scan) does not count
            last = _run_ends(index)
            again = bool(index[0] == self._open_position)
            index, sums = index[last], sums[last]
        for column, name in ((0, "vbf"), (1, "vadf")):
            self.values[name], written = _placed(
                self.values.get(name), index, sums[:, column], by_position, again
            )
        # the last run goes on in the next block only where it holds its place
        self._open_position = int(index[-1]) if written[-1] else None

    def images(self) -> dict:
        """Return the virtual images of the scan so far (NaN: not reached yet)."""
        if self.placement is None:
            return {}
        out = {k: self.placement.image(v) for k, v in self.values.items()}
        return {k: v for k, v in out.items() if v is not None}

    def finish(self) -> None:
        """Place the frames still held (a scan shorter than APERTURE_FRAMES)."""
        if self.placement is not None:
            before = (self.placement.shape, len(self._pending))
            self.placement.finish()
            self._flush()
            if (self.placement.shape, len(self._pending)) != before:
                self.version += 1

    @property
    def waiting(self) -> str | None:
        """Why the scan's images are not there yet, or None."""
        if self.placement is None or (self.values and self.placement.shape):
            return None
        if self.placement.method == "auto":
            return "no scan in the frame headers yet"
        if self.placement.shape is None:
            return "scan shape not known yet"
        if self._weights is None:
            held = sum(p.shape[0] for _, p in self._pending)
            return f"apertures found after {APERTURE_FRAMES} scan frames ({held} yet)"
        return "scan shape not known yet"

    def mean(self) -> np.ndarray:
        """Return the mean pattern of the frames so far."""
        return self.total / max(self.frames, 1)

    def picture(self) -> LivePicture:
        """Return what a picture drawn now shows (a copy: feeding goes on)."""
        scan = self.placement is not None
        # copies: the images of beam positions are views the feeding fills in
        images = {k: v.copy() for k, v in self.images().items()}
        return LivePicture(
            frames=self.frames, scan=scan, images=images,
            waiting=self.waiting, mean=self.mean(), apertures=self.apertures,
            rate=copy.deepcopy(self.rate),
            latest=None if scan else self.latest,
            intensity=copy.deepcopy(self.intensity),
        )  # fmt: skip


def _run_ends(index: np.ndarray) -> np.ndarray:
    """Return where each run of equal values of ``index`` ends."""
    return np.append(np.flatnonzero(np.diff(index) != 0), index.size - 1)


def _placed(values, index, sums, positions: bool, again=False) -> np.ndarray:
    """Put ``sums`` at ``index`` into ``values`` (grown, NaN-filled, as needed).

    Along a scan, ``values`` is flat and ``index`` the place along it; for
    beam positions, ``values`` is 2-D and ``index`` the position key. The
    first frame at a place keeps it, as the reader keeps it by default;
    with ``again``, the first one given replaces what its place holds (a
    run of frames at one beam position that goes on from the last block).
    Returns the values and which of ``sums`` were written.
    """
    if positions:
        y, x = index // ROW, index % ROW
        need = (int(y.max()) + 1, int(x.max()) + 1)
    else:
        need = (int(index.max()) + 1,)
    have = (0,) * len(need) if values is None else values.shape
    if any(n > h for n, h in zip(need, have, strict=True)):
        # doubled, so that a scan filling in point by point is copied
        # a few times, not once per block
        size = [max(n, 2 * h) for n, h in zip(need, have, strict=True)]
        grown = np.full(size, np.nan)
        if values is not None:
            grown[tuple(slice(0, h) for h in have)] = values
        values = grown
    at = (y, x) if positions else (index,)
    # repeated places: the first frame at each keeps it
    fresh = np.isnan(values[at])
    fresh[0] |= again
    chosen = np.flatnonzero(fresh)
    flat = np.ravel_multi_index(at, values.shape)[chosen]
    _, first = np.unique(flat, return_index=True)
    values.flat[flat[first]] = sums[chosen[first]]
    written = np.zeros(index.size, dtype=bool)
    written[chosen[first]] = True
    return values, written
