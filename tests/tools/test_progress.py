"""One progress bar for a long job: the reporter's text, and what each command shows.

The reporter (``rsciio_tvips._progress``) is checked with a fake clock and
a fake stream, line by line. The commands run in a child process with
stderr on a pseudo-terminal (one bar, redrawn, that reaches the total) or
on a pipe (a line every interval, set small, and a final line), and with
``--quiet`` (nothing).
"""

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rsciio_tvips import file_writer, to_smv, validate
from rsciio_tvips.__main__ import main
from rsciio_tvips._progress import (
    DELAY_VARIABLE,
    INTERVAL_VARIABLE,
    Progress,
    duration,
    pass_delay,
    progress_text,
    rate,
)

#: What dask's ProgressBar prints for each computation.
DASK_BAR = re.compile(r"\[#*\s*\] \| +\d+% Completed")
#: Frames of the recording converted; 16 to a chunk of --rechunking 2KiB.
N = 400
CHUNKED = ["--rechunking", "2KiB"]


class Clock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    # the width of a terminal is read from COLUMNS first: no line is cut
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv(INTERVAL_VARIABLE, raising=False)
    monkeypatch.delenv(DELAY_VARIABLE, raising=False)


# --- the text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (4.25, "4.2 s"), (12.4, "12 s"), (59.6, "1 min 00 s"),
     (185, "3 min 05 s"), (7385, "2 h 03 min")],
)  # fmt: skip
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("per_second", "text"),
    [(310.4, "310"), (12.6, "13"), (2.5, "2.5"), (0.0412, "0.041")],
)
def test_rate(per_second, text):
    assert rate(per_second) == text


def test_progress_text_off_a_terminal():
    args = ("convert", 1200, 5000, 4.0)
    assert progress_text(*args, terminal=False) == (
        "convert: 1200/5000 frames, 300 frames/s, 13 s left"
    )
    assert progress_text("convert", 5000, 5000, 16.0, terminal=False, final=True) == (
        "convert: 5000/5000 frames in 16 s, 312 frames/s"
    )
    # nothing done yet: no rate, no time left
    assert progress_text("convert", 0, 5000, 0.0, terminal=False) == (
        "convert: 0/5000 frames"
    )
    # the total not known yet
    assert progress_text("validate", 300, None, 2.0, terminal=False) == (
        "validate: 300 frames, 150 frames/s"
    )


def test_progress_text_on_a_terminal():
    assert progress_text("convert", 1200, 5000, 4.0, terminal=True) == (
        "convert [====>               ]  24% 1200/5000 frames, 300 frames/s, 13 s left"
    )
    assert progress_text("convert", 5000, 5000, 16.0, terminal=True, final=True) == (
        "convert [====================] 100% 5000/5000 frames in 16 s, 312 frames/s"
    )
    assert progress_text("convert", 1200, 5000, 4.0, terminal=True, bar_width=0) == (
        "convert  24% 1200/5000 frames, 300 frames/s, 13 s left"
    )


# --- the reporter -----------------------------------------------------------


def test_lines_off_a_terminal_come_at_the_interval(clock):
    out = io.StringIO()
    bar = Progress("convert", 1000, stream=out, interval=5.0, clock=clock)
    clock.now += 2.0
    bar.update(100)  # too soon for a line
    assert out.getvalue() == ""
    clock.now += 3.0
    bar.update(150)
    clock.now += 1.0
    bar.update(250)  # 1 s after the last line: none
    clock.now += 5.0
    bar.update(250)
    clock.now += 1.0
    bar.update(250)  # the total: the final line, at once
    bar.close()  # and only once
    assert out.getvalue() == (
        "convert: 250/1000 frames, 50 frames/s, 15 s left\n"
        "convert: 750/1000 frames, 68 frames/s, 3.7 s left\n"
        "convert: 1000/1000 frames in 12 s, 83 frames/s\n"
    )


def test_bar_on_a_terminal_is_redrawn_in_place(clock):
    out = Terminal()
    bar = Progress("write", 40, stream=out, clock=clock)
    clock.now += 1.0
    bar.update(10)
    clock.now += 0.05
    bar.update(10)  # redrawn at most every 0.1 s
    clock.now += 0.95
    bar.update(10)
    clock.now += 1.0
    bar.update(10)
    assert out.getvalue().split("\r") == [
        "",
        "write [>                   ]   0% 0/40 frames",
        "write [=====>              ]  25% 10/40 frames, 10 frames/s, 3.0 s left",
        "write [===============>    ]  75% 30/40 frames, 15 frames/s, 0.7 s left",
        # padded over the longer line before it
        "write [====================] 100% 40/40 frames in 3.0 s, 13 frames/s   \n",
    ]


def test_a_warning_gets_its_own_line_under_the_bar(clock):
    # RosettaSciIO's blockfile writer warns while convert's bar is drawn: the
    # warning must not be spliced into the bar's line
    import warnings

    out = Terminal()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # what Python shows a warning with, writing to the same terminal
        warnings.showwarning = lambda *a, **k: out.write("UserWarning: cm\n")
        with Progress("convert", 40, stream=out, clock=clock) as bar:
            clock.now += 1.0
            bar.update(10)
            warnings.warn("cm", UserWarning, stacklevel=1)
            warnings.warn("again", UserWarning, stacklevel=1)
            clock.now += 1.0
            bar.update(30)
    # two warnings in a row: one line end before them, none between them
    assert out.getvalue().split("\r")[-2:] == [
        "convert [=====>              ]  25% 10/40 frames, 10 frames/s, 3.0 s left\n"
        "UserWarning: cm\nUserWarning: cm\n",
        "convert [====================] 100% 40/40 frames in 2.0 s, 20 frames/s\n",
    ]


def test_bars_put_back_the_warning_hook_they_found(clock):
    # bars ending in any order (writers in two threads) leave the hook as
    # it was, and keep one another installed meanwhile (logging's too)
    import logging
    import warnings

    before = warnings.showwarning
    a = Progress("a", 10, stream=io.StringIO(), clock=clock)
    b = Progress("b", 10, stream=io.StringIO(), clock=clock)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert warnings.showwarning is not before  # b is still drawn
    b.__exit__(None, None, None)
    assert warnings.showwarning is before
    with Progress("c", 10, stream=io.StringIO(), clock=clock):
        logging.captureWarnings(True)
        captured = warnings.showwarning
    try:
        assert warnings.showwarning is captured  # logging's hook is kept
    finally:
        logging.captureWarnings(False)
    warnings.showwarning = before


@pytest.mark.parametrize(
    ("columns", "line"),
    [
        (70, "convert [==>         ]  24% 1200/5000 frames, 300 frames/s, 13 s left"),
        # too narrow for a bar: the percentage, and the line cut
        (40, "convert  24% 1200/5000 frames, 300 fram"),
    ],
)
def test_a_narrow_terminal_gets_a_shorter_line(clock, monkeypatch, columns, line):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    bar = Progress("convert", 5000, stream=out, clock=clock)
    clock.now += 4.0
    bar.update(1200)
    assert out.getvalue().split("\r")[-1] == line
    assert len(line) == columns - 1


def test_an_error_stops_the_report(clock):
    out = io.StringIO()
    with pytest.raises(OSError, match="disk full"):
        with Progress("convert", 100, stream=out, interval=1.0, clock=clock) as bar:
            clock.now += 2.0
            bar.update(30)
            raise OSError("disk full")
    assert out.getvalue() == (
        "convert: 30/100 frames, 15 frames/s, 4.7 s left\n"
        "convert: stopped at 30/100 frames after 2.0 s\n"
    )
    # on a terminal the bar's line is ended, so the error starts on its own
    out = Terminal()
    with pytest.raises(OSError, match="disk full"):
        with Progress("convert", 100, stream=out, clock=clock) as bar:
            raise OSError("disk full")
    assert out.getvalue() == "\rconvert [>                   ]   0% 0/100 frames\n"


def test_a_job_shorter_than_the_delay_shows_nothing(clock):
    out = Terminal()
    with Progress("validate", stream=out, delay=1.0, clock=clock) as bar:
        clock.now += 0.5
        bar.advance_to(50, 100)
        clock.now += 0.4
        bar.advance_to(100, 100)
    assert out.getvalue() == ""
    out = io.StringIO()
    with Progress("validate", stream=out, interval=0.0, delay=1.0, clock=clock) as b:
        clock.now += 0.5
        b.advance_to(50, 200)
        clock.now += 1.0
        b.advance_to(100, 200)
        clock.now += 1.0
        b.advance_to(200, 200)
    assert out.getvalue() == (
        "validate: 100/200 frames, 67 frames/s, 1.5 s left\n"
        "validate: 200/200 frames in 2.5 s, 80 frames/s\n"
    )


def test_an_unfinished_job_ends_with_what_was_done(clock):
    # frames miscounted (a pass less than announced): the final line says so
    out = io.StringIO()
    with Progress("convert", 100, stream=out, clock=clock) as bar:
        clock.now += 1.0
        bar.update(60)
    assert out.getvalue() == "convert: 60/100 frames in 1.0 s, 60 frames/s\n"


def test_interval_and_delay_from_the_environment(monkeypatch):
    assert Progress("x", 1, stream=io.StringIO()).interval == 5.0
    assert pass_delay() == 1.0
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.25")
    monkeypatch.setenv(DELAY_VARIABLE, "0")
    assert Progress("x", 1, stream=io.StringIO()).interval == 0.25
    assert pass_delay() == 0.0
    # a value that is no number of seconds is ignored, never fatal
    monkeypatch.setenv(INTERVAL_VARIABLE, "often")
    monkeypatch.setenv(DELAY_VARIABLE, "-1")
    assert Progress("x", 1, stream=io.StringIO()).interval == 5.0
    assert pass_delay() == 1.0


def test_dask_passes_count_each_computation_once(clock):
    import dask.array as da

    data = da.ones((40, 4, 4), chunks=(4, 4, 4))
    out = io.StringIO()
    bar = Progress("preview (2 passes)", 80, stream=out, interval=0.0, clock=clock)
    passes = bar.dask(40)
    seen = []
    with passes:
        assert float(data.sum().compute()) == 640.0
    seen.append(bar.done)
    with passes:
        assert data.mean(axis=0).compute().shape == (4, 4)
    seen.append(bar.done)
    assert seen == [40, 80]
    lines = out.getvalue().splitlines()
    # a line at every task finished (interval 0), never past a pass's frames
    counts = [int(re.search(r"(\d+)/80", line)[1]) for line in lines]
    assert counts == sorted(counts)
    assert 40 in counts
    assert lines[-1] == "preview (2 passes): 80/80 frames in 0.0 s"


def test_two_computations_in_one_pass_count_its_frames_once(clock):
    # a writer that computes twice in one pass (a navigator, then the data)
    # must not take the report past the pass's frames, nor end it twice
    import dask.array as da

    data = da.ones((40, 4, 4), chunks=(4, 4, 4))
    out = io.StringIO()
    bar = Progress("convert (2 passes)", 80, stream=out, interval=0.0, clock=clock)
    with bar.dask(40):
        data.sum().compute()
        data.mean(axis=0).compute()
    assert bar.done == 40
    with bar.dask(40):
        data.sum().compute()
    assert bar.done == 80
    last = out.getvalue().splitlines()[-1]
    assert last == "convert (2 passes): 80/80 frames in 0.0 s"


def test_dask_error_stops_the_report(clock):
    import dask.array as da

    def fail(block):
        raise ValueError("bad block")

    data = da.ones((8, 2), chunks=(2, 2)).map_blocks(fail, dtype=float)
    out = io.StringIO()
    bar = Progress("convert", 8, stream=out, clock=clock)
    with pytest.raises(ValueError, match="bad block"), bar.dask(8):
        data.compute()
    assert re.fullmatch(r"convert: stopped at [0-7]/8 frames after 0.0 s\n",
                        out.getvalue())  # fmt: skip


# --- the commands -----------------------------------------------------------


@pytest.fixture
def recording(tmp_path, build):
    """400 frames of 8 x 8 pixels: 25 chunks of 16 frames with --rechunking 2KiB."""
    frames = (np.arange(N * 64) % 3000).astype(np.uint16).reshape(N, 8, 8)
    return build(tmp_path, "many", frames=frames).path


def _environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(COLUMNS="200", **extra)
    return env


def _on_a_terminal(*args: str, status: int = 0, **env):
    """Run ``tvips ARGS`` with stderr on a pseudo-terminal: (stdout, stderr)."""
    leader, follower = os.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "rsciio_tvips", *args], stdout=subprocess.PIPE,
        stderr=follower, stdin=subprocess.DEVNULL, env=_environment(**env),
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end (EIO on Linux)
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = child.communicate()
    os.close(leader)
    assert child.returncode == status, seen
    # the terminal turns "\n" into "\r\n"
    return stdout.decode(), seen.decode().replace("\r\n", "\n")


def _on_a_pipe(*args: str, status: int = 0, **env):
    run = subprocess.run(
        [sys.executable, "-m", "rsciio_tvips", *args], capture_output=True,
        text=True, env=_environment(**env),
    )  # fmt: skip
    assert run.returncode == status, run.stderr
    return run.stdout, run.stderr


def _one_bar(stderr: str, label: str, total: int) -> list[str]:
    """Check that ``stderr`` is one bar, redrawn, reaching ``total``: its states."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    states = stderr[:-1].split("\r")
    assert states[0] == ""
    states = [state.rstrip() for state in states[1:]]
    assert all(state.startswith(f"{label} [") for state in states), states
    assert states[0] == f"{label} [>                   ]   0% 0/{total} frames"
    assert re.fullmatch(
        rf"{re.escape(label)} \[={{20}}\] 100% {total}/{total} frames in "
        r"[\d.]+ s(, \d+(\.\d+)? frames/s)?",
        states[-1],
    ), states[-1]
    return states


@pytest.mark.parametrize("ext", ["npy", "tif"])
def test_convert_on_a_terminal_shows_one_bar(recording, tmp_path, ext):
    out = tmp_path / f"c.{ext}"
    stdout, stderr = _on_a_terminal("convert", str(recording), str(out), *CHUNKED)
    _one_bar(stderr, "convert", N)
    assert not DASK_BAR.search(stdout + stderr)
    assert stdout.startswith(f"wrote c.{ext}: ")


def test_convert_to_tvips_on_a_terminal_shows_the_writers_bar(recording, tmp_path):
    out = tmp_path / "c.tvips"
    stdout, stderr = _on_a_terminal("convert", str(recording), str(out), *CHUNKED)
    _one_bar(stderr, "write", N)
    assert not DASK_BAR.search(stdout + stderr)
    assert stdout == "wrote c_000.tvips: 400 x 8 x 8 uint16 (tvips)\n"


LINE = (
    r"{label}: (\d+)/{total} frames(, \d+(\.\d+)? frames/s, [\d.]+ (s|min \d+ s) left)?"
)
FINAL = r"{label}: {total}/{total} frames in [\d.]+ s(, \d+(\.\d+)? frames/s)?"


def _lines(stderr: str, label: str, total: int) -> list[int]:
    """Check periodic lines and a final one: return the frames of each line."""
    *lines, last = stderr.splitlines()
    pattern = LINE.format(label=re.escape(label), total=total)
    counts = [int(re.fullmatch(pattern, line)[1]) for line in lines]
    assert re.fullmatch(FINAL.format(label=re.escape(label), total=total), last), last
    assert counts == sorted(counts)
    return counts


@pytest.mark.parametrize(("ext", "label"), [("npy", "convert"), ("mrc", "convert"),
                                            ("tvips", "write")])  # fmt: skip
def test_convert_on_a_pipe_prints_a_line_every_interval(
    recording, tmp_path, ext, label
):
    out = tmp_path / f"c.{ext}"
    stdout, stderr = _on_a_pipe("convert", str(recording), str(out), *CHUNKED,
                                **{INTERVAL_VARIABLE: "0"})  # fmt: skip
    counts = _lines(stderr, label, N)
    assert len(counts) > 1
    assert not DASK_BAR.search(stdout + stderr)


def test_convert_on_a_pipe_by_default_prints_the_final_line(recording, tmp_path):
    stdout, stderr = _on_a_pipe("convert", str(recording), str(tmp_path / "c.npy"))
    assert _lines(stderr, "convert", N) == []
    assert stdout == "wrote c.npy: 400 x 8 x 8 uint16 (numpy)\n"


@pytest.mark.parametrize("ext", ["npy", "tvips"])
def test_quiet_prints_nothing_on_stderr(recording, tmp_path, ext):
    args = ("convert", str(recording), str(tmp_path / f"c.{ext}"), *CHUNKED, "-q")
    _, stderr = _on_a_terminal(*args)
    assert stderr == ""
    _, stderr = _on_a_pipe(*args[:2], str(tmp_path / f"d.{ext}"), *args[3:],
                           **{INTERVAL_VARIABLE: "0"})  # fmt: skip
    assert stderr == ""


def test_blockfile_counts_both_passes(tmp_path, build):
    pytest.importorskip("hyperspy.api")
    frames = (np.arange(64 * 64) % 3000).astype(np.uint16).reshape(64, 8, 8)
    rec = build(tmp_path, "scan", frames=frames).path
    out = tmp_path / "c.blo"
    _, stderr = _on_a_pipe("convert", str(rec), str(out), "--scan-shape", "8", "8",
                           *CHUNKED, **{INTERVAL_VARIABLE: "0"})  # fmt: skip
    counts = _lines(stderr, "convert (2 passes)", 128)
    assert 64 in counts  # the first pass ends half way


def test_preview_shows_one_bar_for_both_passes(recording, tmp_path):
    pytest.importorskip("matplotlib")
    args = ("preview", str(recording), "-o", str(tmp_path / "p.png"), *CHUNKED)
    _, stderr = _on_a_terminal(*args)
    _one_bar(stderr, "preview (2 passes)", 2 * N)
    _, stderr = _on_a_pipe(*args, **{INTERVAL_VARIABLE: "0"})
    assert N in _lines(stderr, "preview (2 passes)", 2 * N)
    _, stderr = _on_a_pipe(*args, "-q")
    assert stderr == ""


def test_smv_export_shows_one_bar_for_both_passes(recording, tmp_path, capsys):
    log = to_smv(recording, tmp_path / "a_###.img", rotation_rate=1.0,
                 distance=100.0, frame_time=0.1, progress=True)  # fmt: skip
    assert len(log["files"]) == N
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"smv \(2 passes\): {2 * N}/{2 * N} frames in \d+\.\d s, \d+ frames/s\n",
        err,
    ), err


@pytest.mark.parametrize("command", ["validate", "info"])
def test_header_passes_show_progress_unless_quiet(recording, command, monkeypatch,
                                                  capsys):  # fmt: skip
    monkeypatch.setenv(DELAY_VARIABLE, "0")
    monkeypatch.setenv(INTERVAL_VARIABLE, "0")
    assert main([command, str(recording)]) == 0
    # one block of headers a pass: the line of each pass but the last (info
    # passes twice: the checks, then the search for scans), then the final
    label, total = (command, N) if command == "validate" else ("info (2 passes)", 2 * N)
    expected = [] if command == "validate" else [N]
    assert _lines(capsys.readouterr().err, label, total) == expected
    assert main([command, str(recording), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main([command, str(recording), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["validate", "info"])
def test_a_short_header_pass_shows_nothing(recording, command, capsys):
    # the default delay (1 s) is longer than the pass over 400 headers
    assert main([command, str(recording)]) == 0
    assert capsys.readouterr().err == ""


def test_validate_hook_is_told_each_block(tmp_path, build):
    frames = np.zeros((10, 2, 2), np.uint16)
    rec = build(tmp_path, "small", frames=frames)
    from rsciio_tvips._checks import stream

    seen = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stream, "BLOCK", 4)
        assert validate(rec.path, progress=lambda *a: seen.append(a)) == validate(
            rec.path
        )
    assert seen == [(4, 10), (8, 10), (10, 10)]


def test_writer_progressbar(tmp_path, capsys):
    axes = [{"name": "t", "size": 5, "navigate": True},
            {"name": "y", "size": 2, "navigate": False},
            {"name": "x", "size": 2, "navigate": False}]  # fmt: skip
    signal = {"data": np.zeros((5, 2, 2), np.uint16), "metadata": {}, "axes": axes}
    file_writer(tmp_path / "a.tvips", signal, show_progressbar=False)
    assert capsys.readouterr().err == ""
    file_writer(tmp_path / "b.tvips", signal)
    err = capsys.readouterr().err
    assert re.fullmatch(r"write: 5/5 frames in \d\.\d s(, \d+ frames/s)?\n", err), err


@pytest.fixture
def dropping(build, tmp_path, headers_with):
    """60 frames whose counter skips two (31 -> 34)."""
    values = headers_with(num={i: i + 3 for i in range(30, 60)})
    frames = (np.arange(60 * 64) % 3000).astype(np.uint16).reshape(60, 8, 8)
    return build(tmp_path, "cam", frames=frames, header_values=values).path


#: tvips watch's status line while it follows (sizes and free space vary).
LIVE_LINE = (
    r"\d+ frames [\d.]+/s [\d.]+ MB/s, \d+ dropped, last [\d.]+ s ago, "
    r"cam_000.tvips [\d.]+ [MG]iB free"
)
WATCHED = "watch cam_000.tvips: 60 frames in 1 part(s), 2 dropped"


def test_watch_status_line_on_a_terminal(dropping):
    out, err = _on_a_terminal("watch", str(dropping), "--idle", "1.5", status=1)
    assert out.endswith("cam_000.tvips: problems found (1 warning)\n")
    lines = err.split("\n")
    # the problem is said before the line is first drawn, then redrawn in place
    assert lines[0].startswith("tvips watch: warning: cam_000.tvips")
    assert lines[1].startswith("\r")
    states = [s.rstrip() for s in lines[1].split("\r")[1:]]
    assert len(states) >= 2
    assert all(re.fullmatch(LIVE_LINE, s) for s in states[:-1]), states
    assert states[-1] == WATCHED
    assert lines[2:] == [""]


def test_watch_status_line_in_a_pipe(dropping):
    _, err = _on_a_pipe("watch", str(dropping), "--idle", "1", status=1,
                        **{INTERVAL_VARIABLE: "0.2"})  # fmt: skip
    lines = err.splitlines()
    assert lines[0].startswith("tvips watch: warning: cam_000.tvips")
    assert len(lines) >= 3
    assert all(re.fullmatch(LIVE_LINE, s) for s in lines[1:-1]), lines
    assert lines[-1] == WATCHED
