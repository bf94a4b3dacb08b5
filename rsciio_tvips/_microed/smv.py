"""Write a MicroED tilt series as SMV images, the format DIALS, XDS and MOSFLM read.

:func:`to_smv` writes one SMV file per frame, or per sum of ``sum_frames``
consecutive frames, streaming: the frames are read in batches of bounded
size, twice (the first pass finds the minima that set the offset, the
second writes). The header text, the names and the offset rule are in
:mod:`.smv_format`.

:func:`to_smv` wires four steps, each with one job: :class:`.SmvGeometry`
checks the geometry options and fills in the rest from the recording,
:func:`.plan_images` decides which frames go into which file (and checks
that no file is in the way), :func:`write_images` writes the images
(after :func:`find_levels` has chosen the offset) and :func:`write_log`
the JSON beside them.

Gain- and dark-corrected frames hold negative values, which the uint16 of
SMV cannot. Leginon's rule, followed here: one offset for the whole series
is added to every pixel, ``-(the lowest of the images' minima)``, at most
2000 (lower minima are cosmic-ray artefacts) and 0 when no minimum is
negative; what is still negative is clipped to 0 (and counted, as is what
exceeds 65535). The offset is recorded as ``LEGINON_OFFSET``; DIALS
subtracts ``IMAGE_PEDESTAL`` = (the highest of the images' minima) +
offset.

DIALS assembles a scan from ``OSC_START``/``OSC_RANGE`` only where
consecutive images are contiguous, so every image gets the same
``OSC_RANGE``: the angles are a straight line, fitted to the stage tilt of
the frames or given by a rotation rate.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

import numpy as np

from .._progress import Progress
from .._reading.recording import TvipsRecording
from .geometry import ResolvedGeometry, SmvGeometry
from .plan import SmvPlan, plan_images
from .smv_format import (
    LEGINON_MAX_OFFSET,
    SMV_MAX,
    TEMCAM_F416_PIXEL_MM,
    image_pedestal,
    leginon_offset,
    smv_date,
    smv_header,
)

#: About this many bytes of frames are read at a time.
BATCH_BYTES = 32 * 2**20
#: Passes over the frames: the minima (the offset), then the images.
PASSES = 2


def _images(rec: TvipsRecording, frames: np.ndarray, group: int, progress=None):
    """Yield the sum of each run of ``group`` frames, as int64 (a reused buffer).

    Frames are read in batches of about :data:`BATCH_BYTES`, so memory
    stays at one batch and one image whatever the size of the recording.
    ``progress`` (a :class:`~rsciio_tvips._progress.Progress`, or None)
    counts each frame as it is summed.
    """
    per_batch = max(1, BATCH_BYTES // rec.header.frame_nbytes)
    acc = np.zeros(rec.frame_shape, np.int64)
    filled = 0
    for start in range(0, frames.size, per_batch):
        batch = rec.read_frames(frames[start : start + per_batch])
        for frame in batch:
            np.add(acc, frame, out=acc, casting="unsafe")
            filled += 1
            if filled == group:
                yield acc
                acc[...] = 0
                filled = 0
        if progress is not None:
            progress.update(len(batch))


def _check_levels(sum_frames, offset, max_offset) -> None:
    """Check the options that are not geometry: the summing and the offset."""
    if int(sum_frames) != sum_frames or sum_frames < 1:
        raise ValueError(f"sum_frames must be a positive integer, got {sum_frames}")
    if offset is not None and not 0 <= offset <= SMV_MAX:
        raise ValueError(f"offset must be between 0 and {SMV_MAX}, got {offset}")
    if not 0 <= max_offset <= SMV_MAX:
        raise ValueError(
            f"max_offset must be between 0 and {SMV_MAX}, got {max_offset}"
        )


@dataclass(frozen=True)
class Levels:
    """The offset added to every pixel, and what DIALS subtracts.

    Attributes
    ----------
    minima : list of int
        The minimum of each image, summed, before the offset.
    offset, offset_source : int, str
        Added to every pixel (``LEGINON_OFFSET``), and why.
    max_offset : int
        The cap of Leginon's offset.
    pedestal : int
        ``IMAGE_PEDESTAL``.
    """

    minima: list[int]
    offset: int
    offset_source: str
    max_offset: int
    pedestal: int


def find_levels(
    plan: SmvPlan, offset: int | None, max_offset: int, progress=None
) -> Levels:
    """Read the images once and choose the offset (Leginon's rule, see :func:`to_smv`).

    Parameters
    ----------
    plan : SmvPlan
        The images.
    offset : int or None
        The ``offset`` option (None: Leginon's rule).
    max_offset : int
        The cap of Leginon's offset.
    progress : Progress, optional
        Counts the frames read.

    Returns
    -------
    Levels
    """
    images = _images(plan.rec, plan.frames, plan.group, progress)
    minima = [int(image.min()) for image in images]
    if offset is None:
        shift, source = leginon_offset(minima, max_offset), "Leginon's rule"
    else:
        shift, source = int(offset), "offset option"
    return Levels(minima=minima, offset=shift, offset_source=source,
                  max_offset=int(max_offset),
                  pedestal=image_pedestal(minima, shift))  # fmt: skip


def write_images(
    plan: SmvPlan,
    geometry: SmvGeometry,
    resolved: ResolvedGeometry,
    levels: Levels,
    overwrite: bool,
    progress=None,
) -> tuple[list[int], list[int]]:
    """Read the images again and write them: offset, clip, orient, header.

    Parameters
    ----------
    plan : SmvPlan
        The images and their names.
    geometry, resolved : SmvGeometry, ResolvedGeometry
        The options and the values of the headers.
    levels : Levels
        The offset and the pedestal.
    overwrite : bool
        Replace existing files (otherwise each is created, and an existing
        one is an error).
    progress : Progress, optional
        Counts the frames read.

    Returns
    -------
    tuple of list of int
        Pixels clipped to 0 and to 65535, one count per image.
    """
    rows, cols = resolved.shape
    binx, biny = resolved.binning
    group, seconds = plan.group, resolved.frame_time
    osc_range = resolved.angles["step"] * group
    fixed = {
        "DIM": 2, "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
        "SIZE1": cols, "SIZE2": rows, "PIXEL_SIZE": resolved.pixel_size,
        "BIN": f"{binx}x{biny}",
    }  # fmt: skip
    low_counts, high_counts = [], []
    mode = "wb" if overwrite else "xb"
    for k, image in enumerate(_images(plan.rec, plan.frames, group, progress)):
        values = image + levels.offset
        low_counts.append(int(np.count_nonzero(values < 0)))
        high_counts.append(int(np.count_nonzero(values > SMV_MAX)))
        np.clip(values, 0, SMV_MAX, out=values)
        pixels = geometry.orient(values.astype("<u2"))
        start = resolved.angles["start"] + k * osc_range
        header = smv_header(
            {
                **fixed,
                "DATE": smv_date(int(plan.times_ms[k * group])),
                "TIME": seconds * group,
                "ACC_TIME": round(seconds * group * 1000),
                "DISTANCE": resolved.distance,
                "OSC_START": start,
                "OSC_RANGE": osc_range,
                "PHI": start,
                "TWOTHETA": 0,
                "WAVELENGTH": resolved.wavelength,
                "BEAM_CENTER_X": resolved.beam_center[0],
                "BEAM_CENTER_Y": resolved.beam_center[1],
                "IMAGE_PEDESTAL": levels.pedestal,
                "GAIN": float(geometry.gain),
                "LEGINON_OFFSET": levels.offset,
            }
        )
        with open(plan.names[k], mode) as f:
            f.write(header)
            f.write(np.ascontiguousarray(pixels).tobytes())
    return low_counts, high_counts


def write_log(
    plan: SmvPlan,
    geometry: SmvGeometry,
    resolved: ResolvedGeometry,
    levels: Levels,
    clipped: tuple[list[int], list[int]],
    *,
    signed: bool,
    start_number: int,
    overwrite: bool,
) -> dict:
    """Write the JSON log beside the images and return what it holds.

    Parameters
    ----------
    plan, geometry, resolved, levels
        What :func:`to_smv` planned, was given, found and chose.
    clipped : tuple of list of int
        What :func:`write_images` returns.
    signed, start_number, overwrite
        The options of :func:`to_smv`.

    Returns
    -------
    dict
        The log; its keys are listed under Returns of :func:`to_smv`.
    """
    low_counts, high_counts = clipped
    last = plan.first + plan.frames.size
    log = {
        "format": "smv",
        "source": str(plan.rec.chain.first.path),
        "files": [str(p) for p in plan.names],
        "log": str(plan.log_path),
        "frames": [plan.first, last],
        "sum_frames": plan.group,
        "dropped_frames": plan.dropped,
        "start_number": int(start_number),
        "signed": bool(signed),
        "shape": list(resolved.shape),
        "offset": levels.offset,
        "offset_source": levels.offset_source,
        "max_offset": levels.max_offset,
        "pedestal": levels.pedestal,
        "minima": levels.minima,
        "clipped_low": sum(low_counts),
        "clipped_high": sum(high_counts),
        "clipped_low_per_image": low_counts,
        "clipped_high_per_image": high_counts,
        "angles": {**resolved.angles,
                   "osc_range": resolved.angles["step"] * plan.group},
        "frame_time": resolved.frame_time,
        "frame_time_source": resolved.frame_time_source,
        "distance": resolved.distance,
        "distance_source": resolved.distance_source,
        "wavelength": resolved.wavelength,
        "wavelength_source": resolved.wavelength_source,
        "pixel_size": resolved.pixel_size,
        "physical_pixel_size": float(geometry.physical_pixel_size),
        "binning": list(resolved.binning),
        "beam_center": list(resolved.beam_center),
        "beam_center_source": resolved.beam_center_source,
        "gain": float(geometry.gain),
        "orientation": {"flip": geometry.flip, "rot90": geometry.rot90},
    }  # fmt: skip
    with open(plan.log_path, "w" if overwrite else "x", encoding="utf-8") as f:
        json.dump(log, f, indent=2)
        f.write("\n")
    return log


def to_smv(
    filename: str | os.PathLike,
    template: str | os.PathLike,
    *,
    sum_frames: int = 1,
    frames=None,
    signed: bool = False,
    offset: int | None = None,
    max_offset: int = LEGINON_MAX_OFFSET,
    physical_pixel_size: float = TEMCAM_F416_PIXEL_MM,
    distance: float | None = None,
    beam_center=None,
    wavelength: float | None = None,
    rotation_rate: float | None = None,
    start_angle: float | None = None,
    frame_time: float | None = None,
    gain: float = 1.0,
    flip: str | None = None,
    rot90: int = 0,
    start_number: int = 1,
    overwrite: bool = False,
    permissive: bool = False,
    progress: bool = False,
) -> dict:
    """Write a MicroED tilt series as SMV images for DIALS, XDS or MOSFLM.

    One file per frame, or per sum of ``sum_frames`` consecutive frames,
    uint16 little-endian after a 512-byte header (longer, in steps of 512,
    if needed). Negative values of corrected frames are kept by Leginon's
    offset (see Notes). Next to the images a JSON log (``lyso.json`` for
    ``lyso_###.img``) records every value chosen and where it came from;
    the same dictionary is returned.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    template : str or os.PathLike
        Names of the images: one run of ``#`` in the file name is replaced
        by the image number, zero-padded (``lyso_###.img`` ->
        ``lyso_001.img``, ``lyso_002.img`` ...).
    sum_frames : int, default 1
        Sum this many consecutive frames into each image. Frames left over
        at the end (fewer than ``sum_frames``) are not written; their number
        is ``dropped_frames`` in the log.
    frames : str or slice, optional
        ``"START:STOP"`` (either may be left out) or a slice: the frames to
        use, e.g. to leave out frames before the rotation starts.
    signed : bool, default False
        Read the 16-bit pixels as int16 (gain- and dark-corrected frames):
        see :func:`rsciio_tvips.file_reader`.
    offset : int, optional
        Add this to every pixel instead of Leginon's offset.
    max_offset : int, default 2000
        Cap of Leginon's offset.
    physical_pixel_size : float, default 0.0156
        Detector pixel before binning, in mm (TemCam-F416: 15.6 um).
        ``PIXEL_SIZE`` is this times the binning of the main header.
    distance : float, optional
        Detector distance (effective camera length) in mm. By default the
        main header's camera length ``magtotal``, if the frames are in
        diffraction mode (``mode`` 2) and it is not 0; otherwise required.
    beam_center : (float, float), optional
        ``BEAM_CENTER_X`` and ``BEAM_CENTER_Y`` in mm, as the header holds
        them and DIALS reads them: X from the first row of the written image
        (along the slow axis), Y from the first column (along the fast
        axis). By default the centre of the image.
    wavelength : float, optional
        In Angstrom. By default the relativistic electron wavelength at the
        main header's high tension ``ht``.
    rotation_rate : float, optional
        Rotation in degrees per second. If given, the angles come from it
        and the frame time; otherwise from the stage tilt ``stagea`` of the
        frame headers (a straight-line fit over the frames used), which must
        then change from frame to frame.
    start_angle : float, optional
        With ``rotation_rate``: the angle at the start of the first frame
        used, in degrees (default: its ``stagea``, or 0 without one).
    frame_time : float, optional
        Seconds per frame. By default the median interval between the frame
        times (``timestamp`` + ``ms``) of the frames used.
    gain : float, default 1.0
        ``GAIN`` (detector counts per electron) for DIALS.
    flip : {None, "x", "y"}
        Mirror each image left-right (``"x"``, reverses the columns) or
        top-bottom (``"y"``, reverses the rows), before ``rot90``.
    rot90 : int, default 0
        Turn each image by this many quarter turns, as :func:`numpy.rot90`
        does (anticlockwise with row 0 shown at the top), after ``flip``.
    start_number : int, default 1
        Number of the first image (DIALS expects 1).
    overwrite : bool, default False
        Replace existing files. Otherwise every name (images and log) is
        checked before anything is read or written.
    permissive : bool, default False
        Read what can be read of a damaged recording (see
        :class:`rsciio_tvips.TvipsRecording`).
    progress : bool, default False
        Show one progress bar on stderr for both passes over the frames
        (the minima, then the images).

    Returns
    -------
    dict
        What the JSON log holds: ``files``, ``log``, ``offset``,
        ``offset_source``, ``pedestal``, ``minima`` (one per image),
        ``clipped_low``/``clipped_high`` (pixels below 0 / above 65535 after
        the offset, in total and ``..._per_image``), ``angles`` (source,
        start, step, rotation rate), and the header values with their
        sources.

    Raises
    ------
    ValueError
        For an option out of range, a template without exactly one run of
        ``#`` or too short for the numbers, ``signed`` with pixels that are
        not 16 bits deep, fewer frames than one image needs, or a value the
        recording does not give and no option supplies (rotation, frame
        time, distance, wavelength); the message says which.
    FileExistsError
        If one of the files to write exists and ``overwrite`` is False.
    FileNotFoundError
        If the recording or the folder of ``template`` does not exist.
    TvipsFormatError
        If the recording cannot be read.

    Notes
    -----
    Leginon's rule, with the minimum of each image (after summing):
    ``offset = -min(minima)``, at most ``max_offset``, 0 if no minimum is
    negative; ``IMAGE_PEDESTAL = max(minima) + offset``. Minima of -10000,
    -145 and -200 give an offset of 2000 and a pedestal of 1855; the pixels
    of the first image still below 0 are clipped to 0 and counted.

    Oscillation: image ``k`` starts at ``OSC_START = start + k * OSC_RANGE``
    with ``OSC_RANGE = step * sum_frames``, where ``step`` is the rotation
    per frame. ``PHI`` equals ``OSC_START``; ``TWOTHETA`` is 0. ``TIME`` is
    the exposure of one image in s (``frame time * sum_frames``),
    ``ACC_TIME`` the same in ms, ``DATE`` the UTC time of its first frame.

    Examples
    --------
    >>> from rsciio_tvips import to_smv
    >>> log = to_smv("lyso_000.tvips", "smv/lyso_###.img", signed=True,
    ...              distance=960.0)  # doctest: +SKIP
    >>> log["offset"], log["pedestal"], log["angles"]["source"]  # doctest: +SKIP
    (2000, 1855, 'stagea')
    """
    # every option is checked before the recording is opened
    _check_levels(sum_frames, offset, max_offset)
    geometry = SmvGeometry(
        physical_pixel_size=physical_pixel_size, distance=distance,
        beam_center=beam_center, wavelength=wavelength,
        rotation_rate=rotation_rate, start_angle=start_angle,
        frame_time=frame_time, gain=gain, flip=flip, rot90=rot90,
    )  # fmt: skip
    plan = plan_images(filename, template, sum_frames=sum_frames, frames=frames,
                       start_number=start_number, signed=signed,
                       overwrite=overwrite, permissive=permissive)  # fmt: skip
    resolved = geometry.resolve(plan.rec, plan.headers, plan.times_ms)
    # two passes: the minima of all images set the offset of each
    n = plan.frames.size
    bar = Progress(f"smv ({PASSES} passes)", n * PASSES) if progress else None
    with bar if bar is not None else contextlib.nullcontext():
        levels = find_levels(plan, offset, max_offset, bar)
        clipped = write_images(plan, geometry, resolved, levels, overwrite, bar)
    return write_log(plan, geometry, resolved, levels, clipped, signed=signed,
                     start_number=start_number, overwrite=overwrite)  # fmt: skip
