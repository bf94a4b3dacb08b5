"""The code stays ruff-clean (lint and format), as the style guide asks."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RUFF = shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff(args):
    run = subprocess.run([RUFF, *args, str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
