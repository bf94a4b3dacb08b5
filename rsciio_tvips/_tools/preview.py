"""One picture of a recording: the ``tvips preview`` command.

For a scan: virtual bright-field and annular dark-field images, the mean
diffraction pattern (log scale) with both apertures drawn, and the rotator
index and frame time against the frame number, which is what it takes to
judge the start frame and the hysteresis of a scan at a glance. For a stack:
the mean frame and the total intensity of each frame over time.

The data are read lazily in two passes (the mean pattern, then the virtual
images through the apertures found on it), so memory stays at a few chunks
whatever the size of the recording.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .._api import file_reader
from .._format.layout import MS_PER_S, frame_times_ms
from .._reading.recording import TvipsRecording
from ..exceptions import TvipsFormatWarning

#: Size of the picture in inches, and its resolution.
FIGSIZE = {"scan": (10.0, 8.0), "stack": (10.0, 4.0)}
DPI = 100


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


def _masks(shape, apertures):
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
    """Draw a recording's preview into a PNG file.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    out : str or os.PathLike
        The PNG file to write.
    progress : bool, optional
        Show dask's progress bar while the data are read.
    **reader_kwargs
        Passed to :func:`rsciio_tvips.file_reader` (``scan_shape``,
        ``scan_start_frame``, ``winding_scan_axis``, ``hysteresis`` ...);
        without ``scan_shape`` the frames are a stack.

    Returns
    -------
    dict
        ``kind`` (``"scan"`` or ``"stack"``), ``panels`` (their titles),
        ``size`` (width, height in pixels) and, for a scan, ``apertures``.
    """
    import dask
    from matplotlib.figure import Figure

    (d,) = file_reader(filename, lazy=True, **reader_kwargs)
    data = d["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TvipsFormatWarning)  # said by the reader
        rec = TvipsRecording(
            filename, permissive=reader_kwargs.get("permissive", False)
        )
    headers = rec.header_fields
    scan = data.ndim == 4
    bar = _progress(progress)
    with bar:
        mean = data.mean(axis=tuple(range(data.ndim - 2)), dtype=np.float64).compute()
    fig = Figure(figsize=FIGSIZE["scan" if scan else "stack"], dpi=DPI)
    name = os.path.basename(rec.chain.first.path)
    summary = {"kind": "scan" if scan else "stack"}
    if scan:
        ap = find_apertures(mean)
        bf, adf = _masks(mean.shape, ap)
        with bar:
            vbf, vadf = dask.compute(_virtual(data, bf), _virtual(data, adf))
        axes = fig.subplots(2, 2)
        _image(axes[0, 0], vbf, "virtual bright field")
        _image(axes[0, 1], vadf, "virtual annular dark field")
        _pattern(axes[1, 0], mean, ap)
        _frame_plot(axes[1, 1], headers, d["original_metadata"].get("Scan", {}))
        summary["apertures"] = {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in ap.items()}  # fmt: skip
    else:
        with bar:
            total = data.sum(axis=(1, 2), dtype=np.float64).compute()
        axes = fig.subplots(1, 2)
        _image(axes[0], mean, "mean frame")
        _totals(axes[1], total, d["axes"][0])
    fig.suptitle(f"{name}: {rec.n_frames} frames, shown as {tuple(data.shape)}")
    fig.tight_layout()
    fig.savefig(out, format="png")
    summary["panels"] = [a.get_title() for a in fig.axes if a.get_title()]
    summary["size"] = [int(v * DPI) for v in fig.get_size_inches()]
    return summary


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


def _progress(on: bool):
    if on:
        from dask.diagnostics import ProgressBar

        return ProgressBar()
    import contextlib

    return contextlib.nullcontext()


def _image(ax, image, title):
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.set_title(title)
    # a uniform image shows as one grey: the range says whether it is
    ax.text(0.01, -0.16 if "virtual" in title else -0.14,
            f"{np.min(image):.4g} to {np.max(image):.4g}",
            transform=ax.transAxes, fontsize=8, va="top")  # fmt: skip
    ax.set_xlabel("x (scan points)" if "virtual" in title else "x (pixels)")
    ax.set_ylabel("y (scan points)" if "virtual" in title else "y (pixels)")


def _pattern(ax, mean, ap):
    from matplotlib.patches import Circle

    ax.imshow(np.log1p(np.clip(mean, 0, None)), cmap="magma", interpolation="nearest")
    cy, cx = ap["center"]
    for radius, colour in ((ap["bf_radius"], "cyan"), (ap["adf_inner"], "lime"),
                           (ap["adf_outer"], "lime")):  # fmt: skip
        ax.add_patch(Circle((cx, cy), radius, fill=False, color=colour, lw=1))
    ax.set_title("mean pattern (log), BF cyan, ADF green")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")


def _frame_plot(ax, headers, scan):
    frames = np.arange(headers.size)
    names = headers.dtype.names
    if "rotidx" in names:
        ax.plot(frames, headers["rotidx"], lw=1, color="tab:blue")
        ax.set_ylabel("rotator index", color="tab:blue")
    if {"timestamp", "ms"} <= set(names):
        t = frame_times_ms(headers)
        twin = ax.twinx()
        twin.plot(frames, (t - t[0]) / MS_PER_S, lw=1, color="tab:orange")
        twin.set_ylabel("time (s)", color="tab:orange")
    for key, style in (("start_frame", "--"), ("stop_frame", ":")):
        if key in scan:
            ax.axvline(scan[key] - (key == "stop_frame"), color="k", ls=style, lw=1)
    ax.set_xlabel("frame")
    ax.set_title("rotator index and time; scan start/end dashed/dotted")


def _totals(ax, total, axis):
    # a line scan's axis may carry no calibration: points, then
    x = axis.get("offset", 0.0) + axis.get("scale", 1.0) * np.arange(total.size)
    ax.plot(x, total, lw=1)
    ax.set_xlabel(
        f"{axis['name']} ({axis['units']})" if axis.get("units") else axis["name"]
    )
    ax.set_ylabel("total intensity")
    ax.set_title("total intensity per frame")
