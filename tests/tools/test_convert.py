"""The convert command: every format loads back equal to the source."""

import re
import tracemalloc

import numpy as np
import pytest

from rsciio_tvips import TvipsRecording, file_reader
from rsciio_tvips.__main__ import main
from rsciio_tvips._tools.convert import convert, to_format, to_tvips
from rsciio_tvips._tools.demo import demo_frames, run_demo

hs = pytest.importorskip("hyperspy.api")


SCAN = {"scan_shape": (16, 16), "scan_start_frame": 5}


def scan_truth():
    return demo_frames((16, 16), (64, 64), 5, 3)[5:261].reshape(16, 16, 64, 64)


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_hyperspy_formats_keep_data_and_axes(demo, tmp_path, ext):
    out = tmp_path / f"c.{ext}"
    summary = convert(demo, out, **SCAN)
    assert summary == {
        "format": "hyperspy",
        "shape": [16, 16, 64, 64],
        "dtype": "uint16",
        "files": [str(out)],
    }
    s = hs.load(out)
    np.testing.assert_array_equal(s.data, scan_truth())
    (source,) = file_reader(demo, **SCAN)
    for axis, expected in zip(s.axes_manager._axes, source["axes"], strict=True):
        assert (axis.name, axis.size) == (expected["name"], expected["size"])
        assert axis.scale == pytest.approx(expected.get("scale", 1.0))
        if "units" in expected:
            assert axis.units == expected["units"]


def test_blockfile(demo, tmp_path):
    out = tmp_path / "c.blo"
    # the demo's values fit in 8 bits after halving: scale 0..510 onto 0..255
    with pytest.warns(UserWarning, match="BLO file expects cm units"):
        convert(demo, out, intensity_scaling=(0, 510), **SCAN)
    s = hs.load(out)
    truth = scan_truth()
    expected = np.clip(truth.astype(np.float64) * 255 / 510, 0, 255)
    assert s.data.dtype == np.uint8
    assert np.abs(s.data.astype(np.int64) - expected).max() <= 1
    with pytest.raises(ValueError, match=r"\.blo files hold 2-D scans of 2-D frames"):
        convert(demo, tmp_path / "stack.blo")


@pytest.mark.parametrize("ext", ["tif", "mrc", "npy"])
def test_frame_stack_formats(demo, tmp_path, ext):
    out = tmp_path / f"c.{ext}"
    convert(demo, out, crop="10:50,4:60", **SCAN)
    truth = scan_truth()[:, :, 10:50, 4:60]
    if ext == "npy":
        np.testing.assert_array_equal(np.load(out), truth)
    elif ext == "mrc":
        # read back with mrcfile: RosettaSciIO's MRC reader leaves the file
        # open (a ResourceWarning, an error under this suite's settings)
        import mrcfile

        with mrcfile.open(out, permissive=False) as mrc:
            assert mrc.header.mode == 6  # uint16
            np.testing.assert_array_equal(mrc.data, truth.reshape(256, 40, 56))
    else:
        s = hs.load(out)
        np.testing.assert_array_equal(s.data, truth.reshape(256, 40, 56))


def test_tvips_resplit_with_frames_and_headers(demo, tmp_path):
    out = tmp_path / "c.tvips"
    summary = convert(demo, out, frames="20:120", max_file_size=300_000)
    names = [p.rsplit("/", 1)[-1] for p in summary["files"]]
    assert names == ["c_000.tvips", "c_001.tvips", "c_002.tvips"]
    rec = TvipsRecording(out.with_name("c_000.tvips"))
    assert rec.n_frames == 100
    np.testing.assert_array_equal(
        rec.asarray(), demo_frames((16, 16), (64, 64), 5, 3)[20:120]
    )
    source = TvipsRecording(demo).frame_headers
    np.testing.assert_array_equal(rec.frame_headers["num"], source["num"][20:120])
    np.testing.assert_array_equal(rec.frame_headers["rotidx"], source["rotidx"][20:120])


def test_binning_sums_blocks_and_widens(demo, tmp_path):
    out = tmp_path / "b.npy"
    summary = convert(demo, out, crop="0:63,0:64", binning=2, **SCAN)
    truth = scan_truth()[:, :, :62, :].astype(np.uint32)
    expected = truth.reshape(16, 16, 31, 2, 32, 2).sum(axis=(3, 5))
    assert summary["dtype"] == "uint32"
    np.testing.assert_array_equal(np.load(out), expected)
    # the centre of a bin is the middle of its pixels, its size twice theirs
    from rsciio_tvips._tools.convert import _select

    (d,) = file_reader(demo, lazy=True, **SCAN)
    binned = _select(d, None, "0:63,0:64", 2)
    y = binned["axes"][2]
    assert (y["size"], y["scale"]) == (31, 2 * d["axes"][2]["scale"])
    assert y["offset"] == pytest.approx(
        d["axes"][2]["offset"] + 0.5 * d["axes"][2]["scale"]
    )


def test_memory_stays_at_a_few_chunks(tmp_path, build):
    # 32 MiB of frames read in 1 MiB chunks: the conversion to .npy holds a
    # few chunks, never the data (numpy's allocations are traced)
    frames = np.zeros((512, 128, 256), np.uint16)
    frames[:] = np.arange(512, dtype=np.uint16)[:, None, None]
    rec = build(tmp_path, frames=frames, records_per_part=200)
    out = tmp_path / "m.npy"
    tracemalloc.start()
    try:
        convert(rec.path, out, rechunking="1MiB")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    np.testing.assert_array_equal(np.load(out, mmap_mode="r")[::97], frames[::97])


def test_cli(demo, tmp_path, capsys):
    out = tmp_path / "cli.npy"
    args = ["convert", str(demo), str(out), "--scan-shape", "16", "16",
            "--scan-start-frame", "5", "--crop", ":32,32:", "-q"]  # fmt: skip
    assert main(args) == 0
    assert (
        capsys.readouterr().out == "wrote cli.npy: 16 x 16 x 32 x 32 uint16 (numpy)\n"
    )
    np.testing.assert_array_equal(np.load(out), scan_truth()[:, :, :32, 32:])
    assert main(args) == 2
    err = (
        f"tvips convert: {out} exists: pass overwrite=True (--overwrite) to replace it"
    )
    assert capsys.readouterr().err == err + "\n"
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": "5"}, "frames takes START:STOP (either may be left out), got '5'"),
        ({"frames": "9:3"}, "frames '9:3' selects no frame of 264"),
        ({"crop": "a:b"}, "crop rows takes START:STOP"),
        ({"crop": "10:10,:"}, "crop '10:10,:' leaves no pixel of the frames"),
        (
            {"crop": "0:100,0:100"},
            "crop '0:100,0:100' goes past the frames: they have 64 rows",
        ),
        (
            {"crop": "0:10,-70:"},
            "crop '0:10,-70:' goes past the frames: they have 64 columns",
        ),
        ({"binning": 65}, "binning 65 does not fit frames of (64, 64) pixels"),
    ],
)
def test_bad_options(demo, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        convert(demo, tmp_path / "x.npy", **kwargs)
    assert not (tmp_path / "x.npy").exists()


def test_frames_of_a_scan_is_refused(demo, tmp_path):
    with pytest.raises(ValueError, match="frames selects frames of a stack"):
        convert(demo, tmp_path / "x.npy", frames="0:10", **SCAN)


def test_unknown_extension(demo, tmp_path, capsys):
    assert main(["convert", str(demo), str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.startswith(
        "tvips convert: cannot write 'x.png': the extension must be one of .blo, "
    )


def test_tvips_target_exists(demo, tmp_path, capsys):
    out = tmp_path / "t.tvips"
    convert(demo, out, frames="0:10")
    args = ["convert", str(demo), str(out), "--frames", "0:5", "-q"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"tvips convert: {tmp_path / 't_000.tvips'}: a recording named 't' exists: "
        "pass overwrite=True (--overwrite) to replace it\n"
    )
    assert main([*args, "--overwrite"]) == 0
    assert TvipsRecording(tmp_path / "t_000.tvips").n_frames == 5


def test_line_scan_from_the_command_line(demo, tmp_path):
    out = tmp_path / "line.npy"
    args = ["convert", str(demo), str(out), "--scan-shape", "256",
            "--scan-start-frame", "5", "-q"]  # fmt: skip
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(out), scan_truth().reshape(256, 64, 64))


def test_each_writer_has_its_function(demo, tmp_path):
    # convert only chooses; each function writes its kind and no other
    summary = to_tvips(demo, tmp_path / "t", frames="0:4")
    assert summary == {
        "format": "tvips",
        "shape": [4, 64, 64],
        "dtype": "uint16",
        "files": [str(tmp_path / "t_000.tvips")],
    }
    assert to_format(demo, tmp_path / "s.npy", frames="0:4")["format"] == "numpy"
    np.testing.assert_array_equal(
        np.load(tmp_path / "s.npy"),
        TvipsRecording(tmp_path / "t_000.tvips").read_frames(range(4)),
    )
    with pytest.raises(ValueError, match=re.escape(
        "cannot write 't.tvips': the extension must be one of .blo, .hspy, .mrc, "
        ".npy, .tif, .tiff, .zspy"
    )):  # fmt: skip
        to_format(demo, tmp_path / "t.tvips")


def test_demo_prints_what_it_returns(tmp_path, capsys):
    lines = run_demo(tmp_path / "kept")
    assert capsys.readouterr().out == "".join(line + "\n" for line in lines)
    assert lines[0] == f"Wrote demo_000.tvips and its parts in {tmp_path / 'kept'}:"
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [
        f"demo_00{k}.tvips" for k in range(4)
    ]
