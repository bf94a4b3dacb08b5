"""The byte layout in _format/layout.py against the table of format.md."""

import numpy as np
import pytest

from rsciio_tvips._format import layout as _format
from rsciio_tvips._format.layout import (
    MAIN_HEADER_DTYPE,
    PART_RE,
    frame_header_dtype,
    record_dtype,
)

# offset, RosettaSciIO name, LiberTEM name, as in ../shared/docs/format.md
MAIN_TABLE = [
    (0, "size", "ISize"),
    (4, "version", "IVersion"),
    (8, "dimx", "IXDim"),
    (12, "dimy", "IYDim"),
    (16, "bitsperpixel", "IBPP"),
    (20, "offsetx", "IXOff"),
    (24, "offsety", "IYOff"),
    (28, "binx", "IXBin"),
    (32, "biny", "IYBin"),
    (36, "pixelsize", "IPixelSize"),
    (40, "ht", "IHT"),
    (44, "magtotal", "IMagTotal"),
    (48, "frameheaderbytes", "IImgHeaderBytes"),
]
FRAME_TABLE = [
    (0, "num", "ICounter", "u4"),
    (4, "timestamp", "ITime", "u4"),
    (8, "ms", "IMS", "u4"),
    (12, "LUTidx", "LUT_Index", "u4"),
    (16, "fcurrent", "Faraday", "f4"),
    (20, "mag", "TEM_Mag", "u4"),
    (24, "mode", "TEM_Mag_mode", "u4"),
    (28, "stagex", "TEM_Stage_x", "f4"),
    (32, "stagey", "TEM_Stage_y", "f4"),
    (36, "stagez", "TEM_Stage_z", "f4"),
    (40, "stagea", "TEM_Stage_alpha", "f4"),
    (44, "stageb", "TEM_Stage_beta", "f4"),
    (48, "rotidx", "Index_of_rotator", "u4"),
    (52, "temperature", "DENS_T_measure", "f4"),
    (56, "objective", "DENS_T_setpoint", "f4"),
    (60, "DENS_Power", None, "f4"),
    (64, "TEM_Obj_current", None, "f4"),
    (68, "Scan_x", None, "f4"),
    (72, "Scan_y", None, "f4"),
    (76, "DENS_Bias_U_setpoint", None, "f4"),
    (80, "DENS_Bias_U_value", None, "f4"),
    (84, "DENS_Bias_I_setpoint", None, "f4"),
    (88, "DENS_Bias_I_value", None, "f4"),
    (92, "DENS_Bias_E_setpoint", None, "f4"),
    (96, "DENS_Bias_R", None, "f4"),
    (100, "DENS_Bias_limit_U", None, "f4"),
    (104, "DENS_Bias_limit_I", None, "f4"),
]


def test_main_header_layout():
    assert MAIN_HEADER_DTYPE.itemsize == 256
    for offset, name, alias in MAIN_TABLE:
        dt, off, title = MAIN_HEADER_DTYPE.fields[name]
        assert (off, title, dt) == (offset, alias, np.dtype("<u4"))
        assert MAIN_HEADER_DTYPE.fields[alias][1] == offset
    assert MAIN_HEADER_DTYPE.fields["dummy"][1] == 52


def test_full_frame_header_layout():
    dt = frame_header_dtype(108)
    assert dt.itemsize == 108
    assert dt.names == tuple(name for _, name, _, _ in FRAME_TABLE)
    for offset, name, alias, typ in FRAME_TABLE:
        assert dt.fields[name][:2] == (np.dtype("<" + typ), offset)
        if alias:
            assert dt.fields[alias][1] == offset


@pytest.mark.parametrize(
    ("nbytes", "last", "extra"),
    [
        (12, "ms", 0),
        (60, "objective", 0),
        (61, "objective", 1),
        (63, "objective", 3),
        (76, "Scan_y", 0),
        (180, "DENS_Bias_limit_I", 72),
        (14, "ms", 2),
    ],
)
def test_frame_header_decodes_only_what_fits(nbytes, last, extra):
    dt = frame_header_dtype(nbytes)
    assert dt.itemsize == nbytes
    names = [n for n in dt.names if n != "extra"]
    assert names[-1] == last
    if extra:
        assert dt.names[-1] == "extra"
        assert dt.fields["extra"][0].shape == (extra,)
        assert dt.fields["extra"][1] == nbytes - extra
    else:
        assert "extra" not in dt.names


def test_record_dtype_is_packed():
    dt = record_dtype(60, np.uint16, (3, 4))
    assert dt.itemsize == 60 + 24
    assert dt.fields["data"][1] == 60
    assert dt.fields["data"][0] == np.dtype(("<u2", (3, 4)))


@pytest.mark.parametrize(
    ("name", "stem", "part"),
    [
        ("x_000.tvips", "x", "000"),
        ("a_b_012.TVIPS", "a_b", "012"),
        ("x_000_001.Tvips", "x_000", "001"),
    ],
)
def test_part_re_matches(name, stem, part):
    m = PART_RE.match(name)
    assert (m["stem"], m["part"]) == (stem, part)


@pytest.mark.parametrize(
    "name",
    ["x_0001.tvips", "x_01.tvips", "x_001.tvips.bak", "x001.tvips", "_001.tvips"],
)
def test_part_re_rejects(name):
    assert PART_RE.match(name) is None


def test_pixel_types():
    assert {k: v.str for k, v in _format.PIXEL_DTYPES.items()} == {
        8: "|u1",
        16: "<u2",
        32: "<u4",
        64: "<u8",
    }
