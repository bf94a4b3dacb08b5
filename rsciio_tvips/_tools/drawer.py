"""The pictures of ``tvips watch``, drawn in a process of their own.

Drawing one picture takes matplotlib 0.5 to 1.5 s of CPU (measured). Drawn
in the watcher's own process, the frames that arrive meanwhile wait, and
the watcher falls that far behind the camera at every picture. A
:class:`Drawer` hands each picture (a :class:`~.live.LivePicture`: a few
arrays) to a child process and goes back to the frames at once. The child
runs at the lowest priority (:data:`NICENESS`): on one core the frames come
first and the pictures take the time they leave; with a core to spare, the
pictures are drawn beside the frames.

The child is ``python -m rsciio_tvips._tools.drawer``, started once, which
reads pickled pictures on its standard input and answers each on its
standard output. (Not :mod:`multiprocessing`: its ``spawn`` runs the main
script again in the child, which a script without a ``__main__`` guard, or
one read from standard input, does not survive; and a fork of a process
with threads can deadlock.) It ignores Ctrl-C: Ctrl-C stops the watch,
which then has the last picture drawn and closes the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

#: How much lower the child's priority is than the watcher's (``nice``; 19,
#: the lowest: at 10 a picture still took a tenth of a core the frames
#: needed, measured behind a camera).
NICENESS = 19
#: What the reading thread hands on when the child's output ends.
_GONE = object()


class DrawerStopped(RuntimeError):
    """The child process that draws the pictures is gone."""


class Drawer:
    """Draw pictures one at a time in a child process.

    At most one picture is drawn at a time: :meth:`draw` while
    :attr:`busy` is refused; :meth:`done` says when the one being drawn
    is written.
    """

    def __init__(self):
        # Ctrl-C ignored from the start (a new Python keeps ignoring it): a
        # Ctrl-C while it starts up must not stop it; on Windows, a process
        # group of its own
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        # the child finds this package where this process found it (a
        # source tree on sys.path, not installed), as multiprocessing does
        path = os.pathsep.join([p for p in sys.path if p])
        env = {**os.environ, "PYTHONPATH": path}
        with _ctrl_c_ignored():
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, creationflags=flags, env=env,
            )  # fmt: skip
        # lowered from here, before its start-up (importing matplotlib takes
        # a second or two of CPU), not by the child once it has started up
        with contextlib.suppress(OSError, AttributeError):  # no nice on Windows
            niceness = os.getpriority(os.PRIO_PROCESS, 0) + NICENESS
            os.setpriority(os.PRIO_PROCESS, self._process.pid, min(niceness, 19))
        self._answers = queue.Queue()
        # a thread waits for the answers: a pipe cannot be polled on Windows
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="tvips watch pictures")  # fmt: skip
        self._reader.start()
        self.busy = False

    def draw(self, title: str, picture, out) -> None:
        """Have the picture drawn to ``out`` (written aside, then moved there).

        Raises
        ------
        DrawerStopped
            If the child process is gone.
        """
        if self.busy:
            raise RuntimeError("a picture is being drawn")
        try:
            pickle.dump((title, picture, os.fspath(out)), self._process.stdin)
            self._process.stdin.flush()
        except OSError as e:  # BrokenPipeError: the child is gone
            raise self._stopped() from e
        self.busy = True

    def done(self, wait: bool = False) -> tuple[bool, str | None]:
        """Return whether the picture being drawn is written, and why not.

        Parameters
        ----------
        wait : bool, default False
            Wait until it is.

        Returns
        -------
        bool
            True once the picture asked for is finished (written, or
            failed); False while it is being drawn, or when none was asked
            for.
        str or None
            Why the picture could not be written (a full disk, a folder
            removed ...), or None.

        Raises
        ------
        DrawerStopped
            If the child process is gone.
        """
        if not self.busy:
            return False, None
        try:
            answer = self._answers.get(block=wait)
        except queue.Empty:
            return False, None
        if answer is _GONE:
            raise self._stopped()
        self.busy = False
        return True, answer

    def close(self) -> None:
        """Stop the child process (after the picture being drawn, if any)."""
        with contextlib.suppress(OSError):
            self._process.stdin.close()  # EOF: the child ends
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join()
        self._process.stdout.close()

    def _read(self) -> None:
        """Hand on each answer of the child, then :data:`_GONE`."""
        with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError):
            while True:
                self._answers.put(pickle.load(self._process.stdout))
        self._answers.put(_GONE)

    def _stopped(self) -> DrawerStopped:
        self.busy = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=1)
        code = self._process.returncode
        return DrawerStopped(
            f"the process drawing the pictures stopped (exit code {code})"
        )


@contextlib.contextmanager
def _ctrl_c_ignored():
    """Ignore SIGINT within (where signals can be set: the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def write_picture(title: str, picture, out) -> None:
    """Draw ``picture`` and write it to ``out``, in the format its name says.

    Written under another name beside ``out`` and moved there: a viewer
    never sees half a picture, and a failure leaves nothing behind.
    """
    from .figure import live_figure
    from .preview import picture_format

    fig, _ = live_figure(title, picture)
    out = Path(out)
    aside = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        fig.savefig(aside, format=picture_format(out))
        os.replace(aside, out)
    finally:
        if os.path.lexists(aside):
            os.remove(aside)


def _serve(requests, answers) -> None:
    """Draw the pictures read from ``requests`` until EOF; answer each.

    The answer is None once the picture is written, or why it could not be.
    """
    import matplotlib.figure  # noqa: F401  (before the first picture is asked for)

    while True:
        try:
            title, picture, out = pickle.load(requests)
        except EOFError:  # the watcher closed the pipe, or is gone
            return
        try:
            write_picture(title, picture, out)
        except (OSError, ValueError) as e:
            answer = str(e)
        else:
            answer = None
        pickle.dump(answer, answers)
        answers.flush()


if __name__ == "__main__":
    # the answers go on the real standard output; anything printed, to stderr
    answers, sys.stdout = sys.stdout.buffer, sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as it was started
    _serve(sys.stdin.buffer, answers)
