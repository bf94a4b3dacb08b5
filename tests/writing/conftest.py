"""Fixtures of the writer's tests: a recording already on disk, folder snapshots.

``earlier_recording(folder)``
    writes the recording ``keep`` (two parts) that a new write must not
    damage, and returns an :class:`Earlier` that can check it is intact.
``snapshot(folder)``
    every file of a folder, hidden ones too, by name: its bytes (what a
    folder, a link or a pipe is, without reading it).
``stack(data)``
    the signal dictionary of a stack of frames, without calibration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rsciio_tvips import file_reader, file_writer


def snapshot(folder) -> dict:
    """Every file of ``folder``, hidden ones too, by name: its bytes.

    A link is its target's name, a folder its list of names; a pipe or a
    device only its kind: reading a pipe would block.
    """
    return {p.name: _content(p) for p in sorted(Path(folder).iterdir())}


def _content(path: Path):
    if path.is_symlink():
        return ("link to", os.readlink(path))
    if path.is_dir():
        return ("folder of", sorted(os.listdir(path)))
    if not path.is_file():
        return ("special file", os.stat(path).st_mode)
    return path.read_bytes()


def stack(data) -> dict:
    """A signal dictionary of a stack of frames (one navigation axis)."""
    axes = [{"size": n, "navigate": True} for n in data.shape[:-2]]
    axes += [{"size": n, "navigate": False} for n in data.shape[-2:]]
    return {"data": data, "axes": axes, "metadata": {}}


@dataclass
class Earlier:
    """A recording written before the write under test."""

    folder: Path
    #: the frames it holds
    frames: np.ndarray
    #: every file of the folder once it was written (see :func:`snapshot`)
    files: dict

    def write_over(self, stem="keep"):
        """The write under test: 6 frames of 3 x 4 uint16, 2 records a part.

        ``stem`` "keep" replaces this recording; another stem is a new name
        in the same folder.
        """
        file_writer(
            self.folder / f"{stem}.tvips",
            stack(np.ones((6, 3, 4), np.uint16)),
            max_file_size=256 + 2 * (60 + 3 * 4 * 2),
            show_progressbar=False,
            overwrite_recording=True,
        )

    def remember(self):
        """Take the folder as it is now, with what the test added, as what must stay."""
        self.files = snapshot(self.folder)

    def assert_intact(self):
        """Every file of the folder is as it was, and the recording reads."""
        assert snapshot(self.folder) == self.files
        (d,) = file_reader(self.folder / "keep_001.tvips")
        np.testing.assert_array_equal(d["data"], self.frames)


def write_earlier(folder) -> Earlier:
    """Write the recording 'keep' in two parts: 5 frames of 2 x 2 uint8."""
    folder = Path(folder)
    old = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
    file_writer(
        folder / "keep.tvips",
        stack(old),
        max_file_size=256 + 2 * 64,
        show_progressbar=False,
    )
    return Earlier(folder, old, snapshot(folder))


@pytest.fixture(scope="session", name="snapshot")
def snapshot_fixture():
    """``snapshot(folder)``: every file of a folder, by name: its bytes."""
    return snapshot


@pytest.fixture(scope="session", name="stack")
def stack_fixture():
    """``stack(data)``: the signal dictionary of a stack of frames."""
    return stack


@pytest.fixture(scope="session")
def earlier_recording():
    """``earlier_recording(folder)`` writes 'keep' there; returns an Earlier."""
    return write_earlier
