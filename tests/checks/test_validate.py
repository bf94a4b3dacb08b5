"""validate(), the validate command and permissive reading, on bad files built here."""

import os
import re
import signal
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import rsciio_tvips._checks.stream as _checks
from rsciio_tvips import (
    Finding,
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    validate,
)
from rsciio_tvips.__main__ import main
from rsciio_tvips._format.layout import decoded_header_dtype
from rsciio_tvips._validate import status

RECORD = 60 + 3 * 4 * 2  # default frame header and 3 x 4 uint16 pixels


def test_a_clean_recording_has_no_findings(make_tvips, capsys):
    rec = make_tvips(n_frames=9, records_per_part=4)
    assert validate(rec.paths[1]) == []
    assert main(["validate", str(rec.paths[1])]) == 0
    assert capsys.readouterr().out == f"{rec.paths[1]}: no problem found\n"


def test_missing_middle_part(make_tvips, capsys):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[1].unlink()
    expected = Finding(
        "error",
        "rec_001.tvips",
        None,
        "part chain",
        "part 1 of 'rec' (parts up to 2 exist)",
        "no such file",
        "permissive=True reads the parts before it",
    )
    assert validate(rec.path) == [expected]
    assert main(["validate", str(rec.path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [str(expected), f"{rec.path}: problems found (1 error)"]
    assert out[0] == (
        "error: rec_001.tvips: part chain: expected part 1 of 'rec' (parts up to 2 "
        "exist), found no such file (permissive=True reads the parts before it)"
    )
    with pytest.raises(TvipsFormatError, match="part 1 of the recording is missing"):
        file_reader(rec.path)
    msg = (
        "rec_001.tvips: part 1 of the recording is missing (found parts up to "
        "rec_002.tvips, 1 missing); the parts before it are read, rec_002.tvips "
        "ignored"
    )
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(msg)}$"):
        (d,) = file_reader(rec.path, permissive=True)
    np.testing.assert_array_equal(d["data"], rec.frames[:3])


def test_two_files_for_one_part_permissive_reads_the_one_spelled_alike(
    make_tvips, tmp_path
):
    rec = make_tvips(n_frames=6, records_per_part=3)
    other = rec.frames[3:].copy() + 1
    stray = rec.paths[1].read_bytes()
    # same headers, other pixels: which one is read shows in the data
    pixels = np.frombuffer(stray, np.uint8).copy()
    for k in range(3):
        start = k * RECORD + 60
        pixels[start : start + 24] = np.frombuffer(other[k].tobytes(), np.uint8)
    (tmp_path / "rec_001.TVIPS").write_bytes(pixels.tobytes())
    (finding,) = validate(rec.path)
    assert (finding.severity, finding.file, finding.field) == (
        "error",
        "rec_001.TVIPS",
        "part chain",
    )
    assert finding.found == "rec_001.tvips and rec_001.TVIPS"
    with pytest.raises(TvipsFormatError, match="two files claim part 1"):
        file_reader(rec.path)
    with pytest.warns(TvipsFormatWarning, match="rec_001.tvips is read$"):
        (d,) = file_reader(rec.path, permissive=True)
    np.testing.assert_array_equal(d["data"], rec.frames)
    upper = tmp_path / "rec_000.TVIPS"
    rec.path.rename(upper)
    with pytest.warns(TvipsFormatWarning, match="rec_001.TVIPS is read$"):
        (d,) = file_reader(upper, permissive=True)
    np.testing.assert_array_equal(d["data"][3:], other)


def test_missing_first_part_is_fatal_even_when_permissive(make_tvips, capsys):
    rec = make_tvips(n_frames=6, records_per_part=3)
    rec.path.unlink()
    findings = validate(rec.paths[1])
    assert [(f.severity, f.file, f.field) for f in findings] == [
        ("fatal", "rec_000.tvips", "part chain")
    ]
    assert main(["validate", str(rec.paths[1])]) == 2
    assert capsys.readouterr().out.endswith("cannot be read (1 fatal)\n")
    with pytest.raises(TvipsFormatError, match="part 0 of the recording is missing"):
        file_reader(rec.paths[1], permissive=True)


def test_no_such_file(tmp_path):
    (finding,) = validate(tmp_path / "x_000.tvips")
    assert finding == Finding("fatal", "x_000.tvips", None, "file", "a file", "nothing")
    assert status([finding]) == 2


def test_every_bad_main_header_field_is_listed(main_header, make_tvips):
    header = main_header(version=3, dimx=0, bitsperpixel=12)
    rec = make_tvips(n_frames=2, header=header)
    assert [
        (f.severity, f.offset, f.field, f.expected, f.found) for f in validate(rec.path)
    ] == [
        ("fatal", 4, "version", "1 or 2", "3"),
        ("fatal", 8, "dimx", "a positive number of pixels", "0"),
        ("fatal", 16, "bitsperpixel", "8, 16, 32 or 64", "12"),
    ]


def test_short_first_file(make_tvips):
    rec = make_tvips(n_frames=2)
    rec.path.write_bytes(rec.path.read_bytes()[:100])
    assert validate(rec.path) == [
        Finding("fatal", "rec_000.tvips", 0, "main header", "256 bytes", "100 bytes")
    ]


def test_no_whole_frame(make_tvips):
    rec = make_tvips(n_frames=1, truncate=5)
    (finding,) = validate(rec.path)
    assert finding == Finding(
        "fatal",
        "rec_000.tvips",
        256,
        "frame record",
        f"at least {RECORD} bytes (frame header 60 + 3 x 4 pixels of 2 bytes)",
        f"{RECORD - 5} in 1 part(s)",
        "no whole frame record after the main header",
    )
    msg = (
        f"rec_000.tvips: no whole frame record after the main header at offset 256: "
        f"expected {finding.expected}, found {finding.found}"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$") as caught:
        TvipsRecording(rec.path, permissive=True)
    assert caught.value.findings == [finding]


def test_truncated_last_record(make_tvips):
    rec = make_tvips(n_frames=5, truncate=10)
    expected = Finding(
        "warning",
        "rec_000.tvips",
        256 + 4 * RECORD,
        "frame record",
        f"{RECORD} bytes",
        f"{RECORD - 10}",
        "truncated last record: 4 whole frames are read",
    )
    assert validate(rec.path) == [expected]
    with pytest.warns(TvipsFormatWarning):
        assert TvipsRecording(rec.path).problems == [expected]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"num": {3: 9, 4: 10, 5: 11}},
            ("warning", 3, "num", "4", "9", "frame counter skips: frames dropped", 1),
        ),
        (
            {"num": {3: 1, 4: 2, 5: 3}},
            ("warning", 3, "num", "4", "1", "frame counter does not increase", 1),
        ),
        (
            {"ms": {2: 1000, 4: 1200}},
            ("warning", 2, "ms", "0 to 999", "1000", "milliseconds out of range", 2),
        ),
        (
            {"timestamp": {5: 1_600_000_000}},
            (
                "warning",
                5,
                "timestamp",
                "1700000001000",
                "1600000000250",
                "frame earlier than the one before",
                1,
            ),
        ),
        (
            {"rotidx": {1: 10**6}},
            ("warning", 1, "rotidx", "at most ~6", "1000000", "rotator index", 1),
        ),
    ],
)
def test_frame_header_checks(headers_with, make_tvips, changes, expected):
    rec = make_tvips(n_frames=6, header_values=headers_with(**changes))
    found = [f for f in validate(rec.path) if f.field == expected[2]]
    severity, frame, field, exp, got, what, count = expected
    assert len(found) == 1
    f = found[0]
    offsets = {"num": 0, "timestamp": 4, "ms": 8, "rotidx": 48}
    assert (f.severity, f.file, f.offset, f.field, f.expected, f.found) == (
        severity,
        "rec_000.tvips",
        256 + frame * RECORD + offsets[field],
        field,
        exp,
        got,
    )
    assert f.detail.startswith(what)
    assert f.detail.endswith(f"first at frame {frame}, {count} frame(s)")


def test_clock_not_set_and_pauses_are_remarks(headers_with, make_tvips):
    values = headers_with(timestamp={i: 1000 + i for i in range(4)} | {4: 1100})
    rec = make_tvips(n_frames=6, header_values=values)
    findings = validate(rec.path)
    assert status(findings) == 0
    assert [(f.severity, f.field, f.found) for f in findings] == [
        ("info", "timestamp", "1000"),
        ("info", "timestamp", "96250 ms"),
    ]
    assert findings[0].detail == (
        "the camera clock was not set?; first at frame 0, 5 frame(s)"
    )
    assert findings[1].offset == 256 + 4 * RECORD + 4
    assert findings[1].expected == (
        "about 1250 ms after the frame before (median interval)"
    )


@pytest.mark.parametrize("block", [1, 2, 5])
def test_the_stream_finds_the_same_however_the_headers_are_cut(
    headers_with, make_tvips, block
):
    # a pause, a reversal and a counter gap; the median interval comes from
    # all the intervals, not from the first block's
    times = {i: 1_700_000_000 + i for i in range(12)} | {7: 1_700_000_100}
    values = headers_with(timestamp=times, ms={i: 0 for i in range(12)},
                          num={9: 30, 10: 31, 11: 32})  # fmt: skip
    rec = make_tvips(n_frames=12, header_values=values)
    opened = TvipsRecording(rec.path)
    whole = _checks.frame_stream(opened)
    cut = _checks.frame_stream(opened, block=block)
    assert cut.summary() == whole.summary()
    locate = opened.records.locate
    assert cut.findings(locate) == whole.findings(locate)
    assert [f.field for f in whole.findings(locate)] == [
        "num",
        "timestamp",
        "timestamp",
    ]


def test_bad_beam_positions(headers_with, make_tvips):
    values = headers_with(Scan_x={2: float("nan")}, Scan_y={3: -5.0})
    rec = make_tvips(n_frames=5, frame_header_bytes=108, header_values=values)
    findings = {f.field: f for f in validate(rec.path)}
    assert findings["Scan_x"].found == "nan"
    assert findings["Scan_y"].found == "-5.0"
    record = 108 + 24
    assert findings["Scan_x"].offset == 256 + 2 * record + 68
    assert findings["Scan_y"].offset == 256 + 3 * record + 72


def test_signalling_nans_are_unusable_values_not_warnings(make_tvips, capsys):
    # any four bytes can be a signalling NaN, and widening one to float64
    # makes numpy warn (an error here: filterwarnings = error); every pass
    # over the float fields must take it as NaN, quietly
    rec = make_tvips(n_frames=5, frame_header_bytes=108)
    record = 108 + 24
    data = bytearray(rec.path.read_bytes())
    snan = struct.pack("<I", 0x7F800001)
    for at in (68, 40):  # Scan_x, stagea of frame 2
        data[256 + 2 * record + at : 256 + 2 * record + at + 4] = snan
    rec.path.write_bytes(bytes(data))
    findings = {f.field: f for f in validate(rec.path)}
    assert (findings["Scan_x"].offset, findings["Scan_x"].found) == (
        256 + 2 * record + 68,
        "nan",
    )
    assert main(["info", "--json", str(rec.path)]) == 0
    assert '"present": false' in capsys.readouterr().out
    (d,) = file_reader(rec.path, scan_shape="auto")  # no warning either
    assert d["original_metadata"]["Scan"]["method"] == "positions"


def test_unusual_frame_header_size_is_a_remark(make_tvips):
    rec = make_tvips(n_frames=3, frame_header_bytes=61)
    assert validate(rec.path) == [
        Finding(
            "info",
            "rec_000.tvips",
            48,
            "frameheaderbytes",
            "60 or 108 or 180 (sizes seen)",
            "61",
            "the fields that fit are decoded, the rest kept raw",
        )
    ]


def test_other_recordings_and_empty_parts(make_tvips, tmp_path):
    rec = make_tvips(n_frames=4, records_per_part=2)
    (tmp_path / "other_000.tvips").write_bytes(b"")
    (tmp_path / "rec_002.tvips").write_bytes(b"")
    findings = validate(rec.path)
    # an empty last part loses nothing that can be told: a remark
    assert [(f.severity, f.file, f.field, f.found) for f in findings] == [
        (
            "info",
            "rec_000.tvips",
            "folder",
            "the folder also holds another recording: other_000.tvips (1 part)",
        ),
        ("info", "rec_002.tvips", "part size", "an empty file"),
    ]
    assert status(findings) == 0
    assert TvipsRecording(rec.path).problems == []  # and no warning


@pytest.mark.parametrize(
    ("others", "remark"),
    [
        ({"b": 2}, "another recording: b_000.tvips (2 parts); it was not checked"),
        (
            {"b": 2, "c": 1},
            "2 other recordings: b_000.tvips (2 parts), c_000.tvips (1 part); "
            "they were not checked",
        ),
        (
            {s: 1 for s in "abcdefg"},
            "7 other recordings: a_000.tvips (1 part), b_000.tvips (1 part), "
            "c_000.tvips (1 part), d_000.tvips (1 part), e_000.tvips (1 part), "
            "...; they were not checked",
        ),
    ],
    ids=["one", "two", "many"],
)
def test_a_shared_folder_is_a_remark(make_tvips, capsys, others, remark):
    rec = make_tvips(name="rec", n_frames=4)
    for stem, n_parts in others.items():
        make_tvips(name=stem, n_frames=2 * n_parts, records_per_part=2)
    # a remark, not a mismatch: nothing expected, the verdict stays clean
    (finding,) = validate(rec.path)
    assert (finding.severity, finding.field, finding.expected) == ("info", "folder", "")
    assert main(["validate", str(rec.path)]) == 0
    assert capsys.readouterr().out == (
        f"info: rec_000.tvips: the folder also holds {remark}\n"
        f"{rec.path}: no problem found (1 info)\n"
    )


def test_part_cut_short_in_the_middle(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    data = rec.paths[1].read_bytes()
    rec.paths[1].write_bytes(data[: 2 * RECORD])  # lost a whole record
    # the part-boundary check owns the counter jump at the join: one finding
    expected = Finding(
        "warning",
        "rec_001.tvips",
        2 * RECORD,
        "part boundary",
        "frame counter 6 at the start of rec_002.tvips",
        "7",
        "the part may have lost bytes: every frame after it is shifted",
    )
    assert validate(rec.path) == [expected]
    with pytest.warns(
        TvipsFormatWarning, match=f"^rec_001.tvips at offset {2 * RECORD} "
    ):
        assert TvipsRecording(rec.path).problems == [expected]


def test_checks_run_across_blocks(headers_with, make_tvips, monkeypatch):
    # the counter jump sits exactly between two blocks of headers
    monkeypatch.setattr(_checks, "BLOCK", 4)
    rec = make_tvips(n_frames=9, header_values=headers_with(num={4: 50, 5: 51}))
    (finding,) = [
        f for f in validate(rec.path) if f.detail.startswith("frame counter skips")
    ]
    assert (finding.expected, finding.found) == ("5", "50")
    assert finding.offset == 256 + 4 * RECORD


def test_validate_reads_no_pixels(make_tvips, monkeypatch):
    from rsciio_tvips._reading import preadv as _io

    # frames larger than a few headers (tiny records are read whole: one
    # read of them costs less than a read per header)
    rec = make_tvips(n_frames=6, shape=(16, 16), records_per_part=2)
    seen = []
    real = _io.read_into

    def spy(chain, offsets, bufs, sizes=None):
        seen.extend(len(b) for b in bufs)
        return real(chain, offsets, bufs, sizes)

    monkeypatch.setattr(_io, "read_into", spy)
    validate(rec.path)
    assert seen and set(seen) == {60}


def test_finding_str():
    f = Finding("warning", "x_001.tvips", 120, "num", "5", "9", "dropped")
    assert (
        str(f)
        == "warning: x_001.tvips at offset 120: num: expected 5, found 9 (dropped)"
    )
    g = Finding("info", "x_000.tvips", None, "folder", "a", "b")
    assert str(g) == "info: x_000.tvips: folder: expected a, found b"


# --- a part that is not a regular file: named for what it is ---------------------

#: Each kind of entry that is not a regular file, made in place of a part, and
#: what the reader calls it.
NOT_FILES = {
    "directory": (Path.mkdir, "a directory"),
    "FIFO": (os.mkfifo, "a FIFO"),
    "dangling link": (
        lambda p: p.symlink_to("gone.tvips"),
        "a dangling symbolic link to gone.tvips",
    ),
    "link to /dev/zero": (
        lambda p: p.symlink_to("/dev/zero"),
        "a symbolic link to /dev/zero, a character device",
    ),
}


@pytest.fixture
def no_hang():
    """Fail, rather than hang, a test whose code opens a FIFO for reading."""

    def hung(signum, frame):
        raise TimeoutError("a FIFO was opened for reading")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def not_a_file(rec, k, kind):
    """Put an entry of ``kind`` in place of part ``k``; return what it is called."""
    make, called = NOT_FILES[kind]
    rec.paths[k].unlink()
    make(rec.paths[k])
    return called


@pytest.mark.parametrize("kind", NOT_FILES)
@pytest.mark.parametrize(
    ("k", "opened", "kept", "ignored"),
    [(2, 0, 6, ""), (1, 2, 3, ", rec_002.tvips ignored")],
    ids=["last part", "middle part"],
)
def test_a_later_part_that_is_not_a_file(
    make_tvips, capsys, no_hang, kind, k, opened, kept, ignored
):
    rec = make_tvips(n_frames=9, records_per_part=3)
    called = not_a_file(rec, k, kind)
    name = f"rec_00{k}.tvips"
    expected = Finding(
        "error", name, None, "part chain", "a regular file", called,
        "permissive=True reads the parts before it",
    )  # fmt: skip
    assert validate(rec.paths[opened]) == [expected]
    assert main(["validate", str(rec.paths[opened])]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"error: {name}: part chain: expected a regular file, found {called} "
        "(permissive=True reads the parts before it)",
        f"{rec.paths[opened]}: problems found (1 error)",
    ]
    msg = f"{name}: expected a regular file, found {called}"
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$") as caught:
        file_reader(rec.paths[opened])
    assert caught.value.findings == [expected]
    warned = f"{msg}; the parts before it are read{ignored}"
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(warned)}$"):
        (d,) = file_reader(rec.paths[opened], permissive=True)
    np.testing.assert_array_equal(d["data"], rec.frames[:kept])


@pytest.mark.parametrize("kind", NOT_FILES)
@pytest.mark.parametrize("opened", [0, 1], ids=["named", "through part 1"])
def test_a_first_part_that_is_not_a_file(make_tvips, capsys, no_hang, kind, opened):
    rec = make_tvips(n_frames=6, records_per_part=3)
    called = not_a_file(rec, 0, kind)
    expected = Finding(
        "fatal", "rec_000.tvips", None, "part chain", "a regular file", called,
        "it holds the main header",
    )  # fmt: skip
    assert validate(rec.paths[opened]) == [expected]
    assert main(["validate", str(rec.paths[opened])]) == 2
    assert capsys.readouterr().out.endswith(": cannot be read (1 fatal)\n")
    msg = f"rec_000.tvips: expected a regular file, found {called}"
    for permissive in (False, True):
        with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
            file_reader(rec.paths[opened], permissive=permissive)


@pytest.mark.parametrize(
    ("given", "made", "named"),
    [
        ("x_000.tvips", "x_000.tvips", "x_000.tvips"),
        ("x.tvips", "x.tvips", "x.tvips"),  # a directory of that very name
        ("x.tvips", "x_000.tvips", "x_000.tvips"),  # the part the name opens
        ("x", "x", "x"),
    ],
)
def test_a_directory_given_as_the_recording(tmp_path, capsys, given, made, named):
    (tmp_path / made).mkdir()
    msg = f"{named}: expected a regular file, found a directory"
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        file_reader(tmp_path / given)
    assert validate(tmp_path / given) == [
        Finding(
            "fatal", named, None, "part chain", "a regular file", "a directory",
            "it holds the main header",
        )
    ]  # fmt: skip
    assert main(["validate", str(tmp_path / given)]) == 2
    # a name that is not there at all is still no such file
    with pytest.raises(FileNotFoundError, match=r"^No such TVIPS file: "):
        file_reader(tmp_path / "y.tvips")


def _fed_live(opened, block):
    """Feed a watcher's stream (no frame count) ``block`` frames at a time.

    Returns the stream and the most rotator indices it kept at any time.
    """
    live = _checks.FrameStream(None)
    most = 0
    for _, fields in opened.header_field_blocks(block=block):
        live.feed(fields)
        most = max(most, sum(v.size for v in live._rot_values))
    return live, most


def test_a_stream_of_unknown_length_judges_the_rotator_index_at_the_end(
    headers_with, make_tvips
):
    # indices too high for the first frames only: a watcher's stream (no
    # frame count) keeps only the frames that may still break the bound
    values = headers_with(rotidx={i: i + 100 for i in range(200)} | {150: 10**6})
    rec = make_tvips(n_frames=200, header_values=values)
    opened = TvipsRecording(rec.path)
    whole = _checks.frame_stream(opened)
    live, _ = _fed_live(opened, 1)
    kept = sum(v.size for v in live._rot_values)
    assert kept <= 64 + 1  # the bound passed the early ones long ago
    locate = opened.records.locate
    assert live.findings(locate) == whole.findings(locate)
    assert [f.found for f in whole.findings(locate)] == ["1000000"]


def test_a_garbage_rotator_index_keeps_the_watchers_memory_bounded(
    headers_with, make_tvips, monkeypatch
):
    # 0xFFFFFFFF in every frame: beyond any bound, so each frame would be
    # kept to the end; at most ROTATOR_KEPT are, and the verdict is exact
    monkeypatch.setattr(_checks, "ROTATOR_KEPT", 16)
    values = headers_with(rotidx={i: 0xFFFFFFFF for i in range(200)})
    rec = make_tvips(n_frames=200, header_values=values)
    opened = TvipsRecording(rec.path)
    live, most = _fed_live(opened, 3)
    assert most <= 16 + 3  # the cap, and the block fed since
    locate = opened.records.locate
    whole = _checks.frame_stream(opened).findings(locate)
    assert live.findings(locate) == whole
    (rot,) = [f for f in whole if f.field == "rotidx"]
    assert (rot.expected, rot.found) == ("at most ~200", "4294967295")
    assert live.counts["rotidx"][:2] == [200, 0]


def test_the_rotator_verdict_of_a_watchers_stream_can_be_asked_again(
    headers_with, make_tvips
):
    # summary() and findings() both judge; asked between blocks, then at
    # the end, the verdict is that of every frame fed (validate's)
    values = headers_with(rotidx={10: 10**6, 150: 10**6})
    rec = make_tvips(n_frames=200, header_values=values)
    opened = TvipsRecording(rec.path)
    locate = opened.records.locate
    whole = _checks.frame_stream(opened).findings(locate)
    live = _checks.FrameStream(None)
    for _, fields in opened.header_field_blocks(block=100):
        live.feed(fields)
        live.summary()
        assert live.findings(locate) == live.findings(locate)
    assert live.findings(locate) == whole
    assert live.counts["rotidx"] == [2, 10, "at most ~200", "1000000"]


def test_a_garbage_rotator_index_over_8m_frames_stays_within_the_cap():
    # the real cap: 2**20 indices of 16 bytes kept, a few times that while
    # pruned; kept to the end, 8 M frames would need 128 MiB
    headers = np.zeros(4096, decoded_header_dtype(60))
    headers["rotidx"] = 0xFFFFFFFF
    live = _checks.FrameStream(None)
    tracemalloc.start()
    try:
        for i in range(2048):
            headers["num"] = np.arange(i * headers.size, (i + 1) * headers.size)
            live.feed(headers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert live.fed == 2**23
    assert peak < 4 * 16 * _checks.ROTATOR_KEPT
    live._judge_rotator()
    assert live.counts["rotidx"] == [2**23, 0, f"at most ~{2**23}", "4294967295"]


def test_past_the_cap_the_largest_indices_go_and_the_verdict_holds(
    headers_with, make_tvips, monkeypatch
):
    # the first 4 frames run ahead (500: beyond the bound of their own
    # frames, within that of the 200 in the end), frames 40 on are garbage;
    # with room for 10, the garbage goes first, summed up, and the verdict
    # is validate's: the 160 garbage frames from frame 40, not the 500s
    monkeypatch.setattr(_checks, "ROTATOR_KEPT", 10)
    garbage = {i: 0xFFFFFFFF for i in range(40, 200)}
    values = headers_with(rotidx={i: 500 for i in range(4)} | garbage)
    rec = make_tvips(n_frames=200, header_values=values)
    opened = TvipsRecording(rec.path)
    live, most = _fed_live(opened, 1)
    assert most <= 10 + 1
    locate = opened.records.locate
    whole = _checks.frame_stream(opened).findings(locate)
    assert live.findings(locate) == whole
    assert live.counts["rotidx"] == [160, 40, "at most ~200", "4294967295"]


def test_indices_gone_on_both_sides_of_the_final_bound_give_an_upper_bound(
    headers_with, make_tvips, monkeypatch
):
    # 30 frames at 500 and three at 10**6 run ahead; the cap (10) makes
    # some of each go, and the frames catch up with the 500s in the end:
    # the largest index gone is said, at its frame, and the count is at
    # least validate's, at most every frame that went or stayed
    monkeypatch.setattr(_checks, "ROTATOR_KEPT", 10)
    values = headers_with(rotidx={i: 500 for i in range(30)} | {5: 10**6, 6: 10**6})
    rec = make_tvips(n_frames=200, header_values=values)
    opened = TvipsRecording(rec.path)
    live, _ = _fed_live(opened, 1)
    live.findings(opened.records.locate)
    whole = _checks.frame_stream(opened)
    whole.findings(opened.records.locate)
    assert whole.counts["rotidx"] == [2, 5, "at most ~200", "1000000"]
    count, *said = live.counts["rotidx"]
    assert said == [5, "at most ~200", "1000000"]
    assert 2 <= count <= 30
