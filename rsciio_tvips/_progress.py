"""One progress report for a long job: frames done of the total, on stderr.

Every long job of the package (the writer, ``tvips convert``, ``tvips
preview``, the SMV export, the header passes of ``tvips validate`` and
``tvips info``) reports through one :class:`Progress`, so that a job shows
one bar, whatever the number of chunks, computations or passes it is made
of:

1. on a terminal, one line redrawn in place (at most every
   :data:`REDRAW_SECONDS`): ``convert [=====>    ]  45% 1200/5000 frames,
   310 frames/s, 12 s left``, and the same line, completed, at the end;
2. elsewhere (a pipe, a log file, a batch job), a plain line every
   :data:`INTERVAL_SECONDS`: ``convert: 1200/5000 frames, 310 frames/s,
   12 s left``, and a final line ``convert: 5000/5000 frames in 16 s,
   310 frames/s``.

Dask computations are counted by :meth:`Progress.dask`, a dask callback
that advances the bar as each computation's tasks finish, weighted so that
a computation over the frames counts them once; a job that reads the frames
in several computations (passes) has a total of the frames times the
passes. The module imports nothing of the package and dask only when a
computation is counted: every layer may use it.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import warnings

#: Seconds between two lines where the output is not a terminal.
INTERVAL_SECONDS = 5.0
#: Seconds between two redraws of the bar on a terminal.
REDRAW_SECONDS = 0.1
#: Seconds a header pass (``tvips validate``, ``tvips info``) runs before
#: its progress shows: most passes end sooner, and need no bar.
PASS_DELAY_SECONDS = 1.0
#: Environment variables that set the interval and the delay of a header
#: pass, in seconds (for a log that wants more lines, or a test).
INTERVAL_VARIABLE = "RSCIIO_TVIPS_PROGRESS_INTERVAL"
DELAY_VARIABLE = "RSCIIO_TVIPS_PROGRESS_DELAY"
#: Characters of the bar drawn on a terminal, and the fewest worth drawing
#: where the terminal is narrow.
BAR_WIDTH = 20
MIN_BAR_WIDTH = 5


def _seconds_from(variable: str, default: float) -> float:
    """Return the number of seconds an environment variable sets, or ``default``.

    A value that is not a number of seconds >= 0 is ignored: a setting meant
    for the look of the output must never stop a job.
    """
    try:
        value = float(os.environ.get(variable, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def pass_delay() -> float:
    """Return the delay of a header pass: :data:`DELAY_VARIABLE` or the default."""
    return _seconds_from(DELAY_VARIABLE, PASS_DELAY_SECONDS)


def duration(seconds: float) -> str:
    """Return a duration as a person reads it: ``4.2 s``, ``12 s``, ``3 min 05 s``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def rate(per_second: float) -> str:
    """Return a rate with the digits that matter: ``310``, ``2.5``, ``0.04``."""
    return f"{per_second:.0f}" if per_second >= 10 else f"{per_second:.2g}"


def progress_text(
    label: str,
    done: int,
    total: int | None,
    elapsed: float,
    *,
    terminal: bool,
    final: bool = False,
    bar_width: int = BAR_WIDTH,
) -> str:
    """Return one report of a job, without line ending.

    Parameters
    ----------
    label : str
        What the job is (``"convert"``, ``"preview (2 passes)"``).
    done, total : int
        Frames done, and of how many (None: not known yet).
    elapsed : float
        Seconds since the job started.
    terminal : bool
        The bar drawn on a terminal, or the plain line written elsewhere.
    final : bool, optional
        The report of the job's end: the time taken rather than the time
        left.
    bar_width : int, optional
        Characters of the bar on a terminal (0: no bar, the percentage
        only).

    Returns
    -------
    str
    """
    per_second = done / elapsed if elapsed > 0 and done > 0 else None
    count = f"{done} frames" if total is None else f"{done}/{total} frames"
    if final:
        tail = f"{count} in {duration(elapsed)}"
        if per_second is not None:
            tail += f", {rate(per_second)} frames/s"
    else:
        tail = count
        if per_second is not None:
            tail += f", {rate(per_second)} frames/s"
            if total is not None:
                left = max(total - done, 0) / per_second
                tail += f", {duration(left)} left"
    if not terminal:
        return f"{label}: {tail}"
    if total is None:
        return f"{label} {tail}"
    fraction = 1.0 if total <= 0 else min(done / total, 1.0)
    percent = f"{int(fraction * 100):3d}%"
    if bar_width <= 0:
        return f"{label} {percent} {tail}"
    filled = int(fraction * bar_width)
    head = ">" if filled < bar_width else ""
    bar = ("=" * filled + head).ljust(bar_width)
    return f"{label} [{bar}] {percent} {tail}"


class Progress:
    """The progress of one job, in frames, shown on stderr.

    Parameters
    ----------
    label : str
        What the job is, the start of every report (``"convert"``).
    total : int, optional
        Frames the job does (it may be given later, to :meth:`advance_to`).
    stream : file, optional
        Where to write (default: ``sys.stderr`` when the job starts). A
        terminal gets one redrawn bar, anything else a line every
        ``interval`` seconds.
    interval : float, optional
        Seconds between two lines off a terminal (default: the environment
        variable :data:`INTERVAL_VARIABLE`, else :data:`INTERVAL_SECONDS`).
    delay : float, optional
        Seconds the job runs before anything is shown; a job that ends
        sooner shows nothing (default 0: shown from the start).
    clock : callable, optional
        Seconds, increasing (default :func:`time.monotonic`; tests pass a
        fake one).

    Notes
    -----
    The job ends when the frames done reach the total (the final report is
    written then) or at :meth:`close`. Used as a context manager, an
    exception ends the report with ``stopped at``. Updates may come from
    any thread.

    Examples
    --------
    >>> with Progress("convert", 5000) as bar:  # doctest: +SKIP
    ...     for block in blocks:
    ...         write(block)
    ...         bar.update(len(block))
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream=None,
        interval: float | None = None,
        delay: float = 0.0,
        clock=time.monotonic,
    ):
        self.label = label
        self.total = total
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.terminal = _is_terminal(self.stream)
        if interval is None:
            interval = _seconds_from(INTERVAL_VARIABLE, INTERVAL_SECONDS)
        self.interval = interval
        self.delay = delay
        self.clock = clock
        self.start = clock()
        self.finished = False
        self._shown = False  # anything written yet
        self._last = None  # time of the last line or redraw
        self._width = 0  # characters of the bar last drawn
        self._line_open = False  # a bar drawn on a line not ended yet
        self._lock = threading.Lock()
        if total is not None:  # "0 frames" of an unknown total says nothing
            self._report(self.start)

    def __enter__(self):
        # a warning shown while the bar is drawn would be spliced into its
        # line: the line is ended first, and the bar redrawn below it
        _WARNINGS.enter(self)
        return self

    def __exit__(self, kind, value, traceback):
        _WARNINGS.exit(self)
        self.close(failed=kind is not None)

    def _end_line(self) -> None:
        """End the bar's line, if one is drawn, so that other text starts anew."""
        with self._lock:
            if self._line_open:
                self._emit("\n")
                self._line_open = False
                self._width = 0

    def update(self, n: int = 1) -> None:
        """Count ``n`` more frames done."""
        with self._lock:
            self.done += int(n)
            self._advanced()

    def advance_to(self, done: int, total: int | None = None) -> None:
        """Set the frames done (and the total, when it was not known).

        The signature of the progress hooks of :func:`rsciio_tvips.validate`
        and ``describe`` (``progress(done, total)``).
        """
        with self._lock:
            if total is not None:
                self.total = int(total)
            self.done = max(self.done, int(done))
            self._advanced()

    def close(self, failed: bool = False) -> None:
        """End the report: the final line, or ``stopped at`` when ``failed``."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            now = self.clock()
            if not self._shown and now - self.start < self.delay:
                return
            if failed:
                self._write_stop(now)
            else:
                self._write_final(now)

    def dask(self, frames: int):
        """Return a context in which dask computations advance the report.

        Each computation started in the context counts ``frames`` frames,
        in proportion to its tasks finished; the context may be entered
        again for the next pass. An exception leaving the context stops the
        report.

        Parameters
        ----------
        frames : int
            Frames one computation goes through.

        Returns
        -------
        context manager
        """
        return _DaskPasses(self, frames)

    def _advanced(self) -> None:
        if self.finished:
            return
        if self.total is not None and self.done >= self.total:
            self.finished = True
            now = self.clock()
            if self._shown or now - self.start >= self.delay:
                self._write_final(now)
            return
        self._report(self.clock())

    def _report(self, now: float) -> None:
        """Redraw the bar, or write a line, if it is time to."""
        if now - self.start < self.delay:
            return
        if self.terminal:
            due = self._last is None or now - self._last >= REDRAW_SECONDS
        else:
            since = self.start if self._last is None else self._last
            due = now - since >= self.interval
        if due:
            self._last = now
            self._write(self._text(now, final=False))

    def _text(self, now: float, final: bool) -> str:
        args = (self.label, self.done, self.total, now - self.start)
        text = progress_text(*args, terminal=self.terminal, final=final)
        if self.terminal:
            # a line longer than the terminal would wrap, and each redraw
            # would start a new line: the bar gives way first, then the end
            room = shutil.get_terminal_size((80, 24)).columns - 1
            if len(text) > room:
                width = BAR_WIDTH - (len(text) - room)
                width = width if width >= MIN_BAR_WIDTH else 0
                text = progress_text(*args, terminal=True, final=final,
                                     bar_width=width)[:room]  # fmt: skip
        return text

    def _write_final(self, now: float) -> None:
        self._write(self._text(now, final=True), end=True)

    def _write_stop(self, now: float) -> None:
        if self.terminal:
            if self._shown:  # the error that follows starts on its own line
                self._emit("\n")
            return
        count = self.done if self.total is None else f"{self.done}/{self.total}"
        text = f"{self.label}: stopped at {count} frames after "
        self._emit(text + duration(now - self.start) + "\n")

    def _write(self, text: str, end: bool = False) -> None:
        if self.terminal:
            pad = " " * max(self._width - len(text), 0)
            self._width = len(text)
            self._emit("\r" + text + pad + ("\n" if end else ""))
            self._line_open = not end
        else:
            self._emit(text + "\n")

    def _emit(self, text: str) -> None:
        self._shown = True
        try:
            self.stream.write(text)
            self.stream.flush()
        except (AttributeError, OSError, ValueError):
            # no stderr (pythonw), a closed or a broken one: the job it
            # reports on must not fail for it
            pass


class Status(Progress):
    """A line of state on stderr for a job of no known end (``tvips watch``).

    Drawn like a :class:`Progress` (redrawn in place on a terminal, a line
    every ``interval`` seconds elsewhere), with the text ``text(final)``
    returns; :meth:`say` writes a line of its own above it.

    Parameters
    ----------
    text : callable
        ``text(final)`` returns the line (``final``: the job's last).
    stream, interval, clock
        As for :class:`Progress`.
    silent : bool, default False
        Write only what :meth:`say` says (``-q``).
    """

    def __init__(self, text, *, stream=None, interval=None, clock=time.monotonic,
                 silent=False):  # fmt: skip
        super().__init__("", None, stream=stream, interval=interval, clock=clock)
        self._line = text
        self.finished = silent  # a finished line is never drawn again

    def show(self) -> None:
        """Redraw the line, or write it, if it is time to."""
        with self._lock:
            if not self.finished:
                self._report(self.clock())

    def say(self, text: str) -> None:
        """Write ``text`` on a line of its own; the status line follows it."""
        self._end_line()
        with self._lock:
            self._emit(text + "\n")
            if self.terminal:
                self._last = None  # redrawn below it at the next show()

    def _write_stop(self, now: float) -> None:
        # the state when the job stopped is all there is to say of it
        self._write(self._text(now, final=True), end=True)

    def _text(self, now: float, final: bool) -> str:
        text = self._line(final)
        if self.terminal:  # a line that wraps would start anew at each redraw
            room = shutil.get_terminal_size((80, 24)).columns - 1
            text = text[:room]
        return text


class _WarningHook:
    """Show warnings below the bars being drawn, not inside their lines.

    One hook for the process, in ``warnings.showwarning`` while any bar is
    entered; it is put back only if nobody replaced it meanwhile (a
    ``logging.captureWarnings`` keeps its own), and bars may end in any
    order, in any thread.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._bars = []
        self._saved = None

    def enter(self, bar) -> None:
        with self._lock:
            if not self._bars:
                self._saved = warnings.showwarning
                warnings.showwarning = self.show
            self._bars.append(bar)

    def exit(self, bar) -> None:
        with self._lock:
            if bar in self._bars:
                self._bars.remove(bar)
            if not self._bars and warnings.showwarning == self.show:
                warnings.showwarning = self._saved

    def show(self, *args, **kwargs) -> None:
        with self._lock:
            bars, saved = list(self._bars), self._saved
        for bar in bars:
            bar._end_line()
        saved(*args, **kwargs)


_WARNINGS = _WarningHook()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class _DaskPasses:
    """Dask computations counted into a :class:`Progress` (:meth:`Progress.dask`)."""

    def __init__(self, progress: Progress, frames: int):
        self.progress = progress
        self.frames = int(frames)
        self._callback = None

    def __enter__(self):
        from dask.callbacks import Callback

        passes = self
        # a context counts its frames once: a second computation in it (a
        # writer that computes twice) cannot take the report past them
        cap = self.progress.done + self.frames

        class Counter(Callback):
            # one instance per context: its state is that of the computation
            # running, and a new computation starts from the frames done
            def _start_state(self, dsk, state):
                self.base = passes.progress.done
                self.tasks = sum(
                    len(state[k]) for k in ("ready", "waiting", "running", "finished")
                )

            def _posttask(self, key, result, dsk, state, worker_id):
                done = len(state["finished"]) * passes.frames // max(self.tasks, 1)
                passes.progress.advance_to(min(cap, self.base + done))

            def _finish(self, dsk, state, errored):
                if not errored:
                    passes.progress.advance_to(min(cap, self.base + passes.frames))

        self._callback = Counter()
        self._callback.__enter__()
        return self

    def __exit__(self, kind, value, traceback):
        self._callback.__exit__(kind, value, traceback)
        if kind is not None:
            self.progress.close(failed=True)
