"""Reading frames and frame headers: exact values, lazily and eagerly."""

import os
import pickle
import re
import tracemalloc

import dask
import numpy as np
import pytest

from rsciio_tvips import (
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
)
from rsciio_tvips._reading import preadv as _io
from rsciio_tvips._reading import recording as _reader
from rsciio_tvips._reading.grid import FrameGrid
from rsciio_tvips._reading.lazy import BlockSource, auto_chunks

LAYOUTS = {
    "v1": {"version": 1},
    "v2-60": {"frame_header_bytes": 60},
    "v2-61": {"frame_header_bytes": 61},
    "v2-108": {"frame_header_bytes": 108},
    "v2-180": {"frame_header_bytes": 180},
}
SPLITS = {
    "one part": {},
    "whole records": {"records_per_part": 2},
    # part boundaries inside frame headers, inside pixel data, an empty part
    "straddling": {"split": [30, 200, 200, 333]},
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_frames_exact(make_tvips, layout, split, dtype):
    rec = make_tvips(
        n_frames=7, shape=(5, 6), dtype=dtype, **LAYOUTS[layout], **SPLITS[split]
    )
    r = TvipsRecording(rec.path)
    assert r.shape == (7, 5, 6) and r.dtype == np.dtype(dtype)
    eager = r.asarray()
    assert eager.dtype == np.dtype(dtype) and eager.flags.c_contiguous
    np.testing.assert_array_equal(eager, rec.frames)
    np.testing.assert_array_equal(r.to_dask(chunks=(3, 5, 6)).compute(), rec.frames)
    np.testing.assert_array_equal(r.read_frames([6, 0, 3, 3]), rec.frames[[6, 0, 3, 3]])
    np.testing.assert_array_equal(r.read_frame(-1), rec.frames[-1])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("split", SPLITS)
def test_frame_headers_exact(make_tvips, layout, split):
    rec = make_tvips(n_frames=7, shape=(5, 6), **LAYOUTS[layout], **SPLITS[split])
    headers = TvipsRecording(rec.path).frame_headers
    fhb = rec.record_size - 60
    assert headers.dtype.itemsize == fhb
    # byte-exact: the raw header bytes as written, including unknown bytes
    written = [rec.stream[i * rec.record_size :][:fhb] for i in range(7)]
    assert [h.tobytes() for h in headers] == written
    np.testing.assert_array_equal(headers["num"], np.arange(1, 8))
    np.testing.assert_array_equal(headers["ICounter"], np.arange(1, 8))
    np.testing.assert_array_equal(headers["ms"], [0, 250, 500, 750, 0, 250, 500])
    if fhb >= 60:
        np.testing.assert_array_equal(headers["Index_of_rotator"], np.arange(7))
        np.testing.assert_array_equal(headers["stagea"], np.full(7, 12.5, "f4"))
    if fhb >= 76:
        np.testing.assert_array_equal(headers["Scan_x"], np.arange(7) % 7)


def test_headers_in_any_order(make_tvips):
    rec = make_tvips(n_frames=7, split=[30, 200])
    h = TvipsRecording(rec.path).read_headers([6, 0, 3, 3, -1])
    np.testing.assert_array_equal(h["num"], [7, 1, 4, 4, 7])


def test_rewritten_file_gets_new_dask_keys(make_tvips):
    rec = make_tvips(n_frames=4)
    before = TvipsRecording(rec.path).to_dask().name
    os.utime(rec.path, ns=(0, 10**9))
    assert TvipsRecording(rec.path).to_dask().name != before


def test_short_header_never_reads_pixels_as_fields(make_tvips):
    rec = make_tvips(frame_header_bytes=60)
    names = TvipsRecording(rec.path).frame_headers.dtype.names
    assert "Scan_x" not in names and "extra" not in names
    assert names[-1] == "objective"


def test_truncated_last_part(make_tvips):
    rec = make_tvips(n_frames=6, records_per_part=2, truncate=30)
    msg = (
        "rec_002.tvips: frame record 5 at offset 84 is truncated: expected 84 "
        "bytes, found 54; the 54 bytes are ignored and 5 whole frames are read "
        "(interrupted acquisition?)"
    )
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(msg)}$"):
        r = TvipsRecording(rec.paths[1])
    assert r.ignored_bytes == 54
    np.testing.assert_array_equal(r.asarray(), rec.frames[:5])
    np.testing.assert_array_equal(r.to_dask().compute(), rec.frames[:5])


def test_truncated_record_that_starts_in_an_earlier_part(make_tvips):
    # the last part holds only the tail of a record that starts in part 1
    rec = make_tvips(n_frames=3, split=[84, 200], truncate=10)
    msg = (
        "rec_001.tvips: frame record 2 at offset 84 is truncated: expected 84 "
        "bytes, found 74"
    )
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(msg)}"):
        r = TvipsRecording(rec.path)
    np.testing.assert_array_equal(r.asarray(), rec.frames[:2])


def test_file_shortened_after_opening(make_tvips):
    rec = make_tvips(n_frames=6, records_per_part=3)
    lazy = TvipsRecording(rec.path).to_dask()
    rec.paths[1].write_bytes(rec.paths[1].read_bytes()[:100])
    msg = (
        "rec_001.tvips: expected 192 bytes at offset 60, found 40; the file was "
        "shortened after the recording was opened"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        lazy.compute()


def test_index_out_of_range(make_tvips):
    r = TvipsRecording(make_tvips(n_frames=3).path)
    with pytest.raises(
        IndexError, match="frame 3 is out of range for a recording of 3"
    ):
        r.read_frame(3)
    with pytest.raises(IndexError, match="frame -4 is out of range"):
        r.read_frames([0, -4])


@pytest.mark.parametrize(
    "key",
    [
        np.s_[:],
        np.s_[2],
        np.s_[-1],
        np.s_[1:4],
        np.s_[::2],
        np.s_[::-1],
        np.s_[..., 1],
        np.s_[1, ..., 2],
        np.s_[:, 1:3],
        np.s_[:, 1:4:2, ::3],
        np.s_[:, ::-2],
        np.s_[:, 3:1],
        np.s_[3:3],
        np.s_[:, :, 2:5],
        np.s_[2, 1, 0],
        np.s_[:, -2:],
        np.s_[[4, 1, 1]],
        np.s_[[]],
        np.s_[:, [3, 0]],
        np.s_[1, [2]],
        np.s_[np.int64(3)],
        np.s_[np.int32(-2), 0:5, 0:7],  # whole rows and columns as slices,
        np.s_[:, ::1, -7:],
        np.s_[:, [0, 1, 2, 3, 4]],  # as lists
        np.s_[:, :, range(7)],
        np.s_[:, [0, 1, 2, 3, 3]],  # and nearly whole
        np.s_[:, :, [1, 2, 3, 4, 5, 6, 0]],
    ],
)
@pytest.mark.parametrize("grid", [False, True], ids=["array", "grid"])
def test_frame_source_indexing(make_tvips, key, grid):
    rec = make_tvips(n_frames=6, shape=(5, 7), split=[100])
    r = TvipsRecording(rec.path)
    frames = FrameGrid((6,), 0, 6, (1,)) if grid else np.arange(r.n_frames)
    source = BlockSource(r.records, frames)
    got = source[key]
    np.testing.assert_array_equal(got, rec.frames[key])
    assert got.shape == rec.frames[key].shape


def test_frame_source_lists_index_each_axis_on_its_own(make_tvips):
    # outer indexing, as dask expects of a source (numpy would pair the lists)
    rec = make_tvips(n_frames=6, shape=(5, 7))
    r = TvipsRecording(rec.path)
    got = BlockSource(r.records, np.arange(r.n_frames))[np.array([2, -1]), 1:3, [6, 0]]
    np.testing.assert_array_equal(got, rec.frames[np.ix_([2, -1], [1, 2], [6, 0])])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ((0, 0, 0, 0), "too many indices: 4 for 3 dimensions"),
        (6, "index 6 is out of bounds for an axis of size 6"),
        (np.s_[:, -6], "index -6 is out of bounds for an axis of size 5"),
        (np.s_[[0, 9]], "index 9 is out of bounds"),
        (np.s_[[[0]]], "unsupported index"),
        (np.s_[[0.5]], "unsupported index"),
        ("a", "unsupported index"),
        (True, "unsupported index True"),  # not frame 1
        (np.s_[np.int64(-7)], "index -7 is out of bounds for an axis of size 6"),
    ],
)
def test_frame_source_bad_index(make_tvips, key, message):
    r = TvipsRecording(make_tvips(n_frames=6, shape=(5, 7)).path)
    with pytest.raises(IndexError, match=re.escape(message)):
        BlockSource(r.records, np.arange(r.n_frames))[key]


def spy_reads(monkeypatch):
    seen = []
    real = _io.read_pieces

    def spy(chain, offsets, length, dest, rows):
        seen.append((list(offsets), length))
        return real(chain, offsets, length, dest, rows)

    monkeypatch.setattr(_io, "read_pieces", spy)
    return seen


def test_dask_slices_read_only_what_they_need(make_tvips, monkeypatch):
    # dask fuses slices of the array into the read of the source: one frame
    # reads one frame, a virtual detector reads only its rows.
    rec = make_tvips(n_frames=30, shape=(8, 5))
    x = TvipsRecording(rec.path).to_dask(chunks=(10, 8, 5))
    seen = spy_reads(monkeypatch)
    np.testing.assert_array_equal(x[13].compute(), rec.frames[13])
    record = 60 + 80
    assert seen == [([13 * record + 60], 80)]
    seen.clear()
    vbf = x[:, 3:5, 1:3].sum(axis=(1, 2)).compute()
    np.testing.assert_array_equal(vbf, rec.frames[:, 3:5, 1:3].sum(axis=(1, 2)))
    assert sorted(length for _, length in seen) == [20, 20, 20]
    assert sorted(len(offsets) for offsets, _ in seen) == [10, 10, 10]


def test_frame_source_reads_only_the_rows_asked_for(make_tvips, monkeypatch):
    rec = make_tvips(n_frames=4, shape=(8, 5))
    r = TvipsRecording(rec.path)
    seen = spy_reads(monkeypatch)
    source = BlockSource(r.records, np.arange(r.n_frames))
    np.testing.assert_array_equal(source[1:3, 2:5], rec.frames[1:3, 2:5])
    record = 60 + 80
    assert seen == [([record + 60 + 20, 2 * record + 60 + 20], 30)]


def test_blank_and_repeated_frames(make_tvips):
    rec = make_tvips(n_frames=4)
    r = TvipsRecording(rec.path)
    out = np.full((5, 3, 4), 99, np.uint16)
    _io.read_frames_into(r.records, [2, -1, 0, 2, -1], out)
    expected = np.stack(
        [
            rec.frames[2],
            0 * rec.frames[0],
            rec.frames[0],
            rec.frames[2],
            0 * rec.frames[0],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_frame_table_is_checked(make_tvips):
    r = TvipsRecording(make_tvips(n_frames=5).path)
    msg = "frame table entry 5 is out of range for a recording of 5 frames"
    with pytest.raises(IndexError, match=msg):
        r.to_dask(np.array([[0, 5]]))
    with pytest.raises(IndexError, match="frame table entry -2 is out of range"):
        r.asarray([-2])


def test_scan_layout_pads_both_ends(make_tvips):
    rec = make_tvips(n_frames=5)
    r = TvipsRecording(rec.path)
    table = np.arange(-2, 6).reshape(2, 4)
    table[(table < 0) | (table >= 5)] = -1
    data = r.asarray(table)
    expected = np.zeros((8, 3, 4), np.uint16)
    expected[2:7] = rec.frames
    np.testing.assert_array_equal(data, expected.reshape(2, 4, 3, 4))
    np.testing.assert_array_equal(r.to_dask(table, chunks=(1, 3, 3, 4)), data)


def test_threaded_eager_read(make_tvips, monkeypatch):
    monkeypatch.setattr(_reader, "THREADED_MIN_BYTES", 0)
    rec = make_tvips(n_frames=9, split=[100, 400])
    np.testing.assert_array_equal(TvipsRecording(rec.path).asarray(), rec.frames)


def test_portable_fallback_without_preadv(make_tvips, monkeypatch):
    monkeypatch.setattr(_io, "HAVE_PREADV", False)
    rec = make_tvips(n_frames=7, split=[30, 200, 333])
    r = TvipsRecording(rec.path)
    np.testing.assert_array_equal(r.asarray(), rec.frames)
    assert [h.tobytes() for h in r.frame_headers] == [
        rec.stream[i * 84 :][:60] for i in range(7)
    ]


def test_fallback_reports_short_files(make_tvips, monkeypatch):
    monkeypatch.setattr(_io, "HAVE_PREADV", False)
    rec = make_tvips(n_frames=6, records_per_part=3)
    r = TvipsRecording(rec.path)
    rec.paths[1].write_bytes(rec.paths[1].read_bytes()[:100])
    with pytest.raises(TvipsFormatError, match="found 40; the file was shortened"):
        r.asarray()


def test_batches_are_split(make_tvips, monkeypatch):
    # Many frames, small limits: runs of pieces must be cut at every limit.
    monkeypatch.setattr(_io, "IOV_MAX", 5)
    monkeypatch.setattr(_io, "BATCH_MAX", 300)
    monkeypatch.setattr(_io, "GAP_MAX", 40)
    rec = make_tvips(n_frames=40, shape=(4, 4), split=[1000, 2000])
    r = TvipsRecording(rec.path)
    np.testing.assert_array_equal(r.asarray(), rec.frames)
    np.testing.assert_array_equal(r.to_dask()[:, 1:2].compute(), rec.frames[:, 1:2])


@pytest.mark.parametrize("seed", range(20))
def test_read_into_matches_the_stream(make_tvips, monkeypatch, seed):
    # Pieces in any order, empty, overlapping, or straddling parts; every
    # batch stays in one file and within the limits, and every byte lands.
    monkeypatch.setattr(_io, "IOV_MAX", 4)
    monkeypatch.setattr(_io, "BATCH_MAX", 60)
    monkeypatch.setattr(_io, "GAP_MAX", 16)
    rec = make_tvips(n_frames=12, shape=(2, 3), split=[50, 51, 300, 310])
    chain = TvipsRecording(rec.path).chain
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    sizes = rng.integers(0, 40, n)
    offsets = rng.integers(0, len(rec.stream) - sizes + 1)
    if seed % 2:  # increasing, as frame reads are
        order = np.argsort(offsets)
        offsets, sizes = offsets[order], sizes[order]
    dest = bytearray(int(sizes.sum()))
    view = memoryview(dest)
    starts = np.cumsum(sizes) - sizes
    bufs = [view[a : a + k] for a, k in zip(starts, sizes, strict=True)]
    calls = []
    real = os.preadv

    def spy(fd, iov, offset):
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), [len(b) for b in iov]))
        return real(fd, iov, offset)

    monkeypatch.setattr(_io.os, "preadv", spy)
    _io.read_into(chain, offsets.tolist(), bufs)
    expected = b"".join(
        rec.stream[a : a + k] for a, k in zip(offsets, sizes, strict=True)
    )
    assert bytes(dest) == expected
    for _, lengths in calls:
        assert 1 <= len(lengths) <= 4
        assert len(lengths) == 1 or sum(lengths) <= 60
    # The files read are the recording's own, and an empty read reads nothing.
    assert {name for name, _ in calls} <= {str(p) for p in rec.paths}
    assert sum(map(sum, (lengths for _, lengths in calls))) >= sizes.sum()


def test_auto_chunks():
    mib = 2**20
    assert auto_chunks((1000,), mib) == (100,)
    assert auto_chunks((1000,), 3 * mib) == (33,)
    assert auto_chunks((5,), mib) == (5,)
    assert auto_chunks((64, 64), 128 * 1024) == (12, 64)
    assert auto_chunks((64, 256), mib) == (1, 100)
    assert auto_chunks((3, 4, 5), 200 * mib) == (1, 1, 1)
    assert auto_chunks((3, 4, 5), mib) == (3, 4, 5)
    assert auto_chunks((10, 4, 5), 2 * mib) == (2, 4, 5)


def test_default_chunks_hold_whole_frames(make_tvips):
    rec = make_tvips(n_frames=20, shape=(16, 8))
    x = TvipsRecording(rec.path).to_dask()
    assert x.chunks == ((20,), (16,), (8,))


def test_lazy_array_is_small_and_reads_nothing(make_tvips, monkeypatch):
    sizes = {}
    for shape in ((8, 8), (64, 64)):
        rec = make_tvips(
            name=f"r{shape[0]}", n_frames=2000, shape=shape, records_per_part=300
        )
        seen = spy_reads(monkeypatch)
        x = TvipsRecording(rec.path).to_dask(chunks=(5, *shape))
        monkeypatch.undo()
        assert {length for _, length in seen} == {60}  # frame headers only
        assert x.npartitions == 400
        graph = dict(x.__dask_graph__())
        task = pickle.dumps(next(iter(graph.values())))
        # a task names its classes by module path (rsciio_tvips._reading.lazy
        # ...) and holds the parts' paths: a few hundred bytes each, no data
        assert b"memmap" not in task and len(task) < 2500
        sizes[shape] = len(pickle.dumps(graph))
    # the graph grows with the task count, not with the size of the frames
    assert abs(sizes[(8, 8)] - sizes[(64, 64)]) < 0.01 * sizes[(8, 8)]
    assert sizes[(64, 64)] < 300 * 400


def test_dask_tokens_are_deterministic(make_tvips):
    rec = make_tvips(n_frames=4)
    a = TvipsRecording(rec.path).to_dask()
    b = TvipsRecording(rec.path).to_dask()
    assert a.name == b.name
    assert a.name != TvipsRecording(rec.path).to_dask(chunks=(1, 3, 4)).name


def test_dask_array_survives_the_recording(make_tvips):
    rec = make_tvips(n_frames=4)
    x = TvipsRecording(rec.path).to_dask()
    with dask.config.set(scheduler="processes"):
        np.testing.assert_array_equal(x.sum(axis=0).compute(), rec.frames.sum(axis=0))


def test_eager_read_is_one_copy(make_tvips):
    rec = make_tvips(n_frames=40, shape=(256, 256), records_per_part=7)
    nbytes = rec.frames.nbytes
    tracemalloc.start()
    data = TvipsRecording(rec.path).asarray()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.nbytes == nbytes
    assert peak < 1.1 * nbytes


def test_lazy_open_allocates_little(make_tvips):
    rec = make_tvips(n_frames=40, shape=(256, 256), records_per_part=7)
    tracemalloc.start()
    x = TvipsRecording(rec.path).to_dask()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.nbytes == rec.frames.nbytes
    assert peak < 256 * 1024


def test_repr(make_tvips):
    r = TvipsRecording(make_tvips(n_frames=4, records_per_part=2).paths[1])
    assert (
        repr(r) == "<TvipsRecording 'rec_000.tvips': 4 frames of 3x4 uint16, 2 part(s)>"
    )


def test_frames_and_headers_in_one_pass(make_tvips, monkeypatch):
    rec = make_tvips(n_frames=7, frame_header_bytes=108, split=[30, 200, 333])
    r = TvipsRecording(rec.path)
    table = np.array([[3, -1, 0], [6, 3, 5]])
    data, heads = r.asarray(table, headers=True)
    np.testing.assert_array_equal(data, r.asarray(table))
    every = r.frame_headers
    for point, frame in zip(heads, table.reshape(-1), strict=True):
        expected = every[frame].tobytes() if frame >= 0 else bytes(108)
        assert point.tobytes() == expected
    monkeypatch.setattr(_reader, "THREADED_MIN_BYTES", 0)  # both threads
    data2, heads2 = r.asarray(table, headers=True)
    assert heads2.tobytes() == heads.tobytes()
    np.testing.assert_array_equal(data2, data)
    with pytest.raises(ValueError, match="frame headers are read with whole frames"):
        _io.read_frames_into(
            r.records,
            [1],
            np.empty((1, 2, 4), np.uint16),
            row_start=1,
            headers=np.empty(1, r.header.frame_header_dtype),
        )


# --- "No such TVIPS file": what the folder holds --------------------------------


def not_found(path, note=""):
    """The whole message for ``path``, as a pattern."""
    return f"^{re.escape(f'No such TVIPS file: {str(path)!r}{note}')}$"


@pytest.mark.parametrize("given", ["dmeo_000.tvips", "dmeo.tvips", "dmeo_002.tvips"])
def test_a_typo_suggests_the_recording(make_tvips, tmp_path, given):
    make_tvips(name="demo", n_frames=4, records_per_part=2)
    note = f"; recordings in {tmp_path}: demo_000.tvips (did you mean demo_000.tvips?)"
    with pytest.raises(FileNotFoundError, match=not_found(tmp_path / given, note)):
        TvipsRecording(tmp_path / given)


def test_every_close_recording_is_suggested(tmp_path):
    for name in ["scan_000.tvips", "scan_001.tvips", "scan2_000.tvips", "other.tvips"]:
        (tmp_path / name).write_bytes(b"")
    note = (
        f"; recordings in {tmp_path}: other.tvips, scan2_000.tvips, scan_000.tvips "
        "(did you mean scan_000.tvips or scan2_000.tvips?)"
    )
    given = tmp_path / "scna.tvips"
    with pytest.raises(FileNotFoundError, match=not_found(given, note)):
        TvipsRecording(given)


def test_no_suggestion_when_no_name_is_close(make_tvips, tmp_path):
    make_tvips(name="demo", n_frames=2)
    note = f"; recordings in {tmp_path}: demo_000.tvips"
    given = tmp_path / "zzz.tvips"
    with pytest.raises(FileNotFoundError, match=not_found(given, note)):
        TvipsRecording(given)


def test_the_list_is_capped(tmp_path, monkeypatch):
    for k in range(1, 13):
        (tmp_path / f"r{k:02d}_000.tvips").write_bytes(b"")
    (tmp_path / "zebra_000.tvips").write_bytes(b"")
    listed = ", ".join(f"r{k:02d}_000.tvips" for k in range(1, 11))
    # the suggestion comes from every recording, not only the ones listed
    note = (
        f"; recordings in {tmp_path}: {listed} and 3 more "
        "(did you mean zebra_000.tvips?)"
    )
    given = tmp_path / "zebar_000.tvips"
    with pytest.raises(FileNotFoundError, match=not_found(given, note)):
        TvipsRecording(given)
    monkeypatch.setattr(_reader, "LISTED_RECORDINGS", 13)
    with pytest.raises(FileNotFoundError, match=r"zebra_000\.tvips \(did"):
        TvipsRecording(given)


def test_a_missing_folder_is_named(tmp_path):
    given = tmp_path / "nope" / "x.tvips"
    note = f"; no such folder: {tmp_path / 'nope'}"
    with pytest.raises(FileNotFoundError, match=not_found(given, note)):
        TvipsRecording(given)


def test_a_folder_without_recordings_adds_nothing(tmp_path, monkeypatch):
    (tmp_path / "x_001.tvips").write_bytes(b"")  # a later part starts nothing
    (tmp_path / "notes.txt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=not_found(tmp_path / "x.tvips")):
        TvipsRecording(tmp_path / "x.tvips")
    monkeypatch.chdir(tmp_path)  # the name is given as the user spelled it
    with pytest.raises(FileNotFoundError, match=not_found("x.tvips")):
        TvipsRecording.inspect("x.tvips")


def test_a_name_without_part_number_opens_the_first_part(make_tvips, tmp_path):
    rec = make_tvips(name="x", n_frames=5, split=[30, 200])
    r = TvipsRecording(tmp_path / "x.tvips")
    assert [p.name for p in r.chain.parts] == [f"x_00{k}.tvips" for k in range(3)]
    np.testing.assert_array_equal(r.asarray(), rec.frames)
    assert TvipsRecording.inspect(tmp_path / "x.tvips").n_frames == 5


@pytest.mark.parametrize(
    ("frames", "shown"),
    [
        ([10.7], "10.7"),
        ([3, 4.5], "4.5"),
        (["a"], "'a'"),
        ([2.0], "2.0"),
        ([True], "True"),
    ],
)
def test_frame_numbers_must_be_integers(demo, frames, shown):
    # int() would read frame 10 for 10.7 without a word
    rec = TvipsRecording(demo)
    msg = f"frame numbers must be integers, got {shown}"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        rec.read_frames(frames)
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        rec.read_headers(frames)
    if len(frames) == 1:
        with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
            rec.read_frame(frames[0])
    np.testing.assert_array_equal(
        rec.read_frames(np.array([1, 2], np.uint8)), rec.read_frames([1, 2])
    )
