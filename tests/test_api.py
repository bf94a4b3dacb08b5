"""file_reader: the RosettaSciIO dictionary, axes, metadata and scan placement."""

import re
import time

import dask
import dask.array as da
import numpy as np
import pytest

import rsciio_tvips
from rsciio_tvips import file_reader
from rsciio_tvips._reading import lazy, preadv, recording


def test_public_names():
    assert dir(rsciio_tvips) == [
        "Finding",
        "FrameBlock",
        "TvipsFormatError",
        "TvipsFormatWarning",
        "TvipsRecording",
        "file_reader",
        "file_writer",
        "follow",
        "is_registered",
        "register",
        "to_smv",
        "unregister",
        "validate",
    ]


@pytest.mark.parametrize("lazy", [False, True])
def test_stack_dictionary(make_tvips, lazy):
    rec = make_tvips(n_frames=9, shape=(3, 4), records_per_part=4)
    (d,) = file_reader(rec.paths[1], lazy=lazy)
    assert set(d) == {"data", "axes", "metadata", "original_metadata", "mapping"}
    assert isinstance(d["data"], da.Array if lazy else np.ndarray)
    np.testing.assert_array_equal(np.asarray(d["data"]), rec.frames)
    # 9 frames over 2 s (timestamps step every 4 frames, ms 0/250/500/750)
    assert d["axes"] == [
        {
            "name": "time",
            "size": 9,
            "scale": 0.25,
            "offset": 0.0,
            "units": "s",
            "navigate": True,
            "index_in_array": 0,
        },
        {
            "name": "dy",
            "size": 3,
            "offset": 0.0,
            "navigate": False,
            "index_in_array": 1,
        },
        {
            "name": "dx",
            "size": 4,
            "offset": 0.0,
            "navigate": False,
            "index_in_array": 2,
        },
    ]
    assert d["metadata"] == {
        "General": {
            "title": "rec",
            "original_filename": "rec_000.tvips",
            "date": "2023-11-14",
            "time": "22:13:20",
            "time_zone": "UTC",
        },
        "Signal": {"signal_type": "electron_diffraction"},
        "Acquisition_instrument": {
            "TEM": {
                "beam_energy": 300.0,
                "beam_current": 1.5,
                "Stage": {
                    "tilt_alpha": 12.5,
                    "tilt_beta": -3.0,
                    "x": 0.001,
                    "y": -0.002,
                    "z": 3e-05,
                },
            }
        },
    }
    om = d["original_metadata"]
    assert om["tvips_header"]["frameheaderbytes"] == 60
    assert om["frame_header"]["num"] == 1 and om["frame_header"]["rotidx"] == 0
    assert om["Recording"] == {
        "parts": ["rec_000.tvips", "rec_001.tvips", "rec_002.tvips"],
        "part_sizes": [256 + 4 * 84, 4 * 84, 84],
        "n_frames": 9,
        "frame_header_bytes": 60,
        "record_size": 84,
        "ignored_bytes": 0,
    }


def test_imaging_mode_calibration(make_tvips, main_header):
    rec = make_tvips(
        mode=1, header=main_header(pixelsize=2, magtotal=50000, offsetx=16, offsety=8)
    )
    (d,) = file_reader(rec.path)
    assert [(a["scale"], a["units"], a["offset"]) for a in d["axes"][1:]] == [
        (2.0, "nm", 0.0),
        (2.0, "nm", 0.0),
    ]
    assert d["metadata"]["Signal"] == {}
    assert d["metadata"]["Acquisition_instrument"]["TEM"]["magnification"] == 50000
    assert d["original_metadata"]["tvips_header"]["offsetx"] == 16


def test_diffraction_mode_calibration(make_tvips, main_header):
    rec = make_tvips(mode=2, header=main_header(pixelsize=3, magtotal=80))
    (d,) = file_reader(rec.path)
    assert [(a["scale"], a["units"]) for a in d["axes"][1:]] == [
        (3.0, "1/nm"),
        (3.0, "1/nm"),
    ]
    tem = d["metadata"]["Acquisition_instrument"]["TEM"]
    assert tem["camera_length"] == 80 and "magnification" not in tem


def test_version1_metadata(make_tvips):
    rec = make_tvips(version=1, n_frames=3)
    (d,) = file_reader(rec.path)
    assert d["metadata"]["Signal"] == {}
    assert d["metadata"]["Acquisition_instrument"] == {"TEM": {"beam_energy": 300.0}}
    assert d["original_metadata"]["frame_header"] == {
        "num": 1,
        "timestamp": 1_700_000_000,
        "ms": 0,
    }
    assert d["axes"][0]["scale"] == 0.25


@pytest.fixture
def new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_time_in_utc_with_milliseconds(make_tvips, new_york):
    assert time.localtime(0).tm_hour == 19  # the host is not on UTC
    rec = make_tvips(
        n_frames=2, header_values=lambda i: {"timestamp": 740399696, "ms": 125 + i}
    )
    (d,) = file_reader(rec.path)
    general = d["metadata"]["General"]
    assert (general["date"], general["time"]) == ("1993-06-18", "10:34:56.125000")
    assert d["axes"][0]["scale"] == 0.001


def test_single_frame(make_tvips):
    rec = make_tvips(n_frames=1)
    (d,) = file_reader(rec.path)
    assert d["data"].shape == (1, 3, 4)
    assert d["axes"][0] == {
        "name": "frame",
        "size": 1,
        "offset": 0.0,
        "navigate": True,
        "index_in_array": 0,
    }


def test_frames_with_one_time_get_a_frame_axis(make_tvips):
    rec = make_tvips(n_frames=3, header_values=lambda i: {"timestamp": 5})
    assert file_reader(rec.path)[0]["axes"][0]["name"] == "frame"


@pytest.mark.parametrize(
    ("rechunking", "scan_shape", "chunks"),
    [
        ("auto", None, ((10,), (3,), (4,))),
        (True, None, ((10,), (3,), (4,))),
        # one chunk per file: records start in parts at frames 0, 4, 8
        (False, None, ((4, 4, 2), (3,), (4,))),
        ({0: 3}, None, ((3, 3, 3, 1), (3,), (4,))),
        ((5, 3, 2), None, ((5, 5), (3,), (2, 2))),
        # a size: navigation chunks of about that size, frames whole
        ("100B", None, ((4, 4, 2), (3,), (4,))),
        ("72B", (2, 5), ((1, 1), (3, 2), (3,), (4,))),
        (False, (2, 5), ((2,), (5,), (3,), (4,))),
        ("auto", (2, 5), ((2,), (5,), (3,), (4,))),
    ],
)
def test_rechunking(make_tvips, rechunking, scan_shape, chunks):
    rec = make_tvips(n_frames=10, records_per_part=4)
    (d,) = file_reader(
        rec.path, lazy=True, rechunking=rechunking, scan_shape=scan_shape
    )
    assert d["data"].chunks == chunks
    np.testing.assert_array_equal(
        d["data"].compute().reshape(rec.frames.shape), rec.frames
    )


@pytest.mark.parametrize("bad", [1, 2.5, object])
def test_bad_rechunking(make_tvips, bad):
    rec = make_tvips(n_frames=4)
    msg = (
        "rechunking must be 'auto', True, False, a size such as '200MiB', or "
        f"chunks as a tuple or dict, got {bad!r}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_reader(rec.path, lazy=True, rechunking=bad)


def test_rechunking_false_for_a_scan(make_tvips):
    # one record of 84 bytes per file: chunks of 84 // 24 = 3 frames
    rec = make_tvips(n_frames=10, records_per_part=1)
    (d,) = file_reader(
        rec.path, lazy=True, rechunking=False, scan_shape=(7,), scan_start_frame=2
    )
    assert d["data"].chunks[0] == (3, 3, 1)
    np.testing.assert_array_equal(d["data"].compute(), rec.frames[2:9])


def test_specifications_yaml():
    import importlib.resources

    import yaml

    text = importlib.resources.files("rsciio_tvips").joinpath("specifications.yaml")
    spec = yaml.safe_load(text.read_text())
    assert list(spec) == [
        "name",
        "name_aliases",
        "description",
        "full_support",
        "file_extensions",
        "default_extension",
        "writes",
        "non_uniform_axis",
    ]
    assert (spec["name"], spec["file_extensions"], spec["default_extension"]) == (
        "TVIPS",
        ["tvips", "TVIPS"],
        0,
    )
    assert spec["writes"] is True


def test_lazy_open_reads_a_few_headers(make_tvips, monkeypatch):
    # the lazy frame headers are read when computed, not when opening
    rec = make_tvips(n_frames=300, records_per_part=70)
    read = []

    def counting(records, frames):
        read.append(len(frames))
        return preadv.read_headers(records, frames)

    monkeypatch.setattr(recording, "read_headers", counting)
    monkeypatch.setattr(lazy, "read_headers", counting)
    file_reader(rec.path, lazy=True, frame_headers=False)
    opening = sum(read)  # the checks at the part joins, the first and last
    assert opening < 20
    read.clear()
    (d,) = file_reader(rec.path, lazy=True)
    assert sum(read) == opening
    headers = d["original_metadata"]["frame_headers"]
    np.testing.assert_array_equal(headers["num"].compute(), np.arange(1, 301))
    assert sum(read) == opening + 300


def test_frame_headers_in_original_metadata(make_tvips):
    rec = make_tvips(n_frames=7, frame_header_bytes=70, split=[100])
    (eager,) = file_reader(rec.path)
    (lazy,) = file_reader(rec.path, lazy=True)
    (without,) = file_reader(rec.path, lazy=True, frame_headers=False)
    assert "frame_headers" not in without["original_metadata"]
    fh = eager["original_metadata"]["frame_headers"]
    # lazily: the same, as dask arrays, read when computed
    lazy_fh = lazy["original_metadata"]["frame_headers"]
    assert list(lazy_fh) == list(fh)
    for name, value in zip(fh, dask.compute(*lazy_fh.values()), strict=True):
        np.testing.assert_array_equal(value, fh[name])
        assert value.dtype == fh[name].dtype
    assert list(fh)[:3] == ["num", "timestamp", "ms"] and list(fh)[-1] == "extra"
    np.testing.assert_array_equal(fh["num"], np.arange(1, 8))
    assert fh["extra"].shape == (7, 2)  # bytes 68 and 69: Scan_x does not fit
    np.testing.assert_array_equal(
        fh["extra"],
        [
            np.frombuffer(rec.stream[i * rec.record_size + 68 :][:2], "u1")
            for i in range(7)
        ],
    )
    # placed on a scan: the header of the frame each point shows, zeros if blank
    (d,) = file_reader(
        rec.path,
        lazy=True,
        frame_headers=True,
        scan_shape=(2, 4),
        scan_start_frame=-1,
        winding_scan_axis="x",
    )
    np.testing.assert_array_equal(
        d["original_metadata"]["frame_headers"]["num"], [3, 2, 1, 0, 4, 5, 6, 7]
    )
    assert isinstance(d["original_metadata"]["frame_headers"]["num"], da.Array)
    filler = bytes.fromhex(eager["original_metadata"]["tvips_header"]["dummy"])
    assert filler == rec.header[52:]
