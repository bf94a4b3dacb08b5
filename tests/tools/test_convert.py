"""The convert command: every format loads back equal to the source."""

import re
import tracemalloc
import warnings

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
        "description": "16 x 16 x 64 x 64 uint16",
        "notes": [],
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
    # the demo's values fit in 8 bits after halving: scale 0..510 onto 0..255;
    # RosettaSciIO's warning about the 1/nm pixel is left to the notes
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="BLO file expects cm units")
        summary = convert(demo, out, intensity_scaling=(0, 510), **SCAN)
    assert any("the number as it is" in note for note in summary["notes"])
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
    err = f"tvips convert: {out} exists: pass --overwrite to replace it"
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
        "pass --overwrite to replace it\n"
    )
    assert main([*args, "--overwrite"]) == 0
    assert TvipsRecording(tmp_path / "t_000.tvips").n_frames == 5


@pytest.mark.parametrize("name", ["t.npy", "t.tvips"])
def test_python_callers_are_told_the_keyword(demo, tmp_path, name):
    # the message names convert()'s keyword; the command names its flag
    out = tmp_path / name
    convert(demo, out, frames="0:10")
    taken = {
        "t.npy": f"{out} exists",
        "t.tvips": f"{tmp_path / 't_000.tvips'}: a recording named 't' exists",
    }[name]
    message = f"{taken}: pass overwrite=True to replace it"
    with pytest.raises(FileExistsError, match=f"^{re.escape(message)}$"):
        convert(demo, out, frames="0:5")
    convert(demo, out, frames="0:5", overwrite=True)


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
        "description": "4 x 64 x 64 uint16",
        "notes": [],
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


# --- what a conversion says it wrote ----------------------------------------


def written_scan(tmp_path, units=None, scale=None, dtype=np.uint16):
    """A 4 x 4 scan of 6 x 6 frames written by file_writer; its path and data."""
    data = (np.arange(4 * 4 * 6 * 6) % 500).astype(dtype).reshape(4, 4, 6, 6)
    calibration = {} if units is None else {"units": units, "scale": scale}
    axes = [{"name": "y", "size": 4, "navigate": True},
            {"name": "x", "size": 4, "navigate": True},
            {"name": "ky", "size": 6, "navigate": False, **calibration},
            {"name": "kx", "size": 6, "navigate": False, **calibration}]  # fmt: skip
    from rsciio_tvips import file_writer

    signal = {"data": data, "axes": axes, "metadata": {}}
    file_writer(tmp_path / "s.tvips", signal, show_progressbar=False)
    return tmp_path / "s_000.tvips", data


STACKED = "a stack of 16 frames of 6 x 6 uint16 (the 4 x 4 scan flattened, row by row)"


@pytest.mark.parametrize(
    ("units", "scale", "resolution", "unit", "note"),
    [
        ("nm", 2.0, (5000000, 1), 3,
         "pixel size 2 nm stored as the TIFF resolution (5000000 pixels per cm)"),
        ("1/nm", 3.0, (1, 1), 1,
         "pixel size 3 1/nm not stored: an inverse length, and the TIFF "
         "resolution is a length"),
        (None, None, (1, 1), 1,
         "no pixel size stored: the frame axes are not calibrated"),
    ],
    ids=["length", "reciprocal", "uncalibrated"],
)  # fmt: skip
def test_tiff_of_a_scan_says_it_is_a_stack(tmp_path, units, scale, resolution, unit,
                                           note):  # fmt: skip
    import tifffile

    rec, data = written_scan(tmp_path, units, scale)
    out = tmp_path / "c.tif"
    summary = convert(rec, out, scan_shape="auto")
    assert summary == {
        "format": "tifffile",
        "shape": [16, 6, 6],
        "dtype": "uint16",
        "files": [str(out)],
        "description": STACKED,
        "notes": [note],
    }
    with tifffile.TiffFile(out) as tif:
        assert len(tif.pages) == 16
        for page in (tif.pages[0], tif.pages[-1]):
            assert page.tags["XResolution"].value == resolution
            assert page.tags["YResolution"].value == resolution
            assert page.tags["ResolutionUnit"].value == unit
        np.testing.assert_array_equal(tif.asarray(), data.reshape(16, 6, 6))


@pytest.mark.parametrize(
    ("units", "scale", "voxel", "note"),
    [
        ("nm", 2.0, (20.0, 20.0, 0.0),
         "pixel size 2 nm stored as the MRC voxel size (20 Å)"),
        ("1/nm", 3.0, (0.0, 0.0, 0.0),
         "pixel size 3 1/nm not stored: an inverse length, and the MRC voxel "
         "size is a length"),
    ],
    ids=["length", "reciprocal"],
)  # fmt: skip
def test_mrc_of_a_scan_holds_the_voxel_size(tmp_path, units, scale, voxel, note):
    import mrcfile

    rec, data = written_scan(tmp_path, units, scale)
    out = tmp_path / "c.mrc"
    summary = convert(rec, out, scan_shape="auto")
    assert (summary["shape"], summary["dtype"]) == ([16, 6, 6], "uint16")
    assert (summary["description"], summary["notes"]) == (STACKED, [note])
    with mrcfile.open(out, permissive=False) as mrc:
        assert mrc.header.ispg == 0  # an image stack, not a volume
        assert tuple(mrc.voxel_size.item()) == voxel
        np.testing.assert_array_equal(mrc.data, data.reshape(16, 6, 6))


def test_mrc_says_when_it_widens_the_pixels(tmp_path):
    (tmp_path / "a").mkdir()
    rec, _ = written_scan(tmp_path / "a", dtype=np.uint8)
    summary = convert(rec, tmp_path / "c.mrc", scan_shape="auto")
    assert summary["description"] == (
        "a stack of 16 frames of 6 x 6 uint16 (the 4 x 4 scan flattened, row by "
        "row; uint8 pixels written as uint16: MRC has no unsigned 8-bit mode)"
    )
    assert summary["dtype"] == "uint16"
    # 2 x 2 sums of uint16 pixels are uint32, which MRC holds as float32
    rec, _ = written_scan(tmp_path)
    summary = convert(rec, tmp_path / "b.mrc", scan_shape="auto", binning=2)
    assert summary["description"] == (
        "a stack of 16 frames of 3 x 3 float32 (the 4 x 4 scan flattened, row by "
        "row; uint32 pixels written as float32: MRC has no wider integers; exact "
        "up to 2**24)"
    )
    assert summary["dtype"] == "float32"


def test_a_stack_is_no_flattened_scan(tmp_path, capsys):
    rec, _ = written_scan(tmp_path, "nm", 2.0)
    out = tmp_path / "c.tif"
    assert main(["convert", str(rec), str(out), "--frames", "2:12", "-q"]) == 0
    assert capsys.readouterr().out == (
        "wrote c.tif: a stack of 10 frames of 6 x 6 uint16 (tifffile)\n"
        "pixel size 2 nm stored as the TIFF resolution (5000000 pixels per cm)\n"
    )


def blockfile_scan(tmp_path, build):
    """An 8 x 8 scan of 8 x 8 frames, uncalibrated, intensities 12 to 3400."""
    frames = (12 + (np.arange(64 * 64) * 37) % 3389).astype(np.uint16)
    frames = frames.reshape(64, 8, 8)
    return build(tmp_path, "scan", frames=frames).path, frames.reshape(8, 8, 8, 8)


def test_blockfile_says_what_it_wrote(tmp_path, build, capsys):
    from rsciio.blockfile import file_reader as read_blockfile

    rec, truth = blockfile_scan(tmp_path, build)
    out = tmp_path / "c.blo"
    args = ["convert", str(rec), str(out), "--scan-shape", "8", "8", "-q"]
    assert main(args) == 0
    assert capsys.readouterr().out == (
        "wrote c.blo: 8 x 8 x 8 x 8 uint8, intensities mapped minmax 12..3400 -> "
        "0..255 (hyperspy)\n"
        "scan step not calibrated: stored as 1 (read back as 1 nm)\n"
        "frame pixels not calibrated: stored as 1 (read back as 1 cm)\n"
    )
    (d,) = read_blockfile(out)
    # not pint's "px" (1/96 inch): a step of 0.26 mm
    assert [(a["scale"], a["units"]) for a in d["axes"]] == [
        (1.0, "nm"), (1.0, "nm"), (1.0, "cm"), (1.0, "cm")
    ]  # fmt: skip
    assert d["data"].dtype == np.uint8
    assert (int(d["data"].min()), int(d["data"].max())) == (0, 255)
    expected = (truth.astype(np.float64) - 12) * 255 / (3400 - 12)
    assert np.abs(d["data"].astype(np.float64) - expected).max() <= 1


@pytest.mark.parametrize(
    ("scaling", "words"),
    [
        ("dtype", "intensities mapped dtype 0..65535 -> 0..255"),
        ("crop", "intensities mapped crop 0..255 -> 0..255"),
        ((0, 510), "intensities mapped 0..510 -> 0..255"),
    ],
)
def test_blockfile_names_the_mapping(tmp_path, build, scaling, words):
    rec, _ = blockfile_scan(tmp_path, build)
    summary = convert(rec, tmp_path / "c.blo", scan_shape=(8, 8),
                      intensity_scaling=scaling)  # fmt: skip
    assert summary["description"] == f"8 x 8 x 8 x 8 uint8, {words}"
    assert summary["dtype"] == "uint8"


@pytest.mark.parametrize(
    ("units", "scale", "note", "scales"),
    [
        # a real-space pixel: .blo frames are square (6 x 6 here) and SDP
        # (100 / SDP cm, a uint16) cannot hold nm
        ("nm", 2.0, "pixel size 2 nm does not fit the .blo field (100 / SDP cm, "
         "SDP a uint16): stored as 1 (read back as 1 cm)", [1.0, 1.0, 1.0, 1.0]),
        # an inverse length: RosettaSciIO writes the number as it is; the
        # notes say so (its own warning would only repeat them, and breaks
        # the progress line)
        ("1/nm", 3.0, "pixel size 3 1/nm stored as 3.03 cm, the number as it is: "
         "a .blo holds a length", [1.0, 1.0, 100 / 33, 100 / 33]),
    ],
    ids=["real-space", "inverse-length"],
)  # fmt: skip
def test_blockfile_says_what_becomes_of_the_pixel(tmp_path, units, scale, note, scales):
    from rsciio.blockfile import file_reader as read_blockfile

    rec, _ = written_scan(tmp_path, units, scale)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="BLO file expects cm units")
        summary = convert(rec, tmp_path / "c.blo", scan_shape="auto")
    assert summary["notes"] == [
        "scan step not calibrated: stored as 1 (read back as 1 nm)",
        note,
    ]
    (d,) = read_blockfile(tmp_path / "c.blo")
    assert [a["scale"] for a in d["axes"]] == scales


def test_blockfile_refuses_frames_that_are_not_square(tmp_path, build):
    frames = np.zeros((16, 4, 6), np.uint16)
    rec = build(tmp_path, "oblong", frames=frames).path
    with pytest.raises(ValueError, match=r"^\.blo files hold square frames, these "
                       r"are 4 x 6: crop them$"):  # fmt: skip
        convert(rec, tmp_path / "c.blo", scan_shape=(4, 4))
    assert not (tmp_path / "c.blo").exists()


def test_crop_and_frames_of_uncalibrated_axes_count_pixels(tmp_path, build):
    from rsciio_tvips._tools.convert import _select

    rec = build(tmp_path, "plain", frames=np.zeros((6, 5, 7), np.uint16))
    (d,) = file_reader(rec.path, lazy=True)
    for axis in d["axes"][1:]:  # no calibration: no scale, no units
        axis.pop("scale", None)
        axis.pop("units", None)
    picked = _select(d, "2:5", "1:4,2:6", 1)
    assert picked["data"].shape == (3, 3, 4)
    assert [a.get("offset") for a in picked["axes"][1:]] == [1.0, 2.0]
