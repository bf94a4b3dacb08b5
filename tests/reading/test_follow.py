"""Following a recording while it is written: ``refresh``, ``follow``, ``Follower``.

A thread of the ``acquire`` fixture writes a recording's bytes again, part by
part, in writes of any size; what is followed must be every frame once, in
order, with the frame headers the builder wrote.
"""

import itertools
import re

import numpy as np
import pytest

import rsciio_tvips
from rsciio_tvips import TvipsFormatError, TvipsRecording, file_reader
from rsciio_tvips._reading import follow as follow_module
from rsciio_tvips._reading.follow import Follower


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(follow_module, "POLL_SECONDS", 0.005)


def collect(path, **kw):
    starts, frames, nums = [], [], []
    for block in rsciio_tvips.follow(path, **kw):
        starts.append((block.start, block.stop))
        frames.append(block.frames)
        nums.append(block.headers["num"])
        assert block.frame_numbers.tolist() == list(range(block.start, block.stop))
    return starts, np.concatenate(frames), np.concatenate(nums)


def assert_contiguous(starts, n):
    assert starts[0][0] == 0
    assert starts[-1][1] == n
    assert all(b[0] == a[1] for a, b in itertools.pairwise(starts))


@pytest.mark.parametrize("io", ["pread", "mmap"])
@pytest.mark.parametrize(
    "appends",
    [(1,), (7, 1000, 33), (5000,), (123456,)],
    ids=["byte by byte", "odd sizes", "records", "all at once"],
)
def test_follow_yields_every_frame_once_in_order(build, tmp_path, acquire, appends, io):
    rec = build(tmp_path / "src", n_frames=40, shape=(8, 8), frame_header_bytes=60)
    (tmp_path / "live").mkdir()
    # 1000-byte parts: records (188 bytes) straddle every join
    pause = 0.0 if appends == (1,) else 0.002
    cam = acquire(rec, tmp_path / "live", part_bytes=1000, appends=appends,
                  pause=pause)  # fmt: skip
    starts, frames, nums = collect(cam.path, idle=0.5, io=io)
    cam.finish()
    assert_contiguous(starts, 40)
    np.testing.assert_array_equal(frames, rec.frames)
    assert nums.tolist() == [v["num"] for v in rec.headers]
    parts = -(-len(rec.header + rec.stream) // 1000)
    assert len(list((tmp_path / "live").iterdir())) == parts


def test_follow_waits_for_the_first_part(build, tmp_path, acquire):
    rec = build(tmp_path / "src", n_frames=6, shape=(4, 4))
    (tmp_path / "live").mkdir()
    cam = acquire(rec, tmp_path / "live", delay=0.3, appends=(40,), pause=0.01)
    _, frames, _ = collect(cam.path, idle=2)
    cam.finish()
    np.testing.assert_array_equal(frames, rec.frames)


def test_follow_gives_up_on_a_recording_that_never_appears(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such TVIPS file: .*never_000"):
        next(rsciio_tvips.follow(tmp_path / "never_000.tvips", idle=0.05))


def test_follow_gives_up_on_a_recording_without_a_whole_frame(build, tmp_path):
    rec = build(tmp_path, n_frames=1, shape=(4, 4), truncate=10)
    with pytest.raises(TvipsFormatError, match="no whole frame record after the main"):
        next(rsciio_tvips.follow(rec.path, idle=0.05))


def test_follow_refuses_a_bad_main_header_at_once(build, main_header, tmp_path):
    rec = build(tmp_path, n_frames=2, header=main_header(version=7))
    follower = Follower(rec.path, idle=60)
    with pytest.raises(TvipsFormatError, match="version"):
        follower.open()


def test_follow_from_a_frame_and_in_small_blocks(build, tmp_path):
    rec = build(tmp_path, n_frames=30, shape=(4, 4), records_per_part=7)
    starts, frames, _ = collect(rec.path, idle=0.01, start=5, block_bytes=3 * 32)
    assert starts[0][0] == 5 and starts[-1][1] == 30
    assert all(b - a <= 3 for a, b in starts)
    np.testing.assert_array_equal(frames, rec.frames[5:])


def test_live_virtual_image_equals_the_offline_one(build, tmp_path, acquire):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4000, (3 + 6 * 5, 16, 16)).astype(np.uint16)
    rec = build(tmp_path / "src", frames=data)
    (tmp_path / "live").mkdir()
    cam = acquire(rec, tmp_path / "live", part_bytes=5000, appends=(2222,),
                  pause=0.002)  # fmt: skip
    start, shape = 3, (6, 5)
    vbf = np.full(shape[0] * shape[1], np.nan)
    for block in rsciio_tvips.follow(cam.path, idle=0.5):
        sums = block.frames[:, 4:12, 4:12].sum(axis=(1, 2), dtype=np.float64)
        points = block.frame_numbers - start
        inside = (points >= 0) & (points < vbf.size)
        vbf[points[inside]] = sums[inside]
    cam.finish()
    (d,) = file_reader(cam.path, lazy=True, scan_shape=shape, scan_start_frame=start)
    offline = d["data"][:, :, 4:12, 4:12].sum(axis=(2, 3), dtype=np.float64)
    np.testing.assert_array_equal(vbf.reshape(shape), offline.compute())


def test_refresh_extends_an_open_recording(build, tmp_path):
    src = build(tmp_path / "src", n_frames=10, shape=(4, 4))
    part = tmp_path / "r_000.tvips"
    data = src.header + src.stream
    cut = 256 + 3 * src.record_size + 5  # three frames and a piece of one
    part.write_bytes(data[:cut])
    rec = TvipsRecording.inspect(part)
    lazy = rec.to_dask()
    assert (rec.n_frames, rec.ignored_bytes) == (3, 5)
    assert rec.header_fields["num"].tolist() == [1, 2, 3]
    assert rec.refresh() == 0
    with open(part, "ab") as f:
        f.write(data[cut : 256 + 7 * src.record_size])
    assert rec.refresh() == 4
    assert (rec.n_frames, rec.ignored_bytes) == (7, 0)
    # an array made before keeps its shape and frames; a new one sees more
    assert lazy.shape == (3, 4, 4)
    np.testing.assert_array_equal(lazy.compute(), src.frames[:3])
    np.testing.assert_array_equal(rec.to_dask().compute(), src.frames[:7])
    assert rec.header_fields["num"].tolist() == list(range(1, 8))
    # a new part: the rest of the frames
    (tmp_path / "r_001.tvips").write_bytes(data[256 + 7 * src.record_size :])
    assert rec.refresh() == 3
    assert len(rec.chain.parts) == 2
    np.testing.assert_array_equal(rec.asarray(), src.frames)


def test_refresh_collects_findings_without_warning(build, tmp_path, recwarn):
    src = build(tmp_path / "src", n_frames=6, shape=(4, 4))
    part = tmp_path / "r_000.tvips"
    part.write_bytes((src.header + src.stream)[: 256 + 2 * src.record_size])
    rec = TvipsRecording(part)
    with open(part, "ab") as f:
        f.write(src.stream[2 * src.record_size : 3 * src.record_size + 1])
    rec.refresh()
    assert not recwarn.list
    (finding,) = rec.problems
    assert (finding.field, finding.found) == ("frame record", "1")


def _grown(build, tmp_path):
    src = build(tmp_path / "src", n_frames=9, shape=(4, 4), records_per_part=3)
    for path in src.paths[:2]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    rec = TvipsRecording(tmp_path / src.paths[0].name)
    assert rec.n_frames == 6
    return src, rec


def test_refresh_refuses_a_part_that_grew_after_the_next(build, tmp_path):
    src, rec = _grown(build, tmp_path)
    with open(tmp_path / "rec_000.tvips", "ab") as f:
        f.write(b"\0" * 10)
    size = 256 + 3 * src.record_size
    msg = (
        f"rec_000.tvips at offset {size}: expected the part to end there, as when "
        f"rec_001.tvips was found after it; found {size + 10} bytes: every frame "
        "after it would shift"
    )
    with pytest.raises(TvipsFormatError, match=re.escape(msg)):
        rec.refresh()
    assert rec.n_frames == 6  # left as it was


def test_refresh_refuses_a_truncated_part(build, tmp_path):
    src, rec = _grown(build, tmp_path)
    with open(tmp_path / "rec_001.tvips", "r+b") as f:
        f.truncate(10)
    size = 3 * src.record_size
    msg = (
        "rec_001.tvips: the part changed since the recording was sized: size "
        f"{size} -> 10 bytes (truncated)"
    )
    with pytest.raises(TvipsFormatError, match=re.escape(msg)):
        rec.refresh()


def test_refresh_refuses_a_part_gone(build, tmp_path):
    src, rec = _grown(build, tmp_path)
    (tmp_path / "rec_001.tvips").unlink()
    msg = (
        "rec_001.tvips: the part is no longer there (or a part before it is not): "
        f"expected {3 * src.record_size} bytes at offset 0, found none"
    )
    with pytest.raises(TvipsFormatError, match=re.escape(msg)):
        rec.refresh()


def test_follow_stops_on_a_part_replaced_under_it(build, tmp_path, monkeypatch):
    src, _ = _grown(build, tmp_path)
    blocks = rsciio_tvips.follow(tmp_path / "rec_000.tvips", idle=5)
    # the frames of the first part, then (once a second look found it
    # final) those of the second
    assert [(b.start, b.stop) for b in (next(blocks), next(blocks))] == [(0, 3), (3, 6)]
    other = tmp_path / "other"
    other.write_bytes(src.paths[1].read_bytes())
    other.replace(tmp_path / "rec_001.tvips")
    changed = r"rec_001.tvips: the part changed .* \(replaced\)"
    with pytest.raises(TvipsFormatError, match=changed):
        next(blocks)


def test_follow_reads_each_record_once(build, tmp_path, acquire, monkeypatch):
    import os as _os

    from rsciio_tvips._reading import preadv

    read = []
    real = _os.preadv

    def counting(fd, bufs, offset):
        n = real(fd, bufs, offset)
        read.append(n)
        return n

    monkeypatch.setattr(preadv.os, "preadv", counting)
    rec = build(tmp_path / "src", n_frames=60, shape=(16, 16))
    (tmp_path / "live").mkdir()
    cam = acquire(rec, tmp_path / "live", part_bytes=9000, appends=(1500,),
                  pause=0.003)  # fmt: skip
    _, frames, _ = collect(cam.path, idle=0.5)
    cam.finish()
    assert len(frames) == 60
    parts = len(list((tmp_path / "live").iterdir()))
    # the records once; and as each part appears, the checks of the joins
    # read two runs of two headers (the counter at both ends) and one run
    # per join: 60-byte headers 512 bytes apart, read with the gap
    run = 60 + 512 + 60
    assert len(rec.stream) < sum(read) <= len(rec.stream) + parts * (2 + parts) * run


def test_mapped_frames_are_read_only_views(build, tmp_path):
    # 3 records a part but the second part starts mid-record: frame 3
    # straddles the join and is read; the others are views of their part
    rec = build(tmp_path, n_frames=9, shape=(4, 4), split=[3 * 92 + 50])
    blocks = list(rsciio_tvips.follow(rec.path, idle=0, io="mmap"))
    assert [(b.start, b.stop) for b in blocks] == [(0, 3), (3, 4), (4, 9)]
    mapped = [not b.frames.flags.writeable for b in blocks]
    assert mapped == [True, False, True]
    np.testing.assert_array_equal(np.concatenate([b.frames for b in blocks]),
                                  rec.frames)  # fmt: skip
    nums = np.concatenate([b.headers["num"] for b in blocks])
    assert nums.tolist() == list(range(1, 10))


def test_follow_refuses_an_unknown_io(build, tmp_path):
    rec = build(tmp_path, n_frames=2)
    with pytest.raises(ValueError, match="io must be 'pread' or 'mmap', got 'x'"):
        next(rsciio_tvips.follow(rec.path, idle=0, io="x"))


def test_a_part_seen_before_its_last_bytes_holds_the_frames_after_it(build, tmp_path):
    # the next part is there while this one still lacks bytes (a writer
    # that opens the next file first, a network file system's cached size)
    src = build(tmp_path / "src", n_frames=9, shape=(4, 4), split=[3 * 92 + 50])
    first, second = (p.read_bytes() for p in src.paths)
    (tmp_path / "rec_000.tvips").write_bytes(first[:-100])
    (tmp_path / "rec_001.tvips").write_bytes(second)
    follower = Follower(tmp_path / "rec_000.tvips", idle=60)
    assert follower.open()
    taken = [(b.start, b.stop) for b in follower.blocks()]
    assert taken == [(0, 2)]  # the frames whose records end before the gap
    with open(tmp_path / "rec_000.tvips", "ab") as f:
        f.write(first[-100:])
    # grown: its own frame 2 is whole, the rest waits until a look finds
    # the part unchanged
    assert follower.look() == 1
    assert follower.look() == 7
    blocks = list(follower.blocks())
    got = np.concatenate([b.frames for b in blocks])
    np.testing.assert_array_equal(got, src.frames[2:])


def test_a_refresh_that_fails_leaves_the_recording_as_it_was(
    build, tmp_path, monkeypatch
):
    from rsciio_tvips._reading import recording as recording_module

    src, rec = _grown(build, tmp_path)
    (tmp_path / "rec_002.tvips").write_bytes(src.paths[2].read_bytes())
    before = (rec.records, rec.n_frames, rec.findings)

    def failing(records, read):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(recording_module, "boundary_defects", failing)
    with pytest.raises(OSError, match="Input/output error"):
        rec.refresh()
    assert (rec.records, rec.n_frames, rec.findings) == before
    monkeypatch.undo()
    assert rec.refresh() == 3


def test_refresh_refuses_another_file_for_a_part(build, tmp_path):
    _grown(build, tmp_path)
    # the same part number, spelled another way: permissive reading reads it
    (tmp_path / "rec_001.tvips").rename(tmp_path / "rec_001.TVIPS")
    opened = TvipsRecording(tmp_path / "rec_000.tvips", permissive=True)
    (tmp_path / "rec_001.TVIPS").rename(tmp_path / "rec_001.tvips")
    with pytest.raises(TvipsFormatError, match=re.escape(
        "rec_001.TVIPS: the part changed since the recording was sized: "
        "rec_001.tvips instead (replaced)"
    )):  # fmt: skip
        opened.refresh()
