"""``tvips watch``: following an acquisition as it is written.

Acquisitions are replayed by the ``acquire`` fixture (a thread appending a
recording's bytes to new parts); what the watcher says at the end must be
what ``tvips validate`` says of the finished recording.
"""

import dataclasses
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rsciio_tvips import Finding, file_reader, follow
from rsciio_tvips.__main__ import main
from rsciio_tvips._reading import follow as follow_module
from rsciio_tvips._tools import drawer as drawer_module
from rsciio_tvips._tools import figure as figure_module
from rsciio_tvips._tools import live as live_module
from rsciio_tvips._tools import watch as watch_module
from rsciio_tvips._tools.drawer import Drawer
from rsciio_tvips._tools.live import BINS, Binned, LiveView, Placement
from rsciio_tvips._tools.preview import find_apertures
from rsciio_tvips._tools.watch import Watch

SHAPE = (16, 16)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(follow_module, "POLL_SECONDS", 0.005)
    # the scans here are small: apertures from their first 16 frames
    monkeypatch.setattr(live_module, "APERTURE_FRAMES", 16)
    # a drawer of the lowest priority gets nothing on a core the tests keep
    # busy: at the watcher's, and the last picture waited for (a test of the
    # limit sets its own)
    monkeypatch.setattr(drawer_module, "NICENESS", 0)
    monkeypatch.setattr(watch_module, "LAST_PICTURE_SECONDS", 600.0)


def scan_frames(n, seed=3):
    """Frames with a bright disk whose brightness varies from frame to frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(SHAPE)
    disk = np.hypot(yy - 8, xx - 7) <= 3
    frames = rng.integers(0, 50, (n, *SHAPE))
    frames += (disk * rng.integers(500, 3000, n)[:, None, None]).astype(np.int64)
    return frames.astype(np.uint16)


@pytest.fixture
def faulty(build, tmp_path, headers_with):
    """A recording of 60 frames with two dropped ones (counter 31 -> 34)."""
    num = {i: i + 3 for i in range(30, 60)}
    values = headers_with(num=num)
    return build(tmp_path / "src", "cam", frames=scan_frames(60), header_values=values)


def watch_then_validate(rec, folder, acquire, capsys, **writes):
    """Watch ``rec`` while it is written, then validate it: both outputs."""
    folder.mkdir()
    cam = acquire(rec, folder, name="cam", **writes)
    code = main(["watch", str(cam.path), "--idle", "0.5", "-q"])
    cam.finish()
    watched = capsys.readouterr()
    assert main(["validate", str(cam.path), "-q"]) == code
    return code, watched, capsys.readouterr()


def test_watch_says_what_validate_says_of_the_finished_recording(
    faulty, tmp_path, acquire, capsys
):
    code, watched, validated = watch_then_validate(
        faulty, tmp_path / "live", acquire, capsys, part_bytes=4000,
        appends=(777,), pause=0.002,
    )  # fmt: skip
    assert code == 1
    assert watched.out == validated.out
    assert "frame counter skips" in watched.out
    # said once as it happened, on stderr
    said = [
        line for line in watched.err.splitlines() if line.startswith("tvips watch:")
    ]
    assert said == [f"tvips watch: {line}" for line in watched.out.splitlines()[:1]]


@pytest.mark.parametrize(
    "rotidx",
    [lambda i: i + 200, lambda i: 10**6 if i == 70 else i],
    ids=["high for the first frames only", "beyond any scan"],
)
def test_watch_judges_the_rotator_index_as_validate(
    build, tmp_path, acquire, headers_with, capsys, rotidx
):
    # the bound of a plausible rotator index grows with the frames: judged
    # against the finished recording's, not those seen at the time
    values = headers_with(rotidx={i: rotidx(i) for i in range(100)})
    rec = build(tmp_path / "src", "cam", n_frames=100, shape=(8, 8),
                header_values=values)  # fmt: skip
    _, watched, validated = watch_then_validate(
        rec, tmp_path / "live", acquire, capsys, part_bytes=5000,
        appends=(300,), pause=0.003,
    )  # fmt: skip
    assert watched.out == validated.out
    assert "rotidx" not in watched.err  # not said while it could change


def test_watch_says_a_part_that_stopped_short(build, tmp_path, acquire, capsys):
    rec = build(tmp_path / "src", "cam", frames=scan_frames(40))
    (tmp_path / "live").mkdir()
    # 100 bytes of part 1 are lost: every later frame is shifted
    cam = acquire(rec, tmp_path / "live", name="cam", part_bytes=3000,
                  appends=(500,), pause=0.002, lost={1: 100})  # fmt: skip
    code = main(["watch", str(cam.path), "--idle", "0.5", "-q", "--json"])
    cam.finish()
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert code == summary["status"] == 1
    joins = [p for p in summary["problems"] if p["field"] == "part boundary"]
    # the first where the bytes were lost; the later ones shifted with it
    assert (joins[0]["file"], joins[0]["offset"]) == ("cam_001.tvips", 2900)
    said = [line for line in out.err.splitlines() if "part boundary" in line]
    # each said once, as its next part appeared
    assert said == [f"tvips watch: {Finding(**p)}" for p in joins]


def test_watch_json_summary(faulty, tmp_path, acquire, capsys):
    (tmp_path / "live").mkdir()
    cam = acquire(faulty, tmp_path / "live", name="cam", part_bytes=5000,
                  appends=(3000,), pause=0.005)  # fmt: skip
    code = main(["watch", str(cam.path), "--idle", "0.4", "--json", "-q"])
    cam.finish()
    summary = json.loads(capsys.readouterr().out)
    parts = len(list((tmp_path / "live").iterdir()))
    assert summary["frames"] == 60
    assert summary["parts"] == parts > 1
    assert summary["dropped_frames"] == 2
    assert summary["status"] == code == 1
    assert summary["interrupted"] is False
    # build's clock: frames 250 ms apart
    assert summary["duration_s"] == 59 * 0.25
    (problem,) = summary["problems"]
    assert (problem["field"], problem["expected"], problem["found"]) == (
        "num", "31", "33",
    )  # fmt: skip


def test_watch_gives_up_when_nothing_comes(tmp_path, capsys):
    code = main(["watch", str(tmp_path / "none_000.tvips"), "--idle", "0.05", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tvips watch: No such TVIPS file: ")


def test_watch_refuses_a_picture_format_before_waiting(tmp_path, capsys):
    code = main(["watch", str(tmp_path / "x_000.tvips"), "-o", "live.bmp"])
    assert code == 2
    assert "live.bmp" in capsys.readouterr().err


def test_watch_refuses_auto_hysteresis(tmp_path, capsys):
    args = ["watch", "x.tvips", "--scan-shape", "4", "4", "--hysteresis", "auto"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "tvips watch: --hysteresis auto needs the whole scan: give a number\n"
    )


def test_watch_picture_of_a_scan(build, tmp_path, acquire):
    rec = build(tmp_path / "src", "cam", frames=scan_frames(3 + 30))
    (tmp_path / "live").mkdir()
    cam = acquire(rec, tmp_path / "live", name="cam", part_bytes=6000,
                  appends=(900,), pause=0.003)  # fmt: skip
    out = tmp_path / "live.png"
    scan = {"scan_shape": (5, 6), "scan_start_frame": 3}
    watcher = Watch(cam.path, out, every=0.05, idle=0.5, scan=scan, quiet=True)
    findings = watcher.run()
    cam.finish()
    assert findings == []
    assert watcher.pictures >= 2
    assert out.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def _offline_virtual(path, apertures, **kw):
    (d,) = file_reader(path, lazy=True, **kw)
    yy, xx = np.indices(SHAPE)
    r = np.hypot(yy - apertures["center"][0], xx - apertures["center"][1])
    bf = r <= apertures["bf_radius"]
    return (d["data"] * bf).sum(axis=(-2, -1), dtype=np.float64).compute()


@pytest.mark.parametrize(
    ("options", "placement"),
    [
        ({"scan_shape": (5, 6), "scan_start_frame": 3},
         Placement("sequential", (5, 6), start=3)),
        ({"scan_shape": (5, 6), "scan_start_frame": 4, "winding_scan_axis": "x",
          "hysteresis": 1},
         Placement("sequential", (5, 6), start=4, winding="x", hysteresis=1)),
        ({"scan_shape": (5, 6), "scan_start_frame": -2},
         Placement("sequential", (5, 6), start=-2)),
    ],
    ids=["raster", "snake", "padded"],
)  # fmt: skip
def test_live_virtual_image_equals_the_readers(build, tmp_path, options, placement):
    rec = build(tmp_path, "cam", frames=scan_frames(40))
    view = LiveView(SHAPE, placement)
    for block in follow(rec.path, idle=0, block_bytes=7 * 512):
        view.feed(block)
    view.finish()
    vbf = view.images()["vbf"]
    offline = _offline_virtual(rec.path, view.apertures, **options)
    # blank points (before the first frame, vacated by the hysteresis) are 0
    np.testing.assert_array_equal(vbf, offline)
    # found on the scan's first frames: those of the blocks of 7 frames
    # that make at least 16 of them (frames before the scan are not the scan's)
    start = max(0, options["scan_start_frame"])
    assert view.apertures == find_apertures(scan_frames(40)[start:21].mean(axis=0))


@pytest.mark.parametrize("per_block", [1, 2, 3, 24])
def test_live_placement_by_beam_positions(build, tmp_path, headers_with, per_block):
    # a 4 x 5 scan from frame 2, then the beam parked at (0, 0)
    xs = {i: float((i - 2) % 5) for i in range(2, 22)} | {0: 0.0, 1: 0.0}
    ys = {i: float((i - 2) // 5) for i in range(2, 22)} | {0: 0.0, 1: 0.0}
    values = headers_with(Scan_x=xs | {22: 0.0, 23: 0.0},
                          Scan_y=ys | {22: 0.0, 23: 0.0})  # fmt: skip
    frames = scan_frames(24)
    frames[:2] = 0
    frames[:2, 1:4, 11:14] = 60_000  # before the scan: the beam elsewhere
    rec = build(tmp_path, "cam", frames=frames, frame_header_bytes=108,
                header_values=values)  # fmt: skip
    view = LiveView(SHAPE, Placement("positions"))
    for block in follow(rec.path, idle=0, block_bytes=per_block * 512):
        view.feed(block)
    view.finish()
    vbf = view.images()["vbf"]
    assert vbf.shape == (4, 5)
    # the wait before the scan is not in the apertures' mean
    assert view.apertures == find_apertures(frames[2:18].mean(axis=0))
    assert view.apertures != find_apertures(frames[:16].mean(axis=0))
    # the wait at (0, 0) ends with the scan's first frame; the beam parked
    # there after the scan does not count
    offline = _offline_virtual(rec.path, view.apertures, scan_shape=(4, 5),
                               scan_start_frame=2)  # fmt: skip
    np.testing.assert_array_equal(vbf, offline)
    auto = _offline_virtual(rec.path, view.apertures, scan_shape="auto",
                            scan_method="positions")  # fmt: skip
    np.testing.assert_array_equal(vbf, auto)


def test_live_placement_by_rotator_index(build, tmp_path, headers_with):
    # rotator index 0 for two frames, 1..9 (a 3 x 3 scan), then back to 0
    rot = {i: 0 for i in range(2)} | {i: i - 1 for i in range(2, 11)}
    values = headers_with(rotidx=rot | {11: 0, 12: 0})
    rec = build(tmp_path, "cam", frames=scan_frames(13), header_values=values)
    view = LiveView(SHAPE, Placement("rotator"))
    shapes = []
    for block in follow(rec.path, idle=0, block_bytes=4 * 512):
        view.feed(block)
        shapes.append(view.placement.shape)
    assert shapes[:2] == [None, None]  # not known until the index runs back
    assert shapes[-1] == (3, 3)
    assert view.images() == {}
    assert view.waiting == "apertures found after 16 scan frames (9 yet)"
    view.finish()  # 9 frames: placed now, not at 16
    vbf = view.images()["vbf"]
    offline = _offline_virtual(rec.path, view.apertures, scan_shape=(3, 3),
                               scan_start_frame=2)  # fmt: skip
    np.testing.assert_array_equal(vbf, offline)


def test_auto_places_by_the_rotator_where_the_beam_positions_do_not_move(
    build, tmp_path, headers_with
):
    # 108-byte headers hold beam positions, all 0 here: the reader's
    # scan_shape="auto" then places by the rotator index, and so does this
    values = headers_with(rotidx={i: max(0, i - 1) for i in range(18)},
                          Scan_x={i: 0.0 for i in range(18)},
                          Scan_y={i: 0.0 for i in range(18)})  # fmt: skip
    rec = build(tmp_path, "cam", frames=scan_frames(18), frame_header_bytes=108,
                header_values=values)  # fmt: skip
    view = LiveView(SHAPE, Placement("auto"))
    assert view.waiting == "no scan in the frame headers yet"
    for block in follow(rec.path, idle=0, block_bytes=512):
        view.feed(block)
    view.finish()
    assert view.placement.method == "rotator"
    vbf = view.images()["vbf"]
    (d,) = file_reader(rec.path, lazy=True, scan_shape="auto")
    assert d["original_metadata"]["Scan"]["method"] == "rotator"
    offline = _offline_virtual(rec.path, view.apertures, scan_shape="auto")
    np.testing.assert_array_equal(vbf, offline)


@pytest.mark.parametrize(
    ("field", "value"), [("Scan_y", 900_000.0), ("Scan_x", 900_000.0)]
)
def test_a_corrupt_beam_position_is_not_placed(
    build, tmp_path, headers_with, field, value
):
    xs = {i: float(i % 4) for i in range(16)}
    ys = {i: float(i // 4) for i in range(16)}
    values = {"Scan_x": xs, "Scan_y": ys}
    values[field] = values[field] | {9: value}
    rec = build(tmp_path, "cam", frames=scan_frames(16), frame_header_bytes=108,
                header_values=headers_with(**values))  # fmt: skip
    view = LiveView(SHAPE, Placement("positions"))
    for block in follow(rec.path, idle=0):
        view.feed(block)
    view.finish()
    vbf = view.images()["vbf"]
    # a scan has at most a few points a frame: the corrupt one is left out,
    # not an image of 900000 rows
    assert vbf.shape == (4, 4)
    assert np.isnan(vbf[2, 1]) and np.isfinite(np.delete(vbf.ravel(), 9)).all()


def test_a_corrupt_rotator_index_is_not_placed(build, tmp_path, headers_with):
    rot = {i: i + 1 for i in range(16)} | {5: 2**31 - 1}
    rec = build(tmp_path, "cam", frames=scan_frames(16),
                header_values=headers_with(rotidx=rot))  # fmt: skip
    view = LiveView(SHAPE, Placement("rotator", (4, 4)))
    for block in follow(rec.path, idle=0):
        view.feed(block)
    view.finish()
    assert view.values["vbf"].size < 100
    # it runs the scan back (as the reader's detection ends a scan there)
    assert view.placement.ended


def test_bad_scan_options_are_refused_before_the_wait(tmp_path, capsys):
    path = str(tmp_path / "later_000.tvips")
    for args, msg in [
        (["--scan-method", "sequential"], "a sequential scan needs its scan_shape"),
        (["--scan-shape", "4", "4", "--winding-scan-axis", "x", "--hysteresis", "4"],
         "hysteresis 4 must be smaller than the scan's 4 points"),
    ]:  # fmt: skip
        assert main(["watch", path, "--idle", "30", *args]) == 2
        assert capsys.readouterr().err == f"tvips watch: {msg}\n"


def test_binned_series_stay_bounded_and_keep_their_sums():
    series = Binned(bins=8)
    series.add(np.arange(5), np.ones(5))
    assert series.width == 1 and series.used() == 5
    series.add([37.0], [10.0])
    assert series.width == 8  # 8 bins of 8 cover 0..63
    assert series.sums.size == 8
    assert series.sums.sum() == 15
    assert series.sums[:5].tolist() == [5, 0, 0, 0, 10]
    assert series.counts.sum() == 6
    assert Binned().sums.size == BINS
    ms = Binned(bins=4, width=100)
    ms.add([50, 100, 350], [1, 1, 1])
    assert ms.counts.tolist() == [1, 1, 0, 1]
    ms.add([450], [1])
    assert ms.width == 200 and ms.counts.tolist() == [2, 1, 1, 0]


def test_a_movie_shows_its_latest_frame(build, tmp_path):
    rec = build(tmp_path, "cam", frames=scan_frames(9))
    view = LiveView(SHAPE)
    for block in follow(rec.path, idle=0, block_bytes=2 * 512):
        view.feed(block)
    np.testing.assert_array_equal(view.latest, rec.frames[-1])
    np.testing.assert_allclose(view.mean(), rec.frames.mean(axis=0))
    totals = rec.frames.sum(axis=(1, 2), dtype=np.float64)
    assert view.intensity.sums[:9].tolist() == totals.tolist()
    assert view.images() == {}


def test_a_disk_about_to_fill_is_said_once(faulty, monkeypatch, capsys):
    monkeypatch.setattr(watch_module.shutil, "disk_usage", lambda path: _Usage())
    monkeypatch.setattr(watch_module, "DISK_SECONDS", 0.0)
    main(["watch", str(faulty.path), "--idle", "0.1", "-q"])
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "disk" in line]
    assert said == [
        "tvips watch: warning: cam_000.tvips: disk: expected more than 1.0 GiB "
        "free, found 477 MiB free (the disk is nearly full)"
    ]


class _Usage:
    free = 500_000_000


def test_ctrl_c_ends_with_the_summary(faulty, capsys):
    def interrupt(seconds):
        raise KeyboardInterrupt

    watcher = Watch(faulty.path, idle=60, quiet=True, sleep=interrupt)
    findings = watcher.run()
    assert watcher.interrupted
    assert [f.field for f in findings] == ["num"]
    assert watcher.summary(findings)["frames"] == 60


def test_ctrl_c_while_the_drawer_ends_keeps_the_summary(faulty, tmp_path, monkeypatch):
    real_close = Drawer.close
    closes = []

    def interrupted_close(drawer, kill=False):
        closes.append(kill)
        if not kill:  # Ctrl-C as the child ends: once it has, in close()
            wait = drawer._process.wait

            def wait_then_ctrl_c(timeout=None):
                wait(timeout=timeout)
                drawer._process.wait = wait  # once
                raise KeyboardInterrupt

            drawer._process.wait = wait_then_ctrl_c
        real_close(drawer, kill=kill)

    monkeypatch.setattr(Drawer, "close", interrupted_close)
    out = tmp_path / "live.png"
    watcher = Watch(faulty.path, out, idle=0, quiet=True)
    findings = watcher.run()
    assert closes == [False, True]
    assert [f.field for f in findings] == ["num"]
    assert watcher.interrupted and watcher.drawer is None
    assert watcher.summary(findings)["frames"] == 60
    assert out.is_file()  # the last picture was written before the close


def test_a_part_replaced_under_the_watch_is_fatal(build, tmp_path):
    rec = build(tmp_path, "cam", frames=scan_frames(12), records_per_part=6)
    looks = []

    def replace_then_wait(seconds):
        if not looks:
            other = tmp_path / "other"
            other.write_bytes(rec.paths[1].read_bytes())
            other.replace(rec.paths[1])
        looks.append(seconds)

    watcher = Watch(rec.path, idle=60, quiet=True, sleep=replace_then_wait)
    findings = watcher.run()
    assert findings[0].severity == "fatal"
    assert findings[0].file == "cam_001.tvips"
    assert "(replaced)" in findings[0].found


def test_the_live_demo_writes_the_demo_as_a_camera_would(tmp_path, demo, capsys):
    live = tmp_path / "live"
    assert main(["demo", "--keep", str(live), "--live"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"writing {live / 'demo_000.tvips'} at 100 frames/s")
    written = sorted(p.name for p in live.iterdir())
    assert written == sorted(p.name for p in demo.parent.iterdir())
    for name in written:
        assert (live / name).read_bytes() == (demo.parent / name).read_bytes()
    # a second one would mix with the first
    assert main(["demo", "--keep", str(live), "--live"]) == 2
    assert "holds a demo recording already: demo_000.tvips" in capsys.readouterr().err
    assert main(["demo", "--live"]) == 2
    assert capsys.readouterr().err == (
        "tvips demo: --live writes into a folder: give --keep DIR\n"
    )


def test_a_part_unreadable_under_the_watch_ends_it_with_the_summary(
    faulty, monkeypatch
):
    looks = []

    def stale(self):
        looks.append(1)
        raise OSError(116, "Stale file handle", str(faulty.path))

    monkeypatch.setattr(follow_module.Follower, "look", stale)
    watcher = Watch(faulty.path, idle=60, quiet=True)
    findings = watcher.run()
    assert looks == [1]
    # what was seen is kept: the counter gap, after the fatal finding
    fields = [(f.severity, f.field) for f in findings]
    assert fields == [("fatal", "file"), ("warning", "num")]
    assert findings[0].found == "OSError: Stale file handle"
    assert watcher.summary(findings)["frames"] == 60


class BrokenStream(io.StringIO):
    """stderr whose reader went away: every write fails as on a closed pipe."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_stderr_is_not_the_recording_unreadable(faulty):
    # the status line and the problems go nowhere; the watch and what it
    # found of the recording are the same as with a working stderr
    watcher = Watch(faulty.path, idle=0, stream=BrokenStream())
    findings = watcher.run()
    assert [(f.severity, f.field) for f in findings] == [("warning", "num")]
    assert watcher.summary(findings)["frames"] == 60


def test_watch_into_a_closed_pipe_still_gives_its_summary(faulty):
    # the same with a real pipe whose reader is gone before the first write
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rsciio_tvips", "watch", str(faulty.path),
             "--idle", "0", "--json"],
            stderr=write, stdout=subprocess.PIPE, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    summary = json.loads(done.stdout)
    assert (done.returncode, summary["status"], summary["frames"]) == (1, 1, 60)
    assert [p["field"] for p in summary["problems"]] == ["num"]


def test_json_says_why_nothing_was_followed(tmp_path, capsys):
    code = main(["watch", str(tmp_path / "none_000.tvips"), "--idle", "0",
                 "--json", "-q"])  # fmt: skip
    assert code == 2
    summary = json.loads(capsys.readouterr().out)
    assert (summary["status"], summary["frames"], summary["parts"]) == (2, 0, 0)
    (problem,) = summary["problems"]
    assert (problem["severity"], problem["file"], problem["found"]) == (
        "fatal", "none_000.tvips", "nothing",
    )  # fmt: skip


def test_a_picture_folder_that_is_not_there_is_refused_before_the_wait(
    tmp_path, capsys
):
    out = tmp_path / "gone" / "live.png"
    assert main(["watch", str(tmp_path / "x_000.tvips"), "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"tvips watch: {out}: cannot write into {out.parent}\n"
    )


def test_a_picture_that_cannot_be_written_is_said_once(faulty, tmp_path, capsys):
    out = tmp_path / "pictures" / "live.png"
    out.parent.mkdir()
    watcher = Watch(faulty.path, out, every=0, idle=0.2, quiet=True)
    out.parent.rmdir()  # removed while watching
    findings = watcher.run()
    assert [f.field for f in findings] == ["num"]  # the watch went on
    said = [line for line in capsys.readouterr().err.splitlines() if "live.png" in line]
    assert len(said) == 1 and said[0].startswith(f"tvips watch: cannot write {out}: ")


@pytest.mark.parametrize("option", ["--idle", "--every"])
def test_negative_seconds_are_refused(capsys, option):
    with pytest.raises(SystemExit) as stopped:
        main(["watch", "x_000.tvips", option, "-1"])
    assert stopped.value.code == 2
    assert "-1: seconds must be 0 or more" in capsys.readouterr().err


def test_follow_refuses_a_negative_start(faulty):
    with pytest.raises(ValueError, match="start must be a frame number, 0 or more"):
        next(follow(faulty.path, idle=0, start=-3))


def test_a_disk_that_cannot_be_asked_leaves_the_free_space_out(faulty, monkeypatch):
    def fails(path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(watch_module.shutil, "disk_usage", fails)
    watcher = Watch(faulty.path, idle=0, quiet=True)
    assert [f.field for f in watcher.run()] == ["num"]
    assert watcher.free is None
    assert watcher._line(final=False).endswith(", cam_000.tvips")


def test_ctrl_c_while_waiting_for_the_first_frame(tmp_path):
    def interrupt(seconds):
        raise KeyboardInterrupt

    watcher = Watch(tmp_path / "none_000.tvips", idle=60, quiet=True, sleep=interrupt)
    with pytest.raises(FileNotFoundError, match="No such TVIPS file"):
        watcher.run()


def test_a_part_that_grew_after_the_next_appeared_is_judged_again(build, tmp_path):
    # the writer opened part 1 before its last write to part 0 landed: the
    # join looked short at first, and is sound once the bytes are there
    rec = build(tmp_path / "src", "cam", n_frames=20, shape=(8, 8))
    data = rec.header + rec.stream
    cut = 256 + 10 * rec.record_size + 50
    first, second = tmp_path / "cam_000.tvips", tmp_path / "cam_001.tvips"
    first.write_bytes(data[: cut - 100])
    second.write_bytes(data[cut:])
    looks = []

    def late_bytes(seconds):
        if not looks:
            with open(first, "ab") as f:
                f.write(data[cut - 100 : cut])
        looks.append(seconds)

    watcher = Watch(first, idle=0, quiet=True, sleep=late_bytes)
    assert watcher.run() == []
    assert watcher.follower.given == 20


def test_idle_zero_takes_in_every_frame_of_a_finished_recording(build, tmp_path):
    rec = build(tmp_path, "cam", n_frames=30, shape=(4, 4), records_per_part=10)
    watcher = Watch(rec.path, idle=0, quiet=True)
    assert watcher.run() == []
    assert watcher.follower.given == 30
    blocks = list(follow(rec.path, idle=0))
    assert blocks[-1].stop == 30


def test_an_option_the_recording_cannot_take_is_a_json_summary(build, tmp_path, capsys):
    rec = build(tmp_path, "cam", n_frames=2, dtype="uint8")
    code = main(["watch", str(rec.path), "--signed", "--json", "-q", "--idle", "0"])
    assert code == 2
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert (problem["severity"], problem["field"]) == ("fatal", "options")
    assert "but this recording has 8-bit pixels" in problem["found"]


def test_a_rotator_index_beyond_any_scan_ends_it(build, tmp_path, headers_with):
    # a 4 x 4 scan, then a corrupt index: the scan ends there, square
    rot = {i: i + 1 for i in range(16)} | {16: 2**31 - 1, 17: 0}
    rec = build(tmp_path, "cam", frames=scan_frames(18),
                header_values=headers_with(rotidx=rot))  # fmt: skip
    view = LiveView(SHAPE, Placement("rotator"))
    for block in follow(rec.path, idle=0, block_bytes=3 * 512):
        view.feed(block)
        if view.placement.shape is None:
            assert view.waiting in (
                "scan shape not known yet",
                "apertures found after 16 scan frames (3 yet)",
                "apertures found after 16 scan frames (6 yet)",
                "apertures found after 16 scan frames (9 yet)",
                "apertures found after 16 scan frames (12 yet)",
                "apertures found after 16 scan frames (15 yet)",
            )
    view.finish()
    assert view.placement.shape == (4, 4)
    offline = _offline_virtual(rec.path, view.apertures, scan_shape=(4, 4))
    np.testing.assert_array_equal(view.images()["vbf"], offline)


def test_pictures_are_drawn_in_another_process(faulty, tmp_path, monkeypatch):
    def here(*args, **kw):
        raise AssertionError("a picture drawn in the watcher's own process")

    monkeypatch.setattr(figure_module, "live_figure", here)
    asked = []
    draw = Drawer.draw

    def noted(self, title, picture, out):
        asked.append(picture.frames)
        draw(self, title, picture, out)

    monkeypatch.setattr(Drawer, "draw", noted)
    out = tmp_path / "live.png"
    watcher = Watch(faulty.path, out, every=0, idle=0.2, quiet=True)
    assert [f.field for f in watcher.run()] == ["num"]
    assert out.read_bytes().startswith(b"\x89PNG")
    # the last picture, waited for, is of every frame
    assert asked[-1] == 60 and watcher.pictures == len(asked)
    assert watcher.drawer is None  # stopped with the watch


def test_a_drawer_that_is_killed_is_said_once_and_the_watch_goes_on(
    faulty, tmp_path, capsys
):
    def kill(block):
        if watcher.drawer is not None:  # before the first picture is written
            watcher.drawer._process.kill()
            watcher.drawer._process.wait()

    out = tmp_path / "live.png"
    watcher = Watch(faulty.path, out, every=0, idle=0.2, quiet=True, on_block=kill)
    assert [f.field for f in watcher.run()] == ["num"]
    said = [line for line in capsys.readouterr().err.splitlines() if "picture" in line]
    assert said == [
        "tvips watch: no more pictures: the process drawing the pictures stopped "
        f"(exit code {-signal.SIGKILL})"
    ]
    assert watcher.pictures == 0 and not out.exists()


def test_the_drawer_draws_on_through_ctrl_c(build, tmp_path):
    rec = build(tmp_path, "cam", frames=scan_frames(20))
    view = LiveView(SHAPE)
    for block in follow(rec.path, idle=0):
        view.feed(block)
    drawer = Drawer()
    # Ctrl-C at once, while it starts up: it stops the watch only
    os.kill(drawer._process.pid, signal.SIGINT)
    try:
        assert drawer.done() == (False, None)  # none asked for
        drawer.draw("first", view.picture(), tmp_path / "a.png")
        with pytest.raises(RuntimeError, match=r"^a picture is being drawn$"):
            drawer.draw("second", view.picture(), tmp_path / "b.png")
        assert drawer.done(wait=True, timeout=60) == (True, None)
        os.kill(drawer._process.pid, signal.SIGINT)
        drawer.draw("second", view.picture(), tmp_path / "gone" / "b.png")
        finished, error = drawer.done(wait=True, timeout=60)
        assert finished and error.startswith("[Errno 2] No such file or directory")
    finally:
        drawer.close()
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert drawer._process.poll() == 0  # ended by close()


def test_a_picture_is_a_copy_of_the_view_at_one_time(build, tmp_path):
    rec = build(tmp_path, "cam", frames=scan_frames(40))
    view = LiveView(SHAPE, Placement("sequential", (5, 6)))
    blocks = list(follow(rec.path, idle=0, block_bytes=20 * 512))
    view.feed(blocks[0])
    picture = view.picture()
    mean, rate = picture.mean.copy(), picture.rate.sums.copy()
    for block in blocks[1:]:
        view.feed(block)
    assert len(blocks) > 1 and view.frames == 40 and picture.frames < 40
    assert np.array_equal(picture.mean, mean)
    assert np.array_equal(picture.rate.sums, rate)
    assert not np.array_equal(view.mean(), mean)


@pytest.mark.parametrize(("bound", "most"), [(10, 9), (2, 2)])
def test_frames_held_before_auto_decides_stay_bounded(
    build, tmp_path, headers_with, monkeypatch, bound, most
):
    # beam positions that never move and a rotator index that never counts
    # up: auto never decides, and holds only the latest frames; blocks of 3
    # frames: the oldest blocks go once more than ``bound`` frames are held,
    # and a block larger than that keeps its last frames
    monkeypatch.setattr(live_module, "APERTURE_PIXELS", bound * SHAPE[0] * SHAPE[1])
    values = headers_with(rotidx={i: 0 for i in range(60)},
                          Scan_x={i: 0.0 for i in range(60)},
                          Scan_y={i: 0.0 for i in range(60)})  # fmt: skip
    rec = build(tmp_path, "cam", frames=scan_frames(60), frame_header_bytes=108,
                header_values=values)  # fmt: skip
    view = LiveView(SHAPE, Placement("auto"))
    held = []
    for block in follow(rec.path, idle=0, block_bytes=3 * 620):
        view.feed(block)
        held.append(np.concatenate([numbers for numbers, _, _ in view._held]))
    assert view.placement.method == "auto" and view.frames == 60
    assert max(h.size for h in held) == most
    assert held[-1][-1] == 59  # the latest


def test_a_frame_rate_of_one_bin_is_drawn_as_a_point(build, tmp_path, headers_with):
    # every frame within one bin of 100 ms
    values = headers_with(timestamp={i: 1_700_000_000 for i in range(20)},
                          ms={i: i for i in range(20)})  # fmt: skip
    rec = build(tmp_path, "cam", frames=scan_frames(20), header_values=values)
    view = LiveView(SHAPE, Placement("sequential", (4, 5)))
    for block in follow(rec.path, idle=0):
        view.feed(block)
    fig, panels = figure_module.live_figure("t", view.picture())
    (line,) = fig.subfigs[3].axes[0].lines
    assert panels[3]["title"] == "frame rate"
    assert line.get_xdata().size == 1 and line.get_marker() == "o"


def test_a_drawer_killed_between_pictures_is_said_once(
    build, tmp_path, acquire, capsys
):
    rec = build(tmp_path / "src", "cam", frames=scan_frames(40))
    (tmp_path / "live").mkdir()
    cam = acquire(rec, tmp_path / "live", name="cam", appends=(512 * 10,), pause=0.05)

    def kill(block):
        if block.start > 0 and not killed:  # the first picture asked: wait for it
            assert watcher.drawer.done(wait=True, timeout=60) == (True, None)
            watcher.drawer._process.kill()
            watcher.drawer._process.wait()
            killed.append(block.start)

    killed = []

    out = tmp_path / "live.png"
    watcher = Watch(cam.path, out, every=1000, idle=0.5, quiet=True, on_block=kill)
    assert watcher.run() == []  # no crash: the summary, as ever
    cam.finish()
    assert killed  # between two blocks
    said = [line for line in capsys.readouterr().err.splitlines() if "picture" in line]
    assert said == [
        "tvips watch: no more pictures: the process drawing the pictures stopped "
        f"(exit code {-signal.SIGKILL})"
    ]


def test_the_drawer_imports_the_package_the_watcher_imported(
    faulty, tmp_path, monkeypatch, capsys
):
    # a folder holding another rsciio_tvips, run from: the child must not
    # import that one
    other = tmp_path / "elsewhere" / "rsciio_tvips"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("raise ImportError('the wrong package')\n")
    (other.parent / "json.py").write_text("raise ImportError('the wrong json')\n")
    monkeypatch.chdir(other.parent)
    monkeypatch.syspath_prepend("")  # as python -c and notebooks have it
    out = tmp_path / "live.png"
    watcher = Watch(faulty.path, out, every=0, idle=0.2, quiet=True)
    assert [f.field for f in watcher.run()] == ["num"]
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "picture" not in capsys.readouterr().err


def test_no_python_to_draw_in_is_said_and_the_watch_goes_on(
    faulty, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sys, "executable", "")  # an embedded interpreter
    watcher = Watch(faulty.path, tmp_path / "live.png", idle=0.2, quiet=True)
    assert [f.field for f in watcher.run()] == ["num"]
    said = [line for line in capsys.readouterr().err.splitlines() if "picture" in line]
    assert said == [
        "tvips watch: no pictures: no Python to draw them in (sys.executable is empty)"
    ]


def test_the_last_picture_is_waited_for_a_bounded_time(
    faulty, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(watch_module, "LAST_PICTURE_SECONDS", 1.0)

    def stop(block):  # the drawer never answers
        os.kill(watcher.drawer._process.pid, signal.SIGSTOP)

    out = tmp_path / "live.png"
    watcher = Watch(faulty.path, out, every=0, idle=0.2, quiet=True, on_block=stop)
    assert [f.field for f in watcher.run()] == ["num"]
    said = [line for line in capsys.readouterr().err.splitlines() if "picture" in line]
    assert said == [f"tvips watch: the last picture, {out}, was not drawn within 1 s"]
    assert watcher.drawer is None  # killed, not left drawing
    assert list(tmp_path.glob(".live.png.*")) == []


def test_asking_for_a_picture_never_waits_for_the_drawer(build, tmp_path):
    rec = build(tmp_path, "cam", frames=scan_frames(20))
    view = LiveView(SHAPE)
    for block in follow(rec.path, idle=0):
        view.feed(block)
    big = dataclasses.replace(view.picture(), mean=np.zeros((1024, 1024)))  # 8 MB
    drawer = Drawer()
    os.kill(drawer._process.pid, signal.SIGSTOP)  # a child that reads nothing
    try:
        asking = threading.Thread(target=drawer.draw,
                                  args=("t", big, tmp_path / "a.png"))  # fmt: skip
        asking.start()
        asking.join(timeout=30)
        assert not asking.is_alive() and drawer.busy
        assert drawer.done() == (False, None)
    finally:
        drawer.close(kill=True)
    assert drawer._process.returncode == -signal.SIGKILL


def test_messages_are_found_among_other_bytes():
    sent = io.BytesIO()
    drawer_module._send(sent, pickle.dumps("an answer"))
    message = sent.getvalue()
    assert message.startswith(drawer_module.MAGIC)
    stream = io.BytesIO(b"Matplotlib is building the font cache\nTVP" + message)
    assert pickle.loads(drawer_module._receive(stream)) == "an answer"
    with pytest.raises(EOFError):
        drawer_module._receive(stream)  # its end
    with pytest.raises(EOFError):
        drawer_module._receive(io.BytesIO(message[:-3]))  # cut short


def test_a_picture_of_beam_positions_is_a_copy_too(build, tmp_path, headers_with):
    # their images are views of the values the view goes on filling in
    values = headers_with(Scan_x={i: float(i % 5) for i in range(20)},
                          Scan_y={i: float(i // 5) for i in range(20)})  # fmt: skip
    rec = build(tmp_path, "cam", frames=scan_frames(20), frame_header_bytes=108,
                header_values=values)  # fmt: skip
    view = LiveView(SHAPE, Placement("positions"))
    blocks = list(follow(rec.path, idle=0, block_bytes=9 * 512))
    for block in blocks[:2]:  # 18 frames: the apertures are found on 16
        view.feed(block)
    picture = view.picture()
    vbf = picture.images["vbf"].copy()
    for block in blocks[2:]:
        view.feed(block)
    assert np.isnan(vbf).sum() == 2 and not np.isnan(view.images()["vbf"]).any()
    np.testing.assert_array_equal(picture.images["vbf"], vbf)


@pytest.mark.parametrize("placement", [None, Placement("sequential", (4, 5))])
def test_the_pictures_draw_without_a_warning(build, tmp_path, placement):
    # drawn here, where a warning fails the test (the drawer shows none)
    rec = build(tmp_path, "cam", frames=scan_frames(20))
    view = LiveView(SHAPE, placement)
    for block in follow(rec.path, idle=0, block_bytes=7 * 512):
        view.feed(block)
    view.finish()
    out = tmp_path / "live.png"
    drawer_module.write_picture("t", view.picture(), out)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_picture_is_brought_up_to_date_while_no_frame_comes(
    faulty, tmp_path, monkeypatch
):
    # the first picture is asked at the first block and is still being drawn
    # when the last comes; the next one, of every frame, is asked while the
    # recording is idle, not only at the end
    monkeypatch.setattr(watch_module, "BLOCK_BYTES", 20 * 512)
    asked = []
    draw = Drawer.draw

    def noted(self, title, picture, out):
        asked.append(picture.frames)
        draw(self, title, picture, out)

    def sleep(seconds):
        if 60 in asked:
            raise KeyboardInterrupt  # seen: end the watch (as Ctrl-C does)
        time.sleep(seconds)

    monkeypatch.setattr(Drawer, "draw", noted)
    watcher = Watch(faulty.path, tmp_path / "live.png", every=0, idle=60,
                    quiet=True, sleep=sleep)  # fmt: skip
    assert [f.field for f in watcher.run()] == ["num"]
    assert watcher.interrupted and asked == [20, 60]
    assert watcher.pictures == 2
