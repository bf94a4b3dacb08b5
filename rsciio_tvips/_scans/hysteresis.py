"""Estimate the hysteresis of a snake scan from the data.

The rows a snake scan runs backwards are shifted by a few scan points against
the others. :func:`frame_moments` reads every frame of the scan once, in
blocks of bounded size, and reduces each to three numbers: its total
intensity and the x and y of its centre of mass. :func:`estimate_shift` then
finds the shift of the reversed rows that best matches them to their
neighbouring rows in those three maps; the centre of mass follows a
diffraction disk that moves with the scan position even where the total
intensity does not change.
"""

from __future__ import annotations

import numpy as np

from .._reading.preadv import read_frames_into

#: Bytes of frames held at once while computing the moments.
BLOCK_BYTES = 32 * 2**20


def frame_moments(records, table: np.ndarray) -> list[np.ndarray]:
    """Return total intensity and centre of mass (x, y) of every scan point.

    Parameters
    ----------
    records : Records
        Where the recording's frame records lie.
    table : numpy.ndarray of int
        Frame table of the scan (-1: blank).

    Returns
    -------
    list of numpy.ndarray
        Three float64 maps of the table's shape; NaN at blank points and at
        frames with no intensity.
    """
    flat = table.reshape(-1)
    frames, inverse = np.unique(flat[flat >= 0], return_inverse=True)
    header = records.header
    dimy, dimx = header.shape
    per_block = max(1, BLOCK_BYTES // header.frame_nbytes)
    buffer = np.empty(
        (min(per_block, max(frames.size, 1)), dimy, dimx), header.pixel_dtype
    )
    xs = np.arange(dimx, dtype=np.float64)
    ys = np.arange(dimy, dtype=np.float64)
    moments = np.full((3, frames.size), np.nan)
    for a in range(0, frames.size, per_block):
        block = frames[a : a + per_block]
        out = buffer[: block.size]
        read_frames_into(records, block, out)
        total = out.sum(axis=(1, 2), dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = out.sum(axis=1, dtype=np.float64) @ xs / total
            cy = out.sum(axis=2, dtype=np.float64) @ ys / total
        moments[:, a : a + block.size] = total, cx, cy
    maps = []
    for m in moments:
        values = np.full(flat.size, np.nan)
        values[flat >= 0] = m[inverse.reshape(-1)]
        values[~np.isfinite(values)] = np.nan
        maps.append(values.reshape(table.shape))
    return maps


def _shift_rows(rows: np.ndarray, h: int) -> np.ndarray:
    out = np.full_like(rows, np.nan)
    if h > 0:
        out[..., h:] = rows[..., :-h]
    elif h < 0:
        out[..., :h] = rows[..., -h:]
    else:
        out[...] = rows
    return out


def shift_scores(m: np.ndarray, max_shift: int) -> dict[int, float]:
    """Return, for every shift, how badly shifted even rows match their neighbours.

    Parameters
    ----------
    m : numpy.ndarray
        A map of shape ``(..., ny, nx)`` after the rows were reversed (the
        reversed rows are 0, 2, 4, ...); NaN where unknown.
    max_shift : int
        Shifts from ``-max_shift`` to ``max_shift`` are scored.

    Returns
    -------
    dict
        Mean squared difference for each shift (NaN where nothing overlaps).
    """
    neighbours = _neighbour_mean(m)
    scores = {}
    for h in range(-max_shift, max_shift + 1):
        diff = (_shift_rows(m[..., 0::2, :], h) - neighbours).reshape(-1)
        diff = diff[np.isfinite(diff)]
        scores[h] = float(np.mean(diff**2)) if diff.size else float("nan")
    return scores


def _neighbour_mean(m: np.ndarray) -> np.ndarray:
    """Return, for each row 0, 2, 4 ..., the mean of the rows above and below.

    Comparing a reversed row with the mean of both neighbours cancels the
    change of the signal from row to row, which would otherwise pull the
    best shift off the true one.
    """
    odd = m[..., 1::2, :]
    n_even = m[..., 0::2, :].shape[-2]
    total = np.zeros(m[..., 0::2, :].shape)
    count = np.zeros(total.shape)
    for offset in (-1, 0):  # the odd row above (2k - 1) and below (2k + 1)
        lo = max(0, -offset)
        hi = min(n_even, odd.shape[-2] - offset)
        part = odd[..., lo + offset : hi + offset, :]
        good = np.isfinite(part)
        total[..., lo:hi, :] += np.where(good, part, 0.0)
        count[..., lo:hi, :] += good
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def estimate_shift(maps, max_shift: int) -> int:
    """Return the shift that best aligns the reversed rows (smallest on a tie).

    Each map is scored on its own; the map whose best shift stands out most
    from the others (the largest ratio of the median score to the lowest)
    decides. A map that does not follow the scan position (the total
    intensity when only the disk moves) has a flat, noisy score and so
    does not outvote one that does.

    Raises
    ------
    ValueError
        If no shift could be scored (blank or featureless data).
    """
    best_contrast, best_shift = 0.0, None
    for m in maps:
        m = np.asarray(m, dtype=np.float64)
        if not np.isfinite(m).any() or not np.nanstd(m) > 0:
            continue
        scores = {h: v for h, v in shift_scores(m, max_shift).items() if np.isfinite(v)}
        if len(scores) < 2:
            continue
        low = min(scores.values())
        contrast = (float(np.median(list(scores.values()))) - low) / (
            low + 1e-12 * np.nanvar(m)
        )
        if contrast > best_contrast:
            best_contrast = contrast
            best_shift = min((h for h, v in scores.items() if v == low), key=abs)
    if best_shift is None:
        raise ValueError(
            "hysteresis='auto' found nothing to compare: the scan's frames are "
            "blank or all alike; give hysteresis as a number"
        )
    return best_shift
