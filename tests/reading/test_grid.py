"""Implicit frame tables (issue 16, item 2): a stack opens in constant memory.

A :class:`FrameGrid` must give exactly the numbers the explicit table of the
same rule has, for every slice and point selection the lazy array makes.
"""

import pickle

import numpy as np
import pytest
from dask.base import tokenize

from rsciio_tvips import file_reader
from rsciio_tvips._reading.grid import (
    blank_points,
    consecutive,
    first_placed,
)


def explicit(n_frames, shape, start):
    """The frame table of the same rule, one number per point."""
    frames = np.arange(start, start + int(np.prod(shape))).reshape(shape)
    return np.where((frames >= 0) & (frames < n_frames), frames, -1)


@pytest.mark.parametrize("start", [-7, 0, 5, 19])
def test_a_grid_equals_its_explicit_table(start):
    grid, table = consecutive(20, (4, 6), start), explicit(20, (4, 6), start)
    np.testing.assert_array_equal(np.asarray(grid), table)
    keys = [
        (slice(1, 3), slice(2, 5)),
        (slice(None, None, 2),),
        (2,),
        (-1, slice(1, 4)),
        (slice(3, None), slice(None, None, -1)),
        (slice(4, 9),),
    ]
    for key in keys:
        np.testing.assert_array_equal(np.asarray(grid[key]), table[key], str(key))
    block = grid[1:3, 2:5]
    pick = np.ix_([1, 0, 1], [2, 0])
    np.testing.assert_array_equal(block[pick], table[1:3, 2:5][pick])
    np.testing.assert_array_equal(
        np.asarray(block.reshape(-1)), table[1:3, 2:5].ravel()
    )
    np.testing.assert_array_equal(np.asarray(grid.reshape(-1)), table.ravel())
    assert grid.reshape(3, -1).shape == (3, 8)
    assert blank_points(grid) == int((table < 0).sum())
    placed = table[table >= 0]
    assert first_placed(grid) == (int(placed[0]) if placed.size else None)


def test_a_grid_pickles_and_tokenizes_by_its_rule():
    grid = consecutive(20, (4, 6), 3)
    block = grid[1:3, 2:5]
    again = pickle.loads(pickle.dumps(block))
    np.testing.assert_array_equal(np.asarray(again), np.asarray(block))
    assert tokenize(again) == tokenize(block)
    assert tokenize(block) != tokenize(grid[1:3, 2:6])
    assert len(pickle.dumps(consecutive(10**9))) < 200


def test_a_grid_refuses_what_it_cannot_index():
    grid = consecutive(20, (4, 6))
    with pytest.raises(
        IndexError, match=r"^index 4 is out of bounds for an axis of size 4$"
    ):
        grid[4]
    with pytest.raises(IndexError, match=r"^too many indices: 3 for 2 axes$"):
        grid[0, 0, 0]
    with pytest.raises(IndexError, match="one integer array per axis"):
        grid[np.array([0, 1])]
    with pytest.raises(
        ValueError, match=r"cannot reshape a grid of 24 points into shape \(5, -1\)"
    ):
        grid.reshape(5, -1)


def test_a_grid_is_the_table_of_stacks_and_sequential_scans(make_tvips):
    path = make_tvips(n_frames=12, shape=(3, 4)).path
    (stack,) = file_reader(path, lazy=True)
    with pytest.warns(UserWarning, match=r"ends before its last 1 point\(s\)"):
        (scan,) = file_reader(path, lazy=True, scan_shape=(3, 5), scan_start_frame=-2)
    (eager,) = file_reader(path)
    np.testing.assert_array_equal(stack["data"].compute(), eager["data"])
    expected = explicit(12, (3, 5), -2)
    got = scan["data"].compute()
    for point in np.ndindex(3, 5):
        frame = expected[point]
        want = eager["data"][frame] if frame >= 0 else np.zeros((3, 4), np.uint16)
        np.testing.assert_array_equal(got[point], want)
    assert scan["original_metadata"]["Scan"]["blank_points"] == 3
    heads = scan["original_metadata"]["frame_headers"]["num"].compute()
    nums = eager["original_metadata"]["frame_headers"]["num"]
    flat = expected.ravel()
    np.testing.assert_array_equal(heads, np.where(flat >= 0, nums[flat], 0))


LAZY_OPEN = """
import json, sys
from rsciio_tvips import file_reader
path, how = sys.argv[1], sys.argv[2]
shape = None if how == "stack" else (20000, 10000)
(d,) = file_reader(path, lazy=True, scan_shape=shape)
last = d["data"][(-1,) * (d["data"].ndim - 2)].compute()
heads = d["original_metadata"]["frame_headers"]["num"]
result = [list(d["data"].shape), int(last.sum()), int(heads[-1].compute())]
"""


@pytest.mark.parametrize("how", ["stack", "scan"])
def test_lazy_open_of_200_million_frames_stays_small(
    tmp_path, main_header, peak_rss, how
):
    # 200 million 1 x 1 frames, a sparse file of 12 GB on paper; the last
    # frame's pixel and counter set, so the reads are checked too
    n = 200_000_000
    path = tmp_path / "many_000.tvips"
    with open(path, "wb") as f:
        f.write(main_header(dimx=1, dimy=1, bitsperpixel=8, frameheaderbytes=60))
        f.seek(256 + (n - 1) * 61)
        f.write((n).to_bytes(4, "little") + bytes(56) + b"\x07")
    got = peak_rss(LAZY_OPEN, path, how)
    assert got["rss"] < 300 * 2**20, got["rss"]
    shape = [n, 1, 1] if how == "stack" else [20000, 10000, 1, 1]
    assert got["result"] == [shape, 7, n]


def test_a_grid_of_another_frame_count_is_refused(make_tvips):
    # a grid blanks the points past its own count: for 10 of 12 frames it
    # would hide frames 10 and 11 without a word
    from rsciio_tvips._reading.grid import FrameGrid
    from rsciio_tvips._reading.recording import TvipsRecording

    rec = TvipsRecording(make_tvips(n_frames=12, shape=(3, 4)).path)
    msg = r"^rec_000.tvips: a frame grid of 10 frames for a recording of 12 frames$"
    with pytest.raises(IndexError, match=msg):
        rec.to_dask(FrameGrid((3, 4), 0, 10))
    assert rec.to_dask(FrameGrid((3, 4), 0, 12)).shape == (3, 4, 3, 4)
