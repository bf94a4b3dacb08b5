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

from rsciio_tvips import TvipsRecording, file_reader, file_writer

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
        with pytest.warns() if how == "padded" else nullcontext():
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
    # the first two points are blank: the first frame shown is frame 0
    with pytest.warns(UserWarning, match="place the first scan point at frame 5"):
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
    rec = make_tvips(n_frames=3000, shape=(1, 1), records_per_part=3000)
    read = []
    original = TvipsRecording.read_headers

    def counting(self, frames):
        read.append(len(frames))
        return original(self, frames)

    monkeypatch.setattr(TvipsRecording, "read_headers", counting)
    file_reader(rec.path, lazy=True, frame_headers=False, scan_shape=(50, 50))
    assert max(read) == 1024
