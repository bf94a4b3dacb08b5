"""Write a MicroED tilt series as SMV images, the format DIALS, XDS and MOSFLM read.

:func:`to_smv` writes one SMV file per frame, or per sum of ``sum_frames``
consecutive frames, streaming: the frames are read in batches of bounded
size, twice (the first pass finds the minima that set the offset, the
second writes). The header text, the names and the offset rule are in
:mod:`._smv_format`.

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

import json
import os
from pathlib import Path

import numpy as np

from .._format.layout import MODE_DIFFRACTION
from .._reading.recording import TvipsRecording
from .._tools.convert import parse_range
from .smv_format import (
    LEGINON_MAX_OFFSET,
    SMV_MAX,
    TEMCAM_F416_PIXEL_MM,
    electron_wavelength,
    format_number,
    image_pedestal,
    leginon_offset,
    log_name,
    output_names,
    smv_date,
    smv_header,
)

#: About this many bytes of frames are read at a time.
BATCH_BYTES = 32 * 2**20


def _images(rec: TvipsRecording, frames: np.ndarray, group: int):
    """Yield the sum of each run of ``group`` frames, as int64 (a reused buffer).

    Frames are read in batches of about :data:`BATCH_BYTES`, so memory
    stays at one batch and one image whatever the size of the recording.
    """
    per_batch = max(1, BATCH_BYTES // rec.header.frame_nbytes)
    acc = np.zeros(rec.frame_shape, np.int64)
    filled = 0
    for start in range(0, frames.size, per_batch):
        for frame in rec.read_frames(frames[start : start + per_batch]):
            np.add(acc, frame, out=acc, casting="unsafe")
            filled += 1
            if filled == group:
                yield acc
                acc[...] = 0
                filled = 0


def _orient(image: np.ndarray, flip, rot90: int) -> np.ndarray:
    """Mirror (``flip``), then turn by quarter turns (``numpy.rot90``)."""
    if flip == "x":
        image = image[:, ::-1]
    elif flip == "y":
        image = image[::-1]
    return np.rot90(image, rot90)


def _frame_time(times_ms: np.ndarray, frame_time):
    """Return the time per frame in s and where it came from."""
    if frame_time is not None:
        if not frame_time > 0:
            raise ValueError(f"frame_time must be positive, got {frame_time}")
        return float(frame_time), "frame_time option"
    steps = np.diff(times_ms)
    interval = float(np.median(steps)) / 1000 if steps.size else 0.0
    if interval <= 0:
        msg = (
            f"cannot tell the frame time from the frame headers: the "
            f"{times_ms.size} frame(s) do not show increasing times: give "
            "frame_time in seconds"
        )
        raise ValueError(msg)
    return interval, "frame headers (median interval)"


def _angles(headers, frame_time: float, rotation_rate, start_angle) -> dict:
    """Return the angle of the first frame and the step per frame, and why."""
    has_alpha = "stagea" in headers.dtype.names
    if rotation_rate is not None:
        if rotation_rate == 0:
            raise ValueError("rotation_rate must not be 0 degrees per second")
        if start_angle is None:
            start = float(headers["stagea"][0]) if has_alpha else 0.0
            start_source = "stagea of the first frame" if has_alpha else "0"
        else:
            start, start_source = float(start_angle), "start_angle option"
        return {
            "source": "rotation_rate",
            "start": start,
            "start_source": start_source,
            "step": float(rotation_rate) * frame_time,
            "rotation_rate": float(rotation_rate),
        }
    if start_angle is not None:
        msg = (
            "start_angle goes with rotation_rate; without it the angles come from "
            "the stage tilt (stagea) of the frames"
        )
        raise ValueError(msg)
    if not has_alpha:
        msg = (
            f"the frame headers ({headers.dtype.itemsize} bytes) hold no stage "
            "tilt (stagea, offset 40): give rotation_rate in degrees per second"
        )
        raise ValueError(msg)
    alpha = headers["stagea"].astype(np.float64)
    if alpha.size < 2 or np.ptp(alpha) == 0:
        msg = (
            f"the frame headers do not show the rotation: stagea is "
            f"{format_number(alpha[0])} degrees in all {alpha.size} frame(s): give "
            "rotation_rate in degrees per second"
        )
        raise ValueError(msg)
    # a straight line through the readings: every image then gets the same
    # OSC_RANGE and starts where the one before ends, as DIALS requires
    # (least squares about the means: exact for readings on a straight line)
    index = np.arange(alpha.size, dtype=np.float64)
    di, da = index - index.mean(), alpha - alpha.mean()
    step = float(di @ da / (di @ di))
    start = float(alpha.mean() - step * index.mean())
    residual = float(np.abs(alpha - (start + step * index)).max())
    return {
        "source": "stagea",
        "start": float(start),
        "start_source": "straight-line fit of stagea",
        "step": float(step),
        "rotation_rate": float(step) / frame_time,
        "stagea_first": float(alpha[0]),
        "stagea_last": float(alpha[-1]),
        "stagea_max_residual": residual,
    }


def _distance(rec: TvipsRecording, headers, distance):
    if distance is not None:
        if not distance > 0:
            raise ValueError(f"distance must be positive, got {distance}")
        return float(distance), "distance option"
    camera = rec.header.fields["magtotal"]
    mode = headers["mode"][0] if "mode" in headers.dtype.names else None
    if mode == MODE_DIFFRACTION and camera > 0:
        return float(camera), "camera length (magtotal) of the main header"
    msg = (
        "no detector distance: the recording does not say it is in diffraction "
        "mode with a camera length (magtotal, offset 44): give distance in mm"
    )
    raise ValueError(msg)


def _wavelength(rec: TvipsRecording, wavelength):
    if wavelength is not None:
        if not wavelength > 0:
            raise ValueError(f"wavelength must be positive, got {wavelength}")
        return float(wavelength), "wavelength option"
    kv = rec.header.fields["ht"]
    if kv <= 0:
        msg = (
            "no wavelength: the high tension of the main header (ht, offset 40) "
            "is 0: give wavelength in Angstrom"
        )
        raise ValueError(msg)
    return electron_wavelength(kv), f"high tension (ht) {kv} kV"


def _check_options(sum_frames, offset, max_offset, physical_pixel_size, flip,
                   rot90, gain, beam_center) -> None:  # fmt: skip
    if int(sum_frames) != sum_frames or sum_frames < 1:
        raise ValueError(f"sum_frames must be a positive integer, got {sum_frames}")
    if offset is not None and not 0 <= offset <= SMV_MAX:
        raise ValueError(f"offset must be between 0 and {SMV_MAX}, got {offset}")
    if not 0 <= max_offset <= SMV_MAX:
        raise ValueError(
            f"max_offset must be between 0 and {SMV_MAX}, got {max_offset}"
        )
    if not physical_pixel_size > 0:
        msg = f"physical_pixel_size must be positive, got {physical_pixel_size}"
        raise ValueError(msg)
    if flip not in (None, "x", "y"):
        raise ValueError(f"flip must be None, 'x' or 'y', got {flip!r}")
    if int(rot90) != rot90:
        raise ValueError(
            f"rot90 must be an integer number of quarter turns, got {rot90}"
        )
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain}")
    if beam_center is not None and len(beam_center) != 2:
        raise ValueError(
            f"beam_center takes two numbers (x, y) in mm, got {beam_center!r}"
        )


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
    _check_options(sum_frames, offset, max_offset, physical_pixel_size, flip,
                   rot90, gain, beam_center)  # fmt: skip
    group, rot90 = int(sum_frames), int(rot90) % 4
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
                "files to write exist): pass overwrite=True (--overwrite) to "
                "replace them"
            )
            raise FileExistsError(msg)

    headers = rec.frame_headers[used]
    times_ms = headers["timestamp"].astype(np.int64) * 1000 + headers["ms"]
    seconds, time_source = _frame_time(times_ms, frame_time)
    angles = _angles(headers, seconds, rotation_rate, start_angle)
    length, distance_source = _distance(rec, headers, distance)
    lam, wavelength_source = _wavelength(rec, wavelength)
    fields = rec.header.fields
    binx, biny = max(fields["binx"], 1), max(fields["biny"], 1)
    if binx != biny:
        msg = (
            f"the frames are binned {binx} x {biny}: SMV has one PIXEL_SIZE, for "
            "square pixels"
        )
        raise ValueError(msg)
    pixel = physical_pixel_size * binx
    rows, cols = rec.frame_shape[::-1] if rot90 % 2 else rec.frame_shape
    if beam_center is None:
        centre = (rows * pixel / 2, cols * pixel / 2)
        centre_source = "centre of the image"
    else:
        centre = tuple(float(v) for v in beam_center)
        centre_source = "beam_center option"

    # First pass: the minimum of every image sets the offset and pedestal.
    minima = [int(image.min()) for image in _images(rec, used, group)]
    if offset is None:
        shift, offset_source = leginon_offset(minima, max_offset), "Leginon's rule"
    else:
        shift, offset_source = int(offset), "offset option"
    pedestal = image_pedestal(minima, shift)

    osc_range = angles["step"] * group
    fixed = {
        "DIM": 2, "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
        "SIZE1": cols, "SIZE2": rows, "PIXEL_SIZE": pixel, "BIN": f"{binx}x{biny}",
    }  # fmt: skip
    low_counts, high_counts = [], []
    mode = "wb" if overwrite else "xb"
    # Second pass: offset, clip, orient, write.
    for k, image in enumerate(_images(rec, used, group)):
        values = image + shift
        low_counts.append(int(np.count_nonzero(values < 0)))
        high_counts.append(int(np.count_nonzero(values > SMV_MAX)))
        np.clip(values, 0, SMV_MAX, out=values)
        pixels = _orient(values.astype("<u2"), flip, rot90)
        start = angles["start"] + k * osc_range
        header = smv_header(
            {
                **fixed,
                "DATE": smv_date(int(times_ms[k * group])),
                "TIME": seconds * group,
                "ACC_TIME": round(seconds * group * 1000),
                "DISTANCE": length,
                "OSC_START": start,
                "OSC_RANGE": osc_range,
                "PHI": start,
                "TWOTHETA": 0,
                "WAVELENGTH": lam,
                "BEAM_CENTER_X": centre[0],
                "BEAM_CENTER_Y": centre[1],
                "IMAGE_PEDESTAL": pedestal,
                "GAIN": float(gain),
                "LEGINON_OFFSET": shift,
            }
        )
        with open(names[k], mode) as f:
            f.write(header)
            f.write(np.ascontiguousarray(pixels).tobytes())

    log = {
        "format": "smv",
        "source": str(rec.chain.first.path),
        "files": [str(p) for p in names],
        "log": str(log_path),
        "frames": [first, first + n_images * group],
        "sum_frames": group,
        "dropped_frames": available - n_images * group,
        "start_number": int(start_number),
        "signed": bool(signed),
        "shape": [rows, cols],
        "offset": shift,
        "offset_source": offset_source,
        "max_offset": int(max_offset),
        "pedestal": pedestal,
        "minima": minima,
        "clipped_low": sum(low_counts),
        "clipped_high": sum(high_counts),
        "clipped_low_per_image": low_counts,
        "clipped_high_per_image": high_counts,
        "angles": {**angles, "osc_range": osc_range},
        "frame_time": seconds,
        "frame_time_source": time_source,
        "distance": length,
        "distance_source": distance_source,
        "wavelength": lam,
        "wavelength_source": wavelength_source,
        "pixel_size": pixel,
        "physical_pixel_size": float(physical_pixel_size),
        "binning": [binx, biny],
        "beam_center": list(centre),
        "beam_center_source": centre_source,
        "gain": float(gain),
        "orientation": {"flip": flip, "rot90": rot90},
    }
    with open(log_path, "w" if overwrite else "x", encoding="utf-8") as f:
        json.dump(log, f, indent=2)
        f.write("\n")
    return log
