"""The preview command: one PNG of a scan or a stack."""

import numpy as np
import pytest

from rsciio_tvips.__main__ import main
from rsciio_tvips._tools.demo import demo_frames
from rsciio_tvips._tools.preview import _virtual, find_apertures, preview

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def test_scan_preview(demo, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert (
        main(["preview", str(demo), "-o", str(out), "--scan-shape", "auto", "-q"]) == 0
    )
    panels = [
        "virtual bright field",
        "virtual annular dark field",
        "mean pattern (log), BF cyan, ADF green",
        "rotator index and time; scan start/end dashed/dotted",
    ]
    assert (
        capsys.readouterr().out == f"wrote {out}: scan, panels: {'; '.join(panels)}\n"
    )
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size == (1000, 800)
    summary = preview(demo, tmp_path / "q.png", scan_shape=(16, 16), scan_start_frame=5)
    assert summary["panels"] == panels
    assert summary["size"] == [1000, 800]
    # the demo's disk: radius 8 around the middle, drifting by +-2 pixels
    ap = summary["apertures"]
    np.testing.assert_allclose(ap["center"], [31.5, 31.5], atol=0.5)
    assert 7 < ap["bf_radius"] < 11


def test_stack_preview(demo, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["preview", str(demo), "--output", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: stack, panels: mean frame; total intensity per frame\n"
    )
    with Image.open(out) as png:
        assert png.size == (1000, 400)


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
