"""Every main-header defect gives TvipsFormatError with an exact message."""

import re

import numpy as np
import pytest

from rsciio_tvips import TvipsFormatError, TvipsRecording, file_reader
from rsciio_tvips._format.header import parse_main_header


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": 300}, "main header size (size) at offset 0: expected 256, found 300"),
        (
            {"version": 3},
            "unsupported header version (version) at offset 4: "
            "expected 1 or 2, found 3",
        ),
        (
            {"version": 0},
            "unsupported header version (version) at offset 4: "
            "expected 1 or 2, found 0",
        ),
        (
            {"dimx": 0},
            "image width (dimx) at offset 8: expected a positive number "
            "of pixels, found 0",
        ),
        (
            {"dimy": 0},
            "image height (dimy) at offset 12: expected a positive "
            "number of pixels, found 0",
        ),
        (
            {"bitsperpixel": 12},
            "unsupported pixel depth (bitsperpixel) at offset "
            "16: expected 8, 16, 32 or 64, found 12",
        ),
        (
            {"bitsperpixel": 0},
            "unsupported pixel depth (bitsperpixel) at offset "
            "16: expected 8, 16, 32 or 64, found 0",
        ),
        (
            {"frameheaderbytes": 8},
            "frame header size (frameheaderbytes) at "
            "offset 48: expected 12 to 16777216 bytes for version 2, found 8",
        ),
        (
            # 2 GiB frame headers cannot be a numpy record: refused up front
            {"frameheaderbytes": 2**31},
            "frame header size (frameheaderbytes) at "
            "offset 48: expected 12 to 16777216 bytes for version 2, found 2147483648",
        ),
    ],
)
def test_bad_main_header(make_tvips, main_header, fields, message):
    rec = make_tvips(header=main_header(**fields))
    with pytest.raises(TvipsFormatError, match="^rec_000.tvips: " + re.escape(message)):
        file_reader(rec.path)


def test_error_is_a_value_error():
    assert issubclass(TvipsFormatError, ValueError)


@pytest.mark.parametrize(
    ("length", "msg"),
    [
        (
            100,
            "rec_000.tvips: file is shorter than the main header at offset 0: "
            "expected at least 256 bytes, found 100",
        ),
        (
            256,
            "rec_000.tvips: no whole frame record after the main header at offset "
            "256: expected at least 84 bytes (frame header 60 + 3 x 4 pixels of 2 "
            "bytes), found 0 in 1 part(s)",
        ),
    ],
    ids=["shorter than the header", "header only"],
)
def test_file_of_a_main_header_at_most(tmp_path, main_header, length, msg):
    path = tmp_path / "rec_000.tvips"
    path.write_bytes(main_header()[:length])
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        file_reader(path)


def test_parse_short_buffer():
    msg = (
        "x.tvips: file is shorter than the main header at offset 0: "
        "expected at least 256 bytes, found 0"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        parse_main_header(b"", "x.tvips")


def test_dimensions_that_cannot_fit(make_tvips, main_header):
    # 65535 x 65535 16-bit frames cannot be in a file of a few hundred bytes:
    # an error, not an attempt to allocate 8 GiB.
    rec = make_tvips(header=main_header(dimx=65535, dimy=65535))
    size = rec.path.stat().st_size - 256
    msg = (
        f"rec_000.tvips: no whole frame record after the main header at offset "
        f"256: expected at least {60 + 65535 * 65535 * 2} bytes (frame header 60 "
        f"+ 65535 x 65535 pixels of 2 bytes), found {size} in 1 part(s)"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        TvipsRecording(rec.path)


def test_huge_frame_header_size_is_not_allocated(make_tvips, main_header):
    rec = make_tvips(header=main_header(frameheaderbytes=2**32 - 1))
    with pytest.raises(TvipsFormatError, match="expected 12 to 16777216 bytes"):
        file_reader(rec.path, lazy=True)


def test_version1_ignores_frameheaderbytes(make_tvips):
    # Version 1 frame headers are 12 bytes whatever the main header says.
    rec = make_tvips(version=1, frame_header_bytes=0)
    data = file_reader(rec.path)[0]["data"]
    np.testing.assert_array_equal(data, rec.frames)


def test_parsed_fields_and_raw_bytes(main_header):
    raw = main_header(dimx=5, dimy=4, ht=200, magtotal=80, pixelsize=3, binx=2)
    h = parse_main_header(raw, "x")
    assert h.raw == raw
    assert h.fields == {
        "size": 256,
        "version": 2,
        "dimx": 5,
        "dimy": 4,
        "bitsperpixel": 16,
        "offsetx": 0,
        "offsety": 0,
        "binx": 2,
        "biny": 1,
        "pixelsize": 3,
        "ht": 200,
        "magtotal": 80,
        "frameheaderbytes": 60,
    }
    assert (h.shape, h.frame_nbytes, h.record_size) == ((4, 5), 40, 100)
