"""The ``tvips`` command itself: what it keeps from its output."""

import os
import re
import subprocess
import sys
import warnings

import pytest

import rsciio_tvips._tools.cli as cli
from rsciio_tvips.__main__ import main

#: What HyperSpy 2.5 warns when pyxem 0.21 is imported (once a process).
MOVED = (
    "`_get_block_pattern` has moved to `hyperspy.misc.dask_utils`. It is for "
    "internal use only and may be removed in the future."
)


def _run(*args: str) -> subprocess.CompletedProcess:
    """Run Python in a fresh process, with Python's own warning filters."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=True
    )


def test_pyxem_deprecation_is_kept_from_the_command_line(make_tvips, tmp_path):
    pytest.importorskip("pyxem")
    pytest.importorskip("hyperspy.api")
    # a diffraction recording: HyperSpy loads it with pyxem, which warns
    rec = make_tvips(n_frames=4, mode=2)
    # pyxem warns when first imported: each call needs a process of its own
    command = _run("-m", "rsciio_tvips", "convert", str(rec.path),
                   str(tmp_path / "c.hspy"), "-q")  # fmt: skip
    assert command.stdout.startswith("wrote c.hspy: ")
    assert MOVED not in command.stderr
    script = (
        "import sys\n"
        "from rsciio_tvips._tools.convert import convert\n"
        "convert(sys.argv[1], sys.argv[2])\n"
    )
    library = _run("-c", script, str(rec.path), str(tmp_path / "l.hspy"))
    assert f"VisibleDeprecationWarning: {MOVED}" in library.stderr


def _warn_as_hyperspy(message: str) -> None:
    """Issue ``message`` as HyperSpy's ``hyperspy/misc/utils.py`` issues it."""
    from hyperspy.exceptions import VisibleDeprecationWarning

    warnings.warn_explicit(
        message, VisibleDeprecationWarning, "utils.py", 72, module="hyperspy.misc.utils"
    )


def _run_main(args) -> list[str]:
    """Run the command; return every warning that reached its caller.

    Every warning is recorded, so that pytest's own filters (pyproject
    ignores this very warning) cannot hide whether the command let it out.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    return [str(w.message) for w in caught]


def test_only_that_warning_and_only_in_the_command(make_tvips, monkeypatch, capsys):
    pytest.importorskip("hyperspy")
    rec = make_tvips(n_frames=3)
    checked = cli.validate
    message = MOVED

    def validate(*args, **kwargs):
        _warn_as_hyperspy(message)
        return checked(*args, **kwargs)

    monkeypatch.setattr(cli, "validate", validate)
    assert _run_main(["validate", str(rec.path)]) == []
    assert capsys.readouterr().out == f"{rec.path}: no problem found\n"
    # outside main(), the library's callers still see it
    with pytest.warns(UserWarning, match=f"^{re.escape(MOVED)}$"):
        validate(rec.path)
    # and within it, any other warning of HyperSpy's
    message = "`_other_helper` has moved to `hyperspy.misc.dask_utils`."
    assert _run_main(["validate", str(rec.path)]) == [message]
