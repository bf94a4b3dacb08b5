"""The frame headers a signal carries from the recording it was read from.

The reader puts them in ``original_metadata.frame_headers``, one array per
field (dask arrays for a lazy read). :func:`carried_frame_headers` takes
them when they are for exactly the frames to write, and refuses them when
they are not one value per frame; :func:`_length` counts a field's frames
without computing it, :func:`_computed` computes the fields together, and
:func:`_put_carried` puts a field into the headers to write
(:func:`~.encode.frame_headers`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def carried_frame_headers(original, n: int) -> dict | None:
    """Return the frame headers the signal carries, if they are for ``n`` frames.

    Parameters
    ----------
    original : dict or None
        The signal's ``original_metadata``.
    n : int
        Frames to write.

    Returns
    -------
    dict or None
        ``original_metadata.frame_headers`` (one array per field, as the
        reader puts them) when every field has ``n`` values; None when the
        signal carries none, or carries them for other frames (a crop).

    Raises
    ------
    ValueError
        If they are not a mapping of fields to one value per frame (a
        single value, a ragged list): no frame count fits them, and
        taking them for a crop would silently drop what they hold.
    """
    carried = (original or {}).get("frame_headers")
    if not carried:
        return None
    _check_per_frame(carried)
    if all(_length(v) == n for v in carried.values()):
        return carried
    return None


def _check_per_frame(carried) -> None:
    """Raise ValueError unless every carried field has one value per frame."""
    where = "original_metadata.frame_headers"
    if not isinstance(carried, Mapping):
        msg = (
            f"{where} must map frame-header fields to one value per frame, "
            f"found a value of type {type(carried).__name__}"
        )
        raise ValueError(msg)
    for name, values in carried.items():
        try:
            shape = np.shape(values)
        except ValueError:  # numpy's word for a ragged list
            shape = None
        if not shape:
            what = "a ragged list" if shape is None else f"a single value {values!r}"
            msg = (
                f"{where}[{name!r}] is {what}, not one value per frame: give "
                "an array with a value for each frame, or remove the field"
            )
            raise ValueError(msg)


def _computed(carried: dict, names) -> dict:
    """Return the carried fields the header holds, computed into numpy.

    A lazy read carries dask arrays that share one read of the frame
    headers: computed together, that read happens once, not field by field.
    They are computed a chunk at a time, so that the whole headers a task
    reads (up to 16 MiB each, :data:`~rsciio_tvips._reading.lazy.HEADER_TASK_BYTES`
    a task) are held one chunk at a time, not all at once.
    """
    import dask

    wanted = [k for k in names if k in carried]
    lazy = [carried[k] for k in wanted]
    chunks = {getattr(v, "chunks", (None,))[0] for v in lazy}
    if len(chunks) != 1 or None in chunks or len(next(iter(chunks))) < 2:
        return dict(zip(wanted, dask.compute(*lazy), strict=True))
    parts = [dask.compute(*(v.blocks[i] for v in lazy)) for i in range(len(*chunks))]
    return {k: np.concatenate([p[j] for p in parts]) for j, k in enumerate(wanted)}


def _length(values) -> int:
    """Return how many frames a carried field has, without computing it.

    The reader can carry the frame headers of a lazy signal as dask arrays:
    their shape is known, and reading every header only to count them would
    cost a pass over the recording.
    """
    shape = np.shape(values)
    return int(shape[0]) if shape else 0


def _put_carried(out, name: str, value) -> None:
    """Write a carried field into the headers, if its per-frame shape fits."""
    if value.shape[1:] != out[name].shape[1:]:
        return
    _check_fits(name, value, out.dtype[name].base)
    try:
        out[name] = value
    except (TypeError, ValueError) as exc:  # None, text: not numbers
        msg = (
            f"original_metadata.frame_headers[{name!r}] holds values of type "
            f"{value.dtype} that are not numbers for the {out.dtype[name]} field"
        )
        raise ValueError(msg) from exc


def _check_fits(name: str, value: np.ndarray, field: np.dtype) -> None:
    """Refuse carried values an integer field would store as other numbers.

    numpy's assignment casts unsafely: -1 would be stored as 4294967295 and
    2**33 + 5 as 5, silently. Values that are no numbers are left to the
    assignment, which refuses them.
    """
    if not np.issubdtype(field, np.integer) or value.size == 0:
        return
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        return
    numbers = value.reshape(len(value), -1)
    limits = np.iinfo(field)
    if np.issubdtype(value.dtype, np.integer) or value.dtype == bool:
        bad = (numbers < limits.min) | (numbers > limits.max)
    else:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
            bad |= (numbers < limits.min) | (numbers > limits.max)
    if bad.any():
        frame, column = np.argwhere(bad)[0]
        found = numbers[frame, column].item()
        msg = (
            f"original_metadata.frame_headers[{name!r}] holds {found!r} at frame "
            f"{frame}, which the {field} field cannot hold (whole numbers from "
            f"{limits.min} to {limits.max})"
        )
        raise ValueError(msg)
