"""Memory-mapped lazy reads (``io="mmap"``, issue 19).

The map is a way of reading, not of placing: every array must equal the
default read's, whatever the frames, the chunks and the slice; the chunks a
task returns are read-only views of a map of the part; the part's identity
is checked when the map is made.
"""

import itertools
import pickle

import numpy as np
import pytest

from rsciio_tvips import TvipsFormatError, file_reader
from rsciio_tvips._reading.grid import FrameGrid, consecutive
from rsciio_tvips._reading.lazy import BlockSource, cut_at_parts
from rsciio_tvips._reading.mapped import grid_strides
from rsciio_tvips._reading.recording import TvipsRecording

READS = {
    "stack": {},
    "scan": {"scan_shape": (5, 6), "scan_start_frame": 3},
    "padded": {"scan_shape": (5, 7), "scan_start_frame": -2},
    "snake": {"scan_shape": (5, 6), "winding_scan_axis": "x", "hysteresis": 1},
}
SLICES = [
    (...,),
    (slice(None), slice(1, 3)),
    (..., slice(2, 5), slice(1, 4)),
    (2,),
    (..., 4, 1),
    (slice(None, None, 2),),
]


@pytest.fixture
def parts(make_tvips):
    # 36 frames of 6 x 5 (records of 120 bytes): 7 in the first part, then
    # a part of 40 bytes, so that frame 7 straddles it and the third part
    return make_tvips(
        n_frames=36, shape=(6, 5), split=[7 * 120, 7 * 120 + 40, 20 * 120]
    )


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("chunks", ["auto", "small"])
def test_mapped_reads_equal_the_default(parts, read, chunks, recwarn):
    kw = READS[read]
    small = (3, 2, 6, 5) if "scan_shape" in kw else (4, 6, 5)
    rechunking = small if chunks == "small" else "auto"
    (a,) = file_reader(parts.path, lazy=True, rechunking=rechunking, **kw)
    (b,) = file_reader(parts.path, lazy=True, rechunking=rechunking, io="mmap", **kw)
    for key in SLICES:
        np.testing.assert_array_equal(
            b["data"][key].compute(), a["data"][key].compute()
        )
    assert int(b["data"].sum(dtype=np.uint64).compute()) == int(
        a["data"].sum(dtype=np.uint64).compute()
    )


def test_a_task_hands_out_a_read_only_view_of_a_map(parts):
    rec = TvipsRecording(parts.path)
    mapped = BlockSource(rec.records, np.arange(1, 6), "mmap")[:, 2:5, :]
    copied = BlockSource(rec.records, np.arange(1, 6), "pread")[:, 2:5, :]
    np.testing.assert_array_equal(mapped, copied)
    np.testing.assert_array_equal(mapped, parts.frames[1:6, 2:5])
    assert not mapped.flags.writeable
    assert type(mapped.base).__name__ == "mmap"
    # frames that straddle two parts, or a blank point: read as by default
    for frames in (np.arange(5, 9), np.array([0, -1, 2])):
        got = BlockSource(rec.records, frames, "mmap")[...]
        assert got.flags.writeable
        want = np.where(frames[:, None, None] >= 0, parts.frames[frames], 0)
        np.testing.assert_array_equal(got, want)


def test_the_graph_holds_no_map(parts):
    (d,) = file_reader(parts.path, lazy=True, io="mmap", scan_shape=(6, 6))
    again = pickle.loads(pickle.dumps(d["data"]))
    np.testing.assert_array_equal(again.compute(), d["data"].compute())
    assert len(pickle.dumps(d["data"])) < 20_000


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (np.arange(6).reshape(2, 3), (0, (3, 1))),
        (np.arange(12).reshape(3, 4)[:, 1:3], (1, (4, 1))),
        (np.arange(6)[::-1], (5, (-1,))),
        (np.array([[0, 1], [3, 2]]), None),
        (np.array([0, -1, 2]), None),
        (np.array([4]), (4, (0,))),
    ],
)
def test_which_frames_are_a_grid(frames, expected):
    assert grid_strides(frames) == expected


def test_a_part_replaced_before_the_map_is_refused(parts):
    (d,) = file_reader(parts.path, lazy=True, io="mmap")
    second = parts.paths[2]  # frames 8 to 19
    data = second.read_bytes()
    second.unlink()
    second.write_bytes(data)  # the same bytes in a new file (a new inode)
    with pytest.raises(TvipsFormatError, match=rf"^{second.name}: the part changed"):
        d["data"][10].compute()


def test_io_is_checked():
    with pytest.raises(
        ValueError, match=r"^io must be 'pread' or 'mmap', got 'memmap'$"
    ):
        file_reader("whatever_000.tvips", io="memmap")


def test_a_part_cut_short_before_the_map_is_read_as_by_default(parts):
    # no map of bytes that are gone (touching them would be SIGBUS): the
    # default read then says which bytes are missing
    (d,) = file_reader(parts.path, lazy=True, io="mmap")
    third = parts.paths[2]
    with open(third, "r+b") as f:
        f.truncate(600)
    with pytest.raises(TvipsFormatError, match=rf"^{third.name}: expected \d+ bytes"):
        d["data"][15].compute()


def test_default_chunks_end_where_a_part_ends(parts):
    # parts start at stream bytes 840 (frame 7), 880 (inside frame 7's
    # header: its pixels lie in the third part) and 2400 (frame 20)
    rec = TvipsRecording(parts.path)
    assert rec.to_dask().chunks[0] == (36,)  # the default read: untouched
    assert rec.to_dask(io="mmap").chunks[0] == (7, 13, 16)
    (d,) = file_reader(parts.path, lazy=True, io="mmap", scan_shape=(6, 6))
    # rows 1 (frames 6-11: 7 starts a part) and 3 (18-23: 20) alone
    assert d["data"].chunks[:2] == ((1, 1, 1, 1, 2), (6,))
    # the same cuts counted from the scan's first frame, 3 or -2 (blank)
    for start, rows in ((3, (1, 1, 1, 2)), (-2, (1, 1, 1, 1, 2))):
        shape = (5, 6) if start > 0 else (6, 6)
        kw = {"scan_shape": shape, "scan_start_frame": start}
        (d,) = file_reader(parts.path, lazy=True, io="mmap", **kw)
        assert d["data"].chunks[0] == rows
    # a size (240 bytes: 4 frames) is cut as the default is; chunks given
    # as a tuple are not
    (d,) = file_reader(parts.path, lazy=True, io="mmap", rechunking="240B")
    assert d["data"].chunks[0] == (4, 3, 4, 3, 3, 3, 4, 4, 4, 4)
    (d,) = file_reader(parts.path, lazy=True, rechunking="240B")
    assert d["data"].chunks[0] == (4,) * 9
    (d,) = file_reader(parts.path, lazy=True, io="mmap", rechunking=(4, 6, 5))
    assert d["data"].chunks[0] == (4,) * 9


def test_a_frame_whose_pixels_straddle_two_parts_is_a_chunk_of_its_own(make_tvips):
    # the second part starts 80 bytes into frame 7's record: 20 bytes into
    # its pixels (60-byte headers)
    rec_ = make_tvips(n_frames=36, shape=(6, 5), split=[7 * 120 + 80, 20 * 120])
    rec = TvipsRecording(rec_.path)
    data = rec.to_dask(io="mmap")
    assert data.chunks[0] == (7, 1, 12, 16)
    edges = np.cumsum((0, *data.chunks[0]))
    copied = [
        BlockSource(rec.records, np.arange(a, b), "mmap")[...].flags.writeable
        for a, b in itertools.pairwise(edges)
    ]
    assert copied == [False, True, False, False]  # only frame 7 is copied
    np.testing.assert_array_equal(data.compute(), rec_.frames)


def test_every_chunk_cut_at_the_parts_is_one_map(parts):
    rec = TvipsRecording(parts.path)
    data = rec.to_dask(io="mmap")
    edges = np.cumsum((0, *data.chunks[0]))
    copied = [
        BlockSource(rec.records, np.arange(a, b), "mmap")[...].flags.writeable
        for a, b in itertools.pairwise(edges)
    ]
    assert copied == [False, False, False]
    # uncut, the frames of the four parts were one copied chunk
    assert BlockSource(rec.records, np.arange(36), "mmap")[...].flags.writeable


def test_runs_between_cuts_are_shared_evenly(parts):
    rec = TvipsRecording(parts.path)
    chunks = ((10, 10, 10, 6), (6,), (5,))
    got = cut_at_parts(chunks, consecutive(36), rec.records)
    assert got == ((7, 7, 6, 8, 8), (6,), (5,))
    # tables not in frame order keep their chunks: a snake scan, and a grid
    # that runs down the columns
    snake = np.arange(36).reshape(6, 6)
    snake[1::2] = snake[1::2, ::-1].copy()
    down = FrameGrid((6, 6), 0, 36, strides=(1, 6))
    for table in (snake, down):
        given = ((3, 3), (6,), (6,), (5,))
        assert cut_at_parts(given, table, rec.records) == given
