"""One defect, one finding: every path that checks a defect reports it alike.

For each kind of defect a recording is built here byte by byte, and
``validate()``, the strict error, the permissive warnings,
``TvipsRecording.problems`` and ``tvips info --json`` must report it once,
naming the same file and the same offset. Defects found only by reading every
frame header (a counter jump inside a part, a time reversal) are reported by
the validator and ``info`` only: opening reads the headers at the joins of
the parts, no more, so it warns nothing about them.
"""

import json
import re
import warnings

import pytest

from rsciio_tvips import (
    Finding,
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    validate,
)
from rsciio_tvips.__main__ import main

RECORD = 60 + 3 * 4 * 2  # default frame header and 3 x 4 uint16 pixels


def defects(findings):
    return [f for f in findings if f.severity != "info"]


def info_problems(path, capsys):
    assert main(["info", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    return [Finding(**p) for p in out["problems"] if p["severity"] != "info"]


def opened(path, permissive):
    """Open strictly or permissively; return (recording or error, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = TvipsRecording(path, permissive=permissive)
        except TvipsFormatError as e:
            result = e
    texts = [str(w.message) for w in caught if w.category is TvipsFormatWarning]
    return result, texts


def where(finding):
    """The start of a message naming the finding's file and offset."""
    if finding.offset is None:
        return f"{finding.file}: "
    return f"{finding.file}: .*at offset {finding.offset}\\b|{finding.file} at offset"


@pytest.fixture
def emptied_middle_part(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[1].write_bytes(b"")
    return rec, Finding(
        "warning", "rec_001.tvips", 0, "part boundary",
        "frame counter 4 at the start of rec_002.tvips", "7",
        "the part may have lost bytes: every frame after it is shifted",
    )  # fmt: skip


@pytest.fixture
def truncated_last_record(make_tvips):
    rec = make_tvips(n_frames=6, records_per_part=3, truncate=7)
    return rec, Finding(
        "warning", "rec_001.tvips", 2 * RECORD, "frame record", f"{RECORD} bytes",
        f"{RECORD - 7}", "truncated last record: 5 whole frames are read",
    )  # fmt: skip


@pytest.fixture
def missing_part(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[1].unlink()
    return rec, Finding(
        "error", "rec_001.tvips", None, "part chain",
        "part 1 of 'rec' (parts up to 2 exist)", "no such file",
        "permissive=True reads the parts before it",
    )  # fmt: skip


@pytest.fixture
def directory_as_last_part(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[2].unlink()
    rec.paths[2].mkdir()
    return rec, Finding(
        "error", "rec_002.tvips", None, "part chain", "a regular file",
        "a directory", "permissive=True reads the parts before it",
    )  # fmt: skip


@pytest.fixture
def dangling_link_as_first_part(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[0].unlink()
    rec.paths[0].symlink_to("moved_000.tvips")
    return rec, Finding(
        "fatal", "rec_000.tvips", None, "part chain", "a regular file",
        "a dangling symbolic link to moved_000.tvips", "it holds the main header",
    )  # fmt: skip


@pytest.fixture
def bad_header_field(make_tvips, main_header):
    rec = make_tvips(n_frames=3, header=main_header(bitsperpixel=12))
    return rec, Finding(
        "fatal", "rec_000.tvips", 16, "bitsperpixel", "8, 16, 32 or 64", "12",
        "unsupported pixel depth",
    )  # fmt: skip


@pytest.mark.parametrize(
    "defect",
    [
        "emptied_middle_part",
        "truncated_last_record",
        "missing_part",
        "directory_as_last_part",
        "dangling_link_as_first_part",
        "bad_header_field",
    ],
)
def test_a_defect_found_on_opening_is_reported_once_everywhere(request, capsys, defect):
    rec, expected = request.getfixturevalue(defect)
    assert defects(validate(rec.path)) == [expected]
    pattern = re.compile(where(expected))
    strict, strict_warnings = opened(rec.path, permissive=False)
    loose, loose_warnings = opened(rec.path, permissive=True)
    if expected.severity == "warning":
        # read either way, with one warning that names the file and offset
        assert strict.problems == loose.problems == [expected]
        assert len(strict_warnings) == 1 and pattern.match(strict_warnings[0])
        assert loose_warnings == strict_warnings
    elif expected.severity == "error":
        assert isinstance(strict, TvipsFormatError) and not strict_warnings
        assert pattern.match(str(strict)) and strict.findings == [expected]
        assert loose.problems == [expected]
        assert len(loose_warnings) == 1
        assert loose_warnings[0].startswith(str(strict) + "; the parts before it")
    else:  # fatal: raised however it is opened
        assert isinstance(strict, TvipsFormatError)
        assert isinstance(loose, TvipsFormatError)
        assert str(strict) == str(loose) and pattern.match(str(strict))
        assert strict.findings == [expected]
    if expected.severity == "fatal":
        assert main(["info", "--json", str(rec.path)]) == 2
        assert capsys.readouterr().err.startswith(f"tvips info: {expected.file}: ")
    else:
        assert info_problems(rec.path, capsys) == [expected]


def test_emptied_middle_part_message(emptied_middle_part):
    rec, _ = emptied_middle_part
    msg = (
        "rec_001.tvips at offset 0 (its end): the part holds no frame bytes, yet "
        "frames follow it; the frame counter jumps from 3 to 7 at the start of "
        "rec_002.tvips; if the part lost bytes, every frame after it is shifted"
    )
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(msg)}$"):
        TvipsRecording(rec.path)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"num": {i: 46 + i for i in range(4, 9)}},
            Finding(
                "warning", "rec_001.tvips", 1 * RECORD, "num", "5", "50",
                "frame counter skips: frames dropped; first at frame 4, 1 frame(s)",
            ),
        ),
        (
            {"timestamp": {5: 1_600_000_000}},
            Finding(
                "warning", "rec_001.tvips", 2 * RECORD + 4, "timestamp",
                "1700000001000", "1600000000250",
                "frame earlier than the one before; first at frame 5, 1 frame(s)",
            ),
        ),
    ],
    ids=["counter jump", "time reversal"],
)  # fmt: skip
def test_a_defect_found_in_the_frame_headers_is_reported_once(
    make_tvips, headers_with, capsys, changes, expected
):
    rec = make_tvips(
        n_frames=9, records_per_part=3, header_values=headers_with(**changes)
    )
    assert defects(validate(rec.path)) == [expected]
    assert info_problems(rec.path, capsys) == [expected]
    strict, texts = opened(rec.path, permissive=False)
    assert strict.problems == [] and texts == []


def test_a_counter_jump_at_a_join_is_the_boundarys(make_tvips, headers_with):
    # dropped frames exactly where a part starts: one finding, not two
    rec = make_tvips(
        n_frames=9,
        records_per_part=3,
        header_values=headers_with(num={6: 20, 7: 21, 8: 22}),
    )
    (finding,) = defects(validate(rec.path))
    assert (finding.file, finding.offset, finding.field) == (
        "rec_001.tvips",
        3 * RECORD,
        "part boundary",
    )


def test_permissive_missing_part_is_in_problems(missing_part):
    rec, expected = missing_part
    with pytest.warns(TvipsFormatWarning):
        assert TvipsRecording(rec.path, permissive=True).problems == [expected]


def test_counter_jumps_at_joins_are_the_streams_when_the_counter_does_not_count(
    make_tvips, headers_with
):
    # one frame a part; the counter jumps at the joins but does not count
    # at either end, so the part-boundary check does not compare it: the
    # frame-header checks must still report the jumps, all of them
    rec = make_tvips(
        n_frames=4,
        records_per_part=1,
        header_values=headers_with(num={1: 5, 2: 6, 3: 10}),
    )
    (finding,) = defects(validate(rec.path))
    assert finding == Finding(
        "warning", "rec_001.tvips", 0, "num", "2", "5",
        "frame counter skips: frames dropped; first at frame 1, 2 frame(s)",
    )  # fmt: skip


def test_every_empty_part_of_a_run_is_listed(make_tvips):
    # parts of 424, 0, 0 and 168 bytes, no counter: the join after the two
    # empty parts is suspect (named at the last of them), the other empty
    # part is a remark, and opening warns once
    rec = make_tvips(n_frames=7, split=[424, 424, 424], header_values=lambda i: {})
    # (the zeroed counter and clock are the frame stream's remarks)
    findings = [f for f in validate(rec.path) if f.field.startswith("part")]
    assert [(f.severity, f.file, f.field, f.found) for f in findings] == [
        ("warning", "rec_002.tvips", "part boundary", "no frame bytes"),
        ("info", "rec_001.tvips", "part size", "an empty file"),
    ]
    strict, texts = opened(rec.path, permissive=False)
    assert strict.findings == [findings[1], findings[0]]
    assert len(texts) == 1 and texts[0].startswith("rec_002.tvips at offset 0 ")


def test_empty_parts_at_the_end_are_listed(make_tvips):
    rec = make_tvips(n_frames=7, split=[592, 592])
    assert [(f.severity, f.file, f.found) for f in validate(rec.path)] == [
        ("info", "rec_001.tvips", "an empty file"),
        ("info", "rec_002.tvips", "an empty file"),
    ]


def test_several_missing_parts_are_one_defect(make_tvips):
    # parts 0, 2 and 4: the chain breaks at part 1; part 3 is named with it
    rec = make_tvips(n_frames=5, records_per_part=1)
    rec.paths[1].unlink()
    rec.paths[3].unlink()
    (finding,) = validate(rec.path)
    assert finding == Finding(
        "error", "rec_001.tvips", None, "part chain",
        "part 1 of 'rec' (parts up to 4 exist)", "no such file",
        "permissive=True reads the parts before it; also missing: rec_003.tvips",
    )  # fmt: skip
    msg = (
        "rec_001.tvips: part 1 of the recording is missing (found parts up to "
        "rec_004.tvips, 2 missing); the parts before it are read, rec_002.tvips, "
        "rec_004.tvips ignored"
    )
    loose, texts = opened(rec.path, permissive=True)
    assert texts == [msg]
    assert loose.problems == [finding] and loose.n_frames == 1


def test_the_chain_breaks_at_the_first_gap(make_tvips):
    # part 1 missing and part 3 a folder: the chain breaks at part 1, and
    # that is what strict reading names
    rec = make_tvips(n_frames=8, records_per_part=2)
    rec.paths[1].unlink()
    rec.paths[3].unlink()
    rec.paths[3].mkdir()
    msg = "rec_001.tvips: part 1 of the recording is missing (found parts up to "
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}"):
        file_reader(rec.path)
    names = [f.file for f in validate(rec.path) if f.severity == "error"]
    assert names == ["rec_001.tvips", "rec_003.tvips"]
