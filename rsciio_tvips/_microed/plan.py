"""Which frames of a recording go into which SMV image, and the files they go to.

:func:`plan_images` opens the recording, turns the ``frames`` range and
``sum_frames`` into the list of frames of each image, names the images and
the log from the template, and refuses to go on if one of those files
exists: all of it before a pixel is read or a byte written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._format.layout import frame_times_ms
from .._reading.recording import TvipsRecording
from .._scans.ranges import parse_range
from .smv_format import log_name, output_names


@dataclass(frozen=True)
class SmvPlan:
    """Which frames go into which image, and the files they go to.

    Attributes
    ----------
    rec : TvipsRecording
        The recording, open.
    first : int
        The first frame used.
    available : int
        Frames in the range asked for; those that do not fill a last image
        are dropped.
    group : int
        Frames summed into each image.
    frames : numpy.ndarray of int64
        The frames used, in order: image ``k`` is the sum of
        ``frames[k * group : (k + 1) * group]``.
    headers : numpy.ndarray
        Their frame headers.
    times_ms : numpy.ndarray of int64
        Their times, in ms since 1970 (UTC).
    names : list of pathlib.Path
        One file per image.
    log_path : pathlib.Path
        The JSON log.
    """

    rec: TvipsRecording
    first: int
    available: int
    group: int
    frames: np.ndarray
    headers: np.ndarray
    times_ms: np.ndarray
    names: list[Path]
    log_path: Path

    @property
    def n_images(self) -> int:
        """Number of images to write."""
        return len(self.names)

    @property
    def dropped(self) -> int:
        """Frames of the range left over after the last whole image."""
        return self.available - self.frames.size


def plan_images(
    filename: str | os.PathLike,
    template: str | os.PathLike,
    *,
    sum_frames: int = 1,
    frames=None,
    start_number: int = 1,
    signed: bool = False,
    overwrite: bool = False,
    permissive: bool = False,
) -> SmvPlan:
    """Open the recording and plan the images, before anything is written.

    The parameters mean what they mean for :func:`to_smv`.

    Returns
    -------
    SmvPlan

    Raises
    ------
    FileNotFoundError
        If the folder of ``template`` or the recording does not exist.
    ValueError
        If ``frames`` cannot be read, the frames do not fill one image, or
        ``template`` and ``start_number`` cannot name the images.
    FileExistsError
        If an image or the log exists and ``overwrite`` is False: every
        name is checked, and the first one found is named.
    TvipsFormatError
        If the recording cannot be read.
    """
    group = int(sum_frames)
    folder = Path(template).parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder for the images")
    rec = TvipsRecording(filename, permissive=permissive, signed=signed)
    if frames is None or isinstance(frames, slice):
        sl = frames or slice(None)
    else:
        sl = parse_range(frames, "frames")
    first, stop, _ = sl.indices(rec.n_frames)
    available = max(0, stop - first)
    n_images = available // group
    if n_images == 0:
        msg = (
            f"frames {first} to {stop} ({available} frames) do not fill one image "
            f"of {group} summed frames"
        )
        raise ValueError(msg)
    used = np.arange(first, first + n_images * group, dtype=np.int64)
    names = output_names(template, int(start_number), n_images)
    log_path = log_name(template)
    if not overwrite:
        existing = [p for p in [*names, log_path] if p.exists()]
        if existing:
            msg = (
                f"{existing[0]} exists ({len(existing)} of the {len(names) + 1} "
                "files to write exist): pass overwrite=True to replace them"
            )
            raise FileExistsError(msg)
    headers = rec.header_fields[used]
    times_ms = frame_times_ms(headers)
    return SmvPlan(rec=rec, first=first, available=available, group=group,
                   frames=used, headers=headers, times_ms=times_ms, names=names,
                   log_path=log_path)  # fmt: skip
