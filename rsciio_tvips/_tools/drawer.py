"""The pictures of ``tvips watch``, drawn in a process of their own.

Drawing one picture takes matplotlib about 1 s of CPU (0.5 to 1.5 s,
measured). Drawn in the watcher's own process, the frames that arrive
meanwhile would wait, and the watcher fall that far behind the camera at
every picture. A :class:`Drawer` hands each picture (a
:class:`~.live.LivePicture`: a few arrays) to a child process and goes
back to the frames at once: the request is written by a thread of its own,
so that neither a child still starting up nor a Ctrl-C can hold up the
frames or cut a request in half. The child runs at the lowest priority
(:data:`NICENESS`; the idle class on Windows): on one core the frames come
first and the pictures take the time they leave; with a core to spare, the
pictures are drawn beside the frames.

The child is a Python of its own (``sys.executable -c``, started once),
with the watcher's ``sys.path``: it imports this package from where the
watcher did, whatever the current folder holds. (Not :mod:`multiprocessing`:
its ``spawn`` runs the main script again in the child, which a script
without a ``__main__`` guard, or one read from standard input, does not
survive; and a fork of a process with threads can deadlock.) Requests and
answers are pickles, each after :data:`MAGIC` and its length: bytes that
something else wrote into the pipe are skipped, not unpickled. The child
ignores Ctrl-C: Ctrl-C stops the watch, which then has the last picture
drawn (or gives up on it) and closes the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import warnings
from pathlib import Path

#: How much lower the child's priority is than the watcher's (``nice``; 19,
#: the lowest: at 10 a picture still took a tenth of a core the frames
#: needed, measured behind a camera).
NICENESS = 19
#: What each request and answer starts with, then its length (8 bytes).
MAGIC = b"TVPW"
_LENGTH = struct.Struct("<Q")
#: Seconds the child is given to end once told to (it may be drawing).
CLOSE_SECONDS = 10.0
#: What the reading thread hands on when the child's answers end.
_GONE = object()
#: The child: its sys.path is the watcher's (its arguments), set before
#: anything is imported (sys is built in); anything written on its standard
#: output goes to its standard error, the answers to the standard output it
#: was given.
_CHILD = (
    "import sys; sys.path[:] = sys.argv[1:]; import os; "
    "answers = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); "
    "from rsciio_tvips._tools.drawer import serve; serve(sys.stdin.buffer, answers)"
)


class DrawerStopped(RuntimeError):
    """The child process that draws the pictures is gone, or could not start."""


class Drawer:
    """Draw pictures one at a time in a child process.

    At most one picture is drawn at a time: :meth:`draw` while :attr:`busy`
    is refused; :meth:`done` says when the one being drawn is written.

    Raises
    ------
    DrawerStopped
        If no child can be started (no Python to run it: an embedded or a
        frozen interpreter; or the start failed).
    """

    def __init__(self):
        if getattr(sys, "frozen", False):
            raise DrawerStopped("no Python to draw them in (a frozen application)")
        if not sys.executable:
            raise DrawerStopped("no Python to draw them in (sys.executable is empty)")
        # Ctrl-C ignored from the start (a new Python keeps ignoring it), so
        # that one while it starts up does not stop it; on Windows, a
        # process group of its own and the idle class
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        flags |= getattr(subprocess, "IDLE_PRIORITY_CLASS", 0)
        # this package first, from where this process imported it (a source
        # tree, say); not the current folder ("" in python -c, notebooks),
        # whose modules (a json.py) would stand in for those it needs
        here = str(Path(__file__).resolve().parents[2])
        path = [here, *(p for p in sys.path if p)]
        try:
            with _ctrl_c_ignored():
                self._process = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, *path], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, creationflags=flags,
                )  # fmt: skip
        except (OSError, ValueError) as e:
            raise DrawerStopped(f"cannot start the process to draw them: {e}") from e
        # lowered from here, before its start-up (importing matplotlib takes
        # a second or two of CPU), not by the child once it has started up
        with contextlib.suppress(OSError, AttributeError):  # Windows: the class
            niceness = os.getpriority(os.PRIO_PROCESS, 0) + NICENESS
            os.setpriority(os.PRIO_PROCESS, self._process.pid, min(niceness, 19))
        self._requests = queue.Queue()
        self._answers = queue.Queue()
        # threads write the requests and wait for the answers: the watcher
        # never waits for the child (and a pipe cannot be polled on Windows)
        self._threads = [
            threading.Thread(target=target, daemon=True, name=f"tvips watch {name}")
            for target, name in ((self._write, "requests"), (self._read, "answers"))
        ]
        for thread in self._threads:
            thread.start()
        self._out = None  # the picture last asked for
        self.busy = False

    def draw(self, title: str, picture, out) -> None:
        """Have the picture drawn to ``out`` (written aside, then moved there).

        Returns at once: :meth:`done` says when it is written.

        Raises
        ------
        RuntimeError
            If a picture is being drawn.
        """
        if self.busy:
            raise RuntimeError("a picture is being drawn")
        self._out = Path(out)
        request = (title, picture, os.fspath(out))
        self._requests.put(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        self.busy = True

    def done(self, wait: bool = False, timeout: float | None = None):
        """Return whether the picture being drawn is written, and why not.

        Parameters
        ----------
        wait : bool, default False
            Wait until it is, for at most ``timeout`` seconds (None: no limit).

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
            If the child process is gone (killed, or its answers garbled).
        """
        if not self.busy:
            return False, None
        try:
            answer = self._answers.get(block=wait, timeout=timeout if wait else None)
        except queue.Empty:
            return False, None
        if answer is _GONE:
            self._answers.put(_GONE)  # said again at every later look
            raise self._stopped()
        self.busy = False
        return True, answer

    def close(self, kill: bool = False) -> None:
        """Stop the child: at once with ``kill``, else after the picture being drawn."""
        self._requests.put(None)  # the writing thread closes the pipe: EOF
        if kill:
            self._process.kill()
        try:
            self._process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            kill = True
        for thread in self._threads:
            thread.join()
        self._process.stdout.close()
        if kill and self._out is not None:  # what it was writing, if anything
            with contextlib.suppress(OSError):
                os.remove(_aside(self._out, self._process.pid))

    def _write(self) -> None:
        """Write each request to the child; close its input at None."""
        pipe = self._process.stdin
        with contextlib.suppress(OSError):  # the child is gone: _read says so
            while (request := self._requests.get()) is not None:
                _send(pipe, request)
                del request  # not kept until the next picture (128 MiB at 4096²)
        with contextlib.suppress(OSError):
            pipe.close()

    def _read(self) -> None:
        """Hand on each answer of the child, then :data:`_GONE`."""
        with contextlib.suppress(Exception):  # EOF, or an answer garbled
            while True:
                self._answers.put(pickle.loads(_receive(self._process.stdout)))
        self._answers.put(_GONE)

    def _stopped(self) -> DrawerStopped:
        self.busy = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=1)
        if self._process.returncode is None:  # alive, but its answers garbled
            self._process.kill()
            self._process.wait()
            return DrawerStopped("the process drawing the pictures garbled its answers")
        code = self._process.returncode
        return DrawerStopped(
            f"the process drawing the pictures stopped (exit code {code})"
        )


def _send(stream, payload: bytes) -> None:
    """Write ``payload`` on ``stream`` as one message, for :func:`_receive`."""
    stream.write(MAGIC + _LENGTH.pack(len(payload)))
    stream.write(payload)  # not joined to the header: no copy of a large one
    stream.flush()


def _receive(stream) -> bytes:
    """Return the next request or answer on ``stream``, skipping other bytes.

    Raises
    ------
    EOFError
        At the end of the stream, or within a message.
    """
    seen = b""
    while seen != MAGIC:
        byte = stream.read(1)
        if not byte:
            raise EOFError
        seen = (seen + byte)[-len(MAGIC) :]
    (n,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    return _read_exactly(stream, n)


def _read_exactly(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return data


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


def _aside(out: Path, pid: int) -> Path:
    """Return where process ``pid`` writes ``out`` before moving it there."""
    return out.with_name(f".{out.name}.{pid}.partial")


def write_picture(title: str, picture, out) -> None:
    """Draw ``picture`` and write it to ``out``, in the format its name says.

    Written under another name beside ``out`` and moved there: a viewer
    never sees half a picture, and a failure leaves nothing behind.
    """
    from .figure import live_figure
    from .preview import picture_format

    fig, _ = live_figure(title, picture)
    out = Path(out)
    aside = _aside(out, os.getpid())
    try:
        fig.savefig(aside, format=picture_format(out))
        os.replace(aside, out)
    finally:
        if os.path.lexists(aside):
            os.remove(aside)


def serve(requests, answers) -> None:
    """Draw the pictures read from ``requests`` until its end; answer each.

    The answer is None once the picture is written, or why it could not be
    (any error: the next picture may well be drawn). Warnings of drawing
    are not shown: they would cut into the watcher's status line, and the
    tests draw the same pictures in their own process, where they fail.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as it was started
    warnings.simplefilter("ignore")
    import matplotlib.figure  # noqa: F401  (before the first picture is asked for)

    while True:
        try:
            title, picture, out = pickle.loads(_receive(requests))
        except EOFError:  # the watcher closed the pipe, or is gone
            return
        try:
            write_picture(title, picture, out)
        except Exception as e:  # said by the watcher, once
            answer = str(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        else:
            answer = None
        _send(answers, pickle.dumps(answer))
