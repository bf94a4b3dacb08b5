"""Faults and load: many readers at once, file handles, read-only access, a
recording that grows while it is read, and a writer that meets a full disk, a
denied folder or a kill.

Writer faults already covered in test_writer.py (a failing lazy computation,
a denied second part, a full disk at the first part of a lazy write, a kill
during a lazy write, a failed rename in the commit) are not repeated here.
"""

import builtins
import errno
import gc
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import traceback
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import build, main_header

from rsciio_tvips import (
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    file_writer,
    validate,
)
from rsciio_tvips._reading import recording as reader_module
from rsciio_tvips._reading.lazy import BlockSource

PART = re.compile(r"^[^.].*_\d{3}\.tvips$", re.IGNORECASE)


def handles(folder):
    """Paths under ``folder`` this process holds open (psutil, no GC first)."""
    return [
        f.path for f in psutil.Process().open_files() if f.path.startswith(str(folder))
    ]


def snapshot(folder):
    """Every file of ``folder``, hidden ones too, by name: its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def stack(data):
    """A signal dictionary of a stack of frames (one navigation axis)."""
    axes = [{"size": n, "navigate": True} for n in data.shape[:-2]]
    axes += [{"size": n, "navigate": False} for n in data.shape[-2:]]
    return {"data": data, "axes": axes, "metadata": {}}


def random_frames(n, shape=(32, 32), seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (n, *shape), np.uint16)


def load_recording(folder):
    """240 frames of 32 x 32 in 5 parts, three of them split inside a record."""
    record = 108 + 32 * 32 * 2
    # the part boundaries fall in the pixels of record 0, in the pixels of
    # record 50, in the frame header of record 120 and on the last byte of
    # record 200
    split = [1000, 50 * record + 777, 120 * record + 3, 201 * record - 1]
    return build(
        folder, "load", frames=random_frames(240), frame_header_bytes=108, split=split
    )


# --- load: threads and processes at once ---------------------------------------


def test_eight_threads_read_random_frames_at_once(tmp_path):
    rec_truth = load_recording(tmp_path)
    truth, n = rec_truth.frames, 240
    rec = TvipsRecording(rec_truth.paths[2])
    (d,) = file_reader(rec_truth.path, lazy=True, rechunking=(16, 32, 32))
    lazy = d["data"]
    start = threading.Barrier(8)

    def reader(seed):
        rng = np.random.default_rng(seed)
        start.wait(timeout=60)  # all eight read at the same time
        wrong, done = [], 0
        for _ in range(1000):
            kind = rng.random()
            if kind < 0.05:
                # a dask slice fused into one read, run in this thread
                i = int(rng.integers(n))
                got, want = lazy[i].compute(scheduler="sync"), truth[i]
            elif kind < 0.5:
                i = int(rng.integers(-n, n))
                got, want = rec.read_frame(i), truth[i]
            elif kind < 0.9:
                # repeats and negative numbers, in any order
                idx = rng.integers(-n, n, int(rng.integers(1, 9)))
                got, want = rec.read_frames(idx), truth[idx]
            else:
                idx = rng.integers(0, n, 5)
                got, want = rec.read_headers(idx)["num"], idx + 1
            done += 1
            if not np.array_equal(got, want):
                wrong.append((kind, idx if kind >= 0.5 else i))
        return done, wrong

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(reader, range(8)))
    assert results == [(1000, [])] * 8
    assert handles(tmp_path) == []


def _read_in_process(path, lazy, seed, start, results):
    """A reader in another process: random frames and a lazy sum."""
    try:
        start.wait(timeout=120)
        rec = TvipsRecording(path)
        rng = np.random.default_rng(seed)
        idx = rng.integers(-rec.n_frames, rec.n_frames, 300)
        got = np.concatenate(
            [rec.read_frames(idx[a : a + 30]) for a in range(0, 300, 30)]
        )
        # the lazy array came pickled from the parent: its tasks open the files
        total = int(lazy.sum(dtype=np.uint64).compute(scheduler="sync"))
        results.put((seed, idx, got, total, os.getpid()))
    except BaseException:
        results.put((seed, traceback.format_exc()))


def test_four_processes_read_at_once(tmp_path):
    rec_truth = load_recording(tmp_path)
    truth = rec_truth.frames
    (d,) = file_reader(rec_truth.path, lazy=True, rechunking=(40, 32, 32))
    ctx = multiprocessing.get_context("forkserver")
    # the server imports these once and forks the readers from itself (if it
    # already runs for another test, the readers import them on their own)
    ctx.set_forkserver_preload(["numpy", "dask.array", "rsciio_tvips", "test_faults"])
    start, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(
            target=_read_in_process,
            args=(str(rec_truth.paths[k]), d["data"], k, start, results),
        )
        for k in range(4)
    ]
    for p in procs:
        p.start()
    try:
        got = sorted((results.get(timeout=120) for _ in procs), key=lambda r: r[0])
    finally:
        for p in procs:
            p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert all(len(r) == 5 for r in got), [r[1] for r in got if len(r) == 2]
    assert len({r[4] for r in got}) == 4
    for _seed, idx, frames, total, _pid in got:
        np.testing.assert_array_equal(frames, truth[idx])
        assert total == int(truth.sum(dtype=np.uint64))


# --- file handles ----------------------------------------------------------------


def test_no_handle_left_after_eager_reads(tmp_path, monkeypatch):
    rec_truth = build(tmp_path, n_frames=7, records_per_part=3)
    (d,) = file_reader(rec_truth.paths[1])
    np.testing.assert_array_equal(d["data"], rec_truth.frames)
    assert handles(tmp_path) == []
    # the threaded read of large arrays, made to run on this small one
    monkeypatch.setattr(reader_module, "THREADED_MIN_BYTES", 0)
    rec = TvipsRecording(rec_truth.path)
    np.testing.assert_array_equal(rec.asarray(), rec_truth.frames)
    np.testing.assert_array_equal(
        rec.read_frames([6, 0, 3]), rec_truth.frames[[6, 0, 3]]
    )
    assert rec.frame_headers["num"].tolist() == list(range(1, 8))
    assert validate(rec_truth.path) == []
    assert handles(tmp_path) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"header": main_header(bitsperpixel=12)},
            "rec_000.tvips: unsupported pixel depth (bitsperpixel) at offset 16: "
            "expected 8, 16, 32 or 64, found 12",
        ),
        (
            {"n_frames": 1, "truncate": 5},
            "rec_000.tvips: no whole frame record after the main header at offset "
            "256: expected at least 84 bytes (frame header 60 + 3 x 4 pixels of 2 "
            "bytes), found 79 in 1 part(s)",
        ),
    ],
)
def test_no_handle_left_after_an_error_when_opening(make_tvips, tmp_path, kw, message):
    rec = make_tvips(**kw)
    for read in (TvipsRecording, file_reader, lambda p: file_reader(p, lazy=True)):
        with pytest.raises(TvipsFormatError, match=f"^{re.escape(message)}$"):
            read(rec.path)
        assert handles(tmp_path) == []


def test_no_handle_left_after_an_error_when_reading(tmp_path, monkeypatch):
    rec_truth = build(tmp_path, n_frames=6, records_per_part=3)
    rec = TvipsRecording(rec_truth.path)
    (d,) = file_reader(rec_truth.path, lazy=True, rechunking=(2, 3, 4))
    # part 1 (frames 3..5) loses its end after the recording was opened:
    # frame 4's pixels (file offset 84 + 60 = 144) keep 6 of their 24 bytes
    with open(rec_truth.paths[1], "r+b") as f:
        f.truncate(150)
    message = (
        "rec_001.tvips: expected 24 bytes at offset 144, found 6; the file was "
        "shortened after the recording was opened"
    )
    monkeypatch.setattr(reader_module, "THREADED_MIN_BYTES", 0)
    for read in (
        lambda: rec.read_frame(4),
        lambda: rec.read_frames([0, 4]),
        lambda: d["data"][4].compute(scheduler="sync"),
    ):
        with pytest.raises(TvipsFormatError, match=f"^{re.escape(message)}$"):
            read()
        assert handles(tmp_path) == []
    # several reads fail at once (threads of the eager read, dask's threads):
    # which of them is reported is not fixed
    for read in (rec.asarray, lambda: d["data"].sum().compute(scheduler="threads")):
        with pytest.raises(TvipsFormatError, match="shortened after the recording"):
            read()
        assert handles(tmp_path) == []


def test_no_handle_left_by_a_lazy_array(tmp_path):
    rec_truth = build(tmp_path, n_frames=9, records_per_part=4)
    (d,) = file_reader(rec_truth.path, lazy=True, rechunking=(2, 3, 4))
    sources = [
        weakref.ref(o)
        for o in gc.get_objects()
        # type(), not isinstance(): gc also holds dead weak proxies of other
        # tests, on which isinstance raises ReferenceError
        if type(o) is BlockSource and o.chain.first.path == str(rec_truth.path)
    ]
    assert len(sources) == 5
    lazy = d.pop("data")
    assert int(lazy.sum().compute()) == int(rec_truth.frames.sum())
    np.testing.assert_array_equal(lazy[::-2].compute(), rec_truth.frames[::-2])
    # nothing waits for the garbage collector: every read closed its files
    assert handles(tmp_path) == []
    del lazy, d
    gc.collect()
    assert [s() for s in sources] == [None] * 5
    assert handles(tmp_path) == []


# --- the reader never writes ------------------------------------------------------

#: Audit events that change the file system (``os.replace`` raises os.rename).
CHANGING = {
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "os.link",
    "os.symlink",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: Where the audit hook records events, and what it found: audit hooks cannot
#: be removed, so the one hook of the session records only while a test asks.
AUDIT = {"folder": None, "events": [], "hooked": False}


def _audit(event, args):
    folder = AUDIT["folder"]
    if folder is None or (event != "open" and event not in CHANGING):
        return
    target = args[0]
    if isinstance(target, (str, bytes, os.PathLike)) and os.fsdecode(target).startswith(
        folder
    ):
        AUDIT["events"].append((event, os.fsdecode(target), args[1:]))


@pytest.fixture
def audit(tmp_path):
    """Every open and change of a file under tmp_path, by any code, any thread."""
    if not AUDIT["hooked"]:
        sys.addaudithook(_audit)
        AUDIT["hooked"] = True
    AUDIT["events"] = []
    AUDIT["folder"] = str(tmp_path)
    yield AUDIT["events"]
    AUDIT["folder"] = None


READS = {
    "eager": lambda path: file_reader(path),
    "lazy": lambda path: file_reader(path, lazy=True)[0]["data"].sum().compute(),
    "validate": validate,
    "frame headers": lambda path: TvipsRecording(path).frame_headers,
    "scan": lambda path: file_reader(path, lazy=True, scan_shape=(2, 4))[0][
        "data"
    ].compute(scheduler="sync"),
}


@pytest.mark.parametrize("kind", list(READS))
def test_reading_opens_nothing_for_writing(tmp_path, monkeypatch, audit, kind):
    rec = build(tmp_path, n_frames=8, records_per_part=3)
    audit.clear()  # the files were just written: watch the reading only
    before = {p.name: (p.read_bytes(), p.stat()) for p in tmp_path.iterdir()}
    opens = []

    def spy_open(file, mode="r", *args, **kwargs):
        opens.append((os.fspath(file), mode))
        return builtins.open(file, mode, *args, **kwargs)

    real_os_open = os.open

    def spy_os_open(path, flags, *args, **kwargs):
        opens.append((os.fspath(path), flags))
        return real_os_open(path, flags, *args, **kwargs)

    # the package's modules call open(); give each its own spy, and os.open
    # for all
    for name, module in list(sys.modules.items()):
        if name.startswith("rsciio_tvips"):
            monkeypatch.setattr(module, "open", spy_open, raising=False)
    monkeypatch.setattr(os, "open", spy_os_open)
    READS[kind](rec.paths[1])
    monkeypatch.undo()
    mine = [o for o in opens if o[0].startswith(str(tmp_path))]
    assert {m for _, m in mine} == {"rb"}
    assert {p for p, _ in mine} == {str(p) for p in rec.paths}
    # the audit hook sees any open, also of code the spies do not reach
    opened = [e for e in audit if e[0] == "open"]
    assert len(opened) >= len(mine)
    assert [e for e in opened if e[2][1] & WRITE_FLAGS] == []
    assert [e for e in audit if e[0] != "open"] == []
    after = {p.name: (p.read_bytes(), p.stat()) for p in tmp_path.iterdir()}
    assert after.keys() == before.keys()
    for name, (raw, stat) in before.items():
        assert after[name][0] == raw
        assert (after[name][1].st_mtime_ns, after[name][1].st_mode) == (
            stat.st_mtime_ns,
            stat.st_mode,
        )


RO_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from rsciio_tvips import TvipsRecording, file_reader, file_writer, validate

    ro, truth = sys.argv[1], np.load(sys.argv[2])
    out = {}
    try:
        open(ro + "/probe", "wb")
    except OSError as e:
        out["probe"] = e.errno
    eager = file_reader(ro + "/ro_002.tvips")[0]["data"]
    out["eager"] = bool(np.array_equal(eager, truth))
    lazy = file_reader(ro + "/ro_000.tvips", lazy=True)[0]["data"]
    out["lazy"] = bool(np.array_equal(lazy.compute(), truth))
    out["num"] = TvipsRecording(ro + "/ro_001.tvips").frame_headers["num"].tolist()
    out["validate"] = [str(f) for f in validate(ro + "/ro_000.tvips")]
    data = np.zeros((2, 3, 4), np.uint16)
    axes = [{"size": 2, "navigate": True}, {"size": 3, "navigate": False},
            {"size": 4, "navigate": False}]
    try:
        file_writer(ro + "/new.tvips", {"data": data, "axes": axes, "metadata": {}},
                    show_progressbar=False)
    except OSError as e:
        out["write"] = [type(e).__name__, str(e)]
    print(json.dumps(out))
""")


def test_read_only_file_system(tmp_path):
    # A read-only bind mount in a user namespace of our own: no root needed
    # where the system allows user namespaces (skipped where it does not).
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    rec = build(src, "ro", n_frames=7, records_per_part=3)
    np.save(tmp_path / "truth.npy", rec.frames)
    child = [sys.executable, RO_CHILD, tmp_path / "truth.npy"]
    script = 'mount --bind -o ro "$1" "$2" || exit 77; exec "$3" -c "$4" "$2" "$5"'
    run = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", script, "sh", src, ro, *child],
        capture_output=True,
        text=True,
    )
    if run.returncode == 77 or "unshare failed" in run.stderr:
        pytest.skip(f"no read-only bind mount here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "probe": errno.EROFS,
        "eager": True,
        "lazy": True,
        "num": list(range(1, 8)),
        "validate": [],
        "write": [
            "OSError",
            "[Errno 30] new_000.tvips: cannot create the part: Read-only file system",
        ],
    }


# --- a recording that grows while it is read ---------------------------------------


def truncated(name, frame, offset, found, record=572):
    """The reader's warning for a truncated last record, as a match pattern."""
    msg = (
        f"{name}: frame record {frame} at offset {offset} is truncated: expected "
        f"{record} bytes, found {found}; the {found} bytes are ignored and {frame} "
        "whole frames are read (interrupted acquisition?)"
    )
    return f"^{re.escape(msg)}$"


def test_growing_recording(tmp_path):
    # the whole acquisition, built elsewhere; it reaches tmp_path bit by bit
    (tmp_path / "whole").mkdir()
    whole = build(tmp_path / "whole", "grow", frames=random_frames(12, (16, 16)))
    truth, stream, record = whole.frames, whole.stream, whole.record_size
    assert record == 572
    first, second = tmp_path / "grow_000.tvips", tmp_path / "grow_001.tvips"

    # 3 frames and half of the 4th
    first.write_bytes(whole.header + stream[: 3 * record + 286])
    with pytest.warns(
        TvipsFormatWarning, match=truncated("grow_000.tvips", 3, 1972, 286)
    ):
        early = TvipsRecording(first)
    with pytest.warns(
        TvipsFormatWarning, match=truncated("grow_000.tvips", 3, 1972, 286)
    ):
        (d,) = file_reader(first, lazy=True)
    early_lazy = d["data"]
    np.testing.assert_array_equal(early_lazy.compute(), truth[:3])

    # part 0 is finished 10 bytes into frame 6; part 1 holds the rest of
    # frame 6, frames 7 and 8 and 5 bytes of frame 9
    cut = 6 * record + 10
    with open(first, "ab") as f:
        f.write(stream[3 * record + 286 : cut])
    second.write_bytes(stream[cut : 9 * record + 5])
    offset = 9 * record - cut
    with pytest.warns(
        TvipsFormatWarning, match=truncated("grow_001.tvips", 9, offset, 5)
    ):
        (d,) = file_reader(second, lazy=True)
    middle_lazy = d["data"]
    with pytest.warns(
        TvipsFormatWarning, match=truncated("grow_001.tvips", 9, offset, 5)
    ):
        (d,) = file_reader(first)
    np.testing.assert_array_equal(d["data"], truth[:9])

    # the acquisition ends: 12 whole frames, and no warning
    with open(second, "ab") as f:
        f.write(stream[9 * record + 5 :])
    (d,) = file_reader(second)
    np.testing.assert_array_equal(d["data"], truth)
    assert d["original_metadata"]["frame_headers"]["num"].tolist() == list(range(1, 13))

    # what was opened earlier still reads the frames it had, and only those
    assert early.n_frames == 3
    np.testing.assert_array_equal(early.read_frames([2, 0, 1]), truth[[2, 0, 1]])
    np.testing.assert_array_equal(early_lazy.compute(), truth[:3])
    np.testing.assert_array_equal(middle_lazy.compute(), truth[:9])
    np.testing.assert_array_equal(middle_lazy[6].compute(), truth[6])


def test_reading_while_an_acquisition_writes(tmp_path):
    (tmp_path / "whole").mkdir()
    whole = build(tmp_path / "whole", "live", frames=random_frames(40, (8, 8)))
    truth, record = whole.frames, whole.record_size
    # The acquisition appends pieces of any size; parts are capped at one
    # size (records split across parts), and a part is finished before the
    # next one is created, as acquisition software does.
    cap = 5 * record + 77
    sizes = iter(np.random.default_rng(1).integers(1, 400, 1000).tolist())
    data, appends, part, used = whole.header + whole.stream, [], 0, 0
    while data:
        n = min(next(sizes), cap - used, len(data))
        appends.append((tmp_path / f"live_{part:03d}.tvips", data[:n]))
        data, used = data[n:], used + n
        if used == cap:
            part, used = part + 1, 0
    # whole frames once append k is done, k = 0, 1, ...
    done = np.cumsum([len(b) for _, b in appends]) - len(whole.header)
    whole_frames = (np.maximum(done, 0) // record).tolist()
    appended, reading = threading.Semaphore(0), threading.Semaphore(0)

    def acquire():
        for path, piece in appends:
            with open(path, "ab", buffering=0) as f:
                f.write(piece)
            appended.release()
            # the next piece is appended while the reader reads this state
            assert reading.acquire(timeout=60)

    seen = []
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(acquire)
        for k in range(len(appends)):
            assert appended.acquire(timeout=60), job.result()
            reading.release()
            try:
                with warnings.catch_warnings():
                    # a partial last record is expected here, at any byte
                    warnings.simplefilter("ignore", TvipsFormatWarning)
                    rec = TvipsRecording(tmp_path / "live_000.tvips")
            except TvipsFormatError:
                assert whole_frames[k] == 0  # no whole record yet
                continue
            n = rec.n_frames
            # what was there, and at most what the append under way adds
            assert whole_frames[k] <= n <= whole_frames[min(k + 1, len(appends) - 1)]
            assert seen == [] or n >= seen[-1]
            np.testing.assert_array_equal(rec.asarray(), truth[:n])
            assert rec.frame_headers["num"].tolist() == list(range(1, n + 1))
            seen.append(n)
        job.result()
    assert seen[-1] == 40
    assert len(appends) > 30  # each of these states was read, as asserted above


# --- writer faults --------------------------------------------------------------------


def earlier_recording(folder, stem="keep"):
    """A recording already on disk, in two parts; returns its frames."""
    old = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
    file_writer(
        folder / f"{stem}.tvips",
        stack(old),
        max_file_size=256 + 2 * 64,
        show_progressbar=False,
    )
    return old


def assert_earlier_intact(folder, before, old):
    assert snapshot(folder) == before
    (d,) = file_reader(folder / "keep_001.tvips")
    np.testing.assert_array_equal(d["data"], old)


FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from rsciio_tvips import file_writer
    from rsciio_tvips._writing import store as _store

    folder = sys.argv[1]
    data = np.arange(9 * 3 * 4, dtype=np.uint16).reshape(9, 3, 4)
    s = {"data": data, "axes": [{"size": 9, "navigate": True},
         {"size": 3, "navigate": False}, {"size": 4, "navigate": False}],
         "metadata": {}}
    # a disk that fills up: no file may grow past 450 bytes
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (450, 450))
    for stem, writev in (("fresh", True), ("keep", True), ("plain", False)):
        _store.HAVE_WRITEV = writev
        try:
            file_writer(f"{folder}/{stem}.tvips", s, max_file_size=507,
                        show_progressbar=False, overwrite_recording=stem == "keep")
        except OSError as e:
            print(type(e).__name__, e, flush=True)
        else:
            print("written", stem, flush=True)
""")


def test_full_disk_in_a_later_part(tmp_path):
    # Records of 84 bytes, max_file_size 507: part 0 holds 2 (424 bytes, it
    # fits under the limit) and part 1 would hold 6 (504 bytes): the disk is
    # full in part 1, after part 0 was written whole. "fresh" is a new name,
    # "keep" replaces an earlier recording, "plain" is the portable path
    # without pwritev.
    old = earlier_recording(tmp_path)
    before = snapshot(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, tmp_path],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"OSError [Errno 27] {stem}_001.tvips: cannot write the part: File too large"
        for stem in ("fresh", "keep", "plain")
    ]
    # no part of a new recording, no temporary file, the earlier one as it was
    assert_earlier_intact(tmp_path, before, old)


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (errno.EACCES, PermissionError, "Permission denied"),
        (errno.EROFS, OSError, "Read-only file system"),
    ],
)
def test_folder_refuses_writes(tmp_path, monkeypatch, code, error, reason):
    # A folder the user may read but not write (EACCES), or on a file system
    # mounted read-only (EROFS), as the kernel answers: every open for
    # writing fails, and on a read-only file system so does removing a file,
    # even one that does not exist (the mount is checked before the name).
    old = earlier_recording(tmp_path)
    before = snapshot(tmp_path)
    real_open, real_unlink = os.open, os.unlink

    def refused(path):
        return OSError(code, os.strerror(code), os.fspath(path))

    def open_(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and os.path.dirname(path) == str(tmp_path):
            raise refused(path)
        return real_open(path, flags, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        if code == errno.EROFS and os.path.dirname(path) == str(tmp_path):
            raise refused(path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "unlink", unlink)
    for stem in ("fresh", "keep"):
        msg = f"[Errno {code}] {stem}_000.tvips: cannot create the part: {reason}"
        with pytest.raises(error, match=f"^{re.escape(msg)}$"):
            file_writer(
                tmp_path / f"{stem}.tvips",
                stack(np.ones((6, 3, 4), np.uint16)),
                max_file_size=256 + 2 * 84,
                show_progressbar=False,
                overwrite_recording=True,
            )
    monkeypatch.undo()
    assert_earlier_intact(tmp_path, before, old)


def test_permission_denied_moving_the_earlier_recording_aside(tmp_path, monkeypatch):
    # In a shared folder with the sticky bit, a colleague's parts cannot be
    # renamed: here the second part of the earlier recording, after the first
    # was moved aside. The first must be moved back.
    old = earlier_recording(tmp_path)
    before = snapshot(tmp_path)
    real_replace = os.replace

    def deny(src, dst):
        if Path(src) == tmp_path / "keep_001.tvips":
            raise PermissionError(
                errno.EACCES, "Permission denied", os.fspath(src), None, os.fspath(dst)
            )
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", deny)
    msg = (
        rf"^\[Errno 13\] Permission denied: '{re.escape(str(tmp_path))}/keep_001"
        rf"\.tvips' -> '{re.escape(str(tmp_path))}/\.keep_001\.tvips\.stale-"
        r"[0-9a-f]{8}'$"
    )
    with pytest.raises(PermissionError, match=msg):
        file_writer(
            tmp_path / "keep.tvips",
            stack(np.ones((6, 3, 4), np.uint16)),
            max_file_size=256 + 2 * 84,
            show_progressbar=False,
            overwrite_recording=True,
        )
    monkeypatch.undo()
    assert_earlier_intact(tmp_path, before, old)


KILL_CHILD = textwrap.dedent("""
    import sys, time
    import dask.array as da
    import numpy as np
    from rsciio_tvips import file_writer
    from rsciio_tvips._writing import store as _store

    folder, stem = sys.argv[1], sys.argv[2]
    def hold(block, block_info=None):
        if block_info and block_info[None]["chunk-location"][0] == 40:
            print("stuck", flush=True)  # the parent kills us now
            time.sleep(600)
        return block
    # 512 frames of 64 x 64 (4 MiB) in chunks of 8, each loaded on its own
    data = da.ones((512, 64, 64), chunks=(8, 64, 64), dtype=np.uint16)
    data = data.map_blocks(hold, meta=np.empty((0, 0, 0), np.uint16))
    _store.BLOCK_BYTES = 8 * 64 * 64 * 2
    s = {"data": data, "axes": [{"size": 512, "navigate": True},
         {"size": 64, "navigate": False}, {"size": 64, "navigate": False}],
         "metadata": {}}
    file_writer(f"{folder}/{stem}.tvips", s, max_file_size=2**20,
                show_progressbar=False, overwrite_recording=True)
""")


@pytest.mark.parametrize("earlier", [True, False])
def test_killed_writer_leaves_only_hidden_files(tmp_path, earlier):
    old = earlier_recording(tmp_path) if earlier else None
    before = snapshot(tmp_path)
    findings = validate(tmp_path / "keep_000.tvips")
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, tmp_path, "keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Records of 8252 bytes, 127 to a part of 1 MiB: when chunk 40 (frames
    # 320..327) starts loading, frames 0..311 are written and 312..319 may be,
    # all of them in parts 0 to 2 (part 3 would start at frame 381).
    line = child.stdout.readline()
    child.kill()
    child.wait()
    stderr = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert line == "stuck\n", stderr
    now = snapshot(tmp_path)
    left = sorted(set(now) - set(before))
    token = left[0][-8:] if left else ""
    assert left == [f".keep_{k:03d}.tvips.partial-{token}" for k in range(3)]
    assert len(now[left[0]]) == 256 + 127 * 8252  # part 0 was complete
    # every visible file is as it was: no part is partial
    assert {n: b for n, b in now.items() if n in before} == before
    if earlier:
        (d,) = file_reader(tmp_path / "keep_000.tvips")
        np.testing.assert_array_equal(d["data"], old)
        chain = TvipsRecording(tmp_path / "keep_001.tvips").chain
        assert [p.name for p in chain.parts] == ["keep_000.tvips", "keep_001.tvips"]
    else:
        with pytest.raises(FileNotFoundError, match=r"^No such TVIPS file: "):
            TvipsRecording(tmp_path / "keep_000.tvips")
    # the hidden files are neither parts nor other recordings to validate
    assert validate(tmp_path / "keep_000.tvips") == findings
    # the next write of the name removes them, and only them
    others = [
        ".keep_x_000.tvips.partial-0123abcd",  # recording keep_x
        ".keeper_000.tvips.partial-0123abcd",
        ".keep_000.tvips.notes",
        "keep_notes.txt",
    ]
    for name in others:
        (tmp_path / name).write_bytes(b"not ours")
    new = np.full((3, 2, 2), 9, np.uint8)
    file_writer(
        tmp_path / "keep_000.tvips",
        stack(new),
        show_progressbar=False,
        overwrite_recording=True,
    )
    assert sorted(os.listdir(tmp_path)) == sorted([*others, "keep_000.tvips"])
    np.testing.assert_array_equal(
        file_reader(tmp_path / "keep_000.tvips")[0]["data"], new
    )


COMMIT_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from rsciio_tvips import file_writer

    folder, points = sys.argv[1], int(sys.argv[2])
    new = np.full((6, 3, 4), 7, np.uint16)
    s = {"data": new, "axes": [{"size": 6, "navigate": True},
         {"size": 3, "navigate": False}, {"size": 4, "navigate": False}],
         "metadata": {}}
    real = os.replace
    for point in range(points + 1):
        pid = os.fork()
        if pid == 0:
            calls = []
            def replace(src, dst):
                # the kill comes before rename number `point`
                if len(calls) == point:
                    os.kill(os.getpid(), signal.SIGKILL)
                calls.append(dst)
                return real(src, dst)
            os.replace = replace
            file_writer(f"{folder}/{point}/keep.tvips", s, max_file_size=256 + 2 * 84,
                        show_progressbar=False, overwrite_recording=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(point, os.waitstatus_to_exitcode(status), flush=True)
""")


def test_killed_during_the_commit(tmp_path):
    # The commit renames 4 files: the earlier parts aside, then the new parts
    # into place. A kill between two renames must never leave a keep_000 that
    # reads as a recording other than the earlier or the new one, whole: a
    # new keep_000 alone would read as a shorter recording, without a warning.
    new = np.full((6, 3, 4), 7, np.uint16)
    points = 4
    for point in range(points + 1):
        (tmp_path / str(point)).mkdir()
        old = earlier_recording(tmp_path / str(point))
    earlier = snapshot(tmp_path / "0")
    run = subprocess.run(
        [sys.executable, "-c", COMMIT_CHILD, tmp_path, str(points)],
        capture_output=True,
        text=True,
    )
    assert run.stdout.splitlines() == [
        *(f"{p} -9" for p in range(points)),
        f"{points} 0",  # the last write was not killed
    ]

    def outcome(folder):
        parts = sorted(p for p in folder.iterdir() if PART.match(p.name))
        if not parts:
            return "no part"
        try:
            data = file_reader(parts[0])[0]["data"]
        except TvipsFormatError as e:
            return str(e)
        if np.array_equal(data, old):
            return "earlier"
        return "new" if np.array_equal(data, new) else f"other: {data.shape}"

    missing = (
        "keep_000.tvips: part 0 of the recording is missing (found parts up to "
        "keep_001.tvips, 1 missing)"
    )
    outcomes = [outcome(tmp_path / str(p)) for p in range(points + 1)]
    assert outcomes == ["earlier", missing, "no part", missing, "new"]
    # until the commit ends, the earlier parts' bytes are all still there,
    # in place or moved aside
    for point in range(points):
        folder = tmp_path / str(point)
        for name, raw in earlier.items():
            kept = [
                p.read_bytes()
                for p in folder.iterdir()
                if p.name == name or p.name.startswith(f".{name}.stale-")
            ]
            assert raw in kept, (point, name)


def test_a_write_after_a_killed_commit_never_deletes_the_only_copy(tmp_path):
    # After a kill inside the commit, the earlier recording may exist only as
    # hidden .stale- files. The next write of that name puts it back when no
    # part is visible, and otherwise keeps the hidden files (with a warning)
    # rather than treating them as litter.
    points = 4
    for point in range(points + 1):
        (tmp_path / str(point)).mkdir()
        old = earlier_recording(tmp_path / str(point))
    earlier = snapshot(tmp_path / "0")
    subprocess.run(
        [sys.executable, "-c", COMMIT_CHILD, tmp_path, str(points)],
        capture_output=True,
        check=True,
    )
    again = stack(np.full((3, 2, 2), 9, np.uint8))
    # point 1: keep_000 aside; point 2: both aside, no new part placed yet
    for point, count in ((1, 1), (2, 2)):
        folder = tmp_path / str(point)
        with (
            pytest.warns(TvipsFormatWarning, match=r"^keep_000\.tvips: an interrupted "
                         r"earlier write had left the recording 'keep' hidden; its "
                         rf"{count} part\(s\) are back in place$"),
            pytest.raises(FileExistsError, match="a recording named 'keep' exists"),
        ):  # fmt: skip
            file_writer(folder / "keep.tvips", again, show_progressbar=False)
        # (the killed write's unfinished .partial- files go with the next write)
        visible = {k: v for k, v in snapshot(folder).items() if not k.startswith(".")}
        assert visible == earlier
    # point 3: the new keep_001 placed, without its _000; the earlier parts
    # are hidden and must survive an overwrite of the name
    for point in (3,):
        folder = tmp_path / str(point)
        hidden = {
            p.name: p.read_bytes() for p in folder.iterdir() if ".stale-" in p.name
        }
        assert sorted(raw for raw in hidden.values()) == sorted(earlier.values())
        with pytest.warns(TvipsFormatWarning, match="they are kept: rename them"):
            file_writer(folder / "keep.tvips", again, show_progressbar=False,
                        overwrite_recording=True)  # fmt: skip
        for name, raw in hidden.items():
            assert (folder / name).read_bytes() == raw
        np.testing.assert_array_equal(
            file_reader(folder / "keep_000.tvips")[0]["data"], again["data"]
        )
    del old
