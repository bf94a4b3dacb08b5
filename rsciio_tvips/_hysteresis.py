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

from ._io import read_frames_into

#: Bytes of frames held at once while computing the moments.
BLOCK_BYTES = 32 * 2**20


def frame_moments(chain, header, table: np.ndarray) -> list[np.ndarray]:
    """Return total intensity and centre of mass (x, y) of every scan point.

    Parameters
    ----------
    chain : Chain
        The recording's parts.
    header : MainHeader
        The recording's main header.
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
        read_frames_into(chain, header, block, out)
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


def shift_scores(maps, max_shift: int) -> dict[int, float]:
    """Return, for every shift, how badly shifted even rows match odd rows.

    Parameters
    ----------
    maps : list of numpy.ndarray
        Maps of shape ``(..., ny, nx)`` after the rows were reversed (the
        reversed rows are 0, 2, 4, ...). Each is standardised; constant maps
        are left out.
    max_shift : int
        Shifts from ``-max_shift`` to ``max_shift`` are scored.

    Returns
    -------
    dict
        Mean squared difference for each shift (NaN where nothing overlaps).
    """
    usable = []
    for m in maps:
        m = np.asarray(m, dtype=np.float64)
        sd = np.nanstd(m) if np.isfinite(m).any() else 0.0
        if sd > 0:
            usable.append((m - np.nanmean(m)) / sd)
    scores = {}
    for h in range(-max_shift, max_shift + 1):
        errors = []
        for m in usable:
            even = _shift_rows(m[..., 0::2, :], h)
            odd = m[..., 1::2, :]
            # each reversed row against the rows above and below it
            below = even[..., : odd.shape[-2], :] - odd
            above = (
                even[..., 1 : odd.shape[-2] + 1, :] - odd[..., : even.shape[-2] - 1, :]
            )
            diff = np.concatenate([below.reshape(-1), above.reshape(-1)])
            diff = diff[np.isfinite(diff)]
            if diff.size:
                errors.append(float(np.mean(diff**2)))
        scores[h] = float(np.mean(errors)) if errors else float("nan")
    return scores


def estimate_shift(maps, max_shift: int) -> int:
    """Return the shift with the lowest score (the smallest one on a tie).

    Raises
    ------
    ValueError
        If no shift could be scored (blank or featureless data).
    """
    scores = shift_scores(maps, max_shift)
    finite = {h: s for h, s in scores.items() if np.isfinite(s)}
    if not finite:
        raise ValueError(
            "hysteresis='auto' found nothing to compare: the scan's frames are "
            "blank or all alike; give hysteresis as a number"
        )
    best = min(finite.values())
    return min((h for h, s in finite.items() if s == best), key=abs)
