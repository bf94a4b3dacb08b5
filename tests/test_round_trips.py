"""Round trips keep their meaning: read, save, read again (issue 15).

A lazy read carries the frame headers as dask arrays, so that a lazy
``s.save`` writes what an eager one writes; the metadata describe the first
frame of the data returned; the headers' own idea of where a scan starts is
checked against ``scan_start_frame``. The suite turns every warning into an
error, so a read outside ``pytest.warns`` warns nothing.
"""

import re
from contextlib import nullcontext

import numpy as np
import pytest

from rsciio_tvips import TvipsFormatWarning, TvipsRecording, file_reader, file_writer

hs = pytest.importorskip("hyperspy.api")

#: Ways of reading the demo recording (16 x 16 scan from frame 5).
READS = {
    "stack": {},
    "scan": {"scan_shape": (16, 16), "scan_start_frame": 5},
    "snake": {
        "scan_shape": (16, 16),
        "scan_start_frame": 5,
        "winding_scan_axis": "x",
        "hysteresis": 2,
    },
    "auto": {"scan_shape": "auto"},
    "padded": {"scan_shape": (16, 17), "scan_start_frame": -2},
}


def _parts(folder, stem):
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"{stem}_*.tvips"))}


@pytest.mark.parametrize("how", sorted(READS))
def test_lazy_and_eager_saves_write_the_same_files(demo, tmp_path, how):
    kw = READS[how]
    written = {}
    for lazy in (False, True):
        if how == "padded":  # 2 blank points first, so 6 missing at the end
            with pytest.warns(TvipsFormatWarning, match="ends before its last 6"):
                (d,) = file_reader(demo, lazy=lazy, **kw)
        else:
            (d,) = file_reader(demo, lazy=lazy, **kw)
        stem = f"lazy{int(lazy)}"
        file_writer(tmp_path / f"{stem}.tvips", d, show_progressbar=False)
        written[lazy] = _parts(tmp_path, stem)
    eager, lazy = written[False], written[True]
    assert [n.replace("lazy0", "") for n in eager] == [
        n.replace("lazy1", "") for n in lazy
    ]
    assert list(eager.values()) == list(lazy.values())


def test_lazy_hyperspy_save_keeps_the_frame_headers(demo, tmp_path):
    import rsciio_tvips

    rsciio_tvips.register()
    try:
        for lazy in (False, True):
            s = hs.load(demo, lazy=lazy, scan_shape=(16, 16), scan_start_frame=5)
            s.save(tmp_path / f"h{int(lazy)}.tvips", show_progressbar=False)
    finally:
        rsciio_tvips.unregister()
    eager, lazy = _parts(tmp_path, "h0"), _parts(tmp_path, "h1")
    assert list(eager.values()) == list(lazy.values())
    # the counters, times, rotator and beam positions of the frames read
    kept = TvipsRecording(tmp_path / "h1_000.tvips").frame_headers
    source = TvipsRecording(demo).frame_headers[5 : 5 + 256]
    for name in ("num", "timestamp", "ms", "rotidx", "Scan_x", "Scan_y"):
        np.testing.assert_array_equal(kept[name], source[name])


def test_metadata_describe_the_first_frame_returned(demo, tmp_path):
    headers = TvipsRecording(demo).frame_headers
    (d,) = file_reader(demo, scan_shape=(16, 16), scan_start_frame=5)
    general = d["metadata"]["General"]
    t = int(headers[5]["timestamp"]) * 1000 + int(headers[5]["ms"])
    assert general["time"] == _clock(t)
    assert t != int(headers[0]["timestamp"]) * 1000 + int(headers[0]["ms"])
    # read, save, read: the time stays
    file_writer(tmp_path / "again.tvips", d, show_progressbar=False)
    (again,) = file_reader(tmp_path / "again_000.tvips")
    assert again["metadata"]["General"] == {
        **general,
        "title": "again",
        "original_filename": "again_000.tvips",
    }


def test_metadata_of_a_padded_scan_describe_its_first_frame(demo):
    # the first two points are blank: the first frame shown is frame 0 (a
    # negative start pads on purpose: the headers are not asked)
    (d,) = file_reader(demo, scan_shape=(16, 16), scan_start_frame=-2)
    (stack,) = file_reader(demo)
    assert d["metadata"]["General"]["time"] == stack["metadata"]["General"]["time"]


def _clock(ms) -> str:
    seconds, ms = divmod(int(ms), 1000)
    h, rest = divmod(seconds % 86400, 3600)
    text = f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{ms * 1000:06d}" if ms else text


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (0, "frame 5, not at scan_start_frame=0: pass scan_start_frame=5"),
        (7, "frame 5, not at scan_start_frame=7: pass scan_start_frame=5"),
    ],
)
def test_scan_placed_elsewhere_by_the_headers_warns(demo, start, message):
    text = (
        f"demo_000.tvips: the beam positions place the first scan point at {message} "
        '(or scan_shape="auto") to read the scan the headers describe'
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(text)}$"):
        file_reader(demo, lazy=True, scan_shape=(16, 16), scan_start_frame=start)


def test_rotator_index_placing_the_scan_elsewhere_warns(make_tvips):
    # EM-Konos: rotidx 0 before the scan, then 1, 2, ...
    rec = make_tvips(n_frames=21, header_values=lambda i: {"rotidx": max(0, i - 4)})
    text = (
        "rec_000.tvips: the rotator indices place the first scan point at frame 5, "
        "not at scan_start_frame=0: pass scan_start_frame=5"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(text)}"):
        file_reader(rec.path, scan_shape=(4, 4))
    with nullcontext():
        (d,) = file_reader(rec.path, scan_shape=(4, 4), scan_start_frame=5)
    np.testing.assert_array_equal(d["data"].reshape(16, 3, 4), rec.frames[5:])


@pytest.mark.parametrize(
    "values",
    [
        lambda i: {"rotidx": i},  # RosettaSciIO's writer: from 0
        lambda i: {"rotidx": i + 1},  # from 1
        lambda i: {"rotidx": 0},  # no scan information
    ],
    ids=["counting from 0", "counting from 1", "zero"],
)
def test_headers_that_agree_give_no_warning(make_tvips, values):
    rec = make_tvips(n_frames=12, header_values=values)
    with nullcontext():
        file_reader(rec.path, scan_shape=(3, 4))
        file_reader(rec.path, scan_shape=(2, 4), scan_start_frame=4)


def test_start_check_reads_a_bounded_window(make_tvips, monkeypatch):
    from rsciio_tvips._scans.plan import START_WINDOW

    rec = make_tvips(n_frames=3000, shape=(1, 1), records_per_part=3000)
    read = []
    original = TvipsRecording.read_header_fields

    def counting(self, frames):
        read.append(len(frames))
        return original(self, frames)

    monkeypatch.setattr(TvipsRecording, "read_header_fields", counting)
    kw = {"lazy": True, "frame_headers": False, "scan_shape": (40, 50)}
    file_reader(rec.path, scan_start_frame=1000, **kw)
    # the window around frame 1000, and the counter checks of opening
    assert 2 * START_WINDOW in read
    assert sum(read) <= 2 * START_WINDOW + 8


def test_wound_scan_saved_reopens_as_the_same_scan(make_tvips, tmp_path):
    # EM-Konos: rotidx 1..64 on an 8 x 8 snake with a lag of one point
    rec = make_tvips(
        n_frames=64,
        shape=(2, 3),
        frame_header_bytes=108,
        header_values=lambda i: {"num": i + 1, "rotidx": i + 1},
    )
    kw = {"scan_shape": "auto", "winding_scan_axis": "x", "hysteresis": 1}
    for lazy in (False, True):
        (d,) = file_reader(rec.path, lazy=lazy, **kw)
        file_writer(tmp_path / f"w{int(lazy)}.tvips", d, show_progressbar=False)
        (again,) = file_reader(tmp_path / f"w{int(lazy)}_000.tvips", scan_shape="auto")
        np.testing.assert_array_equal(again["data"], np.asarray(d["data"]))
        # the rotator index and the beam positions say where a frame is now
        h = TvipsRecording(tmp_path / f"w{int(lazy)}_000.tvips").frame_headers
        np.testing.assert_array_equal(h["rotidx"], np.arange(1, 65))
        np.testing.assert_array_equal(h["Scan_x"], np.arange(64) % 8)


def test_our_scans_read_from_a_later_row_give_no_warning(tmp_path):
    data = np.arange(100 * 6, dtype=np.uint16).reshape(10, 10, 2, 3)
    axes = [{"size": n, "navigate": i < 2} for i, n in enumerate(data.shape)]
    file_writer(
        tmp_path / "s.tvips", {"data": data, "axes": axes}, show_progressbar=False
    )
    path = tmp_path / "s_000.tvips"
    (d,) = file_reader(path, scan_shape=(9, 10), scan_start_frame=10)
    np.testing.assert_array_equal(d["data"], data[1:])
    (d,) = file_reader(path, scan_shape=(9, 10), scan_start_frame=-2)
    np.testing.assert_array_equal(
        d["data"].reshape(90, 2, 3)[2:], data.reshape(100, 2, 3)[:88]
    )


def test_lazy_hspy_save_reads_the_headers_once(demo, tmp_path, monkeypatch):
    import rsciio_tvips
    from rsciio_tvips._reading import lazy

    read = []
    original = lazy.read_headers

    def counting(records, frames):
        read.append(len(frames))
        return original(records, frames)

    monkeypatch.setattr(lazy, "read_headers", counting)
    lazy.HEADER_CACHE.__init__(lazy.HEADER_CACHE.budget)  # start empty
    rsciio_tvips.register()
    try:
        s = hs.load(demo, lazy=True, scan_shape=(16, 16), scan_start_frame=5)
        s.save(tmp_path / "x.hspy", show_progressbar=False)
        again = hs.load(tmp_path / "x.hspy")
    finally:
        rsciio_tvips.unregister()
    assert read == [256]  # one block of 256 points, for all 27 fields
    kept = again.original_metadata.frame_headers
    np.testing.assert_array_equal(kept.num, np.arange(6, 262))
