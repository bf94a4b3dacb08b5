"""The info command: what a recording holds and how to read its scan."""

import json
import re

import numpy as np
import pytest

from rsciio_tvips import TvipsRecording, file_reader
from rsciio_tvips.__main__ import main
from rsciio_tvips._microed.geometry import SmvGeometry
from rsciio_tvips._tools.info import as_text, describe


def test_demo_recording_summary(demo):
    d = describe(demo.with_name("demo_002.tvips"))
    assert d["recording"] == str(demo)
    assert d["parts"] == [
        {"name": "demo_000.tvips", "bytes": 700_000, "frames": 85},
        {"name": "demo_001.tvips", "bytes": 700_000, "frames": 84},
        {"name": "demo_002.tvips", "bytes": 700_000, "frames": 84},
        {"name": "demo_003.tvips", "bytes": 91_456, "frames": 11},
    ]
    # 264 records of 108 + 64 * 64 * 2 bytes after the main header
    assert sum(p["bytes"] for p in d["parts"]) == 256 + 264 * 8300
    assert d["frames"]["count"] == 264
    assert d["frames"]["record_bytes"] == 8300
    assert d["frames"]["frame_header_fields"][:3] == ["num", "timestamp", "ms"]
    assert d["main_header"]["ht"] == 300
    assert d["first_frame_header"]["num"] == 1
    assert d["time"] == {
        "first_utc": "2023-11-14T22:13:20.000+00:00",
        "last_utc": "2023-11-14T22:13:22.630+00:00",
        "duration_s": 2.63,
        "frame_interval_ms": 10.0,
        "frame_rate": 100.0,
        "time_reversals": 0,
    }
    assert d["counter"] == {
        "first": 1,
        "last": 264,
        "gaps": 0,
        "missing": 0,
        "resets": 0,
    }
    assert d["rotator"] == {
        "min": 0,
        "max": 256,
        "frames_with_index": 256,
        "scans": [{"start_frame": 5, "stop_frame": 261}],
    }
    assert d["scan_positions"] == {
        "present": True,
        "x_range": [0.0, 15.0],
        "y_range": [0.0, 15.0],
    }
    assert d["suggested"] == {"scan_shape": "auto"}
    assert d["suggested_explicit"] == {"scan_shape": [16, 16], "scan_start_frame": 5}
    assert d["suggested_why"] == (
        "the positions information of the frame headers places frames 5 to 260 "
        "on a 16 x 16 scan"
    )
    assert d["problems"] == []


def test_suggested_arguments_read_the_scan(demo, tmp_path):
    from rsciio_tvips._tools.demo import demo_frames, write_demo_recording

    d = describe(demo)
    (s,) = file_reader(demo, **d["suggested"])
    scan = demo_frames((16, 16), (64, 64), 5, 3)[5:261].reshape(16, 16, 64, 64)
    np.testing.assert_array_equal(s["data"], scan)
    # the explicit arguments (a list from JSON) read the same scan, here and
    # in RosettaSciIO
    explicit = json.loads(json.dumps(d["suggested_explicit"]))
    (e,) = file_reader(demo, **explicit)
    np.testing.assert_array_equal(e["data"], scan)
    rsciio_tvips_ref = pytest.importorskip("rsciio.tvips")
    # RosettaSciIO cannot read records that straddle parts: one part
    whole = write_demo_recording(tmp_path, "whole", part_size=2**30)
    assert json.loads(json.dumps(describe(whole)["suggested_explicit"])) == explicit
    (ref,) = rsciio_tvips_ref.file_reader(str(whole), **explicit)
    np.testing.assert_array_equal(ref["data"], scan)


def test_json_and_text_output(demo, capsys):
    assert main(["info", str(demo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == describe(demo)
    assert main(["info", str(demo)]) == 0
    out = capsys.readouterr().out
    assert out == as_text(describe(demo)) + "\n"
    lines = out.splitlines()
    assert lines[0] == f"recording {demo}: 4 part(s)"
    assert (
        lines[1] == "  demo_000.tvips                  700,000 bytes        85 frames"
    )
    at = lines.index("suggested reader arguments: scan_shape='auto'")
    assert lines[at + 1] == "  explicitly: scan_shape=(16, 16), scan_start_frame=5"


def test_recording_without_scan_information(make_tvips, capsys):
    rec = make_tvips(n_frames=5, version=1)
    d = describe(rec.path)
    assert d["frames"]["frame_header_fields"] == ["num", "timestamp", "ms"]
    assert d["rotator"] is None
    assert d["scan_positions"] is None
    assert d["suggested"] is None
    why = (
        "rec_000.tvips: its 12-byte frame headers have no rotator index or beam "
        "positions to find the scan from: give scan_shape as a tuple"
    )
    assert d["suggested_why"] == why
    assert main(["info", str(rec.path)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"no scan found in the frame headers: {why}"


def test_rotator_scan_hint_and_hysteresis_estimate(make_tvips):
    # 60-byte headers: a rotator index but no beam positions
    def values(i):
        return {
            "num": i + 1,
            "timestamp": 1_700_000_000,
            "ms": i,
            "rotidx": max(0, i - 1),
        }

    rec = make_tvips(n_frames=18, shape=(6, 6), header_values=values)
    d = describe(rec.path, estimate_hysteresis=True)
    assert d["suggested"] == {"scan_shape": "auto"}
    assert d["suggested_why"].startswith(
        "the rotator information of the frame headers places frames 2 to 17 on a "
        "4 x 4 scan; EM-Konos scans are usually snakes"
    )
    assert "(estimated hysteresis for a snake along x: " in d["suggested_why"]
    h = d["suggested_explicit"]["hysteresis"]
    assert d["suggested_why"].endswith(f"along x: {h})")
    assert d["suggested_explicit"] == {
        "scan_shape": [4, 4],
        "scan_start_frame": 2,
        "winding_scan_axis": "x",
        "hysteresis": h,
    }


def test_explicit_arguments_say_when_frames_repeat(make_tvips):
    # point 2 has two frames, point 5 none: read one after another, frames
    # after point 2 would land one point late
    index = [0, 1, 2, 3, 3, 4, 5, 7, 8, 9]
    rec = make_tvips(n_frames=10, header_values=lambda i: {"rotidx": index[i]})
    d = describe(rec.path)
    assert d["suggested_explicit"] == {"scan_shape": [3, 3], "scan_start_frame": 1}
    assert d["suggested_why"] == (
        "the rotator information of the frame headers places frames 1 to 9 on a "
        "3 x 3 scan; 1 frame(s) repeat a point and 1 point(s) have no frame: "
        "read with the explicit arguments, frames fall one after another and "
        "the scan comes out shifted from there on; EM-Konos scans are usually "
        'snakes: if every other row looks mirrored, add winding_scan_axis="x", '
        'hysteresis="auto"'
    )


def test_truncated_recording_lists_the_problem(make_tvips):
    # in the summary, not as a warning too (filterwarnings=error would fail)
    rec = make_tvips(n_frames=4, truncate=3)
    d = describe(rec.path)
    assert d["frames"]["ignored_bytes"] == d["frames"]["record_bytes"] - 3
    (problem,) = d["problems"]
    record = d["frames"]["record_bytes"]
    assert problem == {
        "severity": "warning",
        "file": "rec_000.tvips",
        "offset": 256 + 3 * record,
        "field": "frame record",
        "expected": f"{record} bytes",
        "found": f"{record - 3}",
        "detail": "truncated last record: 3 whole frames are read",
    }
    assert f"problem: warning: rec_000.tvips at offset {256 + 3 * record}" in (
        as_text(d)
    )


def test_missing_part_is_a_problem_not_a_stray_warning(demo):
    demo.with_name("demo_001.tvips").unlink()
    d = describe(demo)  # no warning escapes (filterwarnings=error)
    assert d["problems"][0] == {
        "severity": "error",
        "file": "demo_001.tvips",
        "offset": None,
        "field": "part chain",
        "expected": "part 1 of 'demo' (parts up to 3 exist)",
        "found": "no such file",
        "detail": "permissive=True reads the parts before it",
    }
    assert [p["name"] for p in d["parts"]] == ["demo_000.tvips"]


def test_unreadable_recording_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "x_000.tvips")]) == 2
    err = capsys.readouterr().err
    assert err == f"tvips info: No such TVIPS file: '{tmp_path / 'x_000.tvips'}'\n"


# --- recordings written by file_writer ------------------------------------------


def written(tmp_path, data, nav=None, **kw):
    """Write ``data`` with file_writer (uncalibrated, or ``nav`` axes)."""
    from rsciio_tvips import file_writer

    nav = nav or [{}] * (data.ndim - 2)
    axes = [
        {"size": n, "navigate": True, **a}
        for n, a in zip(data.shape[:-2], nav, strict=True)
    ]
    axes += [{"size": n, "navigate": False} for n in data.shape[-2:]]
    meta = {"General": {"date": "2024-05-06", "time": "07:08:09", "time_zone": "UTC"}}
    sig = {"data": data, "axes": axes, "metadata": meta}
    file_writer(tmp_path / "w.tvips", sig, show_progressbar=False, **kw)
    return tmp_path / "w_000.tvips"


def test_written_movie_suggests_no_scan(tmp_path):
    # 100 frames: once written with rotidx 1..100, info suggested a 10 x 10 scan
    nav = [{"name": "time", "scale": 0.04, "offset": 0.0, "units": "s"}]
    path = written(tmp_path, np.zeros((100, 2, 3), np.uint16), nav)
    d = describe(path)
    assert d["rotator"] == {"min": 0, "max": 0, "frames_with_index": 0, "scans": []}
    assert d["scan_positions"] is None  # 60-byte frame headers
    assert d["suggested"] is None
    why = "no scan found in the rotator indices: give scan_shape as a tuple"
    assert d["suggested_why"] == why
    assert d["problems"] == []
    assert as_text(d).splitlines()[-1] == f"no scan found in the frame headers: {why}"


def test_written_stack_with_room_for_positions_suggests_no_scan(tmp_path):
    path = written(
        tmp_path, np.zeros((100, 2, 3), np.uint16), frame_header_extra_bytes=48
    )
    d = describe(path)
    assert d["scan_positions"] == {"present": False}
    assert d["suggested"] is None


def test_written_scan_is_suggested_in_its_shape(tmp_path):
    data = np.arange(9 * 8 * 2 * 3, dtype=np.uint16).reshape(9, 8, 2, 3)
    path = written(tmp_path, data)
    d = describe(path)
    assert d["scan_positions"] == {
        "present": True,
        "x_range": [0.0, 7.0],
        "y_range": [0.0, 8.0],
    }
    assert d["suggested"] == {"scan_shape": "auto"}
    assert d["suggested_why"] == (
        "the positions information of the frame headers places frames 0 to 71 "
        "on a 9 x 8 scan"
    )
    assert d["problems"] == []
    (s,) = file_reader(path, **d["suggested"])
    np.testing.assert_array_equal(s["data"], data)


@pytest.mark.parametrize(
    ("mode", "optics"), [(1, "magnification"), (2, "camera length")]
)
def test_magtotal_is_named_for_the_mode(make_tvips, mode, optics):
    rec = make_tvips(n_frames=3, mode=mode)
    main_line = as_text(describe(rec.path)).splitlines()[2]
    assert re.fullmatch(
        rf"main header: version 2, .*, \d+ kV, {optics} \d+, pixel size \d+", main_line
    )


def test_frames_without_an_interval(make_tvips):
    # every frame at one time: no "0 ms (0 frames/s)"
    def values(i):
        return {"num": i + 1, "timestamp": 1_700_000_000, "ms": 0}

    rec = make_tvips(n_frames=4, header_values=values)
    lines = as_text(describe(rec.path)).splitlines()
    (time_line,) = [line for line in lines if line.startswith("time: ")]
    assert time_line == (
        "time: 2023-11-14T22:13:20.000+00:00 for every frame (the headers give no "
        "frame interval), 0 time reversal(s)"
    )


def tilt_values(default_header_values, alpha):
    """Frame-header values of a MicroED-like series: diffraction, ``stagea`` given."""

    def values(i):
        return {**default_header_values(i, mode=2), "stagea": alpha[i]}

    return values


@pytest.mark.parametrize(
    ("alpha", "tilt", "line"),
    [
        (
            # float32 readings: -28.3 is -28.299999237 in the file
            [-28.3, -28.2, -28.1, -28.0, -27.9],
            {"first": -28.3, "last": -27.9, "min": -28.3, "max": -27.9,
             "step_per_frame": 0.1, "direction": "increasing", "monotonic": True},
            "stage tilt: -28.3 to -27.9 degrees from frame 0 to 4, 0.1 degrees per "
            "frame (increasing)",
        ),
        (
            # there and back: the fitted line is flat, no direction
            [0.0, 1.0, 2.0, 1.0, 0.0],
            {"first": 0.0, "last": 0.0, "min": 0.0, "max": 2.0,
             "step_per_frame": 0.0, "direction": "none", "monotonic": False},
            "stage tilt: 0 to 0 degrees from frame 0 to 4, 0 degrees per frame "
            "(no direction overall: 0 to 2 and back)",
        ),
        (
            # backlash: the stage first moves the other way
            [30.0, 30.01, 29.5, 29.0, 28.5],
            {"first": 30.0, "last": 28.5, "min": 28.5, "max": 30.01,
             "step_per_frame": -0.401, "direction": "decreasing",
             "monotonic": False},
            "stage tilt: 30 to 28.5 degrees from frame 0 to 4, -0.401 degrees per "
            "frame (decreasing overall, not monotonic: 28.5 to 30.01)",
        ),
    ],
    ids=["rotation", "there-and-back", "backlash"],
)  # fmt: skip
def test_stage_tilt_of_a_tilt_series(
    make_tvips, default_header_values, capsys, alpha, tilt, line
):
    rec = make_tvips(
        n_frames=5, header_values=tilt_values(default_header_values, alpha)
    )
    assert describe(rec.path)["tilt"] == tilt
    assert main(["info", "--json", str(rec.path)]) == 0
    assert json.loads(capsys.readouterr().out)["tilt"] == tilt
    assert main(["info", str(rec.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x for x in lines if x.startswith("stage tilt")] == [line]
    # the step to_smv writes as OSC_RANGE of one frame per image
    angles = SmvGeometry()._angles(TvipsRecording(rec.path).header_fields, 1.0)
    assert angles["step"] == tilt["step_per_frame"]


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({}, "one tilt for every frame"),
        ({"version": 1}, "no stagea in 12-byte frame headers"),
    ],
    ids=["constant", "version-1"],
)
def test_no_tilt_series_no_tilt_line(make_tvips, kw, why):
    rec = make_tvips(n_frames=3, **kw)
    d = describe(rec.path)
    assert d["tilt"] is None, why
    assert not [x for x in as_text(d).splitlines() if x.startswith("stage tilt")]


def test_other_recordings_are_a_remark_not_a_problem(make_tvips):
    rec = make_tvips(n_frames=3)
    make_tvips(name="b", n_frames=3)
    lines = as_text(describe(rec.path)).splitlines()
    assert lines[-1] == (
        "info: rec_000.tvips: the folder also holds another recording: "
        "b_000.tvips (1 part); it was not checked"
    )


@pytest.mark.parametrize("block", [1, 2, 7])
def test_the_summary_does_not_depend_on_the_blocks(
    demo, make_tvips, default_header_values, monkeypatch, block
):
    # info reads the headers a block at a time (issue 16): cut into blocks
    # of 1, 2 or 7 frames, the demo scan (beam positions, times, counter)
    # and a tilt series with backlash must be summarised as in one block
    backlash = tilt_values(default_header_values, [30.0, 30.01, 29.5, 29.0, 28.5])
    series = make_tvips(n_frames=5, header_values=backlash).path
    whole = [describe(demo), describe(series)]
    monkeypatch.setattr("rsciio_tvips._checks.stream.BLOCK", block)
    assert [describe(demo), describe(series)] == whole
    assert whole[1]["tilt"]["step_per_frame"] == -0.401
