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


# --- denied files and folders -----------------------------------------------------


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


# --- a full disk, a kill while writing --------------------------------------------


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


# --- the commit -------------------------------------------------------------------


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


# --- refused before anything is written -------------------------------------------
#
# Each case below is refused by the writer before it writes or moves a file:
# the folder (with an earlier recording of the name) is exactly as it was.


def refused(earlier, signal, error, msg, **kwargs):
    """Write ``signal`` over the earlier recording; assert it is refused, intact."""
    with pytest.raises(error, match=f"^{re.escape(msg)}$"):
        file_writer(
            earlier.folder / "keep.tvips",
            signal,
            show_progressbar=False,
            overwrite_recording=True,
            **kwargs,
        )
    earlier.assert_intact()


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize(
    ("shape", "msg"),
    [
        ((2, 0, 3), "frames of 0 x 3 pixels have no rows"),
        ((2, 3, 0), "frames of 3 x 0 pixels have no columns"),
        ((0, 0), "frames of 0 x 0 pixels have no rows"),
    ],
)
@pytest.mark.parametrize("dtype", [None, "uint16"])
def test_frames_without_pixels_are_refused(
    earlier_recording, stack, tmp_path, lazy, shape, msg, dtype
):
    # (with dtype=, float data: refused before the range of no values is sought)
    data = (da if lazy else np).zeros(
        shape, dtype=np.uint16 if dtype is None else float
    )
    msg += ": a TVIPS frame has at least one row and one column"
    refused(earlier_recording(tmp_path), stack(data), ValueError, msg, dtype=dtype)


@pytest.mark.parametrize(
    ("shape", "msg"),
    [
        (
            (1, 2**32),
            "frames of 1 x 4294967296 pixels have too many columns: the main "
            "header's dimx (uint32) holds at most 4294967295",
        ),
        (
            (2**32, 3),
            "frames of 4294967296 x 3 pixels have too many rows: the main "
            "header's dimy (uint32) holds at most 4294967295",
        ),
    ],
)
def test_frames_larger_than_the_main_header_holds(
    earlier_recording, stack, tmp_path, shape, msg
):
    # lazy: nothing of these 4 GiB is ever computed
    data = da.zeros(shape, dtype=np.uint8, chunks=2**20)
    refused(earlier_recording(tmp_path), stack(data), ValueError, msg)


@pytest.mark.parametrize("dtype", [None, "uint16"])
def test_complex_data_is_refused(earlier_recording, stack, tmp_path, dtype):
    data = np.full((2, 3, 4), 1 + 2j, np.complex64)
    msg = (
        "TVIPS stores unsigned pixels, and the data are complex64: complex values "
        "cannot be converted without losing their imaginary part; write their "
        "modulus or real part (e.g. abs(s) or s.real in HyperSpy), converted "
        "with dtype='uint16' after checking its range"
    )
    refused(earlier_recording(tmp_path), stack(data), ValueError, msg, dtype=dtype)


@pytest.mark.parametrize(
    ("carried", "msg"),
    [
        (
            {"num": 5},
            "original_metadata.frame_headers['num'] is a single value 5, not one "
            "value per frame: give an array with a value for each frame, or "
            "remove the field",
        ),
        (
            {"num": np.arange(2), "ms": np.int64(3)},
            "original_metadata.frame_headers['ms'] is a single value np.int64(3), "
            "not one value per frame: give an array with a value for each frame, "
            "or remove the field",
        ),
        (
            {"num": [[1, 2], [3]]},
            "original_metadata.frame_headers['num'] is a ragged list, not one "
            "value per frame: give an array with a value for each frame, or "
            "remove the field",
        ),
        (
            7,
            "original_metadata.frame_headers must map frame-header fields to one "
            "value per frame, found a value of type int",
        ),
        (
            {"num": [None, None]},
            "original_metadata.frame_headers['num'] holds values of type object "
            "that are not numbers for the uint32 field",
        ),
    ],
    ids=["scalar", "numpy-scalar", "ragged", "no-mapping", "not-numbers"],
)
def test_carried_frame_headers_not_per_frame(
    earlier_recording, stack, tmp_path, carried, msg
):
    signal = stack(np.ones((2, 3, 4), np.uint16))
    signal["original_metadata"] = {"frame_headers": carried}
    refused(earlier_recording(tmp_path), signal, ValueError, msg)


LIMIT = "but the reader accepts at most 16777216: give frame_header_extra_bytes of "


@pytest.mark.parametrize(
    ("extra", "carried", "msg"),
    [
        (
            2**24,
            None,
            "frame_header_extra_bytes=16777216 asks for frame headers of 16777276 "
            f"bytes, {LIMIT}at most 16777156",
        ),
        (
            None,
            2**40,
            "original_metadata.tvips_header.frameheaderbytes=1099511627776 asks "
            f"for frame headers of 1099511627776 bytes, {LIMIT}at most 16777156 "
            "to choose the size",
        ),
        (
            None,
            2**24 + 1,
            "original_metadata.tvips_header.frameheaderbytes=16777217 asks for "
            f"frame headers of 16777217 bytes, {LIMIT}at most 16777156 to choose "
            "the size",
        ),
    ],
    ids=["option", "carried-2**40", "carried-just-over"],
)
def test_frame_headers_the_reader_refuses(
    earlier_recording, stack, tmp_path, extra, carried, msg
):
    signal = stack(np.ones((2, 3, 4), np.uint16))
    if carried is not None:
        signal["original_metadata"] = {
            "tvips_header": {"version": 2, "frameheaderbytes": carried},
            "frame_headers": {"num": np.arange(2)},
        }
    refused(
        earlier_recording(tmp_path),
        signal,
        ValueError,
        msg,
        frame_header_extra_bytes=extra,
    )


@pytest.mark.parametrize("extra", [float("inf"), float("nan"), "abc"])
def test_extra_bytes_that_are_no_whole_number(
    earlier_recording, stack, tmp_path, extra
):
    msg = f"frame_header_extra_bytes must be a whole number >= 0, got {extra!r}"
    signal = stack(np.ones((2, 3, 4), np.uint16))
    refused(
        earlier_recording(tmp_path),
        signal,
        ValueError,
        msg,
        frame_header_extra_bytes=extra,
    )


def test_frame_headers_at_the_readers_limit_are_written(stack, tmp_path):
    # the one limit: what the writer accepts, the reader reads
    from rsciio_tvips._format.layout import V2_MAX_FRAME_HEADER_SIZE

    data = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    file_writer(
        tmp_path / "w.tvips",
        stack(data),
        show_progressbar=False,
        frame_header_extra_bytes=V2_MAX_FRAME_HEADER_SIZE - 60,
    )
    (d,) = file_reader(tmp_path / "w_000.tvips", frame_headers=False)
    np.testing.assert_array_equal(d["data"], data)
    assert d["original_metadata"]["tvips_header"]["frameheaderbytes"] == 2**24


# --- names that name no file, names taken by what is not a part -------------------


def test_an_empty_name_is_refused(
    earlier_recording, snapshot, stack, tmp_path, monkeypatch
):
    # "" would be the current folder, and the recording named after it in
    # the folder above
    earlier = earlier_recording(tmp_path)
    (tmp_path / "here").mkdir()
    earlier.remember()
    monkeypatch.chdir(tmp_path / "here")
    msg = (
        "the file name is empty: name the recording, e.g. 'x.tvips' (its parts "
        "are then x_000.tvips, x_001.tvips, ...)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer("", stack(np.ones((1, 2, 2), np.uint8)))
    assert snapshot(tmp_path / "here") == {}
    earlier.assert_intact()


@pytest.mark.parametrize("how", ["path", "str", "dot"])
def test_a_folder_as_the_name_is_refused(
    earlier_recording, stack, tmp_path, monkeypatch, how
):
    # IsADirectoryError, as open() raises: the name is fine, what is on disk
    # is a folder (and it is an OSError, as the writer's other disk errors)
    earlier = earlier_recording(tmp_path)
    folder = tmp_path / "keep"
    folder.mkdir()
    earlier.remember()
    monkeypatch.chdir(folder)
    name = {"path": folder, "str": str(folder), "dot": "."}[how]
    msg = (
        f"[Errno 21] {name}: is a folder, not a recording: name one in it, e.g. "
        f"{os.path.join(name, 'x.tvips')}"
    )
    with pytest.raises(IsADirectoryError, match=f"^{re.escape(msg)}$"):
        file_writer(name, stack(np.ones((1, 2, 2), np.uint8)))
    earlier.assert_intact()


def test_a_name_ending_with_a_separator_is_refused(earlier_recording, stack, tmp_path):
    earlier = earlier_recording(tmp_path)
    name = f"{tmp_path}/keep/"
    msg = (
        f"{name}: ends with a path separator, so it names a folder, not a "
        f"recording: name the recording, e.g. {name}x.tvips"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer(name, stack(np.ones((1, 2, 2), np.uint8)))
    earlier.assert_intact()


def make_fifo(path):
    os.mkfifo(path)


def make_folder(path):
    path.mkdir()


def link_to_folder(path):
    (path.parent / "elsewhere").mkdir()
    path.symlink_to(path.parent / "elsewhere", target_is_directory=True)


def link_to_nothing(path):
    path.symlink_to(path.parent / "nothing")


def link_to_a_device(path):
    path.symlink_to("/dev/null")


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (make_folder, "a directory"),
        (make_fifo, "a FIFO"),
        (link_to_folder, "a symbolic link to {folder}/elsewhere, a directory"),
        (link_to_nothing, "a dangling symbolic link to {folder}/nothing"),
        (link_to_a_device, "a symbolic link to /dev/null, a character device"),
    ],
    ids=["folder", "fifo", "link-to-folder", "dangling-link", "link-to-device"],
)
@pytest.mark.parametrize("name", ["keep_002.tvips", "keep_007.TVIPS"])
@pytest.mark.parametrize("overwrite", [True, False])
def test_a_part_name_taken_by_what_is_no_part_file(
    earlier_recording, snapshot, stack, tmp_path, make, what, name, overwrite
):
    # keep_002 is a part the write makes; keep_007 one it would move aside
    # and delete. Either way the commit would have placed the new parts and
    # then failed: refused first, whether overwriting or not.
    if make is make_fifo and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    earlier = earlier_recording(tmp_path)
    make(tmp_path / name)
    before = snapshot(tmp_path)
    # in the reader's words (the reader names such a part the same way)
    what = what.format(folder=tmp_path)
    msg = (
        f"{name} is {what}: it has the name of a part of the recording 'keep' "
        "but is not a part file, and is never replaced: move or rename it, or "
        "choose another name"
    )
    with pytest.raises(FileExistsError, match=f"^{re.escape(msg)}$"):
        file_writer(
            tmp_path / "keep.tvips",
            stack(np.ones((6, 3, 4), np.uint16)),
            max_file_size=256 + 2 * 84,
            show_progressbar=False,
            overwrite_recording=overwrite,
        )
    assert snapshot(tmp_path) == before
    # without what the test made, the earlier recording is as it was
    if make is make_folder:
        (tmp_path / name).rmdir()
    else:
        (tmp_path / name).unlink()
    shutil.rmtree(tmp_path / "elsewhere", ignore_errors=True)
    earlier.assert_intact()


def test_a_part_that_is_a_link_to_a_file_is_replaced_not_written_through(
    earlier_recording, tmp_path
):
    # the reader reads through the link, so it is a part; the new part takes
    # the link's place and the file it led to stays as it was
    earlier = earlier_recording(tmp_path)
    (tmp_path / "archive").mkdir()
    target = tmp_path / "archive" / "keep_001.tvips"
    os.replace(tmp_path / "keep_001.tvips", target)
    (tmp_path / "keep_001.tvips").symlink_to(target)
    kept = target.read_bytes()
    earlier.write_over()
    assert target.read_bytes() == kept
    assert not (tmp_path / "keep_001.tvips").is_symlink()
    np.testing.assert_array_equal(
        file_reader(tmp_path / "keep_000.tvips")[0]["data"], np.ones((6, 3, 4))
    )
    assert sorted(os.listdir(tmp_path)) == [
        "archive",
        "keep_000.tvips",
        "keep_001.tvips",
    ]


# --- long names -------------------------------------------------------------------


def long_stem(nbytes: int, char: str = "n") -> str:
    """A stem whose parts' names (``STEM_000.tvips``) are ``nbytes`` bytes long."""
    size = len(char.encode())
    stem = char * ((nbytes - 10) // size)
    return stem + "s" * (nbytes - 10 - len(stem.encode()))


@pytest.mark.parametrize("nbytes", [237, 238, 239, 240, 250, 255])
def test_part_names_up_to_the_limit(stack, snapshot, tmp_path, nbytes):
    # part names of 238 bytes or more leave no room for the 18 bytes the
    # hidden name adds while writing (16 when moved aside): those parts are
    # written under shortened hidden names, and replace one another alike
    stem = long_stem(nbytes)
    for value, per_part in ((1, 1), (2, 2)):  # 3 parts, replaced by 2
        file_writer(
            tmp_path / f"{stem}.tvips",
            stack(np.full((6, 3, 4), value, np.uint16)),
            max_file_size=256 + per_part * 84,
            show_progressbar=False,
            overwrite_recording=value == 2,
        )
    names = sorted(snapshot(tmp_path))
    assert names == [f"{stem}_{k:03d}.tvips" for k in range(2)]
    assert len(names[0].encode()) == nbytes
    (d,) = file_reader(tmp_path / names[1])
    np.testing.assert_array_equal(d["data"], np.full((6, 3, 4), 2))


@pytest.mark.parametrize("char", ["n", "é"], ids=["ascii", "two-byte"])
def test_part_names_over_the_limit_are_refused(
    earlier_recording, stack, tmp_path, char
):
    earlier = earlier_recording(tmp_path)
    stem = long_stem(256, char)
    msg = (
        f"[Errno 36] {stem}_000.tvips: the part's name is 256 bytes long, and "
        "its folder allows names of at most 255 bytes (PC_NAME_MAX): choose a "
        "shorter name"
    )
    with pytest.raises(OSError, match=f"^{re.escape(msg)}$") as info:
        file_writer(tmp_path / f"{stem}.tvips", stack(np.ones((1, 2, 2), np.uint8)))
    assert info.value.errno == errno.ENAMETOOLONG
    earlier.assert_intact()


def test_the_folders_own_name_limit(stack, snapshot, tmp_path, monkeypatch):
    # the limit is the folder's (PC_NAME_MAX), 255 where it does not say
    from rsciio_tvips._writing import names as _names

    real = os.pathconf
    monkeypatch.setattr(
        os, "pathconf", lambda p, n: 100 if n == "PC_NAME_MAX" else real(p, n)
    )
    assert _names.name_limit(tmp_path) == 100
    stem = long_stem(90)
    file_writer(
        tmp_path / stem, stack(np.ones((1, 2, 2), np.uint8)), show_progressbar=False
    )
    with pytest.raises(OSError, match=r"at most 100 bytes \(PC_NAME_MAX\)"):
        file_writer(tmp_path / long_stem(101), stack(np.ones((1, 2, 2), np.uint8)))
    monkeypatch.setattr(os, "pathconf", lambda p, n: -1)  # no limit said
    assert _names.name_limit(tmp_path) == 255
    monkeypatch.delattr(os, "pathconf")  # no pathconf at all (Windows)
    assert _names.name_limit(tmp_path) == 255
    assert sorted(snapshot(tmp_path)) == [f"{stem}_000.tvips"]


def test_shortened_hidden_names_are_recognised(stack, snapshot, tmp_path):
    # A killed write of a long name leaves shortened hidden files: the next
    # write of that name removes its unfinished parts and puts back an
    # earlier recording moved aside, and no other name takes them for its own
    # (not even the recording named like the digest that stands for it).
    from rsciio_tvips._writing.names import STALE_TAG, TEMP_TAG, hidden_name

    stem, other = long_stem(250), long_stem(250, "o")
    old = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    file_writer(
        tmp_path / stem, stack(old), max_file_size=256 + 2 * 64, show_progressbar=False
    )
    for k in (0, 1):  # killed after moving the earlier parts aside
        final = f"{stem}_{k:03d}.tvips"
        os.replace(
            tmp_path / final, hidden_name(tmp_path, final, STALE_TAG, "0123abcd")
        )
    strays = [
        hidden_name(tmp_path, f"{name}_000.tvips", TEMP_TAG, "0123abcd")
        for name in (stem, other)
    ]
    for stray in strays:
        stray.write_bytes(b"unfinished")
    assert all(len(p.name) < 50 and p.name.endswith("~") for p in strays)
    digest = strays[0].name[1:17]
    file_writer(tmp_path / digest, stack(old), show_progressbar=False)
    assert strays[0].exists() and strays[1].exists()
    with (
        pytest.warns(TvipsFormatWarning, match="its 2 part\\(s\\) are back in place"),
        pytest.raises(FileExistsError, match=f"a recording named '{stem}' exists"),
    ):
        file_writer(tmp_path / stem, stack(old), show_progressbar=False)
    np.testing.assert_array_equal(file_reader(tmp_path / stem)[0]["data"], old)
    file_writer(
        tmp_path / stem,
        stack(old[:1]),
        show_progressbar=False,
        overwrite_recording=True,
    )
    assert sorted(snapshot(tmp_path)) == sorted(
        [f"{digest}_000.tvips", f"{stem}_000.tvips", strays[1].name]
    )


# --- large frames -----------------------------------------------------------------


TRUTH = np.random.default_rng(16).integers(0, 60000, (2, 3, 7, 10), dtype=np.uint16)


@pytest.mark.parametrize(
    "chunks",
    [None, (1, 2, 7, 10), (2, 1, 7, 3), (1, 3, 2, 4), (1, 1, 1, 10)],
    ids=["numpy", "whole-frames", "column-strips", "grid", "rows"],
)
@pytest.mark.parametrize("budget", [1, 13, 20, 40, 139], ids=lambda b: f"{b}B")
def test_large_frames_are_written_in_pieces(
    stack, tmp_path, monkeypatch, chunks, budget
):
    # frames of 140 bytes, written in pieces of at most `budget` bytes: rows,
    # parts of a row (budget 1, 13), pieces of chunks; byte for byte what is
    # written whole, in three parts, with the 108-byte frame headers of a scan
    from rsciio_tvips._writing import pieces as _pieces

    data = TRUTH if chunks is None else da.from_array(TRUTH, chunks=chunks)
    signal = stack(data)
    for name, limit in (("whole", _pieces.LARGE_FRAME_BYTES), ("pieces", budget)):
        monkeypatch.setattr(_pieces, "LARGE_FRAME_BYTES", limit)
        (tmp_path / name).mkdir()
        file_writer(
            tmp_path / name / "x.tvips",
            signal,
            show_progressbar=False,
            max_file_size=256 + 2 * 248,
        )
    whole, pieces = (
        {p.name: p.read_bytes() for p in (tmp_path / n).iterdir()}
        for n in ("whole", "pieces")
    )
    assert sorted(whole) == ["x_000.tvips", "x_001.tvips", "x_002.tvips"]
    assert pieces == whole


def test_a_failure_inside_a_large_frame_keeps_the_earlier_recording(
    earlier_recording, stack, tmp_path, monkeypatch
):
    from rsciio_tvips._writing import pieces as _pieces

    earlier = earlier_recording(tmp_path)
    monkeypatch.setattr(_pieces, "LARGE_FRAME_BYTES", 40)

    def fail(block, block_info=None):
        if block_info[None]["chunk-location"] == (1, 3, 0):
            raise RuntimeError("row 3 of frame 1 failed")
        return block

    data = da.ones((2, 7, 10), dtype=np.uint16, chunks=(1, 1, 10))
    data = data.map_blocks(fail, meta=np.empty((0, 0, 0), np.uint16))
    with pytest.raises(RuntimeError, match="row 3 of frame 1 failed"):
        file_writer(
            tmp_path / "keep.tvips",
            stack(data),
            show_progressbar=False,
            overwrite_recording=True,
        )
    earlier.assert_intact()


@pytest.mark.parametrize(
    ("values", "found"),
    [([-1, 5], "-1 at frame 0"), ([1, 2**33 + 5], "8589934597 at frame 1"),
     ([1.7, 2.0], "1.7 at frame 0"), ([1.0, float("nan")], "nan at frame 1")],
)  # fmt: skip
def test_carried_values_a_field_cannot_hold(tmp_path, values, found):
    # numpy would store -1 as 4294967295 and 2**33 + 5 as 5, silently
    signal = {
        "data": np.zeros((2, 2, 2), np.uint16),
        "axes": [{"size": 2, "navigate": True}, {"size": 2}, {"size": 2}],
        "original_metadata": {"frame_headers": {"num": np.array(values)}},
    }
    msg = (
        f"original_metadata.frame_headers['num'] holds {found}, which the uint32 "
        "field cannot hold (whole numbers from 0 to 4294967295)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer(tmp_path / "x.tvips", signal, show_progressbar=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [float("inf"), [108], "abc", float("nan"), 60.5])
def test_carried_frame_header_size_that_is_no_number(tmp_path, value):
    signal = {
        "data": np.zeros((2, 2, 2), np.uint16),
        "axes": [{"size": 2, "navigate": True}, {"size": 2}, {"size": 2}],
        "original_metadata": {
            "tvips_header": {"version": 2, "frameheaderbytes": value},
            "frame_headers": {"num": np.array([1, 2])},
        },
    }
    msg = (
        "original_metadata.tvips_header.frameheaderbytes must be a whole number "
        f"of bytes, got {value!r}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        file_writer(tmp_path / "x.tvips", signal, show_progressbar=False)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_name_is_refused_before_a_pass_over_the_data(tmp_path):
    # a dtype conversion reads every chunk: the name's refusals come first
    import dask.array as da

    computed = []

    def counted(block):
        computed.append(block.shape)
        return block

    data = da.ones((8, 4, 4), chunks=(1, 4, 4), dtype="f4").map_blocks(counted)
    computed.clear()  # dask's guess of the output type called it already
    axes = [{"size": 8, "navigate": True}, {"size": 4}, {"size": 4}]
    file_writer(tmp_path / "x.tvips", {"data": np.ones((2, 2, 2), np.uint16),
                "axes": [{"size": 2, "navigate": True}, {"size": 2}, {"size": 2}]},
                show_progressbar=False)  # fmt: skip
    with pytest.raises(FileExistsError, match="a recording named 'x' exists"):
        file_writer(tmp_path / "x.tvips", {"data": data, "axes": axes},
                    dtype="uint16", show_progressbar=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"^the file name is empty"):
        file_writer("", {"data": data, "axes": axes}, dtype="uint16")
    assert computed == []
