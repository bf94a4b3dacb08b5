"""The README's commands and example run as written."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.rst").read_text()


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"^    (python -m pip install .*)$", README, re.M)
    assert commands == [
        "python -m pip install . && python -m rsciio_tvips demo",
        'python -m pip install ".[tests]" && python -m pytest',
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert (
        commands[1].replace("install", "install --quiet --disable-pip-version-check")
        in ci
    )


def test_demo_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-W", "error", "-m", "rsciio_tvips", "demo"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    lines = out.splitlines()
    assert lines[1:5] == [
        "  demo_000.tvips      700000 bytes",
        "  demo_001.tvips      700000 bytes",
        "  demo_002.tvips      700000 bytes",
        "  demo_003.tvips       91456 bytes",
    ]
    assert lines[5] == (
        "<TvipsRecording 'demo_000.tvips': 264 frames of 64x64 uint16, 4 part(s)>"
    )
    assert "rotator index 0 for frames [0, 1, 2, 3, 4, 261, 262, 263]" in lines[6]
    assert lines[7] == "scan from frame 5: (16, 16, 64, 64) uint16, lazy"
    # the virtual images, from the frames written, with numpy
    from rsciio_tvips._tools.demo import demo_frames

    scan = demo_frames((16, 16), (64, 64), 5, 3)[5:261].reshape(16, 16, 64, 64)
    vbf = scan[:, :, 28:36, 28:36].mean(axis=(2, 3))
    yy, xx = np.indices((64, 64))
    ring = (np.hypot(yy - 32, xx - 32) >= 12) & (np.hypot(yy - 32, xx - 32) <= 24)
    adf = scan[:, :, ring].mean(axis=2)
    assert lines[8:16] == [
        "virtual bright field (mean of the central 8x8 pixels), rows 0, 8, 15:",
        *("  " + " ".join(f"{v:4.0f}" for v in vbf[row]) for row in (0, 8, 15)),
        "annular dark field (mean of the pixels 12 to 24 from the centre), "
        "rows 0, 8, 15:",
        *("  " + " ".join(f"{v:4.1f}" for v in adf[row]) for row in (0, 8, 15)),
    ]
    # the wedge: both images change from the thin left to the thick right,
    # and the grain in the middle row scatters into the dark field
    assert vbf[0, 0] > 2 * vbf[0, -1] and adf[0, -1] > 2 * adf[0, 0]
    assert adf[8, 8] > 2 * adf[0, 8]
    assert lines[-1] == (
        "acquired 2023-11-14 22:13:20.050 UTC, 300 kV, signal type electron_diffraction"
    )
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


def test_readme_example(tmp_path, monkeypatch):
    pytest.importorskip("hyperspy.api")
    subprocess.run(
        [sys.executable, "-m", "rsciio_tvips", "demo", "--keep", "demo"],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    code = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", README)[1]
    code = "\n".join(line[4:] for line in code.splitlines())
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.rst", "exec"), {})


def test_readme_command_lines(tmp_path, monkeypatch, capsys):
    # every "tvips ..." line of the README runs on the demo and succeeds
    from rsciio_tvips.__main__ import main

    pytest.importorskip("hyperspy.api")
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--keep", "demo"]) == 0
    lines = re.findall(r"^    tvips (.*?)(?:\s+#.*)?$", README, re.M)
    assert [line.split()[0] for line in lines] == [
        "info",
        "validate",
        "preview",
        "convert",
        "watch",
    ]
    for line in lines:
        args = line.split()
        if args[0] in ("preview", "convert", "watch"):
            args.append("--quiet")
        assert main(args) == 0, line
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert (tmp_path / "scan.zspy").is_dir()
    assert (tmp_path / "live.png").stat().st_size > 10_000
