"""Scans found block by block are the scans found in one go (issue 16, item 2).

The finders see the headers a block at a time, so a run of frames may
straddle any number of blocks; the answer must not depend on where the
blocks are cut. A plain Python loop is the oracle for the runs.
"""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rsciio_tvips._scans.detect import (
    PositionScans,
    RotatorScans,
    RunSplitter,
    find_scans,
    position_points,
)


def runs_by_loop(values):
    """Every run of >= 2 valid, never decreasing values, as (first, values)."""
    runs, first = [], None
    for i, v in enumerate(values):
        goes_on = first is not None and v >= 0 and v >= values[i - 1]
        if not goes_on:
            if first is not None and i - first >= 2:
                runs.append((first, list(values[first:i])))
            first = i if v >= 0 else None
    if first is not None and len(values) - first >= 2:
        runs.append((first, list(values[first:])))
    return runs


def in_blocks(values, cuts):
    """Cut ``values`` at the sorted positions ``cuts``: (offset, block) pairs."""
    edges = [0, *sorted(set(c % (len(values) + 1) for c in cuts)), len(values)]
    return [(a, np.asarray(values[a:b])) for a, b in itertools.pairwise(edges) if b > a]


values_st = st.lists(st.integers(-1, 6), max_size=60)
cuts_st = st.lists(st.integers(0, 60), max_size=8)


@settings(max_examples=300, deadline=None)
@given(values_st, cuts_st)
def test_runs_do_not_depend_on_the_blocks(values, cuts):
    splitter = RunSplitter()
    got = []
    for offset, block in in_blocks(values, cuts):
        got += splitter.feed(offset, block)
    got += splitter.finish()
    # runs come run-length encoded: distinct values, frames of each
    for _, v, n in got:
        assert np.all(np.diff(v) > 0) and np.all(n >= 1)
    assert [(a, list(np.repeat(v, n))) for a, v, n in got] == runs_by_loop(values)


@settings(max_examples=300, deadline=None)
@given(values_st, cuts_st, st.integers(0, 5))
def test_rotator_scans_do_not_depend_on_the_blocks(values, cuts, start):
    points = np.asarray(values, dtype=np.int64)
    finder = RotatorScans()
    for offset, block in in_blocks(values[start:], cuts):
        finder.feed(start + offset, block)
    assert finder.finish() == find_scans(points, start)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 3)), max_size=50), cuts_st
)
def test_position_scans_do_not_depend_on_the_blocks(xy, cuts):
    x = np.asarray([p[0] for p in xy], dtype=np.float64)
    y = np.asarray([p[1] for p in xy], dtype=np.float64)
    finder = PositionScans()
    for offset, block in in_blocks(list(range(len(xy))), cuts):
        finder.feed(offset, x[block], y[block])
    points, scans = position_points(x, y)
    assert finder.finish() == scans
    for first, stop, nx, _ in scans:
        np.testing.assert_array_equal(
            points[first:stop], y[first:stop] * nx + x[first:stop]
        )


def test_a_block_out_of_order_is_refused():
    splitter = RunSplitter()
    splitter.feed(0, np.array([0, 1, 2]))
    try:
        splitter.feed(5, np.array([3]))
    except ValueError as e:
        assert str(e) == "block at frame 5, expected frame 3"
    else:
        raise AssertionError("a gap between blocks was accepted")
