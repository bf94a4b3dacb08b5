"""Fixtures shared by every test folder: byte-by-byte builders, an open-file check.

The builders write recordings with ``struct`` from the field offsets of
``../shared/docs/format.md``, independently of the package's dtypes and of any
writer, so that a mistake in ``_format/layout.py`` cannot hide in both.

Tests reach them as fixtures, never by importing this module:

``make_tvips(**kw)``
    writes a recording in ``tmp_path`` (``build`` with the folder given).
``build(directory, name="rec", **kw)``
    writes a recording anywhere and returns a ``Recording``.
``main_header(**fields)``
    the 256 bytes of a main header, fields overridden.
``frame_header(nbytes, values, fill)``
    the bytes of one frame header.
``default_header_values(i, mode=2)``
    the frame-header values ``build`` writes for frame ``i``.
``headers_with(**changes)``
    those values with some fields changed at some frames.
``frame_fields``
    ``(offset, struct code, name)`` of every frame-header field.
``rsciio_data``
    the folder of RosettaSciIO's test recordings, ``tests/data``.
``peak_rss(script, *args)``
    the peak RSS (and ``result``) of a script run in a fresh process.
``acquire(rec, folder, **kw)``
    a camera writing ``rec``'s bytes again into ``folder``, in a thread.

The builders are session-scoped (they hold no state), so Hypothesis tests
may use them too.
"""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest

DATA = Path(__file__).parent / "data"
FILLER = (b"TVIPS " * 40)[:204]
# (offset, struct code, name) of the frame-header fields format.md lists.
FIELDS = [
    (0, "I", "num"),
    (4, "I", "timestamp"),
    (8, "I", "ms"),
    (12, "I", "LUTidx"),
    (16, "f", "fcurrent"),
    (20, "I", "mag"),
    (24, "I", "mode"),
    (28, "f", "stagex"),
    (32, "f", "stagey"),
    (36, "f", "stagez"),
    (40, "f", "stagea"),
    (44, "f", "stageb"),
    (48, "I", "rotidx"),
    (52, "f", "temperature"),
    (56, "f", "objective"),
    (60, "f", "DENS_Power"),
    (64, "f", "TEM_Obj_current"),
    (68, "f", "Scan_x"),
    (72, "f", "Scan_y"),
]
BPP = {
    np.dtype("uint8"): 8,
    np.dtype("uint16"): 16,
    np.dtype("uint32"): 32,
    np.dtype("uint64"): 64,
}


def main_header(**kw) -> bytes:
    """The 256-byte main header; keyword arguments override fields."""
    values = {
        "size": 256,
        "version": 2,
        "dimx": 4,
        "dimy": 3,
        "bitsperpixel": 16,
        "offsetx": 0,
        "offsety": 0,
        "binx": 1,
        "biny": 1,
        "pixelsize": 0,
        "ht": 300,
        "magtotal": 0,
        "frameheaderbytes": 60,
    }
    values.update(kw)
    order = [
        "size",
        "version",
        "dimx",
        "dimy",
        "bitsperpixel",
        "offsetx",
        "offsety",
        "binx",
        "biny",
        "pixelsize",
        "ht",
        "magtotal",
        "frameheaderbytes",
    ]
    return struct.pack("<13I", *(values[k] for k in order)) + FILLER


def frame_header(nbytes: int, values: dict, fill: int) -> bytes:
    """A frame header of ``nbytes``; unknown bytes are ``fill`` + position."""
    buf = bytearray((fill + i) % 256 for i in range(nbytes))
    for offset, code, name in FIELDS:
        if offset + 4 <= nbytes:
            struct.pack_into("<" + code, buf, offset, values.get(name, 0))
    return bytes(buf)


@dataclass
class Recording:
    paths: list
    frames: np.ndarray
    headers: list
    stream: bytes
    header: bytes
    record_size: int
    extra: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.paths[0]


def default_header_values(i: int, mode: int = 2) -> dict:
    return {
        "num": i + 1,
        "timestamp": 1_700_000_000 + i // 4,
        "ms": (i % 4) * 250,
        "fcurrent": 1.5,
        "mode": mode,
        "stagex": 1000.0,
        "stagey": -2000.0,
        "stagez": 30.0,
        "stagea": 12.5,
        "stageb": -3.0,
        "rotidx": i,
        "Scan_x": float(i % 7),
        "Scan_y": float(i // 7),
    }


def build(
    directory,
    name="rec",
    *,
    n_frames=5,
    shape=(3, 4),
    dtype="uint16",
    version=2,
    frame_header_bytes=60,
    split=None,
    records_per_part=None,
    truncate=0,
    ext="tvips",
    header=None,
    header_values=None,
    mode=2,
    frames=None,
) -> Recording:
    """Write a recording and return what was written.

    ``split``: stream offsets (bytes after the main header) where new parts
    start, which may fall inside a record; ``records_per_part``: whole records
    per part. ``truncate``: bytes cut from the end of the stream.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(dtype)
    if frames is None:
        n = np.arange(n_frames * shape[0] * shape[1], dtype=np.uint64)
        frames = ((n * 7 + 3) % min(np.iinfo(dtype).max, 60_000)).astype(dtype)
        frames = frames.reshape(n_frames, *shape)
    else:
        frames = np.asarray(frames)
        n_frames, shape, dtype = frames.shape[0], frames.shape[1:], frames.dtype
    fhb = 12 if version == 1 else frame_header_bytes
    make_values = header_values or (lambda i: default_header_values(i, mode))
    values = [make_values(i) for i in range(n_frames)]
    headers = [frame_header(fhb, values[i], fill=i) for i in range(n_frames)]
    records = [
        h + f.astype(dtype.newbyteorder("<")).tobytes()
        for h, f in zip(headers, frames, strict=True)
    ]
    stream = b"".join(records)
    if truncate:
        stream = stream[:-truncate]
    record = fhb + frames[0].nbytes
    if split is None:
        per = records_per_part or max(n_frames, 1)
        split = list(range(per * record, len(stream), per * record))
    bounds = [0, *split, len(stream)]
    hdr = (
        header
        if header is not None
        else main_header(
            version=version,
            dimx=shape[1],
            dimy=shape[0],
            bitsperpixel=BPP[dtype],
            frameheaderbytes=frame_header_bytes,
        )
    )
    paths = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        path = directory / f"{name}_{k:03d}.{ext}"
        path.write_bytes((hdr if k == 0 else b"") + stream[a:b])
        paths.append(path)
    return Recording(paths, frames, values, stream, hdr, record)


def headers_with(**changes):
    """Frame-header values with some fields changed at some frames.

    ``changes`` maps a field name to ``{frame: value}``; the result is a
    ``header_values`` function for ``build``.
    """

    def values(i):
        v = default_header_values(i)
        for name, at in changes.items():
            if i in at:
                v[name] = at[i]
        return v

    return values


# --- the builders as fixtures: session-scoped, as they hold no state ------------


@pytest.fixture(scope="session", name="main_header")
def main_header_fixture():
    """``main_header(**fields)``: the 256-byte main header, fields overridden."""
    return main_header


@pytest.fixture(scope="session", name="frame_header")
def frame_header_fixture():
    """``frame_header(nbytes, values, fill)``: the bytes of one frame header."""
    return frame_header


@pytest.fixture(scope="session", name="default_header_values")
def default_header_values_fixture():
    """``default_header_values(i, mode=2)``: what ``build`` writes for frame i."""
    return default_header_values


@pytest.fixture(scope="session", name="headers_with")
def headers_with_fixture():
    """``headers_with(**changes)``: default values, some fields changed."""
    return headers_with


@pytest.fixture(scope="session", name="frame_fields")
def frame_fields_fixture():
    """``(offset, struct code, name)`` of the frame-header fields format.md lists."""
    return FIELDS


@pytest.fixture(scope="session", name="build")
def build_fixture():
    """``build(directory, name="rec", **kw)`` writes a recording anywhere."""
    return build


@pytest.fixture
def make_tvips(tmp_path):
    """Factory: ``make_tvips(**kw)`` writes a recording in ``tmp_path``."""

    def make(**kw):
        return build(tmp_path, **kw)

    return make


#: Appended to a child script of :func:`peak_rss`: the peak RSS of the
#: process (VmHWM: since exec; ru_maxrss would include the parent's memory at
#: fork) and the script's ``result``, as JSON.
PEAK_SUFFIX = """
import json as _json
with open("/proc/self/status") as _f:
    _hwm = next(int(v.split()[1]) * 1024 for v in _f if v.startswith("VmHWM"))
print(_json.dumps({"rss": _hwm, "result": globals().get("result")}))
"""


@pytest.fixture(scope="session")
def peak_rss():
    """Run a Python script in a fresh process; return its peak RSS and result.

    ``peak_rss(script, *args)`` returns ``{"rss": bytes, "result": ...}``,
    ``result`` being what the script left in its variable of that name.
    Skips where there is no ``/proc/self/status`` (not Linux).
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS from /proc/self/status (Linux)")

    def run(script: str, *args) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", script + PEAK_SUFFIX, *map(str, args)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out.splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def rsciio_data():
    """The folder of RosettaSciIO's test recordings (see its README.rst)."""
    return DATA


@pytest.fixture
def demo(tmp_path):
    """The demo recording (a 16 x 16 scan in 4 parts), alone in a folder.

    Returns the path of its first part, ``tmp_path / "demo" / "demo_000.tvips"``.
    """
    from rsciio_tvips._tools.demo import write_demo_recording

    folder = tmp_path / "demo"
    folder.mkdir()
    return write_demo_recording(folder)


@pytest.fixture
def demo_truth():
    """The frames the demo recording holds, in recording order."""
    from rsciio_tvips._tools.demo import demo_frames

    return demo_frames((16, 16), (64, 64), 5, 3)


class Acquisition(threading.Thread):
    """A camera writing a recording: the bytes of ``rec`` appended to new parts.

    ``part_bytes``: bytes per part (the first counts its main header), so
    records straddle parts where the cut falls; ``appends``: sizes of the
    writes, cycled; ``pause``: seconds between writes; ``lost``: ``{part:
    bytes}`` left out at the end of a part (a part that stopped short, whose
    frames shift); ``delay``: seconds before the first part is created.
    """

    def __init__(self, rec, folder, name="live", *, part_bytes=None,
                 appends=(1000,), pause=0.0, lost=None, delay=0.0):  # fmt: skip
        super().__init__(daemon=True)
        self.data = rec.header + rec.stream
        self.folder, self.name = Path(folder), name
        self.part_bytes = part_bytes or len(self.data)
        self.appends, self.pause = list(appends), pause
        self.lost, self.delay = dict(lost or {}), delay
        self.error = None
        self.start()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}_000.tvips"

    def run(self):
        try:
            self._write()
        except BaseException as e:  # handed to the test, by finish()
            self.error = e

    def _write(self):
        time.sleep(self.delay)
        done, part, sizes = 0, 0, itertools.cycle(self.appends)
        while done < len(self.data):
            path = self.folder / f"{self.name}_{part:03d}.tvips"
            room = self.part_bytes - self.lost.get(part, 0)
            with open(path, "ab") as f:
                written = 0
                while written < room and done < len(self.data):
                    n = min(next(sizes), room - written, len(self.data) - done)
                    f.write(self.data[done : done + n])
                    f.flush()
                    done += n
                    written += n
                    time.sleep(self.pause)
            done += self.lost.get(part, 0)
            part += 1

    def finish(self):
        """Wait for the last byte; raise what the writer raised."""
        self.join(60)
        assert not self.is_alive(), "the acquisition did not finish"
        if self.error is not None:
            raise self.error


@pytest.fixture
def acquire():
    """``acquire(rec, folder, **kw)``: an :class:`Acquisition` of ``rec``, started."""
    started = []

    def run(rec, folder, **kw):
        started.append(Acquisition(rec, folder, **kw))
        return started[-1]

    yield run
    for acquisition in started:
        acquisition.join(60)


@pytest.fixture(autouse=True)
def no_open_tvips_files():
    """Fail a test that leaves a .tvips file open (a leak of a file handle).

    Temporary parts of the writer (``.x_000.tvips.partial-...``) count too.
    """
    proc = psutil.Process()
    before = {f.path for f in proc.open_files()}
    yield
    import gc

    gc.collect()
    left = [
        f.path
        for f in proc.open_files()
        if ".tvips" in f.path.lower() and f.path not in before
    ]
    assert not left, f"files left open: {left}"
