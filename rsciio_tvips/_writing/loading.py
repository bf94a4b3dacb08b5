"""Load the data a group of blocks at a time, while the group before is written.

The two ways frames are written, whole (:mod:`.store`) and in pieces
(:mod:`.pieces`), share these: :func:`_groups` gathers blocks or pieces into
loads of about a budget of bytes, :func:`_load` computes a load (dask data)
or takes it (numpy) as little-endian arrays, and :func:`_pipelined` computes
the next load in a thread while the one before is written.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _groups(items, sizes, budget: int) -> list[list]:
    """Group consecutive items into loads of about ``budget`` bytes (one at least)."""
    groups, current, size = [], [], 0
    for item, nbytes in zip(items, sizes, strict=True):
        if current and size + nbytes > budget:
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += nbytes
    if current:
        groups.append(current)
    return groups


def _load(data, indices, dtype) -> list[np.ndarray]:
    """Compute (or take) ``data[index]`` of each index as little-endian arrays."""
    parts = [data[index] for index in indices]
    expected = [tuple(part.shape) for part in parts]
    if hasattr(data, "dask"):
        import dask

        parts = dask.compute(*parts)
    out = []
    for shape, part in zip(expected, parts, strict=True):
        part = np.ascontiguousarray(part, dtype=dtype.newbyteorder("<"))
        if part.shape != shape:
            msg = f"a block of the data came out as {part.shape}, not {shape}"
            raise ValueError(msg)
        out.append(part)
    return out


def _pipelined(jobs, load, write) -> None:
    """Run ``write(job, load(job))`` for each job, loading the next one meanwhile.

    Loading (a dask computation) runs in a thread while the job before it
    is written, so the disk and the computation work at the same time;
    at most two jobs' data are held at once.
    """
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(load, jobs[0]) if jobs else None
        for i, job in enumerate(jobs):
            loaded = future.result()
            if i + 1 < len(jobs):
                future = pool.submit(load, jobs[i + 1])
            write(job, loaded)
