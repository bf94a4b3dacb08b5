"""MicroED: signed frames, and tilt series written as SMV images (issue 9).

The recordings are synthetic tilt series that the ``tilt_series`` fixture
makes with conftest's byte builder: int16 values written as their uint16 bit
patterns, 180-byte frame headers with the stage tilt ``stagea`` and the frame
times. The SMV files are read
back by fabio, a reader independent of this package.
"""

import dataclasses
import inspect
import json
import re

import dask.array as da
import numpy as np
import pytest

import rsciio_tvips._microed.smv as smv
from rsciio_tvips import TvipsRecording, file_reader, to_smv
from rsciio_tvips.__main__ import main
from rsciio_tvips._microed.geometry import SmvGeometry
from rsciio_tvips._microed.options import SMV_OPTIONS
from rsciio_tvips._microed.smv_format import (
    electron_wavelength,
    image_pedestal,
    leginon_offset,
    smv_header,
)
from rsciio_tvips._scans.ranges import parse_range
from rsciio_tvips._tools.convert import convert

SHAPE = (4, 6)  # rows, columns
#: the worked example: frame minima -10000, -145, -200
MINIMA = (-10000, -145, -200)
#: header of every image of the worked example, but OSC_START, PHI and DATE
COMMON = {
    "HEADER_BYTES": "512",
    "DIM": "2",
    "BYTE_ORDER": "little_endian",
    "TYPE": "unsigned_short",
    "SIZE1": "6",
    "SIZE2": "4",
    "PIXEL_SIZE": "0.0312",
    "BIN": "2x2",
    "TIME": "0.25",
    "ACC_TIME": "250",
    "DISTANCE": "960",
    "OSC_RANGE": "0.25",
    "TWOTHETA": "0",
    "WAVELENGTH": "0.01968748901",
    "BEAM_CENTER_X": "0.0624",
    "BEAM_CENTER_Y": "0.0936",
    "IMAGE_PEDESTAL": "1855",
    "GAIN": "1",
    "LEGINON_OFFSET": "2000",
}


def signed_frames(minima=MINIMA, n_frames=None):
    """int16 frames: 100 * i + 10 * pixel index, frame i's minimum at one pixel."""
    n = len(minima) if n_frames is None else n_frames
    ramp = np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE) * 10
    frames = np.stack([ramp + 100 * i for i in range(n)]).astype(np.int16)
    for i, low in enumerate(minima):
        frames[i, i % SHAPE[0], i % SHAPE[1]] = low
    return frames


@pytest.fixture(scope="session")
def tilt_series(build, main_header, default_header_values):
    """Factory: ``tilt_series(directory, frames=None, ...)`` writes a tilt series.

    Frames are written as their uint16 bit patterns with 180-byte frame
    headers: diffraction mode, 0.25 s a frame, ``stagea = alpha(i)`` (none if
    ``alpha`` is None); ``header`` overrides main-header fields.
    """

    def tilt_values(alpha):
        def values(i):
            v = default_header_values(i, mode=2)
            if alpha is not None:
                v["stagea"] = alpha(i)
            return v

        return values

    def write(directory, frames=None, *, alpha=lambda i: -30 + 0.25 * i,
              name="lyso", **header):  # fmt: skip
        frames = signed_frames() if frames is None else frames
        fields = {"dimx": SHAPE[1], "dimy": SHAPE[0], "frameheaderbytes": 180,
                  "ht": 300, "magtotal": 960, "binx": 2, "biny": 2}  # fmt: skip
        fields.update(header)
        return build(
            directory, name, frames=frames.view(np.uint16), frame_header_bytes=180,
            header=main_header(**fields), header_values=tilt_values(alpha),
        )  # fmt: skip

    return write


def read_back(path):
    """Header and pixels of an SMV file as fabio reads them, after raw checks."""
    import fabio

    raw = path.read_bytes()
    size = int(re.match(rb"\{\nHEADER_BYTES= *(\d+);\n", raw)[1])
    assert size % 512 == 0
    assert raw[:size].rstrip(b" ").endswith(b";\n}\n")
    image = fabio.open(str(path))
    assert type(image).__name__ == "DtrekImage"
    assert image.data.dtype == np.uint16
    rows, cols = int(image.header["SIZE2"]), int(image.header["SIZE1"])
    assert len(raw) == size + rows * cols * 2
    np.testing.assert_array_equal(
        image.data, np.frombuffer(raw[size:], "<u2").reshape(rows, cols)
    )
    return dict(image.header), image.data


# -- reading signed frames ----------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True])
def test_signed_is_the_same_bytes_read_as_int16(tilt_series, tmp_path, lazy):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    (d,) = file_reader(rec.path, lazy=lazy, signed=True)
    assert isinstance(d["data"], da.Array if lazy else np.ndarray)
    assert d["data"].dtype == np.int16
    np.testing.assert_array_equal(np.asarray(d["data"]), truth)
    (u,) = file_reader(rec.path, lazy=lazy)
    assert u["data"].dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(u["data"]), truth.view(np.uint16))


def test_recording_reads_signed_every_way(tilt_series, tmp_path):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    signed = TvipsRecording(rec.path, signed=True)
    assert signed.dtype == np.int16
    assert repr(signed) == (
        "<TvipsRecording 'lyso_000.tvips': 3 frames of 4x6 int16, 1 part(s)>"
    )
    np.testing.assert_array_equal(signed.read_frames([2, 0]), truth[[2, 0]])
    np.testing.assert_array_equal(signed.read_frame(0), truth[0])
    np.testing.assert_array_equal(signed.asarray(), truth)
    lazy = signed.to_dask()
    assert lazy.dtype == np.int16
    np.testing.assert_array_equal(lazy.compute(), truth)
    # the same bytes read two ways are two arrays to dask
    unsigned = TvipsRecording(rec.path).to_dask()
    assert unsigned.name != lazy.name
    np.testing.assert_array_equal(
        da.stack([lazy.view(np.uint16), unsigned]).compute(),
        np.stack([truth.view(np.uint16)] * 2),
    )


@pytest.mark.parametrize("dtype, bits", [("uint8", 8), ("uint32", 32)])
def test_signed_is_refused_for_other_depths(make_tvips, dtype, bits):
    rec = make_tvips(dtype=dtype)
    msg = (
        f"rec_000.tvips: signed=True reads 16-bit pixels as int16, but this "
        f"recording has {bits}-bit pixels (bitsperpixel at offset 16)"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        TvipsRecording(rec.path, signed=True)
    with pytest.raises(ValueError, match=re.escape(msg)):
        file_reader(rec.path, lazy=True, signed=True)


def test_180_byte_frame_headers_give_stagea_and_times(tilt_series, tmp_path):
    rec = tilt_series(tmp_path, signed_frames(n_frames=6))
    headers = TvipsRecording(rec.path, signed=True).frame_headers
    assert headers.dtype.itemsize == 180
    assert headers["extra"].shape == (6, 72)  # past the 108 known bytes
    np.testing.assert_array_equal(
        headers["stagea"], np.array([-30, -29.75, -29.5, -29.25, -29, -28.75], "f4")
    )
    np.testing.assert_array_equal(headers["TEM_Stage_alpha"], headers["stagea"])
    np.testing.assert_array_equal(headers["timestamp"] - 1_700_000_000,
                                  [0, 0, 0, 0, 1, 1])  # fmt: skip
    np.testing.assert_array_equal(headers["ms"], [0, 250, 500, 750, 0, 250])
    np.testing.assert_array_equal(headers["mode"], [2] * 6)


def test_binning_a_signed_recording_keeps_the_sign(tilt_series, tmp_path):
    truth = signed_frames(minima=(-700, -9, -11))
    rec = tilt_series(tmp_path, truth)
    convert(rec.path, tmp_path / "b.npy", binning=2, signed=True)
    binned = np.load(tmp_path / "b.npy")
    assert binned.dtype == np.int32
    expected = truth.astype(np.int32).reshape(3, 2, 2, 3, 2).sum(axis=(2, 4))
    np.testing.assert_array_equal(binned, expected)
    assert binned[0, 0, 0] == -700 + 10 + 60 + 70


# -- Leginon's rule and the header ------------------------------------------------


def test_leginon_rule_worked_example():
    assert leginon_offset(MINIMA) == 2000
    assert image_pedestal(MINIMA, 2000) == 1855
    # below the cap the offset lifts the lowest minimum to 0
    assert leginon_offset((-50, 10)) == 50
    assert image_pedestal((-50, 10), 50) == 60
    # nothing negative: no offset, the pedestal is the highest minimum
    assert leginon_offset((0, 7, 3)) == 0
    assert image_pedestal((0, 7, 3), 0) == 7
    assert leginon_offset(MINIMA, max_offset=150) == 150


def test_electron_wavelength():
    assert round(electron_wavelength(300), 7) == 0.0196875
    assert round(electron_wavelength(200), 7) == 0.0250793
    assert round(electron_wavelength(120), 7) == 0.0334922


def test_long_header_takes_more_blocks(tmp_path):
    values = {"DIM": 2, "SIZE1": 3, "SIZE2": 2, "BYTE_ORDER": "little_endian",
              "TYPE": "unsigned_short", "COMMENT": "x" * 600}  # fmt: skip
    header = smv_header(values)
    assert len(header) == 1024
    assert header.startswith(b"{\nHEADER_BYTES= 1024;\nDIM=2;\nSIZE1=3;\n")
    pixels = np.arange(6, dtype="<u2").reshape(2, 3)
    (tmp_path / "long.img").write_bytes(header + pixels.tobytes())
    head, data = read_back(tmp_path / "long.img")
    assert head["HEADER_BYTES"] == "1024"
    assert head["COMMENT"] == "x" * 600
    np.testing.assert_array_equal(data, pixels)
    assert len(smv_header({"DIM": 2})) == 512


# -- to_smv ---------------------------------------------------------------------


def test_worked_example(tilt_series, tmp_path):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    log = to_smv(rec.path, tmp_path / "lyso_###.img", signed=True)
    names = [tmp_path / f"lyso_00{k}.img" for k in (1, 2, 3)]
    assert log["files"] == [str(p) for p in names]
    assert log["log"] == str(tmp_path / "lyso.json")
    assert (log["offset"], log["offset_source"]) == (2000, "Leginon's rule")
    assert log["pedestal"] == 1855
    assert log["minima"] == [-10000, -145, -200]
    assert (log["clipped_low"], log["clipped_high"]) == (1, 0)
    assert log["clipped_low_per_image"] == [1, 0, 0]
    assert log["clipped_high_per_image"] == [0, 0, 0]
    for k, path in enumerate(names):
        head, data = read_back(path)
        start = str(-30 + 0.25 * k).removesuffix(".0")
        assert head == {
            **COMMON,
            "DATE": "Tue Nov 14 22:13:20 2023",
            "OSC_START": start,
            "PHI": start,
        }
        expected = np.clip(truth[k].astype(np.int64) + 2000, 0, 65535)
        np.testing.assert_array_equal(data, expected)
    assert read_back(names[0])[1][0, 0] == 0  # -10000 + 2000, clipped
    assert read_back(names[2])[1][2, 2] == 1800  # -200 + 2000
    # the log beside the images holds what was returned
    assert json.loads((tmp_path / "lyso.json").read_text()) == log


def test_log_records_every_choice(tilt_series, tmp_path):
    rec = tilt_series(tmp_path)
    log = to_smv(rec.path, tmp_path / "lyso_###.img", signed=True)
    assert log == {
        "format": "smv",
        "source": str(rec.path),
        "files": log["files"],
        "log": str(tmp_path / "lyso.json"),
        "frames": [0, 3],
        "sum_frames": 1,
        "dropped_frames": 0,
        "start_number": 1,
        "signed": True,
        "shape": [4, 6],
        "offset": 2000,
        "offset_source": "Leginon's rule",
        "max_offset": 2000,
        "pedestal": 1855,
        "minima": [-10000, -145, -200],
        "clipped_low": 1,
        "clipped_high": 0,
        "clipped_low_per_image": [1, 0, 0],
        "clipped_high_per_image": [0, 0, 0],
        "angles": {
            "source": "stagea",
            "start": -30.0,
            "start_source": "straight-line fit of stagea",
            "step": 0.25,
            "rotation_rate": 1.0,
            "stagea_first": -30.0,
            "stagea_last": -29.5,
            "stagea_max_residual": 0.0,
            "osc_range": 0.25,
        },
        "frame_time": 0.25,
        "frame_time_source": "frame headers (median interval)",
        "distance": 960.0,
        "distance_source": "camera length (magtotal) of the main header",
        "wavelength": electron_wavelength(300),
        "wavelength_source": "high tension (ht) 300 kV",
        "pixel_size": 0.0312,
        "physical_pixel_size": 0.0156,
        "binning": [2, 2],
        "beam_center": [4 * 0.0312 / 2, 6 * 0.0312 / 2],  # "0.0624", "0.0936"
        "beam_center_source": "centre of the image",
        "gain": 1.0,
        "orientation": {"flip": None, "rot90": 0},
    }


def test_options_go_into_the_header(tilt_series, tmp_path):
    rec = tilt_series(tmp_path, binx=1, biny=1, ht=200)
    log = to_smv(
        rec.path, tmp_path / "x_##.img", signed=True, offset=300,
        physical_pixel_size=0.014, distance=525.5, beam_center=(0.03, 0.04),
        wavelength=0.0251, gain=2.5, frame_time=0.3, start_number=7,
    )  # fmt: skip
    assert [p[-8:] for p in log["files"]] == ["x_07.img", "x_08.img", "x_09.img"]
    assert (log["offset"], log["offset_source"]) == (300, "offset option")
    # the fixed offset leaves more pixels below 0; the pedestal follows it
    assert log["pedestal"] == -145 + 300
    assert log["clipped_low_per_image"] == [1, 0, 0]
    head, data = read_back(tmp_path / "x_08.img")
    assert head == {
        **COMMON,
        "PIXEL_SIZE": "0.014",
        "BIN": "1x1",
        "DATE": "Tue Nov 14 22:13:20 2023",
        "TIME": "0.3",
        "ACC_TIME": "300",
        "DISTANCE": "525.5",
        "OSC_START": "-29.75",
        "PHI": "-29.75",
        "WAVELENGTH": "0.0251",
        "BEAM_CENTER_X": "0.03",
        "BEAM_CENTER_Y": "0.04",
        "IMAGE_PEDESTAL": "155",
        "GAIN": "2.5",
        "LEGINON_OFFSET": "300",
    }
    np.testing.assert_array_equal(data, signed_frames()[1] + 300)
    assert log["angles"]["rotation_rate"] == pytest.approx(0.25 / 0.3)
    for key, source in (("frame_time", "frame_time option"),
                        ("distance", "distance option"),
                        ("wavelength", "wavelength option"),
                        ("beam_center", "beam_center option")):  # fmt: skip
        assert log[f"{key}_source"] == source


def test_unsigned_data_needs_no_offset(tilt_series, tmp_path):
    frames = signed_frames(minima=(5, 15, 25))
    rec = tilt_series(tmp_path, frames)
    log = to_smv(rec.path, tmp_path / "u_###.img")
    assert (log["signed"], log["minima"]) == (False, [5, 15, 25])
    assert (log["offset"], log["pedestal"]) == (0, 25)
    head, data = read_back(tmp_path / "u_002.img")
    assert (head["LEGINON_OFFSET"], head["IMAGE_PEDESTAL"]) == ("0", "25")
    np.testing.assert_array_equal(data, frames[1])


@pytest.mark.parametrize(
    "kwargs, starts, step",
    [
        ({"rotation_rate": 0.5}, ["12.5", "12.625", "12.75", "12.875"], "0.125"),
        ({"rotation_rate": -2, "start_angle": 40}, ["40", "39.5", "39", "38.5"],
         "-0.5"),
        ({"rotation_rate": 1, "frame_time": 0.5}, ["12.5", "13", "13.5", "14"],
         "0.5"),
    ],
)  # fmt: skip
def test_angles_from_a_rotation_rate(tilt_series, tmp_path, kwargs, starts, step):
    # stagea stays at 12.5: the headers do not show the rotation
    rec = tilt_series(tmp_path, signed_frames(n_frames=4), alpha=lambda i: 12.5)
    log = to_smv(rec.path, tmp_path / "r_###.img", signed=True, **kwargs)
    assert log["angles"]["source"] == "rotation_rate"
    for k, start in enumerate(starts):
        head, _ = read_back(tmp_path / f"r_00{k + 1}.img")
        assert (head["OSC_START"], head["PHI"], head["OSC_RANGE"]) == (
            start,
            start,
            step,
        )


def test_angles_from_stagea_are_a_straight_line(tilt_series, tmp_path):
    # readings off the line by +-0.01 degrees; the fit keeps the steps equal
    noise = [0.0, 0.01, -0.01, 0.0, 0.01, -0.01]
    rec = tilt_series(tmp_path, signed_frames(n_frames=6),
                      alpha=lambda i: 20 - 0.5 * i + noise[i])  # fmt: skip
    log = to_smv(rec.path, tmp_path / "s_###.img", signed=True, sum_frames=2)
    # the least-squares line, as numpy fits it, rounded: the step to 5
    # decimals (6 frames, 5 steps), then the start through the mean reading
    readings = np.array([20 - 0.5 * i + noise[i] for i in range(6)], "f4")
    fitted, _ = np.polyfit(np.arange(6), readings.astype(np.float64), 1)
    assert fitted == pytest.approx(-0.5 - 0.02 / 17.5, rel=1e-6)
    step = round(fitted, 5)
    start = round(readings.astype(np.float64).mean() - 2.5 * step, 5)
    line = start + step * np.arange(6)
    angles = log["angles"]
    assert angles["source"] == "stagea"
    assert (angles["step"], angles["start"]) == (step, start) == (-0.50114, 20.00285)
    assert angles["osc_range"] == 2 * angles["step"]
    residual = np.abs(readings - line).max()
    assert angles["stagea_max_residual"] == pytest.approx(residual, rel=1e-9)
    heads = [read_back(tmp_path / f"s_00{k}.img")[0] for k in (1, 2, 3)]
    assert [(h["OSC_START"], h["PHI"], h["OSC_RANGE"]) for h in heads] == [
        ("20.00285", "20.00285", "-1.00228"),
        ("19.00057", "19.00057", "-1.00228"),
        ("17.99829", "17.99829", "-1.00228"),
    ]
    assert float(heads[0]["OSC_RANGE"]) < 0  # DIALS turns the axis round


@pytest.mark.parametrize(
    ("n_frames", "alpha", "starts", "osc_range"),
    [
        # until rounded: -28.29999955, -28.20000013, -28.1000007; 0.0999994278
        (3, lambda i: -28.3 + 0.1 * i, ["-28.3", "-28.2", "-28.1"], "0.1"),
        # until rounded: -28.49999998, -28.46999998, ...; 0.02999999963
        (100, lambda i: -28.5 + 0.03 * i, ["-28.5", "-28.47", "-28.44"], "0.03"),
    ],
    ids=["three-frames", "hundred-frames"],
)
def test_angles_carry_no_float32_residue(
    tilt_series, tmp_path, capsys, n_frames, alpha, starts, osc_range
):
    # stagea is a float32: -28.3 is stored as -28.299999237
    rec = tilt_series(tmp_path, signed_frames(n_frames=n_frames), alpha=alpha)
    args = ["convert", str(rec.path), str(tmp_path / "t_###.img"), "--signed", "-q"]
    assert main(args) == 0
    assert capsys.readouterr().out.endswith(
        f"angles from stagea: OSC_START {starts[0]}, OSC_RANGE {osc_range} "
        "degrees per image\n"
    )
    heads = [read_back(tmp_path / f"t_{k:03d}.img")[0] for k in (1, 2, 3)]
    assert [(h["OSC_START"], h["PHI"], h["OSC_RANGE"]) for h in heads] == [
        (start, start, osc_range) for start in starts
    ]
    log = json.loads((tmp_path / "t.json").read_text())
    assert log["angles"]["stagea_first"] == float(starts[0])


def test_a_rate_starts_at_the_first_tilt_without_residue(tilt_series, tmp_path):
    rec = tilt_series(tmp_path, alpha=lambda i: -28.3)
    to_smv(rec.path, tmp_path / "r_###.img", signed=True, rotation_rate=1)
    heads = [read_back(tmp_path / f"r_00{k}.img")[0] for k in (1, 2, 3)]
    assert [h["OSC_START"] for h in heads] == ["-28.3", "-28.05", "-27.8"]


def test_summing_groups(tilt_series, tmp_path):
    # 7 frames in sums of 2: 3 images, the last frame dropped; a pixel at
    # 32767 in frames 2 and 3 sums past 65535 with the offset
    frames = signed_frames(minima=(-5, -400, -30, -9), n_frames=7)
    frames[2, 3, 5] = frames[3, 3, 5] = 32767
    rec = tilt_series(tmp_path, frames)
    log = to_smv(rec.path, tmp_path / "g_###.img", signed=True, sum_frames=2)
    sums = frames[:6].astype(np.int64).reshape(3, 2, *SHAPE).sum(axis=1)
    # image 0 at (1, 1): 70 - 400; image 1 at (3, 3): 410 - 9; image 2: 900
    assert log["minima"] == [-330, 401, 900]
    assert (log["offset"], log["pedestal"]) == (330, 1230)
    assert (log["dropped_frames"], log["frames"]) == (1, [0, 6])
    assert log["clipped_high_per_image"] == [0, 1, 0]
    assert log["clipped_low_per_image"] == [0, 0, 0]
    for k in range(3):
        head, data = read_back(tmp_path / f"g_00{k + 1}.img")
        np.testing.assert_array_equal(data, np.clip(sums[k] + 330, 0, 65535))
        assert (head["TIME"], head["ACC_TIME"], head["OSC_RANGE"]) == (
            "0.5",
            "500",
            "0.5",
        )
        assert head["OSC_START"] == ["-30", "-29.5", "-29"][k]
        assert head["IMAGE_PEDESTAL"] == "1230"
    assert read_back(tmp_path / "g_002.img")[1][3, 5] == 65535
    # DATE is the time of each image's first frame: frame 4 is 1 s later
    assert read_back(tmp_path / "g_003.img")[0]["DATE"] == "Tue Nov 14 22:13:21 2023"


@pytest.mark.parametrize(
    "flip, rot90", [("x", 0), ("y", 0), (None, 1), ("x", 3), (None, -2)]
)
def test_orientation(tilt_series, tmp_path, flip, rot90):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    log = to_smv(rec.path, tmp_path / "o_###.img", signed=True, flip=flip,
                 rot90=rot90)  # fmt: skip
    oriented = truth[0].astype(np.int64) + 2000
    if flip == "x":
        oriented = oriented[:, ::-1]
    elif flip == "y":
        oriented = oriented[::-1]
    oriented = np.clip(np.rot90(oriented, rot90), 0, 65535)
    head, data = read_back(tmp_path / "o_001.img")
    np.testing.assert_array_equal(data, oriented)
    rows, cols = oriented.shape
    assert (head["SIZE1"], head["SIZE2"]) == (str(cols), str(rows))
    assert log["shape"] == [rows, cols]
    assert log["orientation"] == {"flip": flip, "rot90": rot90 % 4}
    # the default beam centre is the centre of the image as written
    centre = (f"{rows * 0.0312 / 2:.10g}", f"{cols * 0.0312 / 2:.10g}")
    assert (head["BEAM_CENTER_X"], head["BEAM_CENTER_Y"]) == centre


def test_frame_range(tilt_series, tmp_path):
    rec = tilt_series(tmp_path, signed_frames(n_frames=6))
    log = to_smv(rec.path, tmp_path / "f_###.img", signed=True, frames="2:5")
    assert (log["frames"], len(log["files"])) == ([2, 5], 3)
    assert log["angles"]["start"] == -29.5  # stagea of frame 2
    head, data = read_back(tmp_path / "f_001.img")
    assert head["OSC_START"] == "-29.5"
    np.testing.assert_array_equal(data, signed_frames(n_frames=6)[2] + 200)
    log = to_smv(rec.path, tmp_path / "f_###.img", signed=True,
                 frames=slice(4, None), overwrite=True)  # fmt: skip
    assert log["frames"] == [4, 6]
    assert head != read_back(tmp_path / "f_001.img")[0]


def test_streams_in_batches(tilt_series, tmp_path, monkeypatch):
    truth = signed_frames(n_frames=9)
    rec = tilt_series(tmp_path, truth)
    reads = []
    original = TvipsRecording.read_frames

    def spy(self, frames):
        reads.append(len(frames))
        return original(self, frames)

    monkeypatch.setattr(TvipsRecording, "read_frames", spy)
    monkeypatch.setattr(smv, "BATCH_BYTES", 2 * truth[0].nbytes)
    log = to_smv(rec.path, tmp_path / "b_###.img", signed=True, sum_frames=3)
    # two passes over 9 frames, 2 frames a read; a sum spans reads
    assert reads == [2, 2, 2, 2, 1] * 2
    sums = truth.astype(np.int64).reshape(3, 3, *SHAPE).sum(axis=1)
    for k in range(3):
        data = read_back(tmp_path / f"b_00{k + 1}.img")[1]
        np.testing.assert_array_equal(data, np.clip(sums[k] + log["offset"], 0, None))


def test_name_template(tilt_series, tmp_path):
    rec = tilt_series(tmp_path)
    log = to_smv(rec.path, tmp_path / "t-####.smv", signed=True, start_number=0)
    assert [p[-10:] for p in log["files"]] == ["t-0000.smv", "t-0001.smv",
                                              "t-0002.smv"]  # fmt: skip
    assert log["log"] == str(tmp_path / "t.json")
    to_smv(rec.path, tmp_path / "###.img", signed=True)
    assert (tmp_path / "001.img").exists() and (tmp_path / "smv.json").exists()


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("lyso.img", {}, "the output name 'lyso.img' must hold one run of '#' for "
         "the image number, e.g. 'lyso_###.img'; it has no run"),
        ("a##_##.img", {}, "the output name 'a##_##.img' must hold one run of '#' "
         "for the image number, e.g. 'lyso_###.img'; it has 2 runs"),
        ("a_#.img", {"start_number": 8}, "the output name 'a_#.img' has 1 digit(s) "
         "for the image number, but the last image is number 10: use more '#'"),
        ("a_#.img", {"start_number": -1}, "start_number must be 0 or more, got -1"),
    ],
)  # fmt: skip
def test_bad_names(tilt_series, tmp_path, name, kwargs, message):
    rec = tilt_series(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        to_smv(rec.path, tmp_path / name, signed=True, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lyso_000.tvips"]


def test_never_overwrites_unless_asked(tilt_series, tmp_path):
    rec = tilt_series(tmp_path)
    (tmp_path / "lyso_003.img").write_bytes(b"keep me")
    msg = (
        f"{tmp_path / 'lyso_003.img'} exists (1 of the 4 files to write exist): "
        "pass overwrite=True to replace them"
    )
    with pytest.raises(FileExistsError, match=re.escape(msg)):
        to_smv(rec.path, tmp_path / "lyso_###.img", signed=True)
    # nothing was written, not even the names that were free
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lyso_000.tvips",
        "lyso_003.img",
    ]
    assert (tmp_path / "lyso_003.img").read_bytes() == b"keep me"
    to_smv(rec.path, tmp_path / "lyso_###.img", signed=True, overwrite=True)
    assert read_back(tmp_path / "lyso_003.img")[0]["OSC_START"] == "-29.5"
    # the log counts too
    for k in (1, 2, 3):
        (tmp_path / f"lyso_00{k}.img").unlink()
    with pytest.raises(FileExistsError, match=r"lyso\.json exists \(1 of the 4 "):
        to_smv(rec.path, tmp_path / "lyso_###.img", signed=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sum_frames": 0}, "sum_frames must be a positive integer, got 0"),
        ({"sum_frames": 4}, "frames 0 to 3 (3 frames) do not fill one image of 4 "
         "summed frames"),
        ({"frames": "2:1"}, "frames 2 to 1 (0 frames) do not fill one image of 1 "
         "summed frames"),
        ({"frames": "x"}, "frames takes START:STOP (either may be left out), got "
         "'x'"),
        ({"offset": -1}, "offset must be between 0 and 65535, got -1"),
        ({"max_offset": 70000}, "max_offset must be between 0 and 65535, got "
         "70000"),
        ({"physical_pixel_size": 0}, "physical_pixel_size must be positive, got 0"),
        ({"flip": "z"}, "flip must be None, 'x' or 'y', got 'z'"),
        ({"rot90": 1.5}, "rot90 must be an integer number of quarter turns, got "
         "1.5"),
        ({"gain": 0}, "gain must be positive, got 0"),
        ({"beam_center": (1.0,)}, "beam_center takes two numbers (x, y) in mm, "
         "got (1.0,)"),
        ({"distance": -5}, "distance must be positive, got -5"),
        ({"wavelength": 0}, "wavelength must be positive, got 0"),
        ({"frame_time": 0}, "frame_time must be positive, got 0"),
        ({"rotation_rate": 0}, "rotation_rate must not be 0 degrees per second"),
        ({"start_angle": 5}, "start_angle goes with rotation_rate; without it the "
         "angles come from the stage tilt (stagea) of the frames"),
    ],
)  # fmt: skip
def test_bad_options(tilt_series, tmp_path, kwargs, message):
    rec = tilt_series(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        to_smv(rec.path, tmp_path / "e_###.img", signed=True, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lyso_000.tvips"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"alpha": lambda i: 12.5},
            "the frame headers do not show the rotation: stagea is 12.5 degrees "
            "in all 3 frame(s): give rotation_rate in degrees per second",
        ),
        (
            {"magtotal": 0},
            "no detector distance: the recording does not say it is in "
            "diffraction mode with a camera length (magtotal, offset 44): give "
            "distance in mm",
        ),
        (
            {"ht": 0},
            "no wavelength: the high tension of the main header (ht, offset 40) "
            "is 0: give wavelength in Angstrom",
        ),
        (
            {"binx": 2, "biny": 1},
            "the frames are binned 2 x 1: SMV has one PIXEL_SIZE, for square pixels",
        ),
    ],
    ids=["constant stagea", "no camera length", "no high tension", "binned 2 x 1"],
)
def test_what_the_recording_does_not_say(tilt_series, tmp_path, changes, message):
    rec = tilt_series(tmp_path, **changes)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        to_smv(rec.path, tmp_path / "a_###.img", signed=True)
    assert not list(tmp_path.glob("a_*"))


def test_version_1_needs_rate_and_distance(build, main_header, tmp_path):
    frames = signed_frames()
    rec = build(tmp_path, "v1", frames=frames.view(np.uint16), version=1,
                header=main_header(version=1, dimx=6, dimy=4, ht=300))  # fmt: skip
    out = tmp_path / "v_###.img"
    with pytest.raises(ValueError, match=re.escape(
        "the frame headers (12 bytes) hold no stage tilt (stagea, offset 40): "
        "give rotation_rate in degrees per second"
    )):  # fmt: skip
        to_smv(rec.path, out, signed=True, distance=700)
    with pytest.raises(ValueError, match=r"^no detector distance: "):
        to_smv(rec.path, out, signed=True, rotation_rate=1)
    log = to_smv(rec.path, out, signed=True, rotation_rate=1, distance=700)
    assert log["angles"]["start_source"] == "0"
    head, data = read_back(tmp_path / "v_003.img")
    assert (head["OSC_START"], head["OSC_RANGE"], head["BIN"]) == ("0.5", "0.25",
                                                                    "1x1")  # fmt: skip
    assert head["PIXEL_SIZE"] == "0.0156"
    np.testing.assert_array_equal(data, frames[2] + 2000)


def test_frame_times_must_increase(build, main_header, tmp_path):
    frames = signed_frames()
    rec = build(tmp_path, "same", frames=frames.view(np.uint16),
                header_values=lambda i: {"timestamp": 5, "mode": 2,
                                         "stagea": float(i)},
                header=main_header(dimx=6, dimy=4, magtotal=800))  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(
        "cannot tell the frame time from the frame headers: the 3 frame(s) do "
        "not show increasing times: give frame_time in seconds"
    )):  # fmt: skip
        to_smv(rec.path, tmp_path / "s_###.img", signed=True)
    log = to_smv(rec.path, tmp_path / "s_###.img", signed=True, frame_time=2)
    assert log["angles"]["rotation_rate"] == 0.5


def test_missing_folder(tilt_series, tmp_path):
    rec = tilt_series(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(
        f"{tmp_path / 'no'}: no such folder for the images"
    )):  # fmt: skip
        to_smv(rec.path, tmp_path / "no" / "a_###.img", signed=True)


# -- the geometry options and the frame range, on their own ---------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"physical_pixel_size": -1}, "physical_pixel_size must be positive, got -1"),
        ({"flip": "xy"}, "flip must be None, 'x' or 'y', got 'xy'"),
        ({"rot90": 0.5}, "rot90 must be an integer number of quarter turns, got 0.5"),
        ({"gain": -2}, "gain must be positive, got -2"),
        ({"beam_center": (1, 2, 3)}, "beam_center takes two numbers (x, y) in mm, "
         "got (1, 2, 3)"),
        ({"frame_time": -1}, "frame_time must be positive, got -1"),
        ({"rotation_rate": 0.0}, "rotation_rate must not be 0 degrees per second"),
        ({"start_angle": 0}, "start_angle goes with rotation_rate; without it the "
         "angles come from the stage tilt (stagea) of the frames"),
        ({"distance": 0}, "distance must be positive, got 0"),
        ({"wavelength": -0.02}, "wavelength must be positive, got -0.02"),
        # the first value out of range is the one reported
        ({"gain": 0, "distance": 0}, "gain must be positive, got 0"),
        ({"frame_time": 0, "rotation_rate": 0}, "frame_time must be positive"),
    ],
)  # fmt: skip
def test_geometry_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        SmvGeometry(**kwargs)


def test_geometry_is_normalised_and_frozen():
    g = SmvGeometry(rot90=-3, beam_center=[1, 2], rotation_rate=0.5, start_angle=-3)
    assert (g.rot90, g.beam_center) == (1, (1.0, 2.0))
    assert g == SmvGeometry(rot90=5, beam_center=(1.0, 2.0), rotation_rate=0.5,
                            start_angle=-3)  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.gain = 2.0
    image = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(SmvGeometry(flip="x").orient(image), image[:, ::-1])
    np.testing.assert_array_equal(SmvGeometry(flip="y", rot90=1).orient(image),
                                  np.rot90(image[::-1]))  # fmt: skip


def test_geometry_options_are_checked_before_anything_is_opened(tmp_path):
    # no recording, no folder: the bad option is what is reported
    with pytest.raises(ValueError, match=r"^distance must be positive, got -5$"):
        to_smv(tmp_path / "none.tvips", tmp_path / "no" / "a_###.img", distance=-5)


def test_the_smv_option_table_covers_to_smv():
    # every optional keyword of to_smv is a row of the command line's table,
    # but those every output takes (the command's own options)
    keywords = [
        name
        for name, p in inspect.signature(to_smv).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    own = {"frames", "signed", "overwrite", "permissive", "progress"}
    assert sorted(row.keyword for row in SMV_OPTIONS) == sorted(set(keywords) - own)
    assert len({row.flag for row in SMV_OPTIONS}) == len(SMV_OPTIONS)
    assert SMV_OPTIONS[2].option == "--max-offset"
    assert SMV_OPTIONS[2].help == "cap of Leginon's offset (2000)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2:10", slice(2, 10)),
        (":10", slice(None, 10)),
        ("2:", slice(2, None)),
        (":", slice(None, None)),
        (" -3 : ", slice(-3, None)),
    ],
)
def test_parse_range(text, expected):
    assert parse_range(text, "frames") == expected


@pytest.mark.parametrize("text", ["5", "1:2:3", "a:b", "1.5:2", ""])
def test_parse_range_refuses(text):
    msg = f"crop rows takes START:STOP (either may be left out), got {text!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        parse_range(text, "crop rows")


# -- the command line -----------------------------------------------------------


def test_cli(tilt_series, tmp_path, capsys):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    out = tmp_path / "lyso_###.img"
    args = ["convert", str(rec.path), str(out), "--signed"]
    assert main(args) == 0
    assert capsys.readouterr().out == (
        "wrote lyso_001.img ... lyso_003.img: 3 images of 4 x 6 uint16 (smv); log "
        "lyso.json\n"
        "offset 2000 (Leginon's rule), pedestal 1855; pixels clipped: 1 below 0, "
        "0 above 65535\n"
        "angles from stagea: OSC_START -30, OSC_RANGE 0.25 degrees per image\n"
    )
    head, data = read_back(tmp_path / "lyso_002.img")
    assert head["IMAGE_PEDESTAL"] == "1855"
    np.testing.assert_array_equal(data, truth[1] + 2000)
    # a second time: refused, exit status 2, nothing replaced
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"tvips convert: {tmp_path / 'lyso_001.img'} exists (4 of the 4 files to "
        "write exist): pass --overwrite to replace them\n"
    )
    assert main([*args, "--overwrite", "--sum", "3", "--flip", "y"]) == 0
    assert "wrote lyso_001.img: 1 images of 4 x 6" in capsys.readouterr().out
    summed = truth.astype(np.int64).sum(axis=0)[::-1] + 2000
    np.testing.assert_array_equal(read_back(tmp_path / "lyso_001.img")[1],
                                  np.clip(summed, 0, None))  # fmt: skip


def test_cli_options_and_to_smv(tilt_series, tmp_path, capsys):
    rec = tilt_series(tmp_path, alpha=lambda i: 0.0)
    out = tmp_path / "r_####.smv"
    args = ["convert", str(rec.path), str(out), "--to", "smv", "--signed",
            "--rotation-rate", "0.4", "--start-angle", "-10", "--frame-time",
            "0.5", "--distance", "1200", "--beam-center", "0.1", "0.2",
            "--wavelength", "0.025", "--gain", "3", "--offset", "100",
            "--max-offset", "50", "--physical-pixel-size", "0.01",
            "--rot90", "1", "--start-number", "5", "--frames", "1:3"]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[2] == (
        "angles from rotation_rate: OSC_START -10, OSC_RANGE 0.2 degrees per image"
    )
    log = json.loads((tmp_path / "r.json").read_text())
    assert [p[-10:] for p in log["files"]] == ["r_0005.smv", "r_0006.smv"]
    head, data = read_back(tmp_path / "r_0006.smv")
    assert head == {
        **COMMON,
        "SIZE1": "4",
        "SIZE2": "6",
        "PIXEL_SIZE": "0.02",
        "DATE": "Tue Nov 14 22:13:20 2023",
        "TIME": "0.5",
        "ACC_TIME": "500",
        "DISTANCE": "1200",
        "OSC_START": "-9.8",
        "OSC_RANGE": "0.2",
        "PHI": "-9.8",
        "WAVELENGTH": "0.025",
        "BEAM_CENTER_X": "0.1",
        "BEAM_CENTER_Y": "0.2",
        "IMAGE_PEDESTAL": "-45",
        "GAIN": "3",
        "LEGINON_OFFSET": "100",
    }
    expected = np.rot90(signed_frames()[2].astype(np.int64) + 100)
    np.testing.assert_array_equal(data, np.clip(expected, 0, None))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["x_###.img", "--crop", "0:2,0:2", "--bin", "2"],
         "SMV output does not take --crop, --bin"),
        (["x_###.img", "--scan-shape", "1", "3"],
         "SMV output does not take --scan-shape"),
        (["x.npy", "--sum", "2", "--flip", "x"],
         "--sum, --flip: only for SMV output (--to smv or an .img OUTPUT)"),
        (["x_###.img", "--signed", "--rotation-rate", "0"],
         "rotation_rate must not be 0 degrees per second"),
        (["x.img", "--signed"], "the output name 'x.img' must hold one run of '#' "
         "for the image number, e.g. 'lyso_###.img'; it has no run"),
    ],
)  # fmt: skip
def test_cli_errors(tilt_series, tmp_path, capsys, extra, message):
    rec = tilt_series(tmp_path)
    out, *options = extra
    assert main(["convert", str(rec.path), str(tmp_path / out), *options]) == 2
    assert capsys.readouterr().err == f"tvips convert: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lyso_000.tvips"]


def test_cli_signed_for_other_formats(tilt_series, tmp_path, capsys):
    truth = signed_frames()
    rec = tilt_series(tmp_path, truth)
    assert main(["convert", str(rec.path), str(tmp_path / "s.npy"), "--signed",
                 "-q"]) == 0  # fmt: skip
    assert capsys.readouterr().out.endswith("(numpy)\n")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), truth)
