"""Reader faults and load: many readers at once, file handles, read-only access,
and a recording that grows while it is read.

The writer's faults (a full disk, a denied folder, a kill...) are in
``tests/writing/test_faults.py``.
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

import numpy as np
import psutil
import pytest

from rsciio_tvips import (
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    validate,
)
from rsciio_tvips._reading import recording as reader_module
from rsciio_tvips._reading.lazy import BlockSource


def handles(folder):
    """Paths under ``folder`` this process holds open (psutil, no GC first)."""
    return [
        f.path for f in psutil.Process().open_files() if f.path.startswith(str(folder))
    ]


def random_frames(n, shape=(32, 32), seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (n, *shape), np.uint16)


def load_recording(build, folder):
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


def test_eight_threads_read_random_frames_at_once(build, tmp_path):
    rec_truth = load_recording(build, tmp_path)
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


def test_four_processes_read_at_once(build, tmp_path):
    rec_truth = load_recording(build, tmp_path)
    truth = rec_truth.frames
    (d,) = file_reader(rec_truth.path, lazy=True, rechunking=(40, 32, 32))
    ctx = multiprocessing.get_context("forkserver")
    # the server imports these once and forks the readers from itself (if it
    # already runs for another test, the readers import them on their own)
    ctx.set_forkserver_preload(["numpy", "dask.array", "rsciio_tvips", __name__])
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


def test_no_handle_left_after_eager_reads(build, tmp_path, monkeypatch):
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
            {"header": {"bitsperpixel": 12}},
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
    ids=["bad main header", "no whole frame"],
)
def test_no_handle_left_after_an_error_when_opening(
    make_tvips, main_header, tmp_path, kw, message
):
    if "header" in kw:  # the main header's fields, made bytes here
        kw = {**kw, "header": main_header(**kw["header"])}
    rec = make_tvips(**kw)
    for read in (TvipsRecording, file_reader, lambda p: file_reader(p, lazy=True)):
        with pytest.raises(TvipsFormatError, match=f"^{re.escape(message)}$"):
            read(rec.path)
        assert handles(tmp_path) == []


def test_no_handle_left_after_an_error_when_reading(build, tmp_path, monkeypatch):
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
    # which of them is reported is not fixed, nor so whether it is one that
    # ends past the new end (the message above) or one that ends before it
    # (the part is no longer the one opened, though frame 3 is still whole)
    either = "shortened after the recording|size 252 -> 150 bytes \\(truncated\\)$"
    for read in (rec.asarray, lambda: d["data"].sum().compute(scheduler="threads")):
        with pytest.raises(TvipsFormatError, match=either):
            read()
        assert handles(tmp_path) == []
    # frame 3 (file offset 0 to 84) is all there: the read would succeed,
    # but the part is not what it was
    message = (
        "rec_001.tvips: the part changed since the recording was opened: size 252 "
        "-> 150 bytes (truncated)"
    )
    with pytest.raises(TvipsFormatError, match=f"^{re.escape(message)}$"):
        rec.read_frame(3)
    assert handles(tmp_path) == []


def test_no_handle_left_by_a_lazy_array(build, tmp_path):
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
def test_reading_opens_nothing_for_writing(build, tmp_path, monkeypatch, audit, kind):
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


def test_read_only_file_system(build, tmp_path):
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


def test_growing_recording(build, tmp_path):
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


def test_reading_while_an_acquisition_writes(build, tmp_path):
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


def test_short_reads_are_resumed(make_tvips, monkeypatch):
    # Linux moves at most 2 GiB - 4 KiB a read (a row of a very wide frame is
    # more); a read that returns less is resumed, not taken for a cut file
    from rsciio_tvips._reading import preadv

    rec = make_tvips(n_frames=6, shape=(8, 9), records_per_part=2)
    real = os.preadv

    def short(fd, bufs, offset):
        # at most 7 bytes a call, wherever the buffers begin
        first = memoryview(bufs[0])[:7]
        return real(fd, [first], offset)

    monkeypatch.setattr(preadv, "HAVE_PREADV", True)
    monkeypatch.setattr(preadv.os, "preadv", short)
    (d,) = file_reader(rec.path)
    np.testing.assert_array_equal(d["data"], rec.frames)
    (lazy,) = file_reader(rec.path, lazy=True)
    np.testing.assert_array_equal(lazy["data"].compute(), rec.frames)
