"""Header passes in bounded memory; validate() never raises (issue 16, 2-3).

Every pass over the frame headers (validate, tvips info, scan_shape="auto")
reads only the decoded fields, at most 108 bytes a frame, in blocks: its
memory grows neither with the header size a file declares (up to 16 MiB)
nor, for validate, with the number of frames. The recordings are sparse
files: gigabytes on paper, a few pages on disk.
"""

import struct

import numpy as np
import pytest

from rsciio_tvips import Finding, validate
from rsciio_tvips.__main__ import main

HUGE_HEADER = 2**24  # the largest frame header the format allows


def sparse_recording(
    folder, main_header, n_frames, header_bytes, shape, fields, set_frames=None
):
    """Write a one-part recording as a sparse file: only the fields are set.

    ``fields(i)`` gives ``(offset, struct code, value)`` triples of frame i,
    for the first ``set_frames`` frames (default: all); the others are zeros.
    """
    record = header_bytes + shape[0] * shape[1]
    path = folder / "huge_000.tvips"
    with open(path, "wb") as f:
        f.write(main_header(dimx=shape[1], dimy=shape[0], bitsperpixel=8,
                            frameheaderbytes=header_bytes))  # fmt: skip
        for i in range(n_frames if set_frames is None else set_frames):
            for offset, code, value in fields(i):
                f.seek(256 + i * record + offset)
                f.write(struct.pack("<" + code, value))
        f.truncate(256 + n_frames * record)
    return path


def counted(i):
    # counter, time, and a 15 x 15 EM-Konos scan from frame 0
    return [(0, "I", i + 1), (4, "I", 1_700_000_000 + i), (48, "I", min(i + 1, 225))]


CHILD = """
import json, sys
from rsciio_tvips import file_reader, validate
from rsciio_tvips._tools.info import describe
path, what = sys.argv[1], sys.argv[2]
if what == "validate":
    result = [str(f) for f in validate(path)]
elif what == "info":
    d = describe(path)
    result = [d["suggested_explicit"], d["frames"]["count"]]
elif what == "auto":
    (d,) = file_reader(path, lazy=True, scan_shape="auto", frame_headers=False)
    result = list(d["data"].shape)
elif what.startswith("sum"):
    (d,) = file_reader(path, lazy=True, io=what.split("-")[1])
    result = [int(d["data"].sum(dtype="u8").compute()), len(d["data"].chunks[0])]
"""


@pytest.fixture(scope="module")
def huge_headers(tmp_path_factory, main_header):
    # 250 frames of 16 MiB headers: 4 GiB on paper; read whole, 3.9 GiB
    folder = tmp_path_factory.mktemp("huge")
    return sparse_recording(folder, main_header, 250, HUGE_HEADER, (2, 2), counted)


@pytest.mark.parametrize("what", ["validate", "info", "auto"])
def test_passes_over_huge_headers_stay_small(huge_headers, peak_rss, what):
    got = peak_rss(CHILD, huge_headers, what)
    assert got["rss"] < 300 * 2**20, got["rss"]
    expected = {
        "validate": [
            "info: huge_000.tvips at offset 48: frameheaderbytes: expected 60 or "
            "108 or 180 (sizes seen), found 16777216 (the fields that fit are "
            "decoded, the rest kept raw)"
        ],
        "info": [{"scan_shape": [15, 15], "scan_start_frame": 0}, 250],
        "auto": [15, 15, 2, 2],
    }[what]
    assert got["result"] == expected


def test_validate_of_ten_million_frames_stays_small(tmp_path, main_header, peak_rss):
    # 10 million 1 x 1 frames of 60-byte headers, all zero but the counter of
    # the first and last: the checks aggregate, their memory does not grow
    n = 10_000_000
    path = sparse_recording(tmp_path, main_header, n, 60, (1, 1), counted, 1)
    got = peak_rss(CHILD, path, "validate")
    # the decoded fields of every frame alone would take 600 MB
    assert got["rss"] < 300 * 2**20, got["rss"]
    assert got["result"] == [
        "warning: huge_000.tvips at offset 317: num: expected 2, found 0 (frame "
        "counter does not increase; first at frame 1, 9999999 frame(s))",
        "warning: huge_000.tvips at offset 321: timestamp: expected 1700000000000, "
        "found 0 (frame earlier than the one before; first at frame 1, 1 frame(s))",
        "info: huge_000.tvips at offset 321: timestamp: expected a time after 2000, "
        "found 0 (the camera clock was not set?; first at frame 1, 9999999 frame(s))",
    ]


def test_unreadable_file_is_a_fatal_finding(demo, monkeypatch, capsys):
    from rsciio_tvips import _validate

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(demo))

    monkeypatch.setattr(_validate.TvipsRecording, "inspect", refuse)
    assert validate(demo) == [
        Finding(
            "fatal",
            "demo_000.tvips",
            None,
            "file",
            "a readable file",
            "PermissionError: Permission denied",
        )
    ]
    assert main(["validate", str(demo)]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        "fatal: demo_000.tvips: file: expected a readable file, found "
        "PermissionError: Permission denied"
    )


def test_part_failing_while_its_headers_are_read(demo, monkeypatch):
    from rsciio_tvips import _validate

    def fail(rec, progress=None):
        raise OSError(5, "Input/output error", str(demo.parent / "demo_002.tvips"))

    monkeypatch.setattr(_validate, "frame_stream", fail)
    assert validate(demo) == [
        Finding(
            "fatal",
            "demo_002.tvips",
            None,
            "file",
            "a readable file",
            "OSError: Input/output error",
        )
    ]


def test_header_fields_equal_the_whole_headers(make_tvips):
    from rsciio_tvips import TvipsRecording

    for size in (12, 60, 70, 108, 180):
        rec = TvipsRecording(
            make_tvips(
                n_frames=9, frame_header_bytes=size, version=1 if size == 12 else 2
            ).path
        )
        fields, whole = rec.header_fields, rec.frame_headers
        assert fields.dtype.names == tuple(n for n in whole.dtype.names if n != "extra")
        assert fields.dtype.itemsize <= 108
        for name in fields.dtype.names:
            np.testing.assert_array_equal(fields[name], whole[name])
        picked = rec.read_header_fields([7, 2, -1])
        np.testing.assert_array_equal(picked["num"], whole["num"][[7, 2, 8]])


def test_part_changed_during_the_pass(demo, monkeypatch):
    from rsciio_tvips import TvipsFormatError, _validate

    def changed(rec, progress=None):
        raise TvipsFormatError(
            "demo_001.tvips: the part changed since the recording was opened: "
            "size 700000 -> 600000 bytes (truncated)"
        )

    monkeypatch.setattr(_validate, "frame_stream", changed)
    assert validate(demo) == [
        Finding(
            "fatal",
            "demo_001.tvips",
            None,
            "part",
            "unchanged",
            "the part changed since the recording was opened: size 700000 -> "
            "600000 bytes (truncated)",
        )
    ]


@pytest.mark.parametrize("size", [60, 76], ids=["60-byte", "positions"])
@pytest.mark.parametrize("what", ["auto", "info"])
def test_scan_in_ten_million_frames_stays_small(
    tmp_path, main_header, peak_rss, what, size
):
    # a 15 x 15 EM-Konos scan at the start of 10 million 1 x 1 frames: the
    # scans are found and info's summaries made block by block, and only the
    # scan's indices are kept (every frame's fields: 600 MB, 867 MB peak).
    # With 76-byte headers every frame has the beam position (0, 0): one run
    # of 10 million frames at one point, kept as one value and its count
    n = 10_000_000
    path = sparse_recording(tmp_path, main_header, n, size, (1, 1), counted, 225)
    got = peak_rss(CHILD, path, what)
    assert got["rss"] < 300 * 2**20, got["rss"]
    expected = {
        "auto": [15, 15, 1, 1],
        "info": [{"scan_shape": [15, 15], "scan_start_frame": 0}, n],
    }
    assert got["result"] == expected[what]


@pytest.mark.parametrize("io", ["pread", "mmap"])
def test_lazy_sum_of_ten_million_tiny_frames_stays_small(
    tmp_path, main_header, peak_rss, io
):
    # 100 MiB chunks of 1 x 1 frames were 52 million frames each, and a read
    # plans a few numbers per frame: 965 MB. Chunks hold at most 65536 frames
    n = 10_000_000
    path = sparse_recording(tmp_path, main_header, n, 60, (1, 1), counted, 1)
    got = peak_rss(CHILD, path, f"sum-{io}")
    assert got["rss"] < 300 * 2**20, got["rss"]
    assert got["result"] == [0, -(-n // 2**16)]
