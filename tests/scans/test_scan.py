"""Scan reconstruction, checked point by point against the acquisition.

Every recording here is written through an acquisition pattern (fly-back
raster, snake with hysteresis, EM-Konos rotator sequences, EM-Scan beam
positions) from frames that encode their true scan point: every pixel of the
frame of point (y, x) is ``y * nx + x + 1``. The expected scan is then known
without running any placement algorithm: it is ``truth(ny, nx)``, with 0
where a point is blank.
"""

import re

import numpy as np
import pytest

from rsciio_tvips import TvipsFormatError, TvipsFormatWarning, file_reader

JUNK = 50_000  # frames outside the scan
SHAPE = (3, 4)  # frame shape


def truth(ny, nx, offset=0):
    """The scan as it must come out: point (y, x) shows y * nx + x + 1."""
    values = np.arange(ny * nx, dtype=np.uint16).reshape(ny, nx) + 1 + offset
    return np.broadcast_to(values[..., None, None], (ny, nx, *SHAPE)).copy()


def frames_of(values):
    """Frames showing the given values (every pixel)."""
    values = np.asarray(values, dtype=np.uint16)
    return np.broadcast_to(values[:, None, None], (values.size, *SHAPE)).copy()


def read_both(path, **kw):
    """Read eagerly and lazily; check they agree; return the eager dict."""
    (eager,) = file_reader(path, **kw)
    (lazy,) = file_reader(path, lazy=True, frame_headers=True, **kw)
    np.testing.assert_array_equal(lazy["data"].compute(), eager["data"])
    lazy_headers = lazy["original_metadata"].pop("frame_headers")
    eager_headers = eager["original_metadata"].pop("frame_headers")
    assert lazy["original_metadata"] == eager["original_metadata"]
    assert list(lazy_headers) == list(eager_headers)
    for name, values in eager_headers.items():
        np.testing.assert_array_equal(lazy_headers[name], values)
        assert len(values) == eager["data"][..., 0, 0].size
    return eager


# --- fly-back raster -----------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [(0, 0), (5, 0), (3, 7)])
def test_raster_with_junk_frames(make_tvips, before, after):
    values = [JUNK] * before + list(range(1, 13)) + [JUNK] * after
    rec = make_tvips(frames=frames_of(values), records_per_part=5)
    d = read_both(rec.paths[-1], scan_shape=(3, 4), scan_start_frame=before)
    np.testing.assert_array_equal(d["data"], truth(3, 4))
    scan = d["original_metadata"]["Scan"]
    assert scan == {
        "method": "sequential",
        "start_frame": before,
        "stop_frame": before + 12,
        "frames_before_scan": before,
        "frames_after_scan": after,
        "padded_points": 0,
        "missing_points": 0,
        "incomplete_points": 0,
        "winding_scan_axis": "",
        "hysteresis": 0,
        "hysteresis_wrap": False,
        "shape": [3, 4],
        "blank_points": 0,
    }
    assert "Diagnostics" not in d["original_metadata"]  # no header pass needed


@pytest.mark.parametrize(
    ("scan_shape", "names"),
    [
        ((12,), ["x"]),
        ((3, 4), ["y", "x"]),
        ((2, 2, 3), [None, "y", "x"]),
        ((1, 2, 2, 3), [None, None, "y", "x"]),
    ],
)
def test_axes_for_every_shape_length(make_tvips, scan_shape, names):
    rec = make_tvips(frames=frames_of(range(1, 13)))
    d = read_both(rec.path, scan_shape=scan_shape)
    np.testing.assert_array_equal(d["data"], truth(3, 4).reshape(*scan_shape, *SHAPE))
    nav = d["axes"][: len(scan_shape)]
    assert [a.get("name") for a in nav] == names
    assert [a["size"] for a in nav] == list(scan_shape)
    assert all(a["navigate"] for a in nav) and not d["axes"][-1]["navigate"]
    assert [a["index_in_array"] for a in d["axes"]] == list(range(len(scan_shape) + 2))


def test_negative_start_pads(make_tvips):
    rec = make_tvips(frames=frames_of(range(3, 13)))  # points 1 and 2 not recorded
    d = read_both(rec.path, scan_shape=(3, 4), scan_start_frame=-2)
    expected = truth(3, 4)
    expected[0, :2] = 0
    np.testing.assert_array_equal(d["data"], expected)
    scan = d["original_metadata"]["Scan"]
    assert (scan["padded_points"], scan["blank_points"]) == (2, 2)


def test_incomplete_scan_is_padded_with_a_warning(make_tvips):
    rec = make_tvips(frames=frames_of([JUNK, *range(1, 10)]))
    msg = (
        "rec_000.tvips: the scan of shape (3, 4) ends before its last 3 "
        "point(s): the recording has 10 frames; they are blank"
    )
    with pytest.warns(TvipsFormatWarning, match=f"^{re.escape(msg)}$"):
        d = read_both(rec.path, scan_shape=(3, 4), scan_start_frame=1)
    expected = truth(3, 4)
    expected[2, 1:] = 0
    np.testing.assert_array_equal(d["data"], expected)
    assert d["original_metadata"]["Scan"]["missing_points"] == 3


def test_incomplete_scan_can_be_an_error(make_tvips):
    rec = make_tvips(frames=frames_of(range(1, 10)))
    with pytest.raises(TvipsFormatError, match=r"ends before its last 3 point\(s\)"):
        file_reader(rec.path, scan_shape=(3, 4), incomplete_scan="error")


# --- snake scans ---------------------------------------------------------


def snake_values(ny, nx, h, axis="x"):
    """What a snake scan records, frame by frame, with hysteresis ``h``.

    ``axis="x"``: rows 0, 2, ... run from high x to low x and overshoot by
    ``h``: step k of such a row records point x = nx - 1 - k + h, a point
    outside the scan (``JUNK``) when that is past the edge; odd rows run
    forward. ``axis="y"`` is RosettaSciIO's meaning: frames fill the rows in
    order, and columns 0, 2, ... are the ones reversed (and overshoot) along y.
    """
    true = np.arange(ny * nx).reshape(ny, nx) + 1
    t = true if axis == "x" else true.T
    recorded = np.empty_like(t)
    for r in range(t.shape[0]):
        for k in range(t.shape[1]):
            x = t.shape[1] - 1 - k + h if r % 2 == 0 else k
            recorded[r, k] = t[r, x] if 0 <= x < t.shape[1] else JUNK
    if axis == "y":
        recorded = recorded.T
    return recorded.ravel().tolist()


@pytest.mark.parametrize("h", [0, 1, 2, 3])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_snake_with_hysteresis(make_tvips, h, axis):
    ny, nx = 4, 5
    rec = make_tvips(frames=frames_of([JUNK, JUNK, *snake_values(ny, nx, h, axis)]))
    d = read_both(
        rec.path,
        scan_shape=(ny, nx),
        scan_start_frame=2,
        winding_scan_axis=axis,
        hysteresis=h,
    )
    expected = truth(ny, nx)
    if axis == "x":
        expected[0::2, :h] = 0  # vacated by the shift
    else:
        expected[:h, 0::2] = 0
    np.testing.assert_array_equal(d["data"], expected)
    scan = d["original_metadata"]["Scan"]
    assert (scan["winding_scan_axis"], scan["hysteresis"]) == (axis, h)
    reversed_lines = 2 if axis == "x" else 3
    assert scan["hysteresis_blank_points"] == reversed_lines * h
    assert scan["blank_points"] == int((expected[..., 0, 0] == 0).sum())
    assert scan["hysteresis_dropped_frames"] == (
        int((expected[..., 0, 0] == 0).sum())
    )  # the overshoot frames (JUNK)


@pytest.mark.parametrize("h", [0, 2, -1])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_wrapping_hysteresis_matches_rsciio(make_tvips, h, axis):
    rsciio_tvips_ref = pytest.importorskip("rsciio.tvips")
    rec = make_tvips(frames=frames_of(range(1, 21)))
    kw = {"scan_shape": (4, 5), "winding_scan_axis": axis, "hysteresis": h}
    (ref,) = rsciio_tvips_ref.file_reader(str(rec.path), **kw)
    d = read_both(rec.path, hysteresis_wrap=True, **kw)
    np.testing.assert_array_equal(d["data"], ref["data"])
    assert d["original_metadata"]["Scan"]["hysteresis_dropped_frames"] == 0


def test_winding_matches_the_tvips_convention(make_tvips):
    # rows 0 and 2 run backwards: the frames 1..5 of row 0 land at x = 4..0
    rec = make_tvips(frames=frames_of(range(1, 16)))
    d = read_both(rec.path, scan_shape=(3, 5), winding_scan_axis="x")
    np.testing.assert_array_equal(
        d["data"][..., 0, 0], [[5, 4, 3, 2, 1], [6, 7, 8, 9, 10], [15, 14, 13, 12, 11]]
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"scan_shape": (12,), "winding_scan_axis": "x"},
            "winding needs a scan of at least two axes, got shape (12,)",
        ),
        (
            {"scan_shape": (3, 4), "winding_scan_axis": "z"},
            'winding_scan_axis must be "x", "y" or None, got \'z\'',
        ),
        (
            {"scan_shape": (3, 4), "winding_scan_axis": "x", "hysteresis": 4},
            "hysteresis 4 must be smaller than the scan's 4 points",
        ),
        (
            {"scan_shape": (3, 4), "winding_scan_axis": "x", "hysteresis": 1.5},
            'hysteresis must be an integer or "auto", got 1.5',
        ),
        (
            {"scan_shape": (3, 4), "winding_scan_axis": "x", "hysteresis": "big"},
            "hysteresis must be an integer or \"auto\", got 'big'",
        ),
        (
            {"scan_shape": (3, 4), "scan_method": "spiral"},
            "scan_method must be one of ('sequential', 'rotator', 'positions') or "
            "None, got 'spiral'",
        ),
        (
            {"scan_shape": "auto", "scan_method": "sequential"},
            'scan_method="sequential" needs scan_shape as a tuple',
        ),
        (
            {"scan_shape": (3, 4), "incomplete_scan": "maybe"},
            'incomplete_scan must be "pad" or "error", got \'maybe\'',
        ),
        (
            {"scan_shape": (0, 4)},
            "scan_shape must be a tuple of positive integers, got (0, 4)",
        ),
        (
            {"scan_shape": "square"},
            "scan_shape must be a tuple of positive integers, got 'square'",
        ),
        (
            {"scan_shape": (2.5, 2)},
            "scan_shape must be a tuple of positive integers, got (2.5, 2)",
        ),
    ],
)
def test_bad_scan_options(make_tvips, kw, message):
    rec = make_tvips(frames=frames_of(range(1, 13)))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        file_reader(rec.path, **kw)


# --- EM-Konos rotator index ------------------------------------------------


def rotator_recording(make_tvips, counts, before=3, after=2, second=None):
    """Frames recorded per point: ``counts[p]`` frames carry rotidx p + 1.

    Each frame of point p shows p + 1, except pixel [0, 0], which holds the
    frame's repeat number (0, 1, 2 ...) to tell first and last apart.
    """
    values, rotidx, repeat = [JUNK] * before, [0] * before, [0] * before
    for scan_offset, scan_counts in ((0, counts), (1000, second)):
        if scan_counts is None:
            continue
        for p, count in enumerate(scan_counts):
            for r in range(count):
                values.append(p + 1 + scan_offset)
                rotidx.append(p + 1)
                repeat.append(r)
        values += [JUNK] * after
        rotidx += [0] * after
        repeat += [0] * after
    frames = frames_of(values)
    frames[:, 0, 0] = repeat
    rec = make_tvips(
        frames=frames,
        records_per_part=7,
        header_values=lambda i: {"num": i + 1, "rotidx": rotidx[i]},
    )
    return rec


def expected_rotator(counts, ny, nx, rule="first", missing="blank", offset=0):
    out = truth(ny, nx, offset).reshape(ny * nx, *SHAPE)
    last_seen = None
    for p, count in enumerate(counts):
        if count:
            out[p, 0, 0] = 0 if rule == "first" else count - 1
            last_seen = p
        elif missing == "previous" and last_seen is not None:
            out[p] = out[last_seen]
        else:
            out[p] = 0
    return out.reshape(ny, nx, *SHAPE)


COUNTS = [1, 2, 1, 0, 3, 1, 1, 0, 0, 1, 2, 1, 1, 1, 1, 1]  # 4 x 4, gaps, repeats


@pytest.mark.parametrize("rule", ["first", "last"])
@pytest.mark.parametrize("missing", ["blank", "previous"])
def test_rotator_auto(make_tvips, rule, missing):
    rec = rotator_recording(make_tvips, COUNTS)
    d = read_both(
        rec.paths[1], scan_shape="auto", repeated_points=rule, missing_points=missing
    )
    np.testing.assert_array_equal(
        d["data"], expected_rotator(COUNTS, 4, 4, rule, missing)
    )
    scan = d["original_metadata"]["Scan"]
    n = sum(COUNTS)
    assert {
        k: scan[k]
        for k in (
            "method",
            "scans_found",
            "scan_index",
            "start_frame",
            "stop_frame",
            "frames_before_scan",
            "frames_after_scan",
            "repeated_frames",
            "missing_points",
            "filled_points",
            "shape",
            "incomplete_points",
        )
    } == {
        "method": "rotator",
        "scans_found": 1,
        "scan_index": 0,
        "start_frame": 3,
        "stop_frame": 3 + n,
        "frames_before_scan": 3,
        "frames_after_scan": 2,
        "repeated_frames": 4,
        "missing_points": 3,
        "filled_points": 3 if missing == "previous" else 0,
        "shape": [4, 4],
        "incomplete_points": 0,
    }
    assert d["original_metadata"]["Diagnostics"]["counter_gaps"] == 0


def test_rotator_with_snake_and_hysteresis(make_tvips):
    # the rotator index counts points along the path; winding applies on top
    path_counts = [1] * 12
    rec = rotator_recording(make_tvips, path_counts)
    d = read_both(
        rec.path,
        scan_shape=(3, 4),
        scan_method="rotator",
        winding_scan_axis="x",
        hysteresis=1,
    )
    got = d["data"][..., 1, 1]
    np.testing.assert_array_equal(got, [[0, 4, 3, 2], [5, 6, 7, 8], [0, 12, 11, 10]])


def test_rotator_non_square_needs_the_shape(make_tvips):
    counts = [1] * 12
    rec = rotator_recording(make_tvips, counts)
    msg = (
        "the rotator indices go up to 12 points, which is not a square: give "
        "the scan shape, scan_shape=(ny, nx)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_reader(rec.path, scan_shape="auto")
    d = read_both(rec.path, scan_shape=(3, 4), scan_method="rotator")
    np.testing.assert_array_equal(d["data"], expected_rotator(counts, 3, 4))


def test_rotator_two_scans(make_tvips):
    second = [1, 1, 2, 1, 1, 0, 1, 1, 1]
    first = [1] * 9
    rec = rotator_recording(make_tvips, first, second=second)
    d = read_both(rec.path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], expected_rotator(first, 3, 3))
    assert d["original_metadata"]["Scan"]["scans_found"] == 2
    for index in (1, -1):
        d = read_both(rec.path, scan_shape="auto", scan_index=index)
        np.testing.assert_array_equal(
            d["data"], expected_rotator(second, 3, 3, offset=1000)
        )
        assert d["original_metadata"]["Scan"]["scan_index"] == 1
    msg = "scan_index 2 is out of range: the rotator indices hold 2 scan(s)"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_reader(rec.path, scan_shape="auto", scan_index=2)
    # frames before scan_start_frame are not searched
    d = read_both(rec.path, scan_shape="auto", scan_start_frame=12)
    assert d["original_metadata"]["Scan"]["start_frame"] == 3 + 9 + 2


def test_rotator_scan_cut_short(make_tvips):
    counts = [1] * 7  # a 3 x 3 scan interrupted after point 7
    rec = rotator_recording(make_tvips, counts, after=0)
    with pytest.warns(TvipsFormatWarning, match=r"ends before its last 2 point"):
        d = read_both(rec.path, scan_shape=(3, 3), scan_method="rotator")
    np.testing.assert_array_equal(d["data"], expected_rotator([*counts, 0, 0], 3, 3))


def test_rotator_counter_without_drop_is_cut_at_the_shape(make_tvips):
    counts = [1] * 12  # rotidx runs on past the 3 x 3 scan
    rec = rotator_recording(make_tvips, counts)
    d = read_both(rec.path, scan_shape=(3, 3), scan_method="rotator")
    np.testing.assert_array_equal(d["data"], expected_rotator(counts[:9], 3, 3))
    assert d["original_metadata"]["Scan"]["frames_past_end"] == 3


# --- EM-Scan beam positions -----------------------------------------------


def position_recording(make_tvips, ny, nx, before, gaps=(), repeats=()):
    values, xs, ys = [], [], []
    for i in range(before):  # the beam parked somewhere before the scan
        values.append(JUNK)
        xs.append(float(i % 3))
        ys.append(7.0)
    for y in range(ny):
        for x in range(nx):
            p = y * nx + x
            for _ in range(0 if p in gaps else 2 if p in repeats else 1):
                values.append(p + 1)
                xs.append(float(x))
                ys.append(float(y))
    values += [JUNK] * 3
    xs += [0.0] * 3
    ys += [0.0] * 3
    return make_tvips(
        frames=frames_of(values),
        shape=SHAPE,
        frame_header_bytes=108,
        records_per_part=1500,
        header_values=lambda i: {"num": i + 1, "Scan_x": xs[i], "Scan_y": ys[i]},
    )


def test_positions_with_a_late_start(make_tvips):
    # the scan starts in the fourth file, after more than 4096 frames
    rec = position_recording(make_tvips, 3, 5, before=4500)
    d = read_both(rec.path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], truth(3, 5))
    scan = d["original_metadata"]["Scan"]
    assert (scan["method"], scan["start_frame"], scan["shape"]) == (
        "positions",
        4500,
        [3, 5],
    )
    assert scan["frames_after_scan"] == 3


def test_positions_with_gaps_and_repeats(make_tvips):
    rec = position_recording(make_tvips, 3, 4, before=2, gaps=(5,), repeats=(2, 9))
    d = read_both(rec.path, scan_shape="auto")
    expected = truth(3, 4)
    expected[1, 1] = 0
    np.testing.assert_array_equal(d["data"], expected)
    scan = d["original_metadata"]["Scan"]
    assert (scan["repeated_frames"], scan["missing_points"]) == (2, 1)
    # the row length cannot be told from a missing first-row point, so give it
    d = read_both(rec.path, scan_shape=(3, 4), scan_method="positions")
    np.testing.assert_array_equal(d["data"], expected)


def test_garbage_positions_fall_back_to_the_rotator(make_tvips):
    rec = make_tvips(
        n_frames=6,
        frame_header_bytes=108,
        header_values=lambda i: {
            "rotidx": [0, 1, 2, 3, 4, 0][i],
            "Scan_x": 0.5,
            "Scan_y": -1.0,
        },
    )
    d = read_both(rec.path, scan_shape="auto")
    assert d["original_metadata"]["Scan"]["method"] == "rotator"
    assert d["data"].shape[:2] == (2, 2)


# --- diagnostics ----------------------------------------------------------


def test_diagnostics(make_tvips):
    nums = [1, 2, 3, 6, 7, 7, 8, 9]
    times = [0, 100, 200, 500, 600, 550, 700, 800]
    rec = make_tvips(
        n_frames=8,
        header_values=lambda i: {
            "num": nums[i],
            "timestamp": 1000 + times[i] // 1000,
            "ms": times[i] % 1000,
        },
    )
    (d,) = file_reader(rec.path, diagnostics=True)
    assert d["original_metadata"]["Diagnostics"] == {
        "counter_gaps": 1,
        "counter_missing": 2,
        "counter_resets": 1,
        "time_reversals": 1,
        "frame_interval_ms": 100.0,
        "frame_rate": 10.0,
        "duration_s": 0.8,
    }
    (d,) = file_reader(rec.path)
    assert "Diagnostics" not in d["original_metadata"]


# --- hysteresis="auto" ------------------------------------------------------


def disk_frames(points_yx, size=24, steps=(0.9, 1.3)):
    """4D-STEM frames: a bright disk whose centre moves with the scan point."""
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((len(points_yx), size, size), np.uint16)
    for i, (y, x) in enumerate(points_yx):
        cy, cx = 5 + steps[0] * y, 5 + steps[1] * x
        out[i] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < 9, 1000, 20)
    return out


def snake_points(ny, nx, h, axis):
    """The true point of every frame of a snake scan with hysteresis ``h``.

    The acquisition model of :func:`snake_values`, but points past the edge
    are kept (the beam overshoots onto the sample beyond the scan, where the
    disk keeps moving).
    """
    if axis == "x":
        return [
            (r, nx - 1 - k + h if r % 2 == 0 else k)
            for r in range(ny)
            for k in range(nx)
        ]
    return [
        (ny - 1 - y + h if c % 2 == 0 else y, c) for y in range(ny) for c in range(nx)
    ]


@pytest.mark.parametrize("h", [0, 1, 2, 3, 4, 5, -2])
@pytest.mark.parametrize(
    ("axis", "steps"),
    [("x", (0.9, 1.3)), ("x", (1.3, 0.9)), ("y", (0.9, 1.3)), ("y", (0.4, 0.3))],
)
def test_auto_hysteresis_recovers_the_shift(make_tvips, h, axis, steps):
    ny, nx = (8, 16) if axis == "x" else (16, 8)
    rec = make_tvips(frames=disk_frames(snake_points(ny, nx, h, axis), 40, steps))
    d = read_both(
        rec.path, scan_shape=(ny, nx), winding_scan_axis=axis, hysteresis="auto"
    )
    scan = d["original_metadata"]["Scan"]
    assert (scan["hysteresis"], scan["hysteresis_estimated"]) == (h, True)
    expected = disk_frames([(y, x) for y in range(ny) for x in range(nx)], 40, steps)
    expected = expected.reshape(ny, nx, 40, 40)
    if axis == "x":
        expected[0::2, : max(h, 0)] = 0
        expected[0::2, nx + min(h, 0) :] = 0
    else:
        expected[: max(h, 0), 0::2] = 0
        expected[ny + min(h, 0) :, 0::2] = 0
    np.testing.assert_array_equal(d["data"], expected)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"repeated_points": "middle"},
            "repeat rule must be one of ('first', 'last'), got 'middle'",
        ),
        (
            {"missing_points": "zero"},
            "missing-point rule must be one of ('blank', 'previous'), got 'zero'",
        ),
    ],
)
def test_bad_placement_rules(make_tvips, kw, message):
    rec = rotator_recording(make_tvips, [1] * 4)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        file_reader(rec.path, scan_shape="auto", **kw)


def test_auto_hysteresis_with_blank_points(make_tvips):
    # two blank points in front (negative start) do not disturb the estimate
    ny, nx, h = 6, 9, 2
    path = [
        (r, nx - 1 - k + h if r % 2 == 0 else k) for r in range(ny) for k in range(nx)
    ]
    rec = make_tvips(frames=disk_frames(path)[2:])
    d = read_both(
        rec.path,
        scan_shape=(ny, nx),
        scan_start_frame=-2,
        winding_scan_axis="x",
        hysteresis="auto",
    )
    assert d["original_metadata"]["Scan"]["hysteresis"] == h


def test_scan_point_reads_only_its_frame(make_tvips, monkeypatch):
    from rsciio_tvips._reading import preadv as _io

    rec = make_tvips(frames=frames_of(snake_values(4, 5, 2)), records_per_part=6)
    (d,) = file_reader(
        rec.path, lazy=True, scan_shape=(4, 5), winding_scan_axis="x", hysteresis=2
    )
    seen = []
    real = _io.read_pieces

    def spy(chain, offsets, length, dest, rows):
        seen.append(list(offsets))
        return real(chain, offsets, length, dest, rows)

    monkeypatch.setattr(_io, "read_pieces", spy)
    # row 0 runs backwards and overshoots by 2: step k records x = 6 - k, so
    # point (0, 3) is frame 3
    np.testing.assert_array_equal(d["data"][0, 3].compute(), truth(4, 5)[0, 3])
    assert seen == [[3 * (60 + 24) + 60]]


def test_eager_scan_is_one_copy(make_tvips):
    import tracemalloc

    ny, nx = 8, 10
    frames = np.zeros((ny * nx, 128, 128), np.uint16)
    rec = make_tvips(frames=frames, records_per_part=13)
    tracemalloc.start()
    (d,) = file_reader(
        rec.path, scan_shape=(ny, nx), winding_scan_axis="x", hysteresis=3
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert d["data"].shape == (ny, nx, 128, 128)
    assert peak < 1.1 * d["data"].nbytes


# --- robustness (found in review) -----------------------------------------------


def positions_from(points_yx, values=None):
    xs = [float(x) for _, x in points_yx]
    ys = [float(y) for y, _ in points_yx]
    values = (
        values
        if values is not None
        else [y * 4 + x + 1 if 0 <= x < 4 else JUNK for y, x in points_yx]
    )
    return values, xs, ys


def positions_rec(make_tvips, values, xs, ys, name="rec"):
    return make_tvips(
        name=name,
        frames=frames_of(values),
        frame_header_bytes=108,
        header_values=lambda i: {"num": i + 1, "Scan_x": xs[i], "Scan_y": ys[i]},
    )


def test_positions_row_length_survives_a_dropped_row_end(make_tvips):
    path = [(y, x) for y in range(3) for x in range(4) if (y, x) != (0, 3)]
    rec = positions_rec(make_tvips, *positions_from(path))
    d = read_both(rec.path, scan_shape="auto")
    expected = truth(3, 4)
    expected[0, 3] = 0
    np.testing.assert_array_equal(d["data"], expected)
    assert d["original_metadata"]["Scan"]["shape"] == [3, 4]


@pytest.mark.parametrize("dropped", [(0, 0), (0, 1)])
def test_positions_without_the_first_frames(make_tvips, dropped):
    path = [(7, 2), (7, 2)] + [
        (y, x) for y in range(3) for x in range(4) if (y, x) != dropped
    ]
    rec = positions_rec(
        make_tvips,
        *positions_from(path, [JUNK, JUNK] + [y * 4 + x + 1 for y, x in path[2:]]),
    )
    d = read_both(rec.path, scan_shape="auto")
    expected = truth(3, 4)
    expected[dropped] = 0
    np.testing.assert_array_equal(d["data"], expected)


def test_positions_glitch_after_the_scan(make_tvips):
    path = [(y, x) for y in range(3) for x in range(4)] + [(3, 900000), (0, 0)]
    values = [y * 4 + x + 1 for y, x in path[:12]] + [JUNK, JUNK]
    rec = positions_rec(make_tvips, *positions_from(path, values))
    d = read_both(rec.path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], truth(3, 4))
    assert d["original_metadata"]["Scan"]["frames_after_scan"] == 2


@pytest.mark.parametrize("glitch", [65535**2, 4_000_000_000])
def test_rotator_glitch_ends_the_scan(make_tvips, glitch):
    rotidx = [0, 0, *range(1, 10), glitch, 0, 0]
    values = [JUNK, JUNK, *range(1, 10), JUNK, JUNK, JUNK]
    rec = make_tvips(
        frames=frames_of(values),
        header_values=lambda i: {"num": i + 1, "rotidx": rotidx[i]},
    )
    d = read_both(rec.path, scan_shape="auto")
    np.testing.assert_array_equal(d["data"], truth(3, 3))
    assert d["original_metadata"]["Scan"]["frames_after_scan"] == 3


def test_beam_parked_after_the_scan(make_tvips):
    # rotidx stays at the last point for 4 more frames: not part of the scan
    rotidx = [0, *range(1, 10), 9, 9, 9, 9]
    values = [JUNK, *range(1, 10), JUNK, JUNK, JUNK, JUNK]
    rec = make_tvips(
        frames=frames_of(values),
        header_values=lambda i: {"num": i + 1, "rotidx": rotidx[i]},
    )
    d = read_both(rec.path, scan_shape="auto", repeated_points="last")
    np.testing.assert_array_equal(d["data"], truth(3, 3))
    scan = d["original_metadata"]["Scan"]
    assert (scan["frames_after_scan"], scan["repeated_frames"]) == (4, 0)


def test_previous_does_not_fill_an_interrupted_scan(make_tvips):
    rec = rotator_recording(make_tvips, [1] * 7, after=0)
    with pytest.warns(
        TvipsFormatWarning, match=r"last 2 point\(s\).*; they are blank$"
    ):
        d = read_both(
            rec.path,
            scan_shape=(3, 3),
            scan_method="rotator",
            missing_points="previous",
        )
    np.testing.assert_array_equal(d["data"], expected_rotator([1] * 7 + [0, 0], 3, 3))
    scan = d["original_metadata"]["Scan"]
    assert (scan["filled_points"], scan["blank_points"]) == (0, 2)


def test_a_missing_last_point_is_not_an_incomplete_scan(make_tvips):
    counts = [1] * 8 + [0]  # the last point skipped, then the index drops back
    rec = rotator_recording(make_tvips, counts, after=3)
    d = read_both(
        rec.path, scan_shape=(3, 3), scan_method="rotator", incomplete_scan="error"
    )
    scan = d["original_metadata"]["Scan"]
    assert (scan["incomplete_points"], scan["missing_points"]) == (0, 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scan_start_frame": None}, "scan_start_frame must be an integer, got None"),
        ({"scan_start_frame": 1.7}, "scan_start_frame must be an integer, got 1.7"),
        ({"scan_index": "a"}, "scan_index must be an integer, got 'a'"),
        (
            {"scan_start_frame": 12},
            "scan_start_frame 12 is past the last frame of the recording (11)",
        ),
        (
            {"scan_shape": (10**6, 10**6)},
            "a scan of shape (1000000, 1000000) has 1000000000000 points, far more "
            "than the 12 frames it can be made of: check scan_shape",
        ),
    ],
)
def test_bad_scan_numbers(make_tvips, kw, message):
    rec = make_tvips(frames=frames_of(range(1, 13)))
    kw = {"scan_shape": (3, 4), **kw}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        file_reader(rec.path, lazy=True, **kw)


@pytest.mark.parametrize(
    ("kw", "plain", "ignored"),
    [
        (
            {"scan_shape": (3, 4), "hysteresis": 2},
            {"scan_shape": (3, 4)},
            "hysteresis=2 (it shifts the reversed rows of snake scans: give "
            "winding_scan_axis too)",
        ),
        (
            {"winding_scan_axis": "x", "hysteresis": 1, "scan_start_frame": 3},
            {},
            "scan_start_frame=3 (it applies to scans: give scan_shape too); "
            "winding_scan_axis='x' (it applies to scans: give scan_shape too); "
            "hysteresis=1 (it applies to scans: give scan_shape too)",
        ),
        (
            {"scan_shape": "auto", "scan_start_frame": 20, "hysteresis": 1},
            {"scan_shape": "auto"},
            "hysteresis=1 (it shifts the reversed rows of snake scans: give "
            "winding_scan_axis too); scan_start_frame=20 (past the last frame, "
            "16: the scan is searched for from frame 0)",
        ),
        (
            {"scan_shape": "auto", "scan_start_frame": -1},
            {"scan_shape": "auto"},
            "scan_start_frame=-1 (blank points pad sequential scans only: frames "
            "placed by their headers' index are not shifted)",
        ),
    ],
    ids=["hysteresis without winding", "scan options of a stack", "auto", "negative"],
)
def test_options_that_cannot_apply_are_ignored(make_tvips, kw, plain, ignored):
    # RosettaSciIO ignores them (scripts pass them always): so do we, saying so
    rec = make_tvips(frames=frames_of(range(17)))  # rotidx 0..16: a 4 x 4 scan
    (expected,) = file_reader(rec.path, **plain)
    for lazy in (False, True):
        with pytest.warns(UserWarning) as caught:
            (d,) = file_reader(rec.path, lazy=lazy, **kw)
        assert [str(w.message) for w in caught] == [f"rec_000.tvips: ignored {ignored}"]
        np.testing.assert_array_equal(np.asarray(d["data"]), expected["data"])


def test_winding_of_placed_positions_is_ignored(make_tvips):
    rec = position_recording(make_tvips, 2, 3, before=0)
    (expected,) = file_reader(rec.path, scan_shape="auto")
    message = (
        "rec_000.tvips: ignored winding_scan_axis='x' (frames placed by their beam "
        "positions are already in place)"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"):
        (d,) = file_reader(rec.path, scan_shape="auto", winding_scan_axis="x")
    np.testing.assert_array_equal(d["data"], expected["data"])
    assert d["original_metadata"]["Scan"]["winding_scan_axis"] == ""


def test_hysteresis_none_is_zero(make_tvips):
    rec = make_tvips(frames=frames_of(range(1, 13)))
    d = read_both(rec.path, scan_shape=(3, 4), winding_scan_axis="x", hysteresis=None)
    assert d["original_metadata"]["Scan"]["hysteresis"] == 0


# --- scans that cannot be placed ------------------------------------------------

#: Recordings without usable scan information: make_tvips -> recording.
NO_SCAN = {
    "version 1": lambda make: make(version=1),
    "rotidx 0": lambda make: make(name="zero", header_values=lambda i: {"rotidx": 0}),
    "positions 2 x 3": lambda make: position_recording(make, 2, 3, before=0),
    "60-byte headers": lambda make: make(frame_header_bytes=60),
    "featureless": lambda make: make(frames=frames_of([7] * 12)),
    "parked beam": lambda make: make(
        name="none",
        frame_header_bytes=108,
        header_values=lambda i: {"Scan_x": 5.0, "Scan_y": 5.0},
    ),
}


@pytest.mark.parametrize(
    ("recording", "kw", "match"),
    [
        (
            "version 1",
            {"scan_shape": "auto"},
            "^"
            + re.escape(
                "rec_000.tvips: its 12-byte frame headers have no rotator index or "
                "beam positions to find the scan from: give scan_shape as a tuple"
            )
            + "$",
        ),
        (
            "rotidx 0",
            {"scan_shape": "auto"},
            r"^no scan found in the rotator indices",
        ),
        (
            "positions 2 x 3",
            {"scan_shape": (1, 2, 3), "scan_method": "positions"},
            r"^beam positions place frames on 2 axes, not 3$",
        ),
        (
            "60-byte headers",
            {"scan_shape": (2, 2), "scan_method": "positions"},
            "^"
            + re.escape(
                "rec_000.tvips: scan_method='positions' needs frame headers of at "
                "least 76 bytes with Scan_x/Scan_y, found 60-byte headers"
            )
            + "$",
        ),
        (
            "parked beam",
            {"scan_shape": (2, 2), "scan_method": "positions"},
            r"^no scan found in the beam positions$",
        ),
        (
            "featureless",
            {"scan_shape": (3, 4), "winding_scan_axis": "x", "hysteresis": "auto"},
            "hysteresis='auto' found nothing to compare",
        ),
    ],
    ids=[
        "auto without scan information",
        "auto with rotidx 0",
        "positions on 3 axes",
        "positions need long headers",
        "positions without a scan",
        "auto hysteresis on featureless data",
    ],
)
def test_scan_that_cannot_be_placed(make_tvips, recording, kw, match):
    rec = NO_SCAN[recording](make_tvips)
    with pytest.raises(ValueError, match=match):
        file_reader(rec.path, **kw)


def test_placement_is_logged(make_tvips, caplog):
    rec = make_tvips(frames=frames_of([JUNK, *range(1, 13)]))
    with caplog.at_level("INFO", logger="rsciio_tvips"):
        file_reader(rec.path, scan_shape=(3, 4), scan_start_frame=1)
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "rec_000.tvips: scan placement {'method': 'sequential', 'start_frame': 1, "
        "'stop_frame': 13, 'frames_before_scan': 1, 'frames_after_scan': 0"
    )


@pytest.mark.parametrize(("number", "axis"), [(0, "x"), (1, "y")])
def test_winding_axis_numbers_as_rosettasciio(make_tvips, number, axis):
    # RosettaSciIO takes 0 and 1 for "x" and "y": scripts pass them
    rec = make_tvips(frames=frames_of(range(1, 13)))
    kw = {"scan_shape": (3, 4), "hysteresis": 1}
    (by_number,) = file_reader(rec.path, winding_scan_axis=number, **kw)
    (by_name,) = file_reader(rec.path, winding_scan_axis=axis, **kw)
    np.testing.assert_array_equal(by_number["data"], by_name["data"])
    assert by_number["original_metadata"]["Scan"]["winding_scan_axis"] == axis
    with pytest.raises(
        ValueError, match=r'^winding_scan_axis must be "x", "y" or None, got 2$'
    ):
        file_reader(rec.path, winding_scan_axis=2, **kw)
