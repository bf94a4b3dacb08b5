"""The field <-> metadata table: one write -> read round trip per row."""

import re
import subprocess
import sys
import textwrap
from functools import reduce

import numpy as np
import pytest

from rsciio_tvips import file_reader, file_writer
from rsciio_tvips._format.layout import (
    FRAME_HEADER_FIELDS,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    MODE_IMAGING,
)
from rsciio_tvips._metadata.mapping import FRAME, MAIN, MAPPING, rows

TEM = "Acquisition_instrument.TEM"
# Per metadata path: the value written, and the raw field value expected in
# the file (written here by hand, not computed from the table's factor).
# Every value is exact in float32, and so are its nm <-> mm conversions.
VALUES = {
    f"{TEM}.beam_energy": (200.0, 200),
    f"{TEM}.camera_length": (80.0, 80),
    f"{TEM}.magnification": (5000.0, 5000),
    f"{TEM}.beam_current": (1.5, 1.5),
    f"{TEM}.Stage.tilt_alpha": (-12.5, -12.5),
    f"{TEM}.Stage.tilt_beta": (3.25, 3.25),
    f"{TEM}.Stage.x": (0.25, 250000.0),
    f"{TEM}.Stage.y": (-0.125, -125000.0),
    f"{TEM}.Stage.z": (0.0625, 62500.0),
}


def nested(path, value):
    """Return ``{"a": {"b": value}}`` for the path ``"a.b"``."""
    return reduce(lambda inner, key: {key: inner}, reversed(path.split(".")), value)


def lookup(tree, path):
    """Return the value at a dotted path; KeyError when a node is missing."""
    return reduce(lambda node, key: node[key], path.split("."), tree)


def one_frame(metadata):
    """Return a signal dict of one uncalibrated 3 x 4 uint16 frame."""
    return {
        "data": np.arange(12, dtype=np.uint16).reshape(3, 4),
        "axes": [
            {"name": "y", "size": 3, "navigate": False},
            {"name": "x", "size": 4, "navigate": False},
        ],
        "metadata": metadata,
    }


def test_every_row_has_a_round_trip_value():
    assert sorted(VALUES) == sorted(row.path for row in MAPPING)


@pytest.mark.parametrize("row", MAPPING, ids=[row.path for row in MAPPING])
def test_row_round_trip(tmp_path, row):
    written, raw = VALUES[row.path]
    # magtotal is a camera length in diffraction only: write in the mode
    # the row needs, so its counterpart must not appear
    mode = MODE_DIFFRACTION if row.diffraction else MODE_IMAGING
    file_writer(
        tmp_path / "rec.tvips",
        one_frame(nested(row.path, written)),
        mode=mode,
        show_progressbar=False,
    )
    (d,) = file_reader(tmp_path / "rec_000.tvips")
    assert lookup(d["metadata"], row.path) == written
    header = "tvips_header" if row.header == MAIN else "frame_header"
    assert d["original_metadata"][header][row.field] == raw
    assert d["original_metadata"]["frame_header"]["mode"] == mode
    for other in MAPPING:
        if other.field == row.field and other is not row:
            with pytest.raises(KeyError):
                lookup(d["metadata"], other.path)


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        (MODE_DIFFRACTION, f"{TEM}.camera_length"),
        (MODE_IMAGING, f"{TEM}.magnification"),
        (None, f"{TEM}.magnification"),
    ],
)
def test_magtotal_meaning_follows_the_mode(mode, path):
    (row,) = [r for r in rows(MAIN, mode) if r.field == "magtotal"]
    assert row.path == path


def test_table_fields_are_in_the_layout():
    frame_fields = {name for _offset, name, _alias, _type in FRAME_HEADER_FIELDS}
    for row in MAPPING:
        assert row.header in (MAIN, FRAME), row
        known = MAIN_HEADER_DTYPE.names if row.header == MAIN else frame_fields
        assert row.field in known, row


@pytest.mark.parametrize("mode", [None, MODE_IMAGING, MODE_DIFFRACTION])
@pytest.mark.parametrize("header", [MAIN, FRAME])
def test_one_row_per_field_in_each_mode(header, mode):
    fields = [row.field for row in rows(header, mode)]
    assert len(fields) == len(set(fields))


def test_import_builds_no_unit_registry():
    code = textwrap.dedent("""
        import sys
        import rsciio_tvips
        from rsciio_tvips._metadata import units
        print("pint" in sys.modules, units.unit_registry.cache_info().currsize)
        units.unit_kind("nm")
        print("pint" in sys.modules, units.unit_registry.cache_info().currsize)
    """)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout == "False 0\nTrue 1\n"


FRAME_ROWS = [row for row in MAPPING if row.header == FRAME]


@pytest.mark.parametrize("row", FRAME_ROWS, ids=[row.path for row in FRAME_ROWS])
def test_a_carried_value_edited_in_the_metadata_is_named(tmp_path, row):
    # read back, edit the value in the metadata, write again: the carried
    # frame headers win, and the warning names the edited path
    written, raw = VALUES[row.path]
    file_writer(tmp_path / "a.tvips", one_frame(nested(row.path, written)),
                mode=MODE_DIFFRACTION, show_progressbar=False)  # fmt: skip
    (d,) = file_reader(tmp_path / "a_000.tvips")
    edited = dict(d, metadata=nested(row.path, written + 1))
    msg = (
        f"metadata {row.path} differs from the frame headers the signal carries; "
        "the frame headers are written as they are"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(msg)}$"):
        file_writer(tmp_path / "b.tvips", edited, show_progressbar=False)
    (again,) = file_reader(tmp_path / "b_000.tvips")
    assert again["original_metadata"]["frame_header"][row.field] == raw


@pytest.mark.parametrize("row", FRAME_ROWS, ids=[row.path for row in FRAME_ROWS])
def test_version_1_says_what_it_drops(tmp_path, row):
    written, _ = VALUES[row.path]
    msg = "version 1 frame headers have no mode, stage or beam fields"
    with pytest.warns(UserWarning, match=f"^{msg}"):
        file_writer(tmp_path / "v1.tvips", one_frame(nested(row.path, written)),
                    version=1, show_progressbar=False)  # fmt: skip
