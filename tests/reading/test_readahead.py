"""Read-ahead of the records around a chunk (cold reads, issue 19).

It is a hint to the kernel: these tests check which byte ranges of which
files are asked for, that bytes already cached are not, that nothing it
meets can fail a read or change a result, and that only runs of whole
records of a chunk's size ask.
"""

import os
import time

import numpy as np
import pytest

from rsciio_tvips import file_reader
from rsciio_tvips._reading import lazy, readahead
from rsciio_tvips._reading.recording import TvipsRecording

pytestmark = pytest.mark.skipif(
    not readahead.AVAILABLE, reason="needs posix_fadvise and RWF_NOWAIT (Linux)"
)
RECORD = 120  # 60-byte frame headers, 6 x 5 uint16 pixels


@pytest.fixture
def rec(make_tvips):
    # 36 records of 120 bytes; parts start at records 10 and 20
    return make_tvips(n_frames=36, shape=(6, 5), records_per_part=10)


@pytest.fixture
def records(rec):
    return TvipsRecording(str(rec.path)).records


@pytest.fixture
def probing(rec):
    """Skip where ``RWF_NOWAIT`` reads do not work (tmpfs: EOPNOTSUPP)."""
    fd = os.open(rec.paths[0], os.O_RDONLY)
    try:
        if not readahead._cached(fd, 0):  # just written: it is cached
            pytest.skip("RWF_NOWAIT reads are not supported here")
    finally:
        os.close(fd)


@pytest.fixture
def asked(monkeypatch):
    """Every POSIX_FADV_WILLNEED asked for, as (file name, offset, length).

    Every range counts as not cached, and a chunk of 3 records is enough.
    """
    calls = []

    def fadvise(fd, offset, length, advice):
        assert advice == os.POSIX_FADV_WILLNEED
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append((name, offset, length))

    monkeypatch.setattr(readahead.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(readahead, "_cached", lambda fd, offset: False)
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    return calls


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([12, 13, 14], [(15, 18), (9, 12)]),
        ([14, 12, -1, 13], [(15, 18), (9, 12)]),  # any order, blanks left out
        ([0, 1, 2, 3], [(4, 8)]),  # nothing before the first record
        ([33, 34, 35], [(30, 33)]),  # nor after the last
        ([32, 33, 34], [(35, 36), (29, 32)]),  # cut at the end
        ([0, 2, 4], []),  # not one run
        ([5, 5, 6], []),  # frames repeated
        ([5, 5, 7], []),  # repeated, with a gap
        ([5, 6], []),  # fewer bytes than MIN_BYTES
        ([-1, -1, -1], []),
    ],
)
def test_the_ranges_are_the_records_around_the_run(records, asked, frames, expected):
    got = readahead.neighbours(records, np.array(frames))
    assert got == [(a * RECORD, b * RECORD) for a, b in expected]


def test_each_part_is_asked_for_its_own_bytes_in_steps(records, asked, monkeypatch):
    monkeypatch.setattr(readahead, "_window", lambda device: 500)
    readahead.read_ahead(records, np.arange(14, 20))
    # after: records 20-25, all in the third part, which has no main header;
    # before: records 8-13, two in the first part (after its 256-byte
    # header) and four in the second
    assert asked == [
        ("rec_002.tvips", 0, 500),
        ("rec_002.tvips", 500, 220),
        ("rec_000.tvips", 256 + 8 * RECORD, 2 * RECORD),
        ("rec_001.tvips", 0, 4 * RECORD),
    ]


def test_one_frame_asks_for_nothing_however_large(records, asked, monkeypatch):
    monkeypatch.setattr(readahead, "MIN_BYTES", 1)
    assert readahead.neighbours(records, np.array([12])) == []
    assert readahead.neighbours(records, np.array([12, 13])) == [
        (14 * RECORD, 16 * RECORD),
        (10 * RECORD, 12 * RECORD),
    ]


def test_cached_bytes_are_not_asked_for(records, probing, monkeypatch):
    calls = []
    monkeypatch.setattr(readahead.os, "posix_fadvise", lambda *a: calls.append(a))
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    # the files were just written: their pages are in the cache
    readahead.read_ahead(records, np.arange(14, 20))
    assert calls == []


def test_bytes_dropped_from_the_cache_are_asked_for(rec, records, probing, monkeypatch):
    path = rec.paths[2]
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        for _ in range(20):  # a page still being written back stays
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            if not readahead._cached(fd, 0):
                break
            time.sleep(0.05)
        else:
            pytest.skip("this file system keeps the pages (tmpfs?)")
        # that look started the kernel's read-ahead of the page: let it
        # finish, and drop the page again
        deadline = time.monotonic() + 5
        while not readahead._cached(fd, 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    calls = []
    monkeypatch.setattr(readahead.os, "posix_fadvise", lambda *a: calls.append(a))
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    readahead.read_ahead(records, np.arange(14, 20))  # after: records 20-25
    assert [(offset, length) for _, offset, length, _ in calls] == [(0, 6 * RECORD)]


def test_a_range_is_cached_when_its_ends_and_middle_are(records, monkeypatch):
    # the ends alone would not do: the page a range ends in holds the first
    # bytes of the chunk just read, and the kernel reads ahead past a chunk
    probed = []
    monkeypatch.setattr(
        readahead, "_cached", lambda fd, offset: probed.append(offset) or True
    )
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    readahead.read_ahead(records, np.arange(14, 20))
    after, first, second = (0, 6 * RECORD), (256 + 8 * RECORD, 2 * RECORD), (0, 480)
    assert probed == [
        offset + n
        for offset, length in (after, first, second)
        for n in (0, length // 2, length - 1)
    ]


def test_a_range_with_its_middle_not_cached_is_asked_for(records, asked, monkeypatch):
    middles = {3 * RECORD, 256 + 9 * RECORD, 2 * RECORD}  # of the three pieces
    monkeypatch.setattr(readahead, "_cached", lambda fd, offset: offset not in middles)
    readahead.read_ahead(records, np.arange(14, 20))
    assert [length for _, _, length in asked] == [6 * RECORD, 2 * RECORD, 4 * RECORD]


def test_nothing_is_asked_where_it_is_not_available(records, asked, monkeypatch):
    monkeypatch.setattr(readahead, "AVAILABLE", False)
    readahead.read_ahead(records, np.arange(14, 20))
    assert asked == []


def _fail(*args, **kwargs):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("where", ["open", "posix_fadvise"])
def test_errors_of_the_hint_are_left_to_the_read(records, monkeypatch, where):
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    monkeypatch.setattr(readahead, "_cached", lambda fd, offset: False)
    before = len(os.listdir("/proc/self/fd"))
    with monkeypatch.context() as m:
        m.setattr(readahead.os, where, _fail)
        assert readahead.read_ahead(records, np.arange(14, 20)) is None
    assert len(os.listdir("/proc/self/fd")) == before  # every file closed


def test_a_file_system_without_rwf_nowait_counts_as_not_cached(
    rec, probing, monkeypatch
):
    fd = os.open(rec.paths[0], os.O_RDONLY)
    try:
        assert readahead._cached(fd, 0)  # just written
        with monkeypatch.context() as m:
            m.setattr(readahead.os, "preadv", _fail)
            assert not readahead._cached(fd, 0)
    finally:
        os.close(fd)


def test_whole_frames_of_a_chunk_ask_and_bands_do_not(rec, monkeypatch):
    seen = []
    monkeypatch.setattr(lazy, "read_ahead", lambda r, f: seen.append(f.tolist()))
    (d,) = file_reader(str(rec.path), lazy=True, rechunking=(12, 6, 5))
    data = d["data"]
    np.testing.assert_array_equal(data[12:24].compute(), rec.frames[12:24])
    assert sorted(seen) == [list(range(12, 24))]
    seen.clear()
    np.testing.assert_array_equal(
        data[12:24, 1:3].compute(), rec.frames[12:24, 1:3]
    )  # a band of rows: a virtual detector's read
    assert seen == []


def test_a_sum_with_read_ahead_equals_numpys(rec, asked):
    (d,) = file_reader(str(rec.path), lazy=True, rechunking=(6, 6, 5))
    total = d["data"].sum(axis=0, dtype=np.uint64).compute()
    np.testing.assert_array_equal(total, rec.frames.sum(axis=0, dtype=np.uint64))
    assert asked  # and the hint was given


def test_maps_do_not_ask(rec, asked):
    # the kernel reads ahead a map's pages as the reduction touches them
    (d,) = file_reader(str(rec.path), lazy=True, io="mmap")
    total = d["data"].sum(axis=0, dtype=np.uint64).compute()
    np.testing.assert_array_equal(total, rec.frames.sum(axis=0, dtype=np.uint64))
    assert asked == []


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("class/bdi/8:0/read_ahead_kb", 8192 * 1024),  # a disk, a mount
        ("dev/block/8:0/queue/read_ahead_kb", 8192 * 1024),  # a disk
        ("dev/block/8:1/../queue/read_ahead_kb", 8192 * 1024),  # a partition's
        (None, readahead.STEP),  # none found
    ],
)
def test_the_step_is_the_devices_read_ahead_window(
    tmp_path, monkeypatch, where, expected
):
    monkeypatch.setattr(readahead, "SYS", str(tmp_path))
    readahead._window.cache_clear()
    try:
        device = os.makedev(8, 1 if where and "8:1" in where else 0)
        if where:
            (tmp_path / "dev/block/8:1").mkdir(parents=True)
            path = (tmp_path / where).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("8192\n")
        assert readahead._window(device) == expected
    finally:
        readahead._window.cache_clear()


def test_a_window_of_zero_is_not_a_step(tmp_path, monkeypatch):
    monkeypatch.setattr(readahead, "SYS", str(tmp_path))
    readahead._window.cache_clear()
    try:
        (tmp_path / "class/bdi/8:0").mkdir(parents=True)
        (tmp_path / "class/bdi/8:0/read_ahead_kb").write_text("0\n")
        assert readahead._window(os.makedev(8, 0)) == readahead.STEP
    finally:
        readahead._window.cache_clear()


def test_the_kernel_takes_the_hint(rec, records, monkeypatch):
    # the real system calls, none mocked but the probe: nothing raises, the
    # files are closed, the frames read next are the same
    monkeypatch.setattr(readahead, "MIN_BYTES", 3 * RECORD)
    monkeypatch.setattr(readahead, "_cached", lambda fd, offset: False)
    before = len(os.listdir("/proc/self/fd"))
    readahead.read_ahead(records, np.arange(14, 20))
    assert len(os.listdir("/proc/self/fd")) == before
    (d,) = file_reader(str(rec.path), lazy=True, rechunking=(6, 6, 5))
    np.testing.assert_array_equal(d["data"].compute(), rec.frames)
