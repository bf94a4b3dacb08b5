"""The preview command: one picture of a scan or a stack."""

import numpy as np
import pytest

from rsciio_tvips.__main__ import main
from rsciio_tvips._tools.demo import demo_frames
from rsciio_tvips._tools.figure import scan_figure, stack_figure
from rsciio_tvips._tools.preview import (
    SIGNED_HINT,
    _virtual,
    find_apertures,
    looks_signed,
    preview,
)

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

SCAN_PANELS = [
    "virtual bright field",
    "virtual annular dark field",
    "mean pattern (log), BF cyan, ADF green",
    "rotator index and time per frame",
]


def test_scan_preview(demo, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert (
        main(["preview", str(demo), "-o", str(out), "--scan-shape", "auto", "-q"]) == 0
    )
    assert capsys.readouterr().out == (
        f"wrote {out}: scan, panels: {'; '.join(SCAN_PANELS)}\n"
    )
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size == (1000, 800)
    summary = preview(demo, tmp_path / "q.png", scan_shape=(16, 16), scan_start_frame=5)
    assert summary["panels"] == SCAN_PANELS
    assert summary["size"] == [1000, 800]
    assert summary["format"] == "png"
    assert summary["hints"] == []  # unsigned counts: no hint
    # the apertures are those of the mean of the frames, computed by numpy
    frames = demo_frames((16, 16), (64, 64), 5, 3)[5:261]
    expected = find_apertures(frames.mean(axis=0, dtype=np.float64))
    ap = summary["apertures"]
    np.testing.assert_allclose(ap["center"], expected["center"], rtol=1e-12)
    for key in ("bf_radius", "adf_inner", "adf_outer"):
        assert ap[key] == pytest.approx(expected[key], rel=1e-12)
    # the demo's disk: radius 8 around the middle, drifting by +-2 pixels
    np.testing.assert_allclose(ap["center"], [32, 32], atol=1)
    assert abs(ap["bf_radius"] - 8) < 1
    # the demo's patterns are in 1/nm (pixelsize 1, diffraction), its scan
    # uncalibrated: the wavelength of 300 kV electrons, 1.96875 pm, turns
    # 1/nm into mrad
    mrad = 1.96875
    bf, inner, outer = (ap[k] for k in ("bf_radius", "adf_inner", "adf_outer"))
    pattern = summary["labels"][2]
    assert pattern == {
        "title": "mean pattern (log), BF cyan, ADF green",
        "x": "dx (1/nm)",
        "y": "dy (1/nm)",
        "colorbar": "log10 counts",
        "legend": [
            f"BF: r = {bf:.3g} 1/nm ({bf * mrad:.3g} mrad)",
            f"ADF: r = {inner:.3g} to {outer:.3g} 1/nm "
            f"({inner * mrad:.3g} to {outer * mrad:.3g} mrad)",
        ],
    }
    for panel in summary["labels"][:2]:
        assert (panel["x"], panel["y"], panel["colorbar"]) == (
            "x (scan points)",
            "y (scan points)",
            "counts",
        )
    assert summary["labels"][3] == {
        "title": SCAN_PANELS[3],
        "x": "frame",
        "y": "rotator index",
        "y2": "time (s)",
        "colorbar": None,
        "legend": ["scan start: frame 5", "scan end: frame 260"],
    }


def test_demo_dark_field_has_structure(demo, tmp_path):
    summary = preview(demo, tmp_path / "q.png", scan_shape="auto")
    assert summary["panels"] == SCAN_PANELS  # no panel of one value
    # the annular dark field through the apertures found, with numpy
    ap = summary["apertures"]
    yy, xx = np.indices((64, 64))
    r = np.hypot(yy - ap["center"][0], xx - ap["center"][1])
    ring = (r >= ap["adf_inner"]) & (r <= ap["adf_outer"])
    scan = demo_frames((16, 16), (64, 64), 5, 3)[5:261].reshape(16, 16, 64, 64)
    adf = (scan * ring).sum(axis=(2, 3), dtype=np.float64)
    # the grain in the middle diffracts into the annulus; outside it, the
    # wedge scatters more where it is thick (right) than where thin (left)
    assert adf[8, 8] > 2 * adf[8, 0]
    assert adf[0, -1] > 1.5 * adf[0, 0]


def test_stack_preview(demo, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["preview", str(demo), "--output", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: stack, panels: mean frame; total intensity per frame\n"
    )
    with Image.open(out) as png:
        assert png.size == (1000, 400)
    summary = preview(demo, tmp_path / "t.png")
    assert summary["labels"] == [
        {"title": "mean frame", "x": "dx (1/nm)", "y": "dy (1/nm)",
         "colorbar": "counts", "legend": None},
        {"title": "total intensity per frame", "x": "time (s)",
         "y": "total intensity (counts)", "colorbar": None, "legend": None},
    ]  # fmt: skip


def test_apertures_of_a_disk():
    yy, xx = np.indices((40, 50))
    disk = np.where(np.hypot(yy - 18, xx - 21) <= 6, 500.0, 3.0)
    ap = find_apertures(disk)
    np.testing.assert_allclose(ap["center"], (18, 21), atol=1e-9)  # symmetric disk
    area = (np.hypot(yy - 18, xx - 21) <= 6).sum()
    assert ap["bf_radius"] == pytest.approx(np.sqrt(area / np.pi))
    assert ap["adf_inner"] == pytest.approx(1.5 * ap["bf_radius"])
    assert ap["adf_outer"] == pytest.approx(3 * ap["bf_radius"])  # inside the frame
    # 11 pixels to the nearest edge: the annulus stops there
    near_edge = np.where(np.hypot(yy - 11, xx - 21) <= 6, 500.0, 3.0)
    assert find_apertures(near_edge)["adf_outer"] == pytest.approx(11.0)
    # closer than the inner radius: an annulus 1 pixel wide, partly outside
    at_edge = np.where(np.hypot(yy - 7, xx - 21) <= 6, 500.0, 3.0)
    ap = find_apertures(at_edge)
    assert ap["adf_outer"] == pytest.approx(ap["adf_inner"] + 1)


def test_virtual_image_reads_the_band_and_equals_numpy(demo):
    from rsciio_tvips import file_reader

    (d,) = file_reader(demo, lazy=True, scan_shape=(16, 16), scan_start_frame=5)
    mask = np.zeros((64, 64), bool)
    mask[30:34, 20:40] = True
    mask[31, 45] = True
    got = _virtual(d["data"], mask).compute()
    frames = demo_frames((16, 16), (64, 64), 5, 3)[5:261].reshape(16, 16, 64, 64)
    expected = (frames * mask).sum(axis=(2, 3), dtype=np.float64)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--scan-shape", "16", "x"],
            "tvips preview: --scan-shape takes numbers (NY NX) or auto, got 16 x",
        ),
        (
            "--scan-shape 16 16 --scan-start-frame 5 --winding-scan-axis x "
            "--hysteresis 16".split(),
            "tvips preview: hysteresis 16 must be smaller than the scan's 16 points\n",
        ),
    ],
)
def test_bad_options_exit_2(demo, tmp_path, capsys, extra, message):
    assert main(["preview", str(demo), "-o", str(tmp_path / "x.png"), *extra]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "x.png").exists()


def test_unreadable_recording_exits_2(tmp_path, capsys):
    bad = tmp_path / "x_000.tvips"
    bad.write_bytes(b"\0" * 300)
    assert main(["preview", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == (
        "tvips preview: x_000.tvips: main header size (size) at offset 0: "
        "expected 256, found 0\n"
    )


def test_line_scan_preview(demo, tmp_path):
    # a 1-D scan is drawn like a stack: the mean frame and a total per point
    summary = preview(demo, tmp_path / "l.png", scan_shape=(256,), scan_start_frame=5)
    assert summary["kind"] == "stack"
    assert summary["panels"] == ["mean frame", "total intensity per frame"]
    assert summary["labels"][1]["x"] == "x (scan points)"


# --- the picture's format comes from its extension ---------------------------


@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("x.png", b"\x89PNG\r\n\x1a\n"),
        ("x.jpg", b"\xff\xd8\xff"),
        ("x.JPEG", b"\xff\xd8\xff"),
        ("x.svg", b"<svg"),
        ("x.pdf", b"%PDF"),
    ],
)
def test_picture_written_in_the_format_of_its_extension(demo, tmp_path, name, magic):
    out = tmp_path / name
    assert main(["preview", str(demo), "-o", str(out), "-q"]) == 0
    head = out.read_bytes()[:400]
    if magic == b"<svg":  # after the XML declaration and the doctype
        assert head.startswith(b"<?xml") and magic in head
    else:
        assert head.startswith(magic)


@pytest.mark.parametrize(
    ("name", "what"),
    [("x.bmpx", "extension .bmpx"), ("x.png.gz", "extension .gz"),
     ("x", "no extension")],
)  # fmt: skip
def test_unknown_extension_is_refused_before_reading(
    demo, tmp_path, capsys, monkeypatch, name, what
):
    import rsciio_tvips._tools.preview as module

    def no_read(*args, **kwargs):
        raise AssertionError("the recording was read")

    monkeypatch.setattr(module, "file_reader", no_read)
    out = tmp_path / name
    assert main(["preview", str(demo), "-o", str(out), "-q"]) == 2
    assert capsys.readouterr().err == (
        f"tvips preview: {name}: cannot write a picture with {what} "
        "(accepted: .png, .jpg, .jpeg, .svg, .pdf)\n"
    )
    assert list(tmp_path.iterdir()) == [demo.parent]
    with pytest.raises(ValueError, match=r"^x\.bmpx: cannot write a picture"):
        preview(demo, tmp_path / "x.bmpx")


# --- an image of one value ----------------------------------------------------


def disk_frames(levels, shape=(32, 32), radius=5):
    """Frames of a disk of ``levels[i]`` counts on a background of 0."""
    yy, xx = np.indices(shape)
    disk = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2) <= radius
    return (np.asarray(levels)[:, None, None] * disk).astype(np.uint16)


def test_constant_dark_field_is_labelled_and_grey(make_tvips, tmp_path, capsys):
    # the disk changes from frame to frame, nothing falls outside it: the
    # annular dark field is 0 at every scan point
    levels = 100 + 10 * np.arange(12)
    rec = make_tvips(frames=disk_frames(levels))
    out = tmp_path / "c.png"
    args = ["preview", str(rec.path), "-o", str(out), "--scan-shape", "3", "4", "-q"]
    assert main(args) == 0
    adf = "virtual annular dark field (constant: 0 counts)"
    assert capsys.readouterr().out == (
        f"wrote {out}: scan, panels: virtual bright field; {adf}; "
        f"{SCAN_PANELS[2]}; {SCAN_PANELS[3]}\n"
    )
    summary = preview(rec.path, tmp_path / "d.png", scan_shape=(3, 4))
    assert summary["panels"][1] == adf
    assert summary["labels"][1]["title"] == adf
    # uncalibrated (pixelsize 0): scan points and pixels, radii in px
    ap = summary["apertures"]
    bf, inner, outer = (ap[k] for k in ("bf_radius", "adf_inner", "adf_outer"))
    assert summary["labels"][2]["legend"] == [
        f"BF: r = {bf:.3g} px",
        f"ADF: r = {inner:.3g} to {outer:.3g} px",
    ]
    assert (summary["labels"][0]["x"], summary["labels"][2]["x"]) == (
        "x (scan points)",
        "dx (pixels)",
    )


def test_constant_image_is_drawn_mid_grey():
    image = np.zeros((3, 4))
    fig, panels = scan_figure(
        "t", image + 7, image, image + 2, find_apertures(np.ones((8, 8))),
        np.zeros(3, [("num", "<u4")]), {}, [{}, {}, {}, {}],
    )  # fmt: skip
    assert [p["title"] for p in panels[:3]] == [
        "virtual bright field (constant: 7 counts)",
        "virtual annular dark field (constant: 0 counts)",
        "mean pattern (log), BF cyan, ADF green (constant: 2 counts)",
    ]
    bf, adf, pattern = (fig.axes[i].images[0] for i in (0, 1, 2))
    # the value sits in the middle of its colour scale, not at the black end
    assert bf.get_clim() == (6, 8)
    assert adf.get_clim() == (-1, 1)
    assert adf.norm(0) == pytest.approx(0.5)
    assert pattern.norm(np.log10(2)) == pytest.approx(0.5)
    # a varying image keeps its full range
    fig, panels = scan_figure(
        "t", np.arange(12.0).reshape(3, 4), image, image + 2,
        find_apertures(np.ones((8, 8))), np.zeros(3, [("num", "<u4")]), {},
        [{}, {}, {}, {}],
    )  # fmt: skip
    assert panels[0]["title"] == "virtual bright field"
    assert fig.axes[0].images[0].get_clim() == (0, 11)


# --- calibrated axes ------------------------------------------------------------


def test_calibrated_axes_carry_their_units():
    nav = [
        {"name": "y", "size": 3, "offset": 10.0, "scale": 2.0, "units": "nm"},
        {"name": "x", "size": 4, "offset": 0.0, "scale": 2.0, "units": "nm"},
    ]
    signal = [
        {"name": "dy", "size": 8, "offset": 0.0, "scale": 0.5, "units": "1/nm"},
        {"name": "dx", "size": 8, "offset": 0.0, "scale": 0.5, "units": "1/nm"},
    ]
    ap = {"center": (4.0, 3.0), "bf_radius": 2.0, "adf_inner": 3.0,
          "adf_outer": 4.0}  # fmt: skip
    images = np.arange(12.0).reshape(3, 4)
    headers = np.zeros(12, [("rotidx", "<u4")])
    fig, panels = scan_figure(
        "t", images, images, np.ones((8, 8)), ap, headers, {}, nav + signal,
        beam_energy=300.0,
    )  # fmt: skip
    vbf, _, pattern, frames = fig.axes[:4]
    assert (vbf.get_xlabel(), vbf.get_ylabel()) == ("x (nm)", "y (nm)")
    assert (pattern.get_xlabel(), pattern.get_ylabel()) == ("dx (1/nm)", "dy (1/nm)")
    # pixel edges in the calibration: x from -1 to 7 nm, y from 9 to 15 nm
    assert vbf.images[0].get_extent() == [-1.0, 7.0, 15.0, 9.0]
    assert pattern.images[0].get_extent() == [-0.25, 3.75, 3.75, -0.25]
    # the apertures drawn where they are in 1/nm: centre (1.5, 2) 1/nm
    circles = pattern.patches
    assert [c.center for c in circles] == [(1.5, 2.0)] * 3
    assert [c.width for c in circles] == [2.0, 3.0, 4.0]  # diameters in 1/nm
    # radii in 1/nm and, at 300 kV (1.9687 pm), in mrad
    assert panels[2]["legend"] == [
        "BF: r = 1 1/nm (1.97 mrad)",
        "ADF: r = 1.5 to 2 1/nm (2.95 to 3.94 mrad)",
    ]
    assert [t.get_text() for t in pattern.get_legend().get_texts()] == panels[2][
        "legend"
    ]
    # no frame times in these headers: the rotator index alone
    assert frames.get_ylabel() == "rotator index"
    # a colour bar beside each image, labelled
    bars = [[bar.get_ylabel() for bar in ax.child_axes] for ax in fig.axes]
    assert bars == [["counts"], ["counts"], ["log10 counts"], []]


def test_radii_in_pixels_when_the_pattern_axes_differ():
    signal = [
        {"name": "dy", "size": 8, "scale": 0.5, "units": "1/nm"},
        {"name": "dx", "size": 8, "scale": 0.25, "units": "1/nm"},
    ]
    ap = {"center": (4.0, 3.0), "bf_radius": 2.0, "adf_inner": 3.0,
          "adf_outer": 4.0}  # fmt: skip
    image = np.arange(12.0).reshape(3, 4)
    _, panels = scan_figure(
        "t", image, image, np.ones((8, 8)), ap, np.zeros(1, [("num", "<u4")]),
        {}, [{}, {}, *signal],
    )  # fmt: skip
    assert panels[2]["legend"] == ["BF: r = 2 px", "ADF: r = 3 to 4 px"]
    assert (panels[0]["x"], panels[2]["x"]) == ("x (scan points)", "dx (1/nm)")


# --- signed pixels read unsigned -------------------------------------------------


def signed_noise(n_frames=4, shape=(16, 16)):
    """int16 frames of small numbers about 0, as a gain-corrected camera gives."""
    rng = np.random.default_rng(7)
    return rng.normal(0, 20, (n_frames, *shape)).round().astype(np.int16)


def test_signed_hint(make_tvips, tmp_path, capsys):
    rec = make_tvips(frames=signed_noise().view(np.uint16))
    out = tmp_path / "s.png"
    assert main(["preview", str(rec.path), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: stack, panels: mean frame; total intensity per frame\n"
        "hint: pixels look signed: try --signed\n"
    )
    assert preview(rec.path, tmp_path / "t.png")["hints"] == [SIGNED_HINT]
    assert SIGNED_HINT == "pixels look signed: try --signed"
    # read signed, the pixels are what they are: no hint
    assert main(["preview", str(rec.path), "-o", str(out), "-q", "--signed"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: stack, panels: mean frame; total intensity per frame\n"
    )
    assert preview(rec.path, tmp_path / "t.png", signed=True)["hints"] == []


def test_what_looks_signed():
    noise = signed_noise()
    assert looks_signed(noise.view(np.uint16))
    assert not looks_signed(noise)  # read signed already
    # a bright exposure, smooth about 50000 counts: real uint16 counts
    ramp = np.linspace(40_000, 60_000, 4 * 16 * 16).reshape(4, 16, 16)
    assert not looks_signed(ramp.astype(np.uint16))
    # a saturated disk (65535) on a dark background
    assert not looks_signed(disk_frames([65535] * 4))
    # a few negative pixels, fewer than 1 %: not enough to say
    few = np.full((4, 16, 16), 100, np.int16)
    few[0, 0, :10] = -5
    assert not looks_signed(few.view(np.uint16))
    few[:, :, 0] = -5  # 1/16 of the pixels
    assert looks_signed(few.view(np.uint16))
    assert not looks_signed(np.zeros((0, 4, 4), np.uint16))


def test_demo_does_not_look_signed():
    assert not looks_signed(demo_frames((16, 16), (64, 64), 5, 3))


# --- a tilt series (MicroED) ------------------------------------------------------


def test_tilt_series_shows_the_stage_tilt(make_tvips, default_header_values, tmp_path):
    def tilt(i):
        return {**default_header_values(i), "stagea": -30 + 0.5 * i}

    rec = make_tvips(frames=disk_frames([100] * 8), header_values=tilt)
    out = tmp_path / "t.png"
    summary = preview(rec.path, out)
    assert summary["panels"] == [
        "mean frame",
        "total intensity per frame",
        "stage tilt per frame",
    ]
    assert summary["labels"][2] == {
        "title": "stage tilt per frame",
        "x": "frame",
        "y": "stage tilt alpha (degrees)",
        "colorbar": None,
        "legend": None,
    }
    assert summary["size"] == [1500, 400]
    with Image.open(out) as png:
        assert png.size == (1500, 400)


def test_tilt_panel_plots_every_frame_and_only_a_changing_tilt():
    headers = np.zeros(5, [("stagea", "<f4")])
    headers["stagea"] = [-30, -29.5, -29, -28.5, -28]
    axes = [{"name": "frame", "size": 5}, {}, {}]
    mean = np.arange(16.0).reshape(4, 4)
    fig, panels = stack_figure("t", mean, np.ones(5), headers, axes)
    (line,) = fig.axes[2].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(5))
    np.testing.assert_array_equal(line.get_ydata(), headers["stagea"])
    # the same tilt in every frame: no tilt series, no panel
    headers["stagea"] = 12.5
    _, panels = stack_figure("t", mean, np.ones(5), headers, axes)
    assert [p["title"] for p in panels] == ["mean frame", "total intensity per frame"]


@pytest.mark.parametrize("scan", [(3, 4), (16, 16), (30, 4)])
@pytest.mark.parametrize("frame", [(32, 32), (64, 128), (128, 64), (512, 512)])
@pytest.mark.parametrize("calibrated", [False, True], ids=["px", "calibrated"])
def test_every_label_inside_the_picture(scan, frame, calibrated):
    # what matplotlib draws of each panel (its labels, ticks, colour bar,
    # legend) lies inside the figure, whatever the shapes of scan and frame
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = np.random.default_rng(0)
    yy, xx = np.indices(frame)
    mean = 5 + 1000.0 * (np.hypot(yy - frame[0] / 2, xx - frame[1] / 2) < 8)
    nav = [{"name": "y", "size": scan[0]}, {"name": "x", "size": scan[1]}]
    signal = [{"name": "dy", "size": frame[0]}, {"name": "dx", "size": frame[1]}]
    if calibrated:
        for axis in nav:
            axis.update(scale=0.37, units="nm")
        for axis in signal:
            axis.update(scale=0.0213, units="1/nm")
    headers = np.zeros(20, [("rotidx", "<u4"), ("timestamp", "<u4"), ("ms", "<u4")])
    headers["rotidx"] = np.arange(20)
    headers["ms"] = 10 * np.arange(20)
    tilted = np.zeros(20, [("stagea", "<f4")])
    tilted["stagea"] = np.linspace(-60, 60, 20)  # a tilt series: three panels
    time = {"name": "time", "size": 20, "scale": 0.01, "units": "s"}
    figures = [
        scan_figure(
            "t", rng.random(scan) * 1e5, rng.random(scan) * 1e4, mean,
            find_apertures(mean), headers, {"start_frame": 2, "stop_frame": 18},
            nav + signal, beam_energy=300.0,
        )[0],
        stack_figure("t", mean, rng.random(20), headers, [time, *signal])[0],
        stack_figure("t", mean, rng.random(20), tilted, [time, *signal])[0],
    ]  # fmt: skip
    for fig in figures:
        FigureCanvasAgg(fig).draw()
        renderer = fig.canvas.get_renderer()
        outside = [
            (ax.get_title(), box.extents.round().tolist())
            for ax in fig.axes
            for box in [ax.get_tightbbox(renderer)]
            if box.x0 < 0
            or box.y0 < 0
            or box.x1 > fig.bbox.width
            or box.y1 > fig.bbox.height
        ]
        assert outside == []
