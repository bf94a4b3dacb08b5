"""A short run of the header fuzz target (``fuzz/fuzz_header.py``).

The target treats any exception but ``TvipsFormatError`` as a bug. Here it
runs for a fixed number of inputs with a fixed seed (a few seconds), so a
failure is reproducible; longer runs are described in ``fuzz/README.rst``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

TARGET = Path(__file__).parents[1] / "fuzz" / "fuzz_header.py"
RUNS = 20_000


def test_header_fuzz_target(tmp_path):
    # run in tmp_path: a crash writes its input there, not in the repository
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            f"-runs={RUNS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Done {RUNS} runs" in result.stderr
