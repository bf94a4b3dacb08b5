"""file_writer: byte-exact round trips, calibrations, times, splitting, options.

Its faults (a full disk, a kill, a denied file...) are in test_faults.py.
"""

import re
import struct
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from rsciio_tvips import file_reader, file_writer


def parts(folder, stem):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(stem))


def split_for(max_size, record, n):
    """Stream offsets of part starts as the writer splits (header in part 0)."""
    first = (max_size - 256) // record
    later = max_size // record
    return list(range(first * record, n * record, later * record))


def signal(data, nav=None, sig_units="nm", scale=1.0, metadata=None, **axis):
    nav = nav if nav is not None else [{"name": f"n{i}"} for i in range(data.ndim - 2)]
    axes = [
        {"size": n, "navigate": True, **a}
        for n, a in zip(data.shape[:-2], nav, strict=True)
    ]
    for name, n in zip(("y", "x"), data.shape[-2:], strict=True):
        axes.append(
            {
                "name": name,
                "size": n,
                "scale": scale,
                "offset": 0.0,
                "units": sig_units,
                "navigate": False,
                **axis,
            }
        )
    return {"data": data, "axes": axes, "metadata": metadata or {}}


# --- byte-exact round trips -------------------------------------------------


@pytest.mark.parametrize("fhb", [60, 108, 180])
@pytest.mark.parametrize("max_parts", [1, 3])
def test_round_trip_is_byte_exact(make_tvips, tmp_path, fhb, max_parts):
    record = fhb + 24
    max_size = 256 + 9 * record if max_parts == 1 else 256 + 2 * record
    rec = make_tvips(
        n_frames=9, frame_header_bytes=fhb, split=split_for(max_size, record, 9)
    )
    (d,) = file_reader(rec.paths[-1])
    out = tmp_path / "out" / "copy.tvips"
    out.parent.mkdir()
    file_writer(
        out,
        d,
        max_file_size=max_size,
        frame_header_extra_bytes=fhb - 60,
        show_progressbar=False,
    )
    written = sorted(out.parent.iterdir())
    assert [p.name for p in written] == [
        f"copy_{k:03d}.tvips" for k in range(len(rec.paths))
    ]
    for original, copy in zip(rec.paths, written, strict=True):
        assert copy.read_bytes() == original.read_bytes()


def test_version1_round_trip_is_byte_exact(main_header, make_tvips, tmp_path):
    rec = make_tvips(
        version=1,
        n_frames=5,
        dtype="uint8",
        header=main_header(version=1, bitsperpixel=8, frameheaderbytes=7),
    )
    (d,) = file_reader(rec.path)
    file_writer(tmp_path / "v1.tvips", d, version=1, show_progressbar=False)
    assert (tmp_path / "v1_000.tvips").read_bytes() == rec.path.read_bytes()


def test_lazy_round_trip_is_byte_exact(make_tvips, tmp_path):
    rec = make_tvips(n_frames=9, frame_header_bytes=108)
    (d,) = file_reader(rec.path, lazy=True, frame_headers=True, rechunking=(2, 3, 4))
    file_writer(
        tmp_path / "lazy.tvips", d, frame_header_extra_bytes=48, show_progressbar=False
    )
    assert (tmp_path / "lazy_000.tvips").read_bytes() == rec.path.read_bytes()


@pytest.mark.parametrize("rechunking", [(2, 3, 4), (9, 3, 4)], ids=["2", "9"])
@pytest.mark.parametrize("cut", [False, True], ids=["chunks", "cut"])
def test_lazy_ends_of_large_headers_round_trip_in_blocks(
    make_tvips, tmp_path, monkeypatch, rechunking, cut
):
    # the 72 bytes past the decoded fields of 180-byte headers (each frame's
    # its own) are computed a chunk of the lazy headers at a time, or, where
    # the chunks are larger than the budget, 2 frames at a time, and written
    # back as they were
    if cut:
        monkeypatch.setattr("rsciio_tvips._writing.store.EXTRA_BLOCK_BYTES", 144)
    rec = make_tvips(
        n_frames=9, frame_header_bytes=180, split=split_for(256 + 3 * 204, 204, 9)
    )
    (d,) = file_reader(rec.path, lazy=True, rechunking=rechunking)
    out = tmp_path / "out" / "big.tvips"
    out.parent.mkdir()
    file_writer(
        out, d, max_file_size=256 + 3 * 204, frame_header_extra_bytes=120,
        show_progressbar=False,
    )  # fmt: skip
    written = sorted(out.parent.iterdir())
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in rec.paths]


WRITE_HUGE_HEADERS = """
import sys
import numpy as np
from rsciio_tvips import file_writer
n = 96
axes = [{"size": n, "navigate": True}, {"size": 4, "navigate": False},
        {"size": 4, "navigate": False}]
signal = {"data": np.ones((n, 4, 4), np.uint16), "axes": axes, "metadata": {}}
file_writer(sys.argv[1], signal, frame_header_extra_bytes=2**22 - 108,
            show_progressbar=False)
result = None
"""


RESAVE_HUGE_HEADERS = """
import sys
from rsciio_tvips import file_reader, file_writer
from rsciio_tvips._reading import preadv
reads = []
original = preadv.read_headers
def counting(records, frames):
    reads.append([int(frames[0]), len(frames)])
    return original(records, frames)
preadv.read_headers = counting
import rsciio_tvips._reading.lazy as lazy
lazy.read_headers = counting
(d,) = file_reader(sys.argv[1], lazy=True)
file_writer(sys.argv[2], d, frame_header_extra_bytes=2**21 - 60,
            show_progressbar=False)
result = reads
"""


def test_lazy_resave_of_2_mib_headers_in_bounded_memory(
    tmp_path, main_header, peak_rss
):
    # 128 frames of 2 MiB headers carried lazily: 256 MiB of headers, read a
    # task of 8 at a time, and written back as they were
    n, fhb = 128, 2**21
    source = tmp_path / "src_000.tvips"
    with open(source, "wb") as f:
        f.write(main_header(dimx=4, dimy=3, frameheaderbytes=fhb))
        for i in range(n):
            f.seek(256 + i * (fhb + 24))
            f.write((i + 1).to_bytes(4, "little"))
            f.seek(256 + i * (fhb + 24) + 24)
            f.write((2).to_bytes(4, "little"))  # mode 2, as the writer decides
            f.seek(256 + i * (fhb + 24) + fhb - 3)
            f.write(bytes([i % 256, 7, 9]))  # the end of the header: carried
        f.truncate(256 + n * (fhb + 24))
    got = peak_rss(RESAVE_HUGE_HEADERS, source, tmp_path / "copy.tvips")
    # 1.1 GB before (every task's headers held at once, several times over);
    # now about 320 MB, the same at three times the frames: the interpreter,
    # the header cache (64 MiB), a few tasks of 16 MiB
    assert got["rss"] < 400 * 2**20, got["rss"]
    # each task of 8 headers is read twice: for the decoded fields before
    # the write, for the ends as they are written (16 MiB a task)
    assert sorted(got["result"]) == sorted([[a, 8] for a in range(0, n, 8)] * 2)
    assert (tmp_path / "copy_000.tvips").read_bytes() == source.read_bytes()


def test_headers_of_4_mib_are_not_held_for_every_frame(tmp_path, peak_rss):
    # 96 frames of 4 MiB headers: 384 MiB of headers, held whole before
    # (about 230 MB peak); now the decoded fields and one run of zeros
    got = peak_rss(WRITE_HUGE_HEADERS, tmp_path / "huge.tvips")
    assert got["rss"] < 128 * 2**20, got["rss"]
    (d,) = file_reader(tmp_path / "huge_000.tvips", lazy=True)
    heads = d["original_metadata"]["frame_headers"]
    assert d["data"].shape == (96, 4, 4)
    np.testing.assert_array_equal(heads["num"].compute(), np.arange(1, 97))
    assert not heads["extra"][[0, -1]].compute().any()


def test_rsciio_fixtures_round_trip_byte_exact(rsciio_data, tmp_path):
    names = [f"test_tvips_2345_split_{k:03d}.tvips" for k in range(3)]
    (d,) = file_reader(rsciio_data / names[0])
    file_writer(
        tmp_path / "test_tvips_2345_split.tvips",
        d,
        max_file_size=356,
        show_progressbar=False,
    )
    for name in names:
        assert (tmp_path / name).read_bytes() == (rsciio_data / name).read_bytes()


# --- what is written, without original headers ------------------------------


def test_written_files_read_by_rsciio_and_us(tmp_path):
    rsciio_tvips_ref = pytest.importorskip("rsciio.tvips")
    data = (np.arange(6 * 4 * 5) * 11 % 65000).astype(np.uint16).reshape(6, 4, 5)
    file_writer(
        tmp_path / "w.tvips", signal(data), max_file_size=400, show_progressbar=False
    )
    assert parts(tmp_path, "w_") == ["w_000.tvips", "w_001.tvips", "w_002.tvips"]
    (ref,) = rsciio_tvips_ref.file_reader(str(tmp_path / "w_000.tvips"))
    np.testing.assert_array_equal(ref["data"], data)
    (ours,) = file_reader(tmp_path / "w_001.tvips")
    np.testing.assert_array_equal(ours["data"], data)


def test_navigation_axes_are_frames_in_c_order(tmp_path):
    data = np.arange(2 * 3 * 4 * 2 * 2, dtype=np.uint16).reshape(2, 3, 4, 2, 2)
    # three navigation axes: the beam positions hold two (test_scans_written)
    with pytest.warns(UserWarning, match=r"^the beam positions hold two scan axes"):
        file_writer(tmp_path / "n.tvips", signal(data), show_progressbar=False)
    (d,) = file_reader(tmp_path / "n_000.tvips")
    np.testing.assert_array_equal(d["data"], data.reshape(24, 2, 2))
    (d,) = file_reader(tmp_path / "n_000.tvips", scan_shape=(2, 3, 4))
    np.testing.assert_array_equal(d["data"], data)


def test_single_image(tmp_path):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    file_writer(tmp_path / "one.tvips", signal(image), show_progressbar=False)
    (d,) = file_reader(tmp_path / "one_000.tvips")
    np.testing.assert_array_equal(d["data"], image[None])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_unsigned_types_are_written_as_they_are(tmp_path, dtype):
    data = (np.arange(24) * 1000003).astype(dtype).reshape(2, 3, 4)
    file_writer(tmp_path / "t.tvips", signal(data), show_progressbar=False)
    raw = (tmp_path / "t_000.tvips").read_bytes()
    assert struct.unpack_from("<I", raw, 16)[0] == np.dtype(dtype).itemsize * 8
    (d,) = file_reader(tmp_path / "t_000.tvips")
    assert d["data"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(d["data"], data)


@pytest.mark.parametrize("dtype", ["int16", "float32", "int8"])
def test_signed_and_float_data_are_refused(tmp_path, dtype):
    data = np.full((2, 3, 4), -3, dtype=dtype)
    msg = (
        f"TVIPS stores unsigned pixels (uint8, uint16, uint32, uint64), not {dtype}: "
        "convert the data first (e.g. s.change_dtype('uint16') after checking its "
        "range) or pass dtype='uint16' to convert and check here"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer(tmp_path / "s.tvips", signal(data), show_progressbar=False)
    assert list(tmp_path.iterdir()) == []


def test_explicit_conversion(tmp_path):
    data = np.array([[[0.4, 1.6], [2.5, 65535.0]]], dtype=np.float32)
    file_writer(
        tmp_path / "c.tvips", signal(data), dtype="uint16", show_progressbar=False
    )
    (d,) = file_reader(tmp_path / "c_000.tvips")
    np.testing.assert_array_equal(d["data"], [[[0, 2], [2, 65535]]])
    with pytest.raises(ValueError, match=r"^data values -3 \.\. -3 do not fit uint16"):
        file_writer(
            tmp_path / "d.tvips",
            signal(np.full((1, 2, 2), -3, np.int16)),
            dtype="uint16",
        )
    with pytest.raises(
        ValueError, match="dtype must be uint8, uint16, uint32 or uint64"
    ):
        file_writer(tmp_path / "d.tvips", signal(np.zeros((1, 2, 2))), dtype="int16")


# --- calibration and mode ---------------------------------------------------


def header_field(path, offset):
    return struct.unpack_from("<I", Path(path).read_bytes(), offset)[0]


def frame_field(path, offset, code="<I"):
    return struct.unpack_from(code, Path(path).read_bytes(), 256 + offset)[0]


@pytest.mark.parametrize(
    ("units", "scale", "pixelsize", "mode"),
    [
        ("nm", 2.0, 2, 1),
        ("µm", 0.005, 5, 1),
        ("Å", 30.0, 3, 1),
        ("1/nm", 3.0, 3, 2),
        ("1/Å", 0.2, 2, 2),
        ("nm^-1", 4.0, 4, 2),
    ],
)
def test_pixel_size_and_mode_from_units(tmp_path, units, scale, pixelsize, mode):
    data = np.zeros((2, 3, 4), np.uint16)
    file_writer(
        tmp_path / "p.tvips",
        signal(data, sig_units=units, scale=scale),
        show_progressbar=False,
    )
    path = tmp_path / "p_000.tvips"
    assert (header_field(path, 36), frame_field(path, 24)) == (pixelsize, mode)


@pytest.mark.parametrize(
    ("axis", "msg", "field", "stored"),
    [
        (
            {"sig_units": "1/nm", "scale": 0.0123},
            "the pixel size 0.0123 1/nm is stored as the integer 0 1/nm (the TVIPS "
            "field is an integer)",
            36,  # pixelsize
            0,
        ),
        (
            {"sig_units": "1/nm", "offset": -1.5},
            "the signal axis 'y' has offset -1.5: TVIPS files store no calibration "
            "offset, so it is not written (a centred diffraction pattern reads back "
            "with offset 0)",
            20,  # offsetx
            0,
        ),
        (
            {"sig_units": "mrad"},
            "the signal axes' unit 'mrad' is neither a length nor an inverse length: "
            "pixelsize 0 is written",
            36,  # pixelsize
            0,
        ),
    ],
    ids=["pixel size rounded", "negative offset", "unknown units"],
)
def test_calibration_that_cannot_be_stored_warns(tmp_path, axis, msg, field, stored):
    data = np.zeros((2, 3, 4), np.uint16)
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        file_writer(tmp_path / "r.tvips", signal(data, **axis), show_progressbar=False)
    assert header_field(tmp_path / "r_000.tvips", field) == stored


@pytest.mark.parametrize(
    ("units", "metadata", "mode"),
    [
        ("px", {}, 2),
        ("px", {"Signal": {"signal_type": "electron_diffraction"}}, 2),
        ("px", {"Signal": {"signal_type": ""}}, 2),
        (None, {}, 2),
        ("nm", {}, 1),
    ],
)
def test_pixel_units_are_not_lengths(tmp_path, units, metadata, mode):
    data = np.zeros((1, 3, 4), np.uint16)
    file_writer(
        tmp_path / "m.tvips",
        signal(data, sig_units=units, scale=5.0, metadata=metadata),
        show_progressbar=False,
    )
    path = tmp_path / "m_000.tvips"
    assert frame_field(path, 24) == mode
    assert header_field(path, 36) == (5 if units == "nm" else 0)


def test_explicit_mode(tmp_path):
    data = np.zeros((1, 3, 4), np.uint16)
    file_writer(
        tmp_path / "e.tvips",
        signal(data, sig_units="px"),
        mode=1,
        show_progressbar=False,
    )
    assert frame_field(tmp_path / "e_000.tvips", 24) == 1
    with pytest.raises(
        ValueError, match=r"mode must be 1 \(imaging\), 2 \(diffraction\) or None"
    ):
        file_writer(tmp_path / "f.tvips", signal(data), mode=3)


# --- times and metadata -----------------------------------------------------


@pytest.mark.parametrize(
    ("date", "time", "zone", "unix", "ms"),
    [
        ("2021-01-15", "12:00:00", "Europe/Berlin", 1610708400, 0),
        ("2021-07-15", "12:00:00", "Europe/Berlin", 1626343200, 0),
        ("2021-01-15", "12:00:00", "CET", 1610708400, 0),
        ("2021-07-15", "12:00:00", "CEST", 1626343200, 0),
        ("2021-01-15", "12:00:00.25", "UTC", 1610712000, 250),
        ("2021-01-15", "12:00:00.9996", "UTC", 1610712001, 0),
        ("2021-01-15", "17:30:00", "+05:30", 1610712000, 0),
        ("2021-01-15", "07:00:00", "UTC-5", 1610712000, 0),
        ("2021-01-15", "04:00:00", "PST", 1610712000, 0),
    ],
)
def test_start_time_to_utc(tmp_path, monkeypatch, date, time, zone, unix, ms):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the host's zone must not matter
    meta = {"General": {"date": date, "time": time, "time_zone": zone}}
    data = np.zeros((1, 2, 2), np.uint16)
    file_writer(
        tmp_path / "t.tvips", signal(data, metadata=meta), show_progressbar=False
    )
    path = tmp_path / "t_000.tvips"
    assert (frame_field(path, 4), frame_field(path, 8)) == (unix, ms)


def test_unknown_time_zone(tmp_path):
    meta = {
        "General": {
            "date": "2021-01-15",
            "time": "12:00:00",
            "time_zone": "Mars/Olympus",
        }
    }
    with pytest.raises(
        ValueError, match="time zone 'Mars/Olympus' is not an IANA name"
    ):
        file_writer(
            tmp_path / "z.tvips", signal(np.zeros((1, 2, 2), np.uint16), metadata=meta)
        )
    assert list(tmp_path.iterdir()) == []


def test_frame_times_from_the_time_axis(tmp_path):
    meta = {
        "General": {"date": "2021-01-15", "time": "12:00:00.900", "time_zone": "UTC"}
    }
    data = np.zeros((4, 2, 2), np.uint16)
    nav = [{"name": "time", "scale": 0.25, "offset": 0.0, "units": "s"}]
    file_writer(
        tmp_path / "f.tvips",
        signal(data, nav=nav, metadata=meta),
        show_progressbar=False,
    )
    from rsciio_tvips import TvipsRecording

    h = TvipsRecording(tmp_path / "f_000.tvips").frame_headers
    t = h["timestamp"].astype(int) * 1000 + h["ms"]
    np.testing.assert_array_equal(t - 1610712000_000, [900, 1150, 1400, 1650])
    np.testing.assert_array_equal(h["num"], [1, 2, 3, 4])
    # a movie is a stack: no rotator index that "auto" could take for a scan
    np.testing.assert_array_equal(h["rotidx"], [0, 0, 0, 0])


def test_metadata_round_trip_without_original_headers(tmp_path):
    meta = {
        "General": {
            "date": "2022-03-04",
            "time": "05:06:07.125000",
            "time_zone": "UTC",
        },
        "Signal": {"signal_type": "electron_diffraction"},
        "Acquisition_instrument": {
            "TEM": {
                "beam_energy": 200.0,
                "camera_length": 120.0,
                "beam_current": 2.5,
                "Stage": {
                    "tilt_alpha": 12.5,
                    "tilt_beta": -3.0,
                    "x": 0.5,
                    "y": -0.25,
                    "z": 0.125,
                },
            }
        },
    }
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    nav = [{"name": "time", "scale": 0.5, "offset": 0.0, "units": "s"}]
    file_writer(
        tmp_path / "meta.tvips",
        signal(data, nav=nav, sig_units="1/nm", scale=2.0, metadata=meta),
        show_progressbar=False,
    )
    (d,) = file_reader(tmp_path / "meta_000.tvips")
    np.testing.assert_array_equal(d["data"], data)
    expected = {
        **meta,
        "General": {
            **meta["General"],
            "title": "meta",
            "original_filename": "meta_000.tvips",
        },
    }
    assert d["metadata"] == expected
    assert d["axes"][0]["scale"] == 0.5
    assert [(a["scale"], a["units"]) for a in d["axes"][1:]] == [(2.0, "1/nm")] * 2
    # and written again from what was read: the same bytes
    file_writer(tmp_path / "again.tvips", d, show_progressbar=False)
    assert (tmp_path / "again_000.tvips").read_bytes() == (
        tmp_path / "meta_000.tvips"
    ).read_bytes()


def test_hyperspy_dictionary(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal2D(np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4))
    s.axes_manager[0].units = "s"
    s.axes_manager[0].scale = 0.1
    file_writer(tmp_path / "hs.tvips", s._to_dictionary(), show_progressbar=False)
    (d,) = file_reader(tmp_path / "hs_000.tvips")
    np.testing.assert_array_equal(d["data"], s.data)
    assert d["axes"][0]["scale"] == pytest.approx(0.1)


# --- splitting ------------------------------------------------------------


def test_split_never_splits_a_frame(tmp_path):
    data = np.arange(10 * 3 * 4, dtype=np.uint16).reshape(10, 3, 4)
    file_writer(
        tmp_path / "s.tvips",
        signal(data),
        max_file_size=256 + 3 * 84 + 10,
        show_progressbar=False,
    )
    sizes = [(tmp_path / n).stat().st_size for n in parts(tmp_path, "s_")]
    assert sizes == [256 + 3 * 84, 6 * 84, 84]
    np.testing.assert_array_equal(
        file_reader(tmp_path / "s_000.tvips")[0]["data"], data
    )


def test_minimum_part_size(tmp_path):
    data = np.zeros((3, 3, 4), np.uint16)
    msg = (
        "max_file_size 100 is smaller than the main header and one frame record "
        "(340 bytes): it is raised to 340"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        file_writer(
            tmp_path / "m.tvips",
            signal(data),
            max_file_size=100,
            show_progressbar=False,
        )
    sizes = [(tmp_path / n).stat().st_size for n in parts(tmp_path, "m_")]
    # later parts hold 340 // 84 = 4 records of no header
    assert sizes == [340, 2 * 84]


def test_rewriting_removes_stale_parts(tmp_path):
    big = np.arange(6 * 3 * 4, dtype=np.uint16).reshape(6, 3, 4)
    file_writer(
        tmp_path / "x.tvips",
        signal(big),
        max_file_size=256 + 84,
        show_progressbar=False,
    )
    assert len(parts(tmp_path, "x_")) == 3  # 1 + 4 + 1 records
    small = big[:2] + 1
    file_writer(
        tmp_path / "x_000.tvips",
        signal(small),
        show_progressbar=False,
        overwrite_recording=True,
    )
    assert parts(tmp_path, "x_") == ["x_000.tvips"]
    np.testing.assert_array_equal(
        file_reader(tmp_path / "x_000.tvips")[0]["data"], small
    )


def test_parts_with_another_case_are_replaced(tmp_path):
    data = np.zeros((2, 3, 4), np.uint16)
    file_writer(
        tmp_path / "c.TVIPS",
        signal(data),
        max_file_size=256 + 84,
        show_progressbar=False,
    )
    assert parts(tmp_path, "c_") == ["c_000.TVIPS", "c_001.TVIPS"]
    file_writer(
        tmp_path / "c.tvips",
        signal(data + 1),
        show_progressbar=False,
        overwrite_recording=True,
    )
    assert parts(tmp_path, "c_") == ["c_000.tvips"]


# --- bad options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"version": 3}, "version must be 1 or 2, got 3"),
        (
            {"frame_header_extra_bytes": -1},
            "frame_header_extra_bytes must be a whole number >= 0, got -1",
        ),
        (
            {"frame_header_extra_bytes": 2.5},
            "frame_header_extra_bytes must be a whole number >= 0, got 2.5",
        ),
        (
            {"version": 1, "frame_header_extra_bytes": 4},
            "version 1 frame headers are 12 bytes: no extra bytes",
        ),
        *(
            (
                {"max_file_size": size},
                f"max_file_size must be a positive whole number of bytes, got {size!r}",
            )
            for size in [1e9 + 0.5, "big", 0, -5]
        ),
    ],
    ids=[
        "version 3",
        "extra bytes -1",
        "extra bytes 2.5",
        "extra bytes in version 1",
        "max_file_size 1e9 + 0.5",
        "max_file_size 'big'",
        "max_file_size 0",
        "max_file_size -5",
    ],
)
def test_bad_writer_options(tmp_path, kw, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        file_writer(tmp_path / "b.tvips", signal(np.zeros((1, 2, 2), np.uint16)), **kw)


def test_signal_must_be_two_dimensional(tmp_path):
    s = signal(np.zeros((2, 3, 4), np.uint16))
    s["axes"][1]["navigate"] = True
    with pytest.raises(
        ValueError, match="holds 2-D frames: the signal has 1 signal axes"
    ):
        file_writer(tmp_path / "b.tvips", s)
    s = signal(np.zeros((2, 3, 4), np.uint16))
    s["axes"][2]["size"] = 5
    with pytest.raises(ValueError, match=r"data of shape \(2, 3, 4\) does not match"):
        file_writer(tmp_path / "b.tvips", s)


# --- lazy data and progress -----------------------------------------------------


def test_lazy_write_in_bounded_memory(tmp_path, monkeypatch):
    from rsciio_tvips._writing import store as _store

    monkeypatch.setattr(_store, "BLOCK_BYTES", 2**20)
    lazy = (
        da.random.default_rng(0)
        .integers(0, 60000, (200, 128, 128), chunks=(8, 128, 128))
        .astype(np.uint16)
    )
    tracemalloc.start()
    file_writer(tmp_path / "big.tvips", signal(lazy), show_progressbar=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20  # the data are 6.25 MiB... x 1: far below for big data
    np.testing.assert_array_equal(
        file_reader(tmp_path / "big_000.tvips")[0]["data"], lazy.compute()
    )


def test_progress_bar(tmp_path, capsys):
    pytest.importorskip("tqdm")
    data = np.zeros((5, 3, 4), np.uint16)
    file_writer(tmp_path / "p.tvips", signal(data), show_progressbar=True)
    assert "5/5" in capsys.readouterr().err
    file_writer(tmp_path / "q.tvips", signal(data), show_progressbar=False)
    assert capsys.readouterr().err == ""


def test_portable_path_without_writev(make_tvips, tmp_path, monkeypatch):
    from rsciio_tvips._writing import store as _store

    monkeypatch.setattr(_store, "HAVE_WRITEV", False)
    rec = make_tvips(n_frames=5, frame_header_bytes=108)
    (d,) = file_reader(rec.path)
    file_writer(
        tmp_path / "p.tvips", d, frame_header_extra_bytes=48, show_progressbar=False
    )
    assert (tmp_path / "p_000.tvips").read_bytes() == rec.path.read_bytes()


def test_lazy_blocks_follow_the_chunks(tmp_path, monkeypatch):
    from rsciio_tvips._writing import store as _store

    monkeypatch.setattr(_store, "BLOCK_BYTES", 10 * (60 + 24))
    calls = []
    lazy = da.arange(30 * 12, chunks=4 * 12, dtype=np.uint16).reshape(30, 3, 4)
    lazy = lazy.map_blocks(lambda b: calls.append(b.shape[0]) or b, dtype=np.uint16)
    file_writer(
        tmp_path / "c.tvips",
        signal(lazy),
        max_file_size=256 + 7 * 84,
        show_progressbar=False,
    )
    # every chunk computed once (dask also calls it on an empty array for meta)
    assert sorted(c for c in calls if c) == sorted(lazy.chunks[0])
    np.testing.assert_array_equal(
        file_reader(tmp_path / "c_000.tvips")[0]["data"],
        np.arange(360, dtype=np.uint16).reshape(30, 3, 4),
    )


def test_an_existing_recording_is_not_replaced_by_default(earlier_recording, tmp_path):
    earlier = earlier_recording(tmp_path)
    msg = (
        "keep_000.tvips: a recording named 'keep' exists (keep_000.tvips, "
        "keep_001.tvips); pass overwrite_recording=True to replace it (with "
        "HyperSpy: s.save(..., overwrite_recording=True))"
    )
    for name in ("keep.tvips", "keep_000.tvips", "keep_001.TVIPS"):
        with pytest.raises(FileExistsError, match=f"^{re.escape(msg)}$"):
            file_writer(tmp_path / name, signal(np.ones((1, 2, 2), np.uint16)))
    earlier.assert_intact()


@pytest.mark.parametrize(
    ("name", "stem", "ext"),
    [
        ("x.tvips", "x", "tvips"),
        ("x_003.TVIPS", "x", "TVIPS"),
        ("x", "x", "tvips"),
        ("x.dat", "x.dat", "tvips"),
    ],
)
def test_recording_names(tmp_path, monkeypatch, name, stem, ext):
    from rsciio_tvips._writing import recording_names

    assert recording_names(tmp_path / name) == (tmp_path, stem, ext)
    monkeypatch.chdir(tmp_path)  # a relative name is made absolute
    assert recording_names(name) == (Path.cwd(), stem, ext)


def test_existing_parts_follow_recording_names(earlier_recording, tmp_path):
    from rsciio_tvips._writing import existing_parts, recording_names

    earlier_recording(tmp_path)
    folder, stem, _ = recording_names(tmp_path / "keep_001.TVIPS")
    assert existing_parts(folder, stem) == ["keep_000.tvips", "keep_001.tvips"]
    assert existing_parts(tmp_path / "none", stem) == []


# --- found in review ----------------------------------------------------------


def test_more_than_1000_parts_is_refused(tmp_path):
    msg = (
        "max_file_size 340 would split the recording into 1001 parts; part "
        "numbers have three digits, so at most 1000: give a larger max_file_size"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer(
            tmp_path / "m.tvips",
            signal(np.zeros((4001, 3, 4), np.uint16)),
            max_file_size=340,
        )
    assert list(tmp_path.iterdir()) == []


def test_few_files_open_at_once(tmp_path, monkeypatch):
    import psutil

    from rsciio_tvips._writing import store as _store

    monkeypatch.setattr(_store, "OPEN_FILES", 2)
    most = []
    real = _store._PartFiles.fd

    def counting(self, k):
        fd = real(self, k)
        here = [
            f for f in psutil.Process().open_files() if f.path.startswith(str(tmp_path))
        ]
        most.append(len(here))
        return fd

    monkeypatch.setattr(_store._PartFiles, "fd", counting)
    data = np.arange(40 * 12, dtype=np.uint16).reshape(40, 3, 4)
    file_writer(
        tmp_path / "f.tvips",
        signal(data),
        max_file_size=256 + 84,
        show_progressbar=False,
    )
    assert len(parts(tmp_path, "f_")) == 11 and max(most) == 2
    np.testing.assert_array_equal(
        file_reader(tmp_path / "f_000.tvips")[0]["data"], data
    )


def test_square_navigation_chunks_are_computed_once(tmp_path, monkeypatch):
    from rsciio_tvips._writing import store as _store

    monkeypatch.setattr(_store, "BLOCK_BYTES", 1)  # one chunk at a time
    calls = []
    truth = np.arange(8 * 8 * 3 * 4, dtype=np.uint16).reshape(8, 8, 3, 4)
    lazy = da.from_array(truth, chunks=(4, 4, 3, 2)).map_blocks(
        lambda b: calls.append(b.shape) or b, dtype=np.uint16
    )
    file_writer(
        tmp_path / "sq.tvips",
        signal(lazy),
        max_file_size=256 + 10 * 84,
        show_progressbar=False,
    )
    assert sorted(c for c in calls if 0 not in c) == [(4, 4, 3, 2)] * 8
    (d,) = file_reader(tmp_path / "sq_000.tvips", scan_shape=(8, 8))
    np.testing.assert_array_equal(d["data"], truth)


def test_carried_headers_take_the_resolved_mode(main_header, make_tvips, tmp_path):
    rec = make_tvips(n_frames=3, mode=2, header=main_header(pixelsize=4))
    (d,) = file_reader(rec.path)
    for axis in d["axes"][1:]:
        axis["units"] = "nm"  # recalibrated as an image
    file_writer(tmp_path / "m.tvips", d, show_progressbar=False)
    (again,) = file_reader(tmp_path / "m_000.tvips")
    assert [(a["scale"], a["units"]) for a in again["axes"][1:]] == [(4.0, "nm")] * 2
    assert again["original_metadata"]["frame_header"]["mode"] == 1


def test_cropped_signal_warns_that_headers_are_made_anew(make_tvips, tmp_path):
    rec = make_tvips(n_frames=6)
    (d,) = file_reader(rec.path)
    d["data"] = d["data"][2:]
    d["axes"][0]["size"] = 4
    with pytest.warns(
        UserWarning, match="carries frame headers for 6 frames but has 4"
    ):
        file_writer(tmp_path / "c.tvips", d, show_progressbar=False)


def test_edited_metadata_with_carried_headers_warns(make_tvips, tmp_path):
    rec = make_tvips(n_frames=2)
    (d,) = file_reader(rec.path)
    d["metadata"]["Acquisition_instrument"]["TEM"]["Stage"]["tilt_alpha"] = 40.0
    with pytest.warns(
        UserWarning,
        match="metadata Acquisition_instrument.TEM.Stage."
        "tilt_alpha differs from the frame headers",
    ):
        file_writer(tmp_path / "e.tvips", d, show_progressbar=False)


@pytest.mark.parametrize(
    ("axis", "expected"),
    [
        ({"offset": 1.0, "scale": 0.5}, [1000, 1500, 2000]),
        ({"axis": [0.0, 0.1, 0.5]}, [0, 100, 500]),
        ({"offset": 1_700_000_000.0, "scale": 0.25}, None),
    ],
)
def test_frame_times_from_offset_and_non_uniform_axes(tmp_path, axis, expected):
    meta = {"General": {"date": "2021-01-15", "time": "12:00:00", "time_zone": "UTC"}}
    nav = [{"name": "time", "units": "s", **axis}]
    file_writer(
        tmp_path / "t.tvips",
        signal(np.zeros((3, 2, 2), np.uint16), nav=nav, metadata=meta),
        show_progressbar=False,
    )
    from rsciio_tvips import TvipsRecording

    h = TvipsRecording(tmp_path / "t_000.tvips").frame_headers
    t = h["timestamp"].astype(np.int64) * 1000 + h["ms"]
    if expected is None:  # an absolute unix time, as rsciio.tvips reads
        np.testing.assert_array_equal(
            t, [1_700_000_000_000, 1_700_000_000_250, 1_700_000_000_500]
        )
    else:
        np.testing.assert_array_equal(t - 1610712000_000, expected)


def test_big_endian_data(tmp_path):
    data = np.arange(24, dtype=">u2").reshape(2, 3, 4)
    file_writer(tmp_path / "b.tvips", signal(data), show_progressbar=False)
    (d,) = file_reader(tmp_path / "b_000.tvips")
    np.testing.assert_array_equal(d["data"], data)


def test_conversion_refuses_nan(tmp_path):
    data = np.array([[[0.0, np.nan], [1.0, 2.0]]])
    with pytest.raises(
        ValueError, match=r"^data values nan \.\. nan are not all finite"
    ):
        file_writer(tmp_path / "n.tvips", signal(data), dtype="uint16")


def test_dask_chunks_that_lie_about_their_dtype(tmp_path):
    lazy = da.zeros((2, 3, 4), chunks=(1, 3, 4), dtype=np.uint16).map_blocks(
        lambda b: b.astype(np.int64), dtype=np.uint16
    )
    file_writer(tmp_path / "l.tvips", signal(lazy), show_progressbar=False)
    assert (tmp_path / "l_000.tvips").stat().st_size == 256 + 2 * 84


def test_whole_float_max_file_size(tmp_path):
    file_writer(
        tmp_path / "s.tvips",
        signal(np.zeros((2, 2, 2), np.uint16)),
        max_file_size=1e9,
        show_progressbar=False,
    )
    assert parts(tmp_path, "s_") == ["s_000.tvips"]


@pytest.mark.parametrize(
    ("units", "scale", "pixelsize"),
    [("1/A", 0.3, 3), ("A^-1", 0.3, 3), ("k_A^-1", 0.2, 2), ("A", 20.0, 2)],
)
def test_angstrom_spellings(tmp_path, units, scale, pixelsize):
    file_writer(
        tmp_path / "a.tvips",
        signal(np.zeros((1, 2, 2), np.uint16), sig_units=units, scale=scale),
        show_progressbar=False,
    )
    assert header_field(tmp_path / "a_000.tvips", 36) == pixelsize


def test_magnification_means_imaging(tmp_path):
    meta = {"Acquisition_instrument": {"TEM": {"magnification": 50000.0}}}
    file_writer(
        tmp_path / "g.tvips",
        signal(np.zeros((1, 2, 2), np.uint16), sig_units="px", metadata=meta),
        show_progressbar=False,
    )
    path = tmp_path / "g_000.tvips"
    assert (frame_field(path, 24), header_field(path, 44)) == (1, 50000)


def test_version1_warns_what_it_cannot_hold(tmp_path):
    with pytest.warns(UserWarning, match="version 1 frame headers have no mode"):
        file_writer(
            tmp_path / "v.tvips",
            signal(np.zeros((1, 2, 2), np.uint16), sig_units="1/nm"),
            version=1,
            show_progressbar=False,
        )


@pytest.mark.parametrize(
    ("zone", "unix"),
    [
        ("W. Europe Standard Time", 1610708400),
        ("Coordinated Universal Time", 1610712000),
        ("Pacific Standard Time", 1610740800),
    ],
)
def test_windows_time_zone_names(tmp_path, zone, unix):
    meta = {"General": {"date": "2021-01-15", "time": "12:00:00", "time_zone": zone}}
    file_writer(
        tmp_path / "w.tvips",
        signal(np.zeros((1, 2, 2), np.uint16), metadata=meta),
        show_progressbar=False,
    )
    assert frame_field(tmp_path / "w_000.tvips", 4) == unix


@pytest.mark.parametrize(
    ("time", "zone", "message"),
    [
        ("12:00:00", "CST", "time zone 'CST' also names China"),
        (
            "02:30:00",
            "Europe/Berlin",
            "2021-03-28 02:30:00 is ambiguous or does not exist",
        ),
    ],
)
def test_doubtful_times_warn(tmp_path, time, zone, message):
    meta = {"General": {"date": "2021-03-28", "time": time, "time_zone": zone}}
    with pytest.warns(UserWarning, match=re.escape(message)):
        file_writer(
            tmp_path / "d.tvips",
            signal(np.zeros((1, 2, 2), np.uint16), metadata=meta),
            show_progressbar=False,
        )


def test_half_milliseconds_round_up(tmp_path):
    meta = {
        "General": {"date": "2021-01-15", "time": "12:00:00.0005", "time_zone": "UTC"}
    }
    file_writer(
        tmp_path / "h.tvips",
        signal(np.zeros((1, 2, 2), np.uint16), metadata=meta),
        show_progressbar=False,
    )
    assert frame_field(tmp_path / "h_000.tvips", 8) == 1


def test_zero_frames_and_bad_stage(tmp_path):
    with pytest.raises(ValueError, match=r"^the signal has no frame to write$"):
        file_writer(tmp_path / "z.tvips", signal(np.zeros((0, 2, 2), np.uint16)))
    meta = {"Acquisition_instrument": {"TEM": {"Stage": {"x": "left"}}}}
    with pytest.warns(
        UserWarning,
        match="metadata Acquisition_instrument.TEM.Stage.x "
        "= 'left' is not a number: 0 is written",
    ):
        file_writer(
            tmp_path / "z.tvips",
            signal(np.zeros((1, 2, 2), np.uint16), metadata=meta),
            show_progressbar=False,
        )
