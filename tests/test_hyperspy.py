"""hs.load and s.save through hyperspy.api, with file_format= and register()."""

import re

import numpy as np
import pytest

import rsciio_tvips
from rsciio_tvips._metadata import decode as _metadata

hs = pytest.importorskip("hyperspy.api")


@pytest.fixture(autouse=True)
def unregistered():
    """Every test starts and ends with RosettaSciIO's own TVIPS plugin."""
    rsciio_tvips.unregister()
    yield
    rsciio_tvips.unregister()


def tvips_plugin():
    from rsciio import IO_PLUGINS

    (plugin,) = [p for p in IO_PLUGINS if "tvips" in p["file_extensions"]]
    return plugin


def test_register_and_unregister():
    original = tvips_plugin()
    assert original["api"] == "rsciio.tvips"
    assert not rsciio_tvips.is_registered()
    rsciio_tvips.register()
    rsciio_tvips.register()  # idempotent: still one TVIPS entry
    assert tvips_plugin()["api"] == "rsciio_tvips"
    assert tvips_plugin()["writes"] is True
    assert rsciio_tvips.is_registered()
    rsciio_tvips.unregister()
    rsciio_tvips.unregister()
    assert tvips_plugin() is original


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("how", ["file_format", "register"])
def test_load_a_scan(demo, demo_truth, lazy, how):
    first, frames = demo, demo_truth
    kw = {"file_format": rsciio_tvips} if how == "file_format" else {}
    if how == "register":
        rsciio_tvips.register()
    s = hs.load(
        first.parent / "demo_002.tvips",
        lazy=lazy,
        scan_shape=(16, 16),
        scan_start_frame=5,
        **kw,
    )
    assert s._lazy is lazy
    assert s.axes_manager.navigation_shape == (16, 16)
    assert [a.name for a in s.axes_manager.navigation_axes] == ["x", "y"]
    data = s.data.compute() if lazy else s.data
    np.testing.assert_array_equal(data, frames[5:261].reshape(16, 16, 64, 64))
    assert s.original_metadata.Scan.start_frame == 5
    assert s.metadata.General.date == "2023-11-14"
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 300.0


def test_stack_is_a_signal2d_with_one_navigation_axis(demo, demo_truth):
    first, frames = demo, demo_truth
    s = hs.load(first, file_format=rsciio_tvips)
    assert isinstance(s, hs.signals.Signal2D)
    assert s.axes_manager.navigation_dimension == 1
    assert s.axes_manager[0].name == "time"
    assert s.axes_manager[0].scale == pytest.approx(0.01)
    np.testing.assert_array_equal(s.data, frames)


def test_snake_scan_options_pass_through(demo, demo_truth):
    first = demo
    s = hs.load(
        first,
        file_format=rsciio_tvips,
        scan_shape=(16, 16),
        scan_start_frame=5,
        winding_scan_axis="x",
        hysteresis=2,
    )
    assert s.original_metadata.Scan.hysteresis == 2
    assert s.original_metadata.Scan.hysteresis_blank_points == 16


def test_diffraction_class_with_pyxem(demo, demo_truth):
    pytest.importorskip("pyxem")
    first = demo
    s = hs.load(
        first,
        file_format=rsciio_tvips,
        scan_shape=(16, 16),
        scan_start_frame=5,
        lazy=True,
    )
    assert type(s).__name__ == "LazyElectronDiffraction2D"
    assert s.metadata.Signal.signal_type == "electron_diffraction"


def test_no_unknown_signal_type_without_pyxem(monkeypatch):
    # plain HyperSpy knows no "electron_diffraction": no signal type, so no
    # warning on every load
    from hyperspy import extensions

    signals = {
        k: v
        for k, v in extensions.ALL_EXTENSIONS["signals"].items()
        if v.get("signal_type") != "electron_diffraction"
    }
    monkeypatch.setitem(extensions.ALL_EXTENSIONS, "signals", signals)
    assert not _metadata.diffraction_type_known()


@pytest.mark.parametrize("lazy", [False, True])
def test_save_and_reload(demo, demo_truth, tmp_path, lazy):
    first, frames = demo, demo_truth
    rsciio_tvips.register()
    s = hs.load(first, lazy=lazy, frame_headers=True)
    out = tmp_path / "saved" / "copy.tvips"
    s.save(out, max_file_size=2**20, show_progressbar=False)
    # 264 records of 8300 bytes, 126 to a MiB
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "copy_000.tvips",
        "copy_001.tvips",
        "copy_002.tvips",
    ]
    again = hs.load(out.parent / "copy_001.tvips")
    np.testing.assert_array_equal(again.data, frames)
    for node in ("General", "Acquisition_instrument", "Signal"):
        expected = s.metadata[node].as_dictionary()
        got = again.metadata[node].as_dictionary()
        if node == "General":
            for key in ("title", "original_filename", "FileIO"):
                expected.pop(key, None)
                got.pop(key, None)
        assert got == expected
    assert again.axes_manager[0].scale == pytest.approx(s.axes_manager[0].scale)
    assert (
        again.original_metadata.tvips_header.as_dictionary()
        == s.original_metadata.tvips_header.as_dictionary()
    )


def test_save_keeps_an_existing_recording(demo, demo_truth, tmp_path):
    first = demo
    rsciio_tvips.register()
    s = hs.load(first)
    s.save(tmp_path / "x.tvips", show_progressbar=False)
    before = (tmp_path / "x_000.tvips").read_bytes()
    msg = (
        "x_000.tvips: a recording named 'x' exists (x_000.tvips); pass "
        "overwrite_recording=True to replace it"
    )
    # HyperSpy's overwrite looks for "x.tvips", which does not exist
    with pytest.raises(FileExistsError, match=re.escape(msg)):
        s.isig[:32, :32].save(tmp_path / "x.tvips", overwrite=True)
    assert (tmp_path / "x_000.tvips").read_bytes() == before
    s.isig[:32, :32].save(
        tmp_path / "x.tvips", overwrite_recording=True, show_progressbar=False
    )
    assert hs.load(tmp_path / "x_000.tvips").data.shape == (264, 32, 32)


def test_builtin_plugin_when_unregistered(demo, demo_truth):
    # without register(), .tvips goes to RosettaSciIO's own reader
    first = demo
    with pytest.raises(Exception):  # noqa: B017 - rsciio.tvips cannot open _002
        hs.load(first.parent / "demo_002.tvips")


def test_save_without_frame_headers_warns(demo, demo_truth, tmp_path):
    first, frames = demo, demo_truth
    rsciio_tvips.register()
    s = hs.load(first, lazy=True, frame_headers=False)
    with pytest.warns(
        UserWarning,
        match="carries no frame headers .it was read with frame_headers=False.",
    ):
        s.save(tmp_path / "x.tvips", show_progressbar=False)
    again = hs.load(tmp_path / "x_000.tvips")
    np.testing.assert_array_equal(again.data, frames)
    assert again.original_metadata.tvips_header.frameheaderbytes == 108


def test_saved_as_x_tvips_reads_back_as_x_tvips(tmp_path):
    rsciio_tvips.register()
    s = hs.signals.Signal2D(np.arange(60, dtype=np.uint16).reshape(5, 3, 4))
    s.save(tmp_path / "x.tvips", show_progressbar=False)
    assert [p.name for p in tmp_path.iterdir()] == ["x_000.tvips"]
    (d,) = rsciio_tvips.file_reader(tmp_path / "x.tvips")
    np.testing.assert_array_equal(d["data"], s.data)
    np.testing.assert_array_equal(hs.load(tmp_path / "x_000.tvips").data, s.data)


@pytest.mark.parametrize("as_str", [False, True])
def test_hs_load_of_x_tvips_is_refused_by_hyperspy(tmp_path, as_str):
    # HyperSpy keeps only the names that exist as files (glob, is_file)
    # before it asks any reader, so "x.tvips" never reaches rsciio_tvips;
    # the docs say to load "x_000.tvips". If HyperSpy changes, this fails.
    rsciio_tvips.register()
    s = hs.signals.Signal2D(np.arange(60, dtype=np.uint16).reshape(5, 3, 4))
    s.save(tmp_path / "x.tvips", show_progressbar=False)
    name = tmp_path / "x.tvips"
    with pytest.raises(ValueError, match=r"^No filename matches the pattern"):
        hs.load(str(name) if as_str else name)
