"""One picture of a recording: the ``tvips preview`` command.

For a scan: virtual bright-field and annular dark-field images, the mean
diffraction pattern (log scale) with both apertures drawn, and the rotator
index and frame time against the frame number, which is what it takes to
judge the start frame and the hysteresis of a scan at a glance. For a stack:
the mean frame and the total intensity of each frame over time, and for a
tilt series (MicroED) the stage tilt of each frame.

The data are read lazily in two passes (the mean pattern, then the virtual
images through the apertures found on it), so memory stays at a few chunks
whatever the size of the recording.

The picture itself is drawn by :mod:`.figure`; :func:`looks_signed` adds
a hint when the pixels look like signed numbers read unsigned.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .._api import file_reader
from .._reading.recording import TvipsRecording
from ..exceptions import TvipsFormatWarning
from .figure import DPI, scan_figure, stack_figure

#: The picture formats, by file extension: the name matplotlib writes it by.
PICTURE_FORMATS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".svg": "svg",
    ".pdf": "pdf",
}
#: The hint for frames that look like signed data read unsigned.
SIGNED_HINT = "pixels look signed: try --signed"
#: Frames read, evenly spread over the recording, to judge whether the pixels
#: look signed: few, as a frame may be tens of megabytes.
SIGNED_SAMPLE_FRAMES = 4
#: Share of the sampled pixels that must read as negative numbers (int16) for
#: the frames to look signed: real uint16 counts that high are a bright
#: exposure, which the second test of :func:`looks_signed` tells apart.
SIGNED_SHARE = 0.01


def picture_format(out: str | os.PathLike) -> str:
    """Return the format a picture is written in, from its file extension.

    Parameters
    ----------
    out : str or os.PathLike
        The picture to write.

    Returns
    -------
    str
        The format's name for matplotlib's ``savefig`` (a value of
        :data:`PICTURE_FORMATS`).

    Raises
    ------
    ValueError
        If the extension (of any case) is not one of :data:`PICTURE_FORMATS`.
    """
    path = Path(os.fspath(out))
    fmt = PICTURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        what = f"extension {path.suffix}" if path.suffix else "no extension"
        msg = (
            f"{path.name}: cannot write a picture with {what} "
            f"(accepted: {', '.join(PICTURE_FORMATS)})"
        )
        raise ValueError(msg)
    return fmt


def looks_signed(frames: np.ndarray) -> bool:
    """Whether 16-bit frames read as uint16 hold signed (int16) numbers.

    Gain-corrected or dark-subtracted frames (MicroED) hold small negative
    numbers; read as uint16 they become values just below 65536, and the
    picture looks inverted. The frames look signed when both:

    1. at least :data:`SIGNED_SHARE` of the pixels read above 32767, that
       is, negative as int16 (65535 is left out: it is also what a
       saturated pixel reads);
    2. neighbouring pixels along a row differ by less than half as much in
       total when read as int16 as when read as uint16: numbers about 0 hop
       between 0 and 65535 unsigned, while a bright real exposure is as
       smooth either way (or smoother unsigned, where it crosses 32768).

    Parameters
    ----------
    frames : numpy.ndarray
        Frames, the last two axes being the rows and columns of a frame.

    Returns
    -------
    bool
        False for any pixel type other than uint16.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint16 or frames.size == 0:
        return False
    high = (frames > np.iinfo(np.int16).max) & (frames < np.iinfo(np.uint16).max)
    if np.count_nonzero(high) < SIGNED_SHARE * frames.size:
        return False
    steps = {np.uint16: 0, np.int16: 0}
    # a frame at a time: the widened copies of a large frame are large
    for frame in frames.reshape(-1, *frames.shape[-2:]):
        for view in steps:
            values = frame.view(view).astype(np.int32)
            steps[view] += int(np.abs(np.diff(values, axis=-1)).sum(dtype=np.int64))
    return steps[np.int16] < steps[np.uint16] / 2


def find_apertures(mean: np.ndarray) -> dict:
    """Find the bright-field disk on a mean diffraction pattern.

    The disk is the connected bright region around the maximum: pixels
    brighter than halfway between the median and the maximum. Its centre of
    mass and the radius of a disk of the same area give the bright-field
    aperture; the annular dark-field aperture runs from 1.5 to 3 times that
    radius (at most to the nearest edge of the pattern).

    Parameters
    ----------
    mean : numpy.ndarray
        The mean pattern, 2-D.

    Returns
    -------
    dict
        ``center`` (y, x), ``bf_radius``, ``adf_inner``, ``adf_outer``, in
        pixels.
    """
    m = np.asarray(mean, dtype=np.float64)
    level = (np.median(m) + m.max()) / 2
    bright = m > level
    if not bright.any():  # a flat pattern: the whole frame
        bright = np.ones_like(bright)
    yy, xx = np.indices(m.shape)
    cy, cx = float(yy[bright].mean()), float(xx[bright].mean())
    radius = max(1.0, float(np.sqrt(bright.sum() / np.pi)))
    edge = min(cy, cx, m.shape[0] - 1 - cy, m.shape[1] - 1 - cx)
    outer = max(min(3 * radius, edge), 1.5 * radius + 1)
    return {
        "center": (cy, cx),
        "bf_radius": radius,
        "adf_inner": 1.5 * radius,
        "adf_outer": outer,
    }


def aperture_masks(shape, apertures) -> tuple[np.ndarray, np.ndarray]:
    """Return the bright-field and annular dark-field masks of ``apertures``.

    Parameters
    ----------
    shape : tuple of int
        The frame's shape.
    apertures : dict
        As :func:`find_apertures` returns them.

    Returns
    -------
    numpy.ndarray, numpy.ndarray
        Boolean masks of ``shape``: the disk, the annulus.
    """
    yy, xx = np.indices(shape)
    cy, cx = apertures["center"]
    r = np.hypot(yy - cy, xx - cx)
    bf = r <= apertures["bf_radius"]
    adf = (r >= apertures["adf_inner"]) & (r <= apertures["adf_outer"])
    return bf, adf


def preview(
    filename: str | os.PathLike,
    out: str | os.PathLike,
    progress: bool = False,
    **reader_kwargs,
) -> dict:
    """Draw a recording's preview into a picture file.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    out : str or os.PathLike
        The picture to write; its extension chooses the format: ``.png``,
        ``.jpg`` (or ``.jpeg``), ``.svg`` or ``.pdf``.
    progress : bool, optional
        Show one progress bar on stderr while the data are read (both
        passes: frames read of twice the frames).
    **reader_kwargs
        Passed to :func:`rsciio_tvips.file_reader` (``scan_shape``,
        ``scan_start_frame``, ``winding_scan_axis``, ``hysteresis`` ...);
        without ``scan_shape`` the frames are a stack.

    Returns
    -------
    dict
        ``kind`` (``"scan"`` or ``"stack"``); ``panels``, their titles (an
        image of one value says ``constant: V counts``); ``labels``, for
        each panel its ``title``, the labels of its axes ``x``, ``y`` (and
        ``y2`` of a second one), of its ``colorbar`` and the entries of its
        ``legend`` (None where it has none); ``hints`` (such as
        :data:`SIGNED_HINT`); ``format``; ``size`` (width, height in pixels)
        and, for a scan, ``apertures`` (in pixels).

    Raises
    ------
    ValueError
        If ``out`` has an extension of no picture format (before anything
        is read), or an option does not fit the recording.
    rsciio_tvips.TvipsFormatError
        If the recording cannot be read.
    """
    import dask

    # a mistyped name costs nothing: refused before the data are read
    fmt = picture_format(out)
    (d,) = file_reader(filename, lazy=True, **reader_kwargs)
    data = d["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TvipsFormatWarning)  # said by the reader
        rec = TvipsRecording(
            filename, permissive=reader_kwargs.get("permissive", False)
        )
    headers = rec.header_fields
    scan = data.ndim == 4
    bar = _progress(progress, data)
    with bar:
        mean = data.mean(axis=tuple(range(data.ndim - 2)), dtype=np.float64).compute()
    name = os.path.basename(rec.chain.first.path)
    title = f"{name}: {rec.n_frames} frames, shown as {tuple(data.shape)}"
    # the recording is opened unsigned here: its pixels as they read unsigned
    hints = [SIGNED_HINT] if data.dtype == np.uint16 and _signed(rec) else []
    beam = d["metadata"].get("Acquisition_instrument", {}).get("TEM", {})
    summary = {"kind": "scan" if scan else "stack"}
    if scan:
        ap = find_apertures(mean)
        bf, adf = aperture_masks(mean.shape, ap)
        with bar:
            vbf, vadf = dask.compute(_virtual(data, bf), _virtual(data, adf))
        scan_info = d["original_metadata"].get("Scan", {})
        fig, panels = scan_figure(
            title, vbf, vadf, mean, ap, headers, scan_info, d["axes"],
            notes=hints, beam_energy=beam.get("beam_energy"),
        )  # fmt: skip
        summary["apertures"] = {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in ap.items()}  # fmt: skip
    else:
        with bar:
            total = data.sum(axis=(1, 2), dtype=np.float64).compute()
        fig, panels = stack_figure(title, mean, total, headers, d["axes"], hints)
    fig.savefig(out, format=fmt)
    summary["panels"] = [panel["title"] for panel in panels]
    summary["labels"] = panels
    summary["hints"] = hints
    summary["format"] = fmt
    summary["size"] = [int(v * DPI) for v in fig.get_size_inches()]
    return summary


def _signed(rec: TvipsRecording) -> bool:
    """Whether a few frames of ``rec``, spread over it, look signed."""
    n = min(rec.n_frames, SIGNED_SAMPLE_FRAMES)
    frames = np.unique(np.linspace(0, rec.n_frames - 1, n).round().astype(np.int64))
    return looks_signed(rec.read_frames(frames))


def _virtual(data, mask):
    """Sum each frame through ``mask``, reading only the rows it covers."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros(data.shape[:2])
    band = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    # dask fuses the slice into the reads: only these rows leave the files
    return (data[:, :, band[0], band[1]] * mask[band]).sum(
        axis=(2, 3), dtype=np.float64
    )


def _progress(on: bool, data):
    """Return the context of each pass over ``data``: one bar for both passes.

    The data are read twice (the mean pattern, then the virtual images or
    the totals); each ``with`` of the context counts one pass, and the bar
    ends when the second does.
    """
    import contextlib
    import math

    from .._progress import Progress

    if not on:
        return contextlib.nullcontext()
    passes = 2  # the number of ``with bar:`` a preview goes through
    n = math.prod(data.shape[:-2])
    return Progress(f"preview ({passes} passes)", n * passes).dask(n)
