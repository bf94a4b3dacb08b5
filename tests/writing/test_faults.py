"""Writer faults: the earlier recording survives them, and the next write cleans up.

Every fault of ``file_writer`` is here: a failing lazy computation, short
writes, a denied file or folder, a full disk (in the first part and in a
later one), a kill (while writing and inside the commit) and a failed rename
in the commit. The reader's faults are in ``tests/reading/test_faults.py``.
"""

import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from rsciio_tvips import (
    TvipsFormatError,
    TvipsFormatWarning,
    TvipsRecording,
    file_reader,
    file_writer,
    validate,
)

#: A visible part file (the writer's temporary files start with a dot).
PART = re.compile(r"^[^.].*_\d{3}\.tvips$", re.IGNORECASE)
#: Flags of an ``os.open`` for writing.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


# --- a failing computation, short writes ------------------------------------------


def test_error_during_write_keeps_the_earlier_recording(
    stack, earlier_recording, tmp_path
):
    earlier = earlier_recording(tmp_path)

    def fail(block):
        if block[0, 0, 0] >= 40:
            raise RuntimeError("the computation failed")
        return block

    lazy = da.arange(60 * 3 * 4, chunks=12, dtype=np.uint16).reshape(60, 3, 4)
    lazy = lazy.rechunk((10, 3, 4)).map_blocks(fail)
    with pytest.raises(RuntimeError, match="the computation failed"):
        file_writer(
            tmp_path / "keep.tvips",
            stack(lazy),
            show_progressbar=False,
            max_file_size=256 + 10 * 84,
            overwrite_recording=True,
        )
    earlier.assert_intact()


def test_partial_writes_are_resumed(make_tvips, tmp_path, monkeypatch):
    from rsciio_tvips._writing import store as _store

    real = os.pwritev
    monkeypatch.setattr(_store, "IOV_MAX", 3)
    monkeypatch.setattr(
        os, "pwritev", lambda fd, bufs, offset: real(fd, [bytes(bufs[0])[:7]], offset)
    )
    rec = make_tvips(n_frames=5)
    (d,) = file_reader(rec.path)
    file_writer(tmp_path / "w.tvips", d, show_progressbar=False)
    assert (tmp_path / "w_000.tvips").read_bytes() == rec.path.read_bytes()


# --- denied files and folders ------------------------------------------------------


def test_permission_error_names_the_file(earlier_recording, tmp_path, monkeypatch):
    earlier = earlier_recording(tmp_path)
    real_open = os.open

    def deny(path, flags, *args, **kw):
        if flags & os.O_CREAT and "keep_001" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(
        PermissionError,
        match=r"^\[Errno 13\] keep_001.tvips: cannot create the part: "
        r"Permission denied$",
    ):
        earlier.write_over()
    monkeypatch.undo()
    earlier.assert_intact()


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (errno.EACCES, PermissionError, "Permission denied"),
        (errno.EROFS, OSError, "Read-only file system"),
    ],
)
def test_folder_refuses_writes(
    earlier_recording, tmp_path, monkeypatch, code, error, reason
):
    # A folder the user may read but not write (EACCES), or on a file system
    # mounted read-only (EROFS), as the kernel answers: every open for
    # writing fails, and on a read-only file system so does removing a file,
    # even one that does not exist (the mount is checked before the name).
    earlier = earlier_recording(tmp_path)
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
            earlier.write_over(stem)
    monkeypatch.undo()
    earlier.assert_intact()


def test_permission_denied_moving_the_earlier_recording_aside(
    earlier_recording, tmp_path, monkeypatch
):
    # In a shared folder with the sticky bit, a colleague's parts cannot be
    # renamed: here the second part of the earlier recording, after the first
    # was moved aside. The first must be moved back.
    earlier = earlier_recording(tmp_path)
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
        earlier.write_over()
    monkeypatch.undo()
    earlier.assert_intact()


# --- a full disk, a kill while writing ---------------------------------------------


CHILD = textwrap.dedent("""
    import resource, signal, sys, time
    import dask.array as da
    import numpy as np
    from rsciio_tvips import file_writer

    folder, how = sys.argv[1], sys.argv[2]
    if how == "full":
        # a disk that fills up: files may not grow past 20 kB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    def slow(block):
        if how == "kill":
            print("writing", flush=True)
            time.sleep(0.2)
        return block
    data = da.ones((400, 16, 16), chunks=(20, 16, 16), dtype=np.uint16).map_blocks(slow)
    s = {"data": data, "axes": [{"size": 400, "navigate": True},
         {"size": 16, "navigate": False}, {"size": 16, "navigate": False}],
         "metadata": {}}
    from rsciio_tvips._writing import store as _store
    _store.BLOCK_BYTES = 20 * 600
    file_writer(folder + "/keep.tvips", s, max_file_size=256 + 100 * 572,
                show_progressbar=False, overwrite_recording=True)
""")


def test_full_disk_keeps_the_earlier_recording(earlier_recording, tmp_path):
    earlier = earlier_recording(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), "full"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert re.search(
        r"OSError: \[Errno 27\] keep_000.tvips: cannot write the part: "
        r"File too large",
        run.stderr,
    ), run.stderr
    earlier.assert_intact()


def test_killed_writer_keeps_the_earlier_recording(stack, earlier_recording, tmp_path):
    before = earlier_recording(tmp_path).files
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), "kill"],
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(3):  # a few blocks are written
        assert child.stdout.readline() == "writing\n"
    child.kill()
    child.wait()
    child.stdout.close()
    now = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    leftovers = [n for n in now if n not in before]
    assert leftovers and all(
        n.startswith(".keep_") and ".partial-" in n for n in leftovers
    )
    assert {n: b for n, b in now.items() if n in before} == before
    # the next write of the name removes the leftovers
    file_writer(
        tmp_path / "keep.tvips",
        stack(np.ones((1, 2, 2), np.uint16)),
        show_progressbar=False,
        overwrite_recording=True,
    )
    assert sorted(os.listdir(tmp_path)) == ["keep_000.tvips"]
    shutil.rmtree(tmp_path)


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


def test_full_disk_in_a_later_part(earlier_recording, tmp_path):
    # Records of 84 bytes, max_file_size 507: part 0 holds 2 (424 bytes, it
    # fits under the limit) and part 1 would hold 6 (504 bytes): the disk is
    # full in part 1, after part 0 was written whole. "fresh" is a new name,
    # "keep" replaces an earlier recording, "plain" is the portable path
    # without pwritev.
    earlier = earlier_recording(tmp_path)
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
    earlier.assert_intact()


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
def test_killed_writer_leaves_only_hidden_files(
    earlier_recording, snapshot, stack, tmp_path, earlier
):
    old = earlier_recording(tmp_path).frames if earlier else None
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


# --- the commit --------------------------------------------------------------------


def test_failed_commit_restores_the_earlier_recording(
    earlier_recording, tmp_path, monkeypatch
):
    earlier = earlier_recording(tmp_path)
    real = os.replace

    def fail_second_part(src, dst):
        if str(dst).endswith("keep_001.tvips") and ".partial-" in str(src):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_second_part)
    with pytest.raises(
        OSError,
        match=r"^\[Errno 5\] keep_001.tvips: cannot put in "
        r"place the part: Input/output error$",
    ):
        earlier.write_over()
    monkeypatch.undo()
    earlier.assert_intact()


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


def test_killed_during_the_commit(earlier_recording, snapshot, tmp_path):
    # The commit renames 4 files: the earlier parts aside, then the new parts
    # into place. A kill between two renames must never leave a keep_000 that
    # reads as a recording other than the earlier or the new one, whole: a
    # new keep_000 alone would read as a shorter recording, without a warning.
    new = np.full((6, 3, 4), 7, np.uint16)
    points = 4
    for point in range(points + 1):
        (tmp_path / str(point)).mkdir()
        old = earlier_recording(tmp_path / str(point)).frames
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


def test_a_write_after_a_killed_commit_never_deletes_the_only_copy(
    earlier_recording, snapshot, stack, tmp_path
):
    # After a kill inside the commit, the earlier recording may exist only as
    # hidden .stale- files. The next write of that name puts it back when no
    # part is visible, and otherwise keeps the hidden files (with a warning)
    # rather than treating them as litter.
    points = 4
    for point in range(points + 1):
        (tmp_path / str(point)).mkdir()
        old = earlier_recording(tmp_path / str(point)).frames
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
