"""file_writer: stacks read back as stacks, scans as scans of their shape.

A stack (at most one navigation axis) is written with nothing a reader could
take for a scan; a scan with the rotator index 1, 2, ... and the EM-Scan beam
positions, so that ``scan_shape="auto"`` reopens it in its shape. What a
recording cannot hold (the scan step, positions in small frame headers, a
third scan axis) is a warning. What ``tvips info`` suggests for written files
is in tests/tools/test_info.py.
"""

import re
import struct

import numpy as np
import pytest

from rsciio_tvips import TvipsRecording, file_reader, file_writer

#: The reader's refusal of "auto" for a recording without a scan.
NO_SCAN = "no scan found in the rotator indices: give scan_shape as a tuple"
#: Offsets of the beam positions and the rotator index in a frame header
#: (the format notes), to read the bytes without the package.
SCAN_X, SCAN_Y, ROTIDX = 68, 72, 48


def signal(data, nav=None):
    """A signal dictionary; ``nav``: extra keys of each navigation axis."""
    nav = nav if nav is not None else [{}] * (data.ndim - 2)
    axes = [
        {"size": n, "navigate": True, **a}
        for n, a in zip(data.shape[:-2], nav, strict=True)
    ]
    axes += [{"size": n, "navigate": False} for n in data.shape[-2:]]
    return {"data": data, "axes": axes, "metadata": {}}


def frames(nav_shape, frame=(2, 3)):
    """Distinct uint16 frames of a navigation shape."""
    n = int(np.prod(nav_shape)) * frame[0] * frame[1]
    return (np.arange(n) % 60_000).astype(np.uint16).reshape(*nav_shape, *frame)


def write(path, sig, **kw):
    file_writer(path, sig, show_progressbar=False, **kw)
    return path.with_name(path.stem + "_000.tvips")


def fields(path, offset, code):
    """A frame-header field of every frame, read with struct from the bytes."""
    raw = path.read_bytes()
    fhb = struct.unpack_from("<I", raw, 48)[0]
    dimx, dimy, bpp = struct.unpack_from("<3I", raw, 8)
    record = fhb + dimx * dimy * bpp // 8
    n = (len(raw) - 256) // record
    return np.array(
        [struct.unpack_from(code, raw, 256 + i * record + offset)[0] for i in range(n)]
    )


def frame_header_bytes(path):
    return struct.unpack_from("<I", path.read_bytes(), 48)[0]


@pytest.fixture
def scan_recording(make_tvips, default_header_values):
    """``scan_recording(shape, fhb)``: a recorded scan, its headers agreeing.

    The rotator index and the beam positions (where the frame headers hold
    them) place frame i at point i, as an acquisition that starts with the
    scan writes them.
    """

    def make(shape, fhb):
        def values(i):
            return {
                **default_header_values(i),
                "rotidx": i + 1,
                "Scan_x": float(i % shape[1]),
                "Scan_y": float(i // shape[1]),
            }

        n = shape[0] * shape[1]
        return make_tvips(
            n_frames=n, shape=(2, 3), frame_header_bytes=fhb, header_values=values
        )

    return make


# --- stacks -------------------------------------------------------------------


MOVIE = [{"name": "time", "scale": 0.04, "offset": 0.0, "units": "s"}]


@pytest.mark.parametrize("extra", [None, 48], ids=["default", "108 bytes"])
@pytest.mark.parametrize("nav", [MOVIE, [{}]], ids=["movie", "uncalibrated stack"])
def test_stacks_read_back_as_stacks(tmp_path, nav, extra):
    # 100 frames: a rotator index 1..100 would reopen them as a 10 x 10 scan
    data = frames((100,))
    path = write(
        tmp_path / "m.tvips", signal(data, nav), frame_header_extra_bytes=extra
    )
    assert frame_header_bytes(path) == (60 if extra is None else 108)
    np.testing.assert_array_equal(fields(path, ROTIDX, "<I"), np.zeros(100))
    if extra:
        np.testing.assert_array_equal(fields(path, SCAN_X, "<f"), np.zeros(100))
        np.testing.assert_array_equal(fields(path, SCAN_Y, "<f"), np.zeros(100))
    (d,) = file_reader(path)
    np.testing.assert_array_equal(d["data"], data)
    with pytest.raises(ValueError, match=f"^{re.escape(NO_SCAN)}$"):
        file_reader(path, scan_shape="auto")


def test_rsciio_reads_a_written_stack_as_a_stack(tmp_path):
    ref = pytest.importorskip("rsciio.tvips")
    data = frames((100,))
    path = write(tmp_path / "m.tvips", signal(data, MOVIE))
    (d,) = ref.file_reader(str(path))
    np.testing.assert_array_equal(d["data"], data)
    with pytest.raises(ValueError, match=r"^Scan start and stop information could"):
        ref.file_reader(str(path), scan_shape="auto")


# --- scans that describe themselves -----------------------------------------


def test_scan_reopens_in_its_shape(tmp_path):
    data = frames((9, 8))
    path = write(tmp_path / "s.tvips", signal(data))
    assert frame_header_bytes(path) == 108  # LiberTEM's layout, positions in it
    (d,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], data)
    scan = d["original_metadata"]["Scan"]
    assert (scan["method"], scan["shape"], scan["blank_points"]) == (
        "positions",
        [9, 8],
        0,
    )
    assert [a.get("name") for a in d["axes"][:2]] == ["y", "x"]


def test_beam_positions_are_the_indices(tmp_path):
    path = write(tmp_path / "s.tvips", signal(frames((9, 8))))
    # read from the bytes at the offsets of the format notes
    np.testing.assert_array_equal(fields(path, SCAN_X, "<f"), np.tile(np.arange(8), 9))
    np.testing.assert_array_equal(
        fields(path, SCAN_Y, "<f"), np.repeat(np.arange(9), 8)
    )
    np.testing.assert_array_equal(fields(path, ROTIDX, "<I"), np.arange(1, 73))
    # and as the reader names them
    h = TvipsRecording(path).frame_headers
    assert (h["Scan_x"].max(), h["Scan_y"].max()) == (7, 8)


def test_crop_of_a_larger_scan_reopens_as_the_crop(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    big = frames((14, 12))
    s = hs.signals.Signal2D(big)
    crop = s.inav[2:10, 3:12]  # x 2..9, y 3..11: 9 rows of 8 points
    assert crop.axes_manager.navigation_shape == (8, 9)
    msg = (
        "the scan step and origin (x: 1 from 2, y: 1 from 3) are not stored in a "
        "TVIPS recording: pass them again after reading"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        cropped = write(tmp_path / "crop.tvips", crop._to_dictionary())
    plain = write(tmp_path / "plain.tvips", signal(big[3:12, 2:10]))
    (a,) = file_reader(cropped, scan_shape="auto")
    (b,) = file_reader(plain, scan_shape="auto")
    assert a["data"].shape[:2] == b["data"].shape[:2] == (9, 8)
    np.testing.assert_array_equal(a["data"], b["data"])
    np.testing.assert_array_equal(a["data"], big[3:12, 2:10])


@pytest.mark.parametrize("source_bytes", [60, 108])
def test_crop_of_a_read_scan_gets_new_positions(scan_recording, tmp_path, source_bytes):
    rec = scan_recording((14, 12), source_bytes)
    (d,) = file_reader(rec.path, scan_shape=(14, 12))
    d["data"] = d["data"][3:12, 2:10]
    d["axes"][0]["size"], d["axes"][1]["size"] = 9, 8
    with pytest.warns(UserWarning, match="carries frame headers for 168 frames but"):
        path = write(tmp_path / "crop.tvips", d)
    # the headers are made anew: a 60-byte source gets room for the positions
    assert frame_header_bytes(path) == 108
    (again,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(
        again["data"], rec.frames.reshape(14, 12, 2, 3)[3:12, 2:10]
    )


@pytest.mark.parametrize("source_bytes", [60, 108])
def test_a_read_scan_is_written_back_byte_for_byte(
    scan_recording, tmp_path, source_bytes
):
    # carried frame headers are written as they are: a 60-byte scan stays one
    # (no warning: it reads back as the recording it came from)
    rec = scan_recording((9, 8), source_bytes)
    (d,) = file_reader(rec.path, scan_shape=(9, 8))
    path = write(tmp_path / "copy.tvips", d)
    assert path.read_bytes() == rec.path.read_bytes()


def test_written_scan_read_and_written_again_is_the_same(tmp_path):
    first = write(tmp_path / "a.tvips", signal(frames((9, 8))))
    (d,) = file_reader(first, scan_shape="auto")
    second = write(tmp_path / "b.tvips", d)
    assert second.read_bytes() == first.read_bytes()


def test_positions_added_to_carried_headers_that_lack_them(scan_recording, tmp_path):
    rec = scan_recording((9, 8), 60)
    (d,) = file_reader(rec.path, scan_shape=(9, 8))
    path = write(tmp_path / "wide.tvips", d, frame_header_extra_bytes=48)
    # the carried 60 bytes as they were, the positions of the scan added
    old, new = rec.path.read_bytes(), path.read_bytes()
    for i in range(72):
        a, b = 256 + i * (60 + 12), 256 + i * (108 + 12)
        assert new[b : b + 60] == old[a : a + 60]
    np.testing.assert_array_equal(fields(path, SCAN_X, "<f"), np.tile(np.arange(8), 9))
    (again,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(again["data"], rec.frames.reshape(9, 8, 2, 3))


def test_three_navigation_axes(tmp_path):
    data = frames((2, 3, 4))
    msg = (
        "the beam positions hold two scan axes, the scan of shape (2, 3, 4) has 3: "
        "Scan_y is the row counted over the leading axes (2, 3), so "
        'scan_shape="auto" reads it back as (6, 4); read it with '
        "scan_shape=(2, 3, 4)"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        path = write(tmp_path / "c.tvips", signal(data))
    np.testing.assert_array_equal(
        fields(path, SCAN_Y, "<f"), np.repeat(np.arange(6), 4)
    )
    (auto,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(auto["data"], data.reshape(6, 4, 2, 3))
    (given,) = file_reader(path, scan_shape=(2, 3, 4))
    np.testing.assert_array_equal(given["data"], data)


def small_headers_message(fhb, shape):
    return (
        f"{fhb}-byte frame headers cannot hold the beam positions Scan_x, Scan_y "
        "(they need 76 bytes or more): the scan of shape "
        f'{shape} is written without them, and scan_shape="auto" finds only '
        "square scans, from the rotator index; read it back with "
        f"scan_shape={shape}, or write it with frame_header_extra_bytes=48 to "
        "keep them"
    )


V1_MESSAGE = (
    "version 1 frame headers hold no scan information (no rotator index, no "
    "beam positions): the scan of shape (9, 8) is written as frames in C order; "
    "read it back with scan_shape=(9, 8), or write version 2 to keep its shape "
    "in the frame headers"
)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"frame_header_extra_bytes": 0}, small_headers_message(60, (9, 8))),
        ({"frame_header_extra_bytes": 12}, small_headers_message(72, (9, 8))),
        ({"version": 1}, V1_MESSAGE),
    ],
    ids=["60 bytes", "72 bytes", "version 1"],
)
def test_frame_headers_too_small_for_the_positions(tmp_path, kw, msg):
    data = frames((9, 8))
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        path = write(tmp_path / "s.tvips", signal(data), **kw)
    with pytest.raises(ValueError):
        file_reader(path, scan_shape="auto")
    (d,) = file_reader(path, scan_shape=(9, 8))
    np.testing.assert_array_equal(d["data"], data)


def test_76_bytes_hold_the_positions(tmp_path):
    data = frames((9, 8))
    path = write(tmp_path / "s.tvips", signal(data), frame_header_extra_bytes=16)
    (d,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], data)


def test_square_scan_without_positions_reopens_from_the_rotator(tmp_path):
    data = frames((8, 8))
    msg = small_headers_message(60, (8, 8))
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        path = write(tmp_path / "q.tvips", signal(data), frame_header_extra_bytes=0)
    (d,) = file_reader(path, scan_shape="auto")
    assert d["original_metadata"]["Scan"]["method"] == "rotator"
    np.testing.assert_array_equal(d["data"], data)


def test_rsciio_reads_written_scans(tmp_path):
    ref = pytest.importorskip("rsciio.tvips")
    data = frames((9, 8))
    (d,) = ref.file_reader(
        str(write(tmp_path / "s.tvips", signal(data))), scan_shape=(9, 8)
    )
    np.testing.assert_array_equal(d["data"], data)
    square = frames((10, 10))
    (d,) = ref.file_reader(
        str(write(tmp_path / "q.tvips", signal(square))), scan_shape="auto"
    )
    np.testing.assert_array_equal(d["data"], square)


# --- the scan step ------------------------------------------------------------


def nm(scale, offset=0.0, units="nm"):
    return {"scale": scale, "offset": offset, "units": units}


@pytest.mark.parametrize(
    ("nav", "described"),
    [
        (
            [{"name": "y", **nm(2.5)}, {"name": "x", **nm(2.5)}],
            "the scan step (x: 2.5 nm, y: 2.5 nm) is not stored in a TVIPS "
            "recording: pass it again after reading",
        ),
        (
            [{}, {"units": "µm"}],
            "the scan step (x: 1 µm) is not stored in a TVIPS recording: pass it "
            "again after reading",
        ),
        (
            [{"name": "rows", **nm(0.5, 10.0)}, {"name": "cols", **nm(0.5)}],
            "the scan step and origin (cols: 0.5 nm, rows: 0.5 nm from 10 nm) are "
            "not stored in a TVIPS recording: pass them again after reading",
        ),
        (
            [{}, {"axis": [0.0, 1.0, 2.0, 4.0]}],
            "the scan step (x: non-uniform) is not stored in a TVIPS recording: "
            "pass it again after reading",
        ),
    ],
    ids=["step", "units only", "offset", "non-uniform"],
)
def test_calibrated_scan_warns_once(tmp_path, nav, described):
    data = frames((3, 4))
    with pytest.warns(UserWarning) as caught:
        path = write(tmp_path / "c.tvips", signal(data, nav))
    assert [str(w.message) for w in caught] == [described]
    (d,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], data)


@pytest.mark.parametrize(
    "nav",
    [
        [{}, {}],
        [nm(1.0, 0.0, "<undefined>"), nm(1.0, 0.0, "")],
        [{"name": "y", "scale": None, "offset": None, "units": None}, {"units": "px"}],
        [{}, {"axis": [0.0, 1.0, 2.0, 3.0]}],
    ],
    ids=["bare", "HyperSpy's undefined units", "None", "point-index axis"],
)
def test_uncalibrated_scans_do_not_warn(tmp_path, nav):
    # any warning fails (filterwarnings = error)
    write(tmp_path / "u.tvips", signal(frames((3, 4)), nav))


def test_hyperspy_scan_without_calibration_does_not_warn(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    data = frames((9, 8))
    path = write(tmp_path / "h.tvips", hs.signals.Signal2D(data)._to_dictionary())
    (d,) = file_reader(path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], data)
