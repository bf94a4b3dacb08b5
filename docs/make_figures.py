"""Regenerate the pictures of the documentation from the demo recording.

Run from anywhere, with matplotlib installed (``pip install ".[preview]"``)::

    python docs/make_figures.py

It writes the demo recording (``tvips demo``) into a temporary folder and
draws it with ``tvips preview`` into ``docs/_static/``:

- ``preview_scan.png``: the recording as a scan (``--scan-shape auto``);
- ``preview_stack.png``: the recording as a stack of frames;
- ``watch_scan.png``: ``tvips watch`` following the demo as it is written
  (``tvips demo --live``), its picture as it was halfway through the scan.

The pictures are committed, so building the documentation needs neither
matplotlib nor this script. Run it again when the demo or the preview
changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
STATIC = DOCS / "_static"

#: Picture name -> the reader options of ``tvips preview`` that draw it.
FIGURES = {
    "preview_scan.png": ["--scan-shape", "auto"],
    "preview_stack.png": [],
}


def tvips(*args: str, cwd: str) -> str:
    """Run ``python -m rsciio_tvips ARGS`` in ``cwd``; return what it printed.

    The package is the one of this checkout, and the command runs in a
    folder of its own: ``python -m`` imports from the current folder first,
    where anything named like a module (a ``dask`` or ``sparse`` folder)
    would be imported instead of the real one.

    Raises
    ------
    subprocess.CalledProcessError
        If the command exits with a status other than 0.
    """
    path = os.pathsep.join(
        filter(None, [str(DOCS.parent), os.environ.get("PYTHONPATH")])
    )
    done = subprocess.run(
        [sys.executable, "-m", "rsciio_tvips", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
    )
    return done.stdout


#: Seconds into the live demo (2.6 s long) when its picture is kept, and
#: the seconds the watcher is given to start before the demo does.
HALFWAY_SECONDS = 1.8
STARTUP_SECONDS = 5.0


def watch_figure(tmp: str) -> None:
    """Keep the picture ``tvips watch`` draws of the live demo, halfway through."""
    env = {**os.environ, "PYTHONPATH": str(DOCS.parent)}
    out = Path(tmp) / "live.png"
    command = [sys.executable, "-m", "rsciio_tvips"]
    watch = subprocess.Popen(
        [*command, "watch", "live/demo_000.tvips", "--scan-shape", "auto",
         "-o", str(out), "--every", "0.2", "--idle", "8", "-q"],
        cwd=tmp, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(STARTUP_SECONDS)  # the watcher is waiting for the first part
    camera = subprocess.Popen([*command, "demo", "--keep", "live", "--live"],
                              cwd=tmp, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    halfway = time.time() + HALFWAY_SECONDS
    # the first picture drawn after halfway (drawing one takes a while)
    while not out.exists() or out.stat().st_mtime < halfway:
        time.sleep(0.02)
    shutil.copy(out, STATIC / "watch_scan.png")
    camera.wait()
    print(watch.communicate()[0], end="")


def main() -> int:
    """Write the demo recording and draw every picture of ``FIGURES``."""
    STATIC.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tvips("demo", "--keep", "demo", cwd=tmp)
        for name, options in FIGURES.items():
            out = str(STATIC / name)
            args = ("preview", "demo/demo_000.tvips", "-o", out, "-q", *options)
            print(tvips(*args, cwd=tmp), end="")
        watch_figure(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
