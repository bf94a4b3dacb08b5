"""Finding the parts of a recording and reading them as one stream."""

import os
import pickle
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from rsciio_tvips import (
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    file_writer,
)
from rsciio_tvips._format.layout import recording_stem
from rsciio_tvips._format.parts import (
    FEW_RANGES,
    first_part,
    first_parts,
    kind_of,
    siblings,
)


def find_parts(path):
    """The part chain the reader found."""
    return TvipsRecording(path).chain


def names(chain):
    return [p.name for p in chain.parts]


@pytest.mark.parametrize("opened", [0, 1, 2])
@pytest.mark.parametrize("as_str", [True, False])
def test_any_part_opens_the_whole_recording(make_tvips, opened, as_str):
    rec = make_tvips(n_frames=6, records_per_part=2)
    path = rec.paths[opened]
    data = file_reader(str(path) if as_str else path)[0]["data"]
    np.testing.assert_array_equal(data, rec.frames)


def test_upper_case_extension(make_tvips):
    rec = make_tvips(n_frames=4, records_per_part=2, ext="TVIPS")
    assert names(find_parts(rec.paths[1])) == ["rec_000.TVIPS", "rec_001.TVIPS"]
    np.testing.assert_array_equal(file_reader(rec.paths[1])[0]["data"], rec.frames)


def test_only_exact_siblings_are_parts(make_tvips, tmp_path):
    rec = make_tvips(n_frames=4, records_per_part=2)
    for junk in [
        "rec_0002.tvips",
        "rec_002.tvips.bak",
        "rec2_002.tvips",
        "xrec_002.tvips",
        "rec_002.txt",
        "other_000.tvips",
    ]:
        (tmp_path / junk).write_bytes(b"junk")
    # odd entries of other names are not this recording's: not even listed
    (tmp_path / "other_001.tvips").mkdir()
    (tmp_path / "rec2_003.tvips").symlink_to("gone")
    assert names(find_parts(rec.path)) == ["rec_000.tvips", "rec_001.tvips"]
    assert siblings(rec.path).others == [
        "other_000.tvips",
        "rec2_002.tvips",
        "xrec_002.tvips",
    ]
    np.testing.assert_array_equal(file_reader(rec.path)[0]["data"], rec.frames)


def test_stream_offsets(make_tvips):
    rec = make_tvips(n_frames=4, split=[100, 100, 250])
    chain = find_parts(rec.path)
    assert [(p.file_offset, p.length, p.stream_start) for p in chain.parts] == [
        (256, 100, 0),
        (0, 0, 100),
        (0, 150, 100),
        (0, 86, 250),
    ]
    assert chain.nbytes == len(rec.stream) == 336
    assert chain.locate(0) == (chain.parts[0], 256)
    assert chain.locate(100) == (chain.parts[2], 0)  # not the empty part
    assert chain.locate(335) == (chain.parts[3], 85)


def test_spans_of_a_stream_range(make_tvips):
    rec = make_tvips(n_frames=4, split=[100, 100, 250])
    chain = find_parts(rec.path)
    first, _empty, second, third = chain.parts

    def spans(a, b):
        return [(p.name, offset, n) for p, offset, n in chain.spans(a, b)]

    assert spans(0, 336) == [
        (first.name, 256, 100),
        (second.name, 0, 150),
        (third.name, 0, 86),
    ]  # the empty part left out
    assert spans(90, 110) == [(first.name, 346, 10), (second.name, 0, 10)]
    assert spans(100, 250) == [(second.name, 0, 150)]
    assert spans(300, 336) == [(third.name, 50, 36)]
    assert spans(336, 400) == spans(10, 10) == spans(-5, 0) == []
    assert spans(-5, 10) == spans(0, 10)  # nothing lies before the stream
    # every byte of the range once, in the file the stream puts it in
    for a, b in [(0, 336), (37, 301), (99, 251)]:
        got = b"".join(
            Path(p.path).read_bytes()[offset : offset + n]
            for p, offset, n in chain.spans(a, b)
        )
        assert got == rec.stream[a:b]


def test_pieces_of_many_ranges(make_tvips):
    rec = make_tvips(n_frames=4, split=[100, 100, 250])
    chain = find_parts(rec.path)  # parts 0, 1 (empty), 2 and 3
    # one range inside a part, one empty, one across the empty part and the
    # next, one across three parts, and one ending where the stream does
    offsets = [10, 50, 90, 80, 300]
    sizes = [20, 0, 20, 200, 36]
    piece, part, where, skip, length = chain.pieces(offsets, sizes)
    assert piece.tolist() == [0, 2, 2, 3, 3, 3, 4]
    assert part.tolist() == [0, 0, 2, 0, 2, 3, 3]
    assert where.tolist() == [266, 346, 0, 336, 0, 0, 50]
    assert skip.tolist() == [0, 0, 10, 0, 20, 170, 0]
    assert length.tolist() == [20, 10, 10, 20, 150, 30, 36]
    data = [Path(p.path).read_bytes() for p in chain.parts]
    for i, k, w, s_, n in zip(piece, part, where, skip, length, strict=True):
        a = offsets[i] + s_
        assert data[k][w : w + n] == rec.stream[a : a + n]
    # a few ranges are placed in Python, more with numpy: the same answer
    assert len(offsets) > FEW_RANGES
    alone = [chain.pieces([o], [n]) for o, n in zip(offsets, sizes, strict=True)]
    assert np.concatenate([a[0] + i for i, a in enumerate(alone)]).tolist() == (
        piece.tolist()
    )
    for column, got in zip(range(1, 5), (part, where, skip, length), strict=True):
        assert np.concatenate([a[column] for a in alone]).tolist() == got.tolist()
    assert [a.tolist() for a in chain.pieces(offsets[:4], sizes[:4])] == [
        a[piece < 4].tolist() for a in (piece, part, where, skip, length)
    ]
    # every range without a cut: the ranges as they are
    piece, part, where, skip, length = chain.pieces([0, 100, 260], [100, 150, 76])
    assert piece.tolist() == [0, 1, 2]
    assert part.tolist() == [0, 2, 3]
    assert where.tolist() == [256, 0, 10]
    assert skip.tolist() == [0, 0, 0]
    assert length.tolist() == [100, 150, 76]
    # what it keeps for the next call stays out of the chain's pickle, which
    # goes into every task of a dask graph
    assert pickle.dumps(chain) == pickle.dumps(find_parts(rec.path))


def test_pieces_past_the_end_of_the_stream(make_tvips):
    rec = make_tvips(n_frames=4, split=[100, 100, 250])
    chain = find_parts(rec.path)
    assert chain.nbytes == 336
    msg = "stream bytes 330 to 340 run past the end of the stream (336 bytes)"
    for n in (2, FEW_RANGES + 1):  # in Python, and with numpy
        with pytest.raises(ValueError, match=re.escape(msg)):
            chain.pieces([0] * (n - 1) + [330], [10] * n)
    with pytest.raises(ValueError, match="stream bytes 336 to 337 run past"):
        chain.pieces([336], [1])
    # the end itself has a place for locate, none for pieces
    assert chain.locate(336) == (chain.parts[3], 86)
    for n in (1, FEW_RANGES + 1):
        assert [len(a) for a in chain.pieces([336] * n, [0] * n)] == [0] * 5


@pytest.mark.parametrize(("offset", "size"), [(-1, 10), (5, -2)])
def test_pieces_before_the_start_of_the_stream(make_tvips, offset, size):
    chain = find_parts(make_tvips(n_frames=4, split=[100, 100, 250]).path)
    msg = (
        f"stream range at {offset} of {size} bytes: expected an offset and a "
        "length of 0 or more"
    )
    for n in (1, FEW_RANGES + 1):  # in Python, and with numpy
        with pytest.raises(ValueError, match=re.escape(msg)):
            chain.pieces([0] * (n - 1) + [offset], [3] * (n - 1) + [size])


@pytest.mark.parametrize(
    ("n_frames", "missing", "opened", "msg"),
    [
        (
            8,
            [1, 2],
            3,
            "rec_001.tvips: part 1 of the recording is missing (found parts up to "
            "rec_003.tvips, 2 missing)",
        ),
        (
            4,
            [0],
            1,
            "rec_000.tvips: part 0 of the recording is missing (found parts up to "
            "rec_001.tvips, 1 missing)",
        ),
    ],
    ids=["middle", "first"],
)
def test_missing_part(make_tvips, n_frames, missing, opened, msg):
    rec = make_tvips(n_frames=n_frames, records_per_part=2)
    for k in missing:
        rec.paths[k].unlink()
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        file_reader(rec.paths[opened])


def test_two_files_for_one_part(make_tvips, tmp_path):
    rec = make_tvips(n_frames=4, records_per_part=2)
    (tmp_path / "rec_001.TVIPS").write_bytes(rec.paths[1].read_bytes())
    with pytest.raises(
        TvipsFormatError,
        match=r"two files claim part 1 of recording 'rec': "
        r"rec_001\.(tvips|TVIPS) and rec_001\.(TVIPS|tvips)$",
    ):
        file_reader(rec.path)


def test_later_part_shorter_than_nothing_is_fine_but_first_must_hold_header(make_tvips):
    rec = make_tvips(n_frames=4, records_per_part=2)
    rec.path.write_bytes(rec.path.read_bytes()[:10])
    msg = (
        "rec_000.tvips: file is shorter than the main header at offset 0: "
        "expected at least 256 bytes, found 10"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(msg)}$"):
        file_reader(rec.paths[1])


def test_file_without_part_number_is_one_part(make_tvips, tmp_path):
    rec = make_tvips(n_frames=3)
    renamed = tmp_path / "renamed.tvips"
    rec.path.rename(renamed)
    assert names(find_parts(renamed)) == ["renamed.tvips"]
    np.testing.assert_array_equal(file_reader(renamed)[0]["data"], rec.frames)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope_000\.tvips"):
        file_reader(tmp_path / "nope_000.tvips")


# --- a recording's name: x.tvips means x_000.tvips, for reader and writer ---


@pytest.mark.parametrize(
    ("name", "stem", "ext"),
    [
        ("x_003.TVIPS", "x", "TVIPS"),
        ("x_000.tvips", "x", "tvips"),
        ("x.tvips", "x", "tvips"),
        ("x.TVIPS", "x", "TVIPS"),
        ("x", "x", "tvips"),
        ("x.dat", "x.dat", "tvips"),  # any other suffix belongs to the stem
        ("x_0003.tvips", "x_0003", "tvips"),  # four digits: no part number
        (".tvips", ".tvips", "tvips"),  # a hidden name, not an extension
    ],
)
def test_recording_stem(name, stem, ext):
    assert recording_stem(name) == (stem, ext)


@pytest.mark.parametrize("ext", ["tvips", "TVIPS"])
def test_name_without_part_number_opens_the_first_part(make_tvips, tmp_path, ext):
    rec = make_tvips(name="x", n_frames=4, records_per_part=2, ext=ext)
    name = tmp_path / f"x.{ext}"
    assert first_part(name) == tmp_path / f"x_000.{ext}"
    assert names(find_parts(name)) == [f"x_000.{ext}", f"x_001.{ext}"]
    assert names(find_parts(str(name))) == [f"x_000.{ext}", f"x_001.{ext}"]
    np.testing.assert_array_equal(file_reader(name)[0]["data"], rec.frames)


def test_a_file_of_that_name_wins(make_tvips, tmp_path):
    make_tvips(name="x", n_frames=4, records_per_part=2)
    one = make_tvips(name="one", n_frames=3)
    one.path.rename(tmp_path / "x.tvips")  # a one-part recording called x.tvips
    assert first_part(tmp_path / "x.tvips") == tmp_path / "x.tvips"
    assert names(find_parts(tmp_path / "x.tvips")) == ["x.tvips"]
    np.testing.assert_array_equal(
        file_reader(tmp_path / "x.tvips")[0]["data"], one.frames
    )


def test_a_missing_part_is_not_a_recording_name(make_tvips, tmp_path):
    make_tvips(name="x_005", n_frames=2)  # x_005_000.tvips
    # "x_005.tvips" is part 5 of x, not the recording x_005
    assert first_part(tmp_path / "x_005.tvips") is None
    assert first_part(tmp_path / "y.tvips") is None


def test_relative_recording_name(make_tvips, monkeypatch):
    rec = make_tvips(name="x", n_frames=4, records_per_part=2)
    monkeypatch.chdir(rec.path.parent)
    assert find_parts("x.tvips").first.path == str(rec.path)


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("x.tvips", "x_000.tvips"),
        ("x.TVIPS", "x_000.TVIPS"),
        ("x_000.tvips", "x_000.tvips"),
        ("x", "x_000.tvips"),
        ("x.dat", "x.dat_000.tvips"),
    ],
)
def test_reader_opens_what_the_writer_wrote(tmp_path, name, first):
    data = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    axes = [
        {"size": 2, "navigate": True},
        {"name": "y", "size": 3, "navigate": False},
        {"name": "x", "size": 4, "navigate": False},
    ]
    file_writer(tmp_path / name, {"data": data, "axes": axes, "metadata": {}})
    assert [p.name for p in tmp_path.iterdir()] == [first]
    np.testing.assert_array_equal(file_reader(tmp_path / name)[0]["data"], data)


def test_first_parts_of_a_folder(tmp_path):
    for name in [
        "b_000.tvips",
        "b_001.tvips",  # a later part
        "a.TVIPS",  # a one-part recording
        "c_000.TVIPS",
        "c_0000.tvips",  # no part number: one part of its own
        "notes.txt",
        ".b_000.tvips.partial-0123abcd",  # the writer's unfinished part
    ]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d_000.tvips").mkdir()  # a folder is not a file
    assert first_parts(tmp_path) == [
        "a.TVIPS",
        "b_000.tvips",
        "c_000.TVIPS",
        "c_0000.tvips",
    ]


def test_counts_frames_from_sizes_not_headers(make_tvips):
    # The counter says nothing about how many frames there are.
    rec = make_tvips(n_frames=5, records_per_part=2, header_values=lambda i: {"num": 1})
    assert TvipsRecording(rec.path).n_frames == 5


def test_relative_path(make_tvips, monkeypatch):
    rec = make_tvips(n_frames=4, records_per_part=2)
    monkeypatch.chdir(rec.path.parent)
    chain = find_parts(Path("rec_001.tvips"))
    assert chain.first.path == str(rec.path)


def test_middle_part_cut_short_is_reported(make_tvips):
    rec = make_tvips(n_frames=9, records_per_part=3)
    rec.paths[1].write_bytes(rec.paths[1].read_bytes()[:-10])
    # frame 6 now starts 10 bytes into rec_002: its "counter" is pixel data
    msg = (
        "rec_001.tvips at offset 242 (its end): the frame counter jumps from 6 to 0 "
        "at the start of rec_002.tvips; if the part lost bytes, every frame after "
        "it is shifted"
    )
    with pytest.warns(TvipsFormatWarning) as record:
        TvipsRecording(rec.path)
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("rec_002.tvips: frame record 8 at offset 178 is")
    assert messages[1:] == [msg]


def test_short_middle_part_without_counter(make_tvips):
    rec = make_tvips(n_frames=30, records_per_part=10, header_values=lambda i: {})
    rec.paths[1].write_bytes(rec.paths[1].read_bytes()[:-500])
    msg = (
        "rec_001.tvips at offset 340 (its end): the part holds 340 bytes of frames, "
        "far fewer than the others (840); if the part lost bytes, every frame "
        "after it is shifted"
    )
    with pytest.warns(TvipsFormatWarning) as record:
        TvipsRecording(rec.path)
    assert [str(w.message) for w in record][1:] == [msg]


def test_odd_splits_with_a_running_counter_are_fine(make_tvips):
    rec = make_tvips(n_frames=9, split=[10, 500, 501])
    np.testing.assert_array_equal(TvipsRecording(rec.path).asarray(), rec.frames)


# --- entries that are not regular files: named by stat alone --------------------


def make_socket(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: p.write_bytes(b""), None),
        (lambda p: p.symlink_to("file"), None),  # a link to a regular file
        (Path.mkdir, "a directory"),
        (os.mkfifo, "a FIFO"),
        (make_socket, "a socket"),
        (lambda p: p.symlink_to("/dev/null"), "a symbolic link to /dev/null, a "
         "character device"),
        (lambda p: p.symlink_to("sub"), "a symbolic link to sub, a directory"),
        (lambda p: p.symlink_to("nowhere"), "a dangling symbolic link to nowhere"),
        (lambda p: p.symlink_to(p.name), "a symbolic link to x_001.tvips "
         "that cannot be followed"),
    ],
    ids=[
        "file", "link to a file", "directory", "FIFO", "socket", "link to a device",
        "link to a directory", "dangling link", "link loop",
    ],
)  # fmt: skip
def test_kind_of(tmp_path, make, kind):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    entry = tmp_path / "x_001.tvips"
    make(entry)
    # by stat alone: a FIFO is not opened (tests/checks/test_validate.py
    # reads recordings with one, under an alarm)
    assert kind_of(entry) == kind


def test_kind_of_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        kind_of(tmp_path / "x_001.tvips")


def test_siblings_keeps_what_is_not_a_file_apart(make_tvips, tmp_path):
    rec = make_tvips(n_frames=4, records_per_part=2)
    (tmp_path / "rec_002.tvips").mkdir()
    (tmp_path / "rec_003.tvips").symlink_to("gone.tvips")
    # beside a regular file of the same number, an odd entry is not the part
    (tmp_path / "rec_001.TVIPS").mkdir()
    near = siblings(rec.paths[1])
    assert near.found == {0: rec.paths[0], 1: rec.paths[1]}
    assert near.irregular == {
        2: (tmp_path / "rec_002.tvips", "a directory"),
        3: (tmp_path / "rec_003.tvips", "a dangling symbolic link to gone.tvips"),
    }
    assert near.duplicates == []


def test_a_one_part_recording_that_is_not_a_file(tmp_path):
    (tmp_path / "renamed.tvips").mkdir()
    near = siblings(tmp_path / "renamed.tvips")
    assert near.found == {}
    assert near.irregular == {0: (tmp_path / "renamed.tvips", "a directory")}


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("x_000.tvips", "x_000.tvips"),
        ("x.tvips", "x.tvips"),
        ("x.tvips", "x_000.tvips"),
        ("x_002.tvips", "x_002.tvips"),
    ],
)
def test_first_part_finds_any_entry(tmp_path, name, entry):
    # whatever is there is opened, and the chain's checks say what it is
    (tmp_path / entry).symlink_to("gone")
    assert first_part(tmp_path / name) == tmp_path / entry
