"""The picture of ``tvips preview``: its panels, drawn from what was computed.

:func:`scan_figure` and :func:`stack_figure` take the arrays that
:func:`~.preview.preview` computed of a recording (virtual images, the mean
pattern, totals, frame headers and the reader's axes) and return a
matplotlib figure and a description of its panels; they read nothing, so a
test can draw any case without a recording.

What the picture says about the data:

1. Every image has a colour bar with its unit (counts; log10 counts for
   the mean pattern).
2. An image of one value (an annular dark field of a pattern without
   scattering, say) is drawn mid-grey and its title says ``constant: V
   counts``: a colour scale stretched over no range would draw it black,
   which reads as "no signal" or "broken".
3. Axes are in the calibration of the axes the reader returns (the
   diffraction axes in 1/nm, say), in scan points or pixels where there is
   none; the apertures' radii are in the legend of the mean pattern, in the
   same unit (and in mrad for 1/nm when the beam energy is known).
4. Hints (signed pixels read unsigned, see
   :func:`~.preview.looks_signed`) are lines under the figure's title.
"""

from __future__ import annotations

import numpy as np

from .._format.layout import MS_PER_S, float_field, frame_times_ms
from .._microed.smv_format import electron_wavelength

#: Size of the picture in inches, and its resolution.
FIGSIZE = {"scan": (10.0, 8.0), "stack": (10.0, 4.0), "tilt series": (15.0, 4.0)}
DPI = 100
#: The unit of the values of the images (the virtual images are sums of them).
COUNTS = "counts"
#: The colour of the points a scan being watched has not reached yet.
NOT_YET = "tab:blue"
NOT_YET_TEXT = "blue: not reached yet"
#: What the axes of an image are in when they carry no calibration.
UNCALIBRATED = {"scan": "scan points", "frame": "pixels"}
#: matplotlib's layout for grids of fixed-aspect images with colour bars: it
#: keeps each bar beside its image, and every label inside the figure.
LAYOUT = "compressed"
#: Where the colour bar of an image goes, in the image's axes coordinates
#: (x, y, width, height).
COLORBAR_BOX = (1.04, 0.0, 0.05, 1.0)
#: How far below the mean pattern its legend starts, in inches: below the
#: tick labels and the axis label at matplotlib's default font sizes.
LEGEND_DROP = 0.45


def scan_figure(
    title: str,
    vbf: np.ndarray,
    vadf: np.ndarray,
    mean: np.ndarray,
    apertures: dict,
    headers: np.ndarray,
    scan: dict,
    axes: list[dict],
    notes=(),
    beam_energy: float | None = None,
):
    """Draw the preview of a scan from what was computed of it.

    Parameters
    ----------
    title : str
        The figure's title.
    vbf, vadf : numpy.ndarray
        The virtual bright-field and annular dark-field images, of the
        scan's shape.
    mean : numpy.ndarray
        The mean pattern.
    apertures : dict
        The apertures, as :func:`~.preview.find_apertures` returns them
        (pixels).
    headers : numpy.ndarray
        The frame-header fields of every frame of the recording.
    scan : dict
        ``original_metadata["Scan"]`` (its ``start_frame`` and
        ``stop_frame`` are marked).
    axes : list of dict
        The four axes of the scan as the reader returns them: ``y``, ``x``,
        ``dy``, ``dx``.
    notes : sequence of str, optional
        Lines under the title (hints).
    beam_energy : float, optional
        In kV: radii in 1/nm are then given in mrad too.

    Returns
    -------
    matplotlib.figure.Figure
    list of dict
        The panels, as ``labels`` of :func:`preview`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE["scan"], dpi=DPI, layout=LAYOUT)
    # a subfigure per panel: a panel's colour bar or stacked plots do not
    # move the others (one grid of them put labels outside the figure)
    cells = fig.subfigures(2, 2).ravel()
    vbf_ax, vadf_ax, pattern_ax = (cell.subplots() for cell in cells[:3])
    nav, signal = axes[:2], axes[2:]
    panels = [
        _image(vbf_ax, vbf, "virtual bright field", nav, UNCALIBRATED["scan"]),
        _image(vadf_ax, vadf, "virtual annular dark field", nav,
               UNCALIBRATED["scan"]),
        _pattern(pattern_ax, mean, apertures, signal, beam_energy),
        _frame_plot(cells[3], headers, scan),
    ]  # fmt: skip
    fig.suptitle("\n".join([title, *notes]))
    return fig, panels


def stack_figure(
    title: str,
    mean: np.ndarray,
    total: np.ndarray,
    headers: np.ndarray,
    axes: list[dict],
    notes=(),
):
    """Draw the preview of a stack from what was computed of it.

    A tilt series (the stage tilt ``stagea`` changes from frame to frame)
    gets a third panel: the stage tilt of each frame.

    Parameters
    ----------
    title : str
        The figure's title.
    mean : numpy.ndarray
        The mean frame.
    total : numpy.ndarray
        The total intensity of each frame (or scan point of a line scan).
    headers : numpy.ndarray
        The frame-header fields of every frame of the recording.
    axes : list of dict
        The three axes as the reader returns them: the frames' (``time``,
        ``frame`` or a line scan's ``x``), ``dy``, ``dx``.
    notes : sequence of str, optional
        Lines under the title (hints).

    Returns
    -------
    matplotlib.figure.Figure
    list of dict
        The panels, as ``labels`` of :func:`preview`.
    """
    from matplotlib.figure import Figure

    tilt = stage_tilt(headers)
    size = FIGSIZE["stack" if tilt is None else "tilt series"]
    fig = Figure(figsize=size, dpi=DPI, layout=LAYOUT)
    cells = fig.subfigures(1, 2 if tilt is None else 3)
    grid = [cell.subplots() for cell in cells]
    panels = [
        _image(grid[0], mean, "mean frame", axes[1:], UNCALIBRATED["frame"]),
        _totals(grid[1], total, axes[0]),
    ]
    if tilt is not None:
        panels.append(_tilt_plot(grid[2], tilt))
    fig.suptitle("\n".join([title, *notes]))
    return fig, panels


def live_figure(title: str, picture, notes=()):
    """Draw the picture of ``tvips watch`` from what it has seen so far.

    For a scan: the virtual bright- and annular dark-field images (points
    not reached yet are blank), the mean pattern with the apertures, and
    the frame rate against the camera's clock. For a movie: the latest
    frame, the mean pattern and the intensity per frame. Axes are in scan
    points and pixels.

    Parameters
    ----------
    title : str
        The figure's title.
    picture : LivePicture
        What was seen (:meth:`~.live.LiveView.picture`).
    notes : sequence of str, optional
        Lines under the title.

    Returns
    -------
    matplotlib.figure.Figure
    list of dict
        The panels, as ``labels`` of :func:`~.preview.preview`.
    """
    from matplotlib.figure import Figure

    plain = [{}, {}]  # uncalibrated axes
    images = picture.images
    fig = Figure(figsize=FIGSIZE["scan" if picture.scan else "tilt series"],
                 dpi=DPI, layout=LAYOUT)  # fmt: skip
    cells = fig.subfigures(2, 2).ravel() if picture.scan else fig.subfigures(1, 3)
    axes = [cell.subplots() for cell in cells]
    panels = []
    if picture.scan:
        for ax, name, what in (
            (axes[0], "vbf", "virtual bright field"),
            (axes[1], "vadf", "virtual annular dark field"),
        ):
            if name in images:
                panels.append(_image(ax, images[name], what, plain,
                                     UNCALIBRATED["scan"]))  # fmt: skip
            else:
                panels.append(_waiting(ax, what, picture.waiting or "no frame yet"))
        panels.append(_pattern(axes[2], picture.mean, picture.apertures, plain, None))
        panels.append(_rate_plot(axes[3], picture.rate))
    else:
        panels.append(_image(axes[0], picture.latest, "latest frame", plain,
                             UNCALIBRATED["frame"]))  # fmt: skip
        panels.append(_pattern(axes[1], picture.mean, None, plain, None))
        panels.append(_binned_plot(axes[2], picture.intensity))
    fig.suptitle("\n".join([title, *notes]))
    return fig, panels


def _waiting(ax, title: str, why: str) -> dict:
    """Leave a panel empty, saying why."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    return {"title": f"{title} ({why})", "x": "", "y": "", "colorbar": None,
            "legend": None}  # fmt: skip


def _rate_plot(ax, rate) -> dict:
    """Plot frames per second against the camera's clock (bins in ms)."""
    # the last bin is still filling: it would show the rate falling
    used = max(rate.used() - 1, min(rate.used(), 1))
    seconds = rate.width / MS_PER_S
    # a line through one point draws nothing: a recording within one bin
    marker = "o" if used < 3 else None
    ax.plot(rate.centres()[:used] / MS_PER_S, rate.sums[:used] / seconds, lw=1,
            color="tab:orange", marker=marker)  # fmt: skip
    ax.set_xlabel("time since the first frame (s)")
    ax.set_ylabel("frames per second")
    ax.set_ylim(bottom=0)
    title = "frame rate"
    ax.set_title(title)
    return {"title": title, "x": ax.get_xlabel(), "y": ax.get_ylabel(),
            "colorbar": None, "legend": None}  # fmt: skip


def _binned_plot(ax, intensity) -> dict:
    """Plot the mean intensity of the frames of each bin of frame numbers."""
    used = intensity.used()
    counts = intensity.counts[:used]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts, intensity.sums[:used] / counts, np.nan)
    ax.plot(intensity.centres(), mean, lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel(f"total intensity ({COUNTS})")
    title = "total intensity per frame"
    if intensity.width > 1:
        title = f"{title} (mean of {intensity.width:.0f})"
    ax.set_title(title)
    return {"title": title, "x": ax.get_xlabel(), "y": ax.get_ylabel(),
            "colorbar": None, "legend": None}  # fmt: skip


def stage_tilt(headers: np.ndarray) -> np.ndarray | None:
    """Return the stage tilt (``stagea``) of every frame of a tilt series.

    Parameters
    ----------
    headers : numpy.ndarray
        Frame-header fields.

    Returns
    -------
    numpy.ndarray or None
        In degrees; None if the headers hold no tilt, or one that does not
        change (not a tilt series).
    """
    if "stagea" not in headers.dtype.names:
        return None
    alpha = float_field(headers, "stagea")
    usable = alpha[np.isfinite(alpha)]
    if usable.size < 2 or np.ptp(usable) == 0:
        return None
    return alpha


def _calibration(axis: dict) -> tuple[float, float, str | None]:
    """Return an axis's offset, scale and unit; (0, 1, None) uncalibrated."""
    units = axis.get("units")
    if not units or units == "<undefined>":
        return 0.0, 1.0, None
    return float(axis.get("offset", 0.0)), float(axis.get("scale", 1.0)), units


def _axis_label(axis: dict, default_name: str, uncalibrated: str) -> str:
    units = _calibration(axis)[2]
    return f"{axis.get('name') or default_name} ({units or uncalibrated})"


def _extent(axes, shape) -> tuple[float, float, float, float]:
    """Return imshow's extent of an image on ``axes`` (y, x): pixel edges."""
    (y0, sy, _), (x0, sx, _) = (_calibration(a) for a in axes)
    ny, nx = shape
    return (x0 - sx / 2, x0 + sx * (nx - 0.5), y0 + sy * (ny - 0.5), y0 - sy / 2)


def _constant(image: np.ndarray) -> float | None:
    """Return the one value of an image of one value, else None.

    Points not reached yet (NaN, in ``tvips watch``) do not count.
    """
    flat = np.ravel(image)
    flat = flat[~np.isnan(flat)]
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return None


def _image(ax, image, title, axes, uncalibrated) -> dict:
    image = np.asarray(image, dtype=np.float64)
    value = _constant(image)
    # one value on a colour scale of no range is drawn black: centre it on a
    # range of 2 instead, so it shows mid-grey, and say what it is
    limits = (None, None) if value is None else (value - 1, value + 1)
    if value is not None:
        title = f"{title} (constant: {value:.6g} {COUNTS})"
    cmap = "gray"
    if np.isnan(image).any():
        # points a scan being watched has not reached: white would read as
        # bright, black as dark
        cmap = _gray_with(NOT_YET)
        title = f"{title}\n({NOT_YET_TEXT})"
    shown = ax.imshow(image, cmap=cmap, interpolation="nearest",
                      extent=_extent(axes, image.shape), vmin=limits[0],
                      vmax=limits[1])  # fmt: skip
    _colorbar(ax, shown, COUNTS)
    return _panel(ax, title, axes, uncalibrated, COUNTS)


def _gray_with(bad: str):
    """Return the gray colour map, with ``bad`` for NaN."""
    from matplotlib import colormaps

    return colormaps["gray"].with_extremes(bad=bad)


def _colorbar(ax, shown, label: str) -> None:
    """Add a colour bar beside an image, as high as the image is drawn.

    An inset in the image's axes coordinates follows the image when its
    fixed aspect leaves the panel taller than the image; a colour bar taking
    the panel's height would reach up into the title.
    """
    bar = ax.inset_axes(COLORBAR_BOX)
    ax.figure.colorbar(shown, cax=bar, label=label)


def _panel(ax, title, axes, uncalibrated, colorbar, legend=None) -> dict:
    """Set an image's title and axis labels; return what the panel shows."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title)
    ax.set_xlabel(_axis_label(axes[1], "x", uncalibrated))
    ax.set_ylabel(_axis_label(axes[0], "y", uncalibrated))
    for axis, ticks in ((axes[1], ax.xaxis), (axes[0], ax.yaxis)):
        if _calibration(axis)[2] is None:
            # scan points and pixels are whole numbers: no tick at 2.5
            ticks.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    return {"title": title, "x": ax.get_xlabel(), "y": ax.get_ylabel(),
            "colorbar": colorbar, "legend": legend}  # fmt: skip


def _pattern(ax, mean, ap, axes, beam_energy) -> dict:
    from matplotlib.patches import Ellipse
    from matplotlib.transforms import ScaledTranslation

    mean = np.asarray(mean, dtype=np.float64)
    positive = mean[mean > 0]
    # log10 of 0 or less is no number: those pixels show a decade below the
    # faintest that has counts, darker than any of them
    floor = positive.min() / 10 if positive.size else 1.0
    log = np.log10(np.maximum(mean, floor))
    title = "mean pattern (log)" + (", BF cyan, ADF green" if ap else "")
    value = _constant(mean)
    limits = (None, None)
    if value is not None:
        title = f"{title} (constant: {value:.6g} {COUNTS})"
        limits = (log.flat[0] - 1, log.flat[0] + 1)
    shown = ax.imshow(log, cmap="magma", interpolation="nearest",
                      extent=_extent(axes, mean.shape), vmin=limits[0],
                      vmax=limits[1])  # fmt: skip
    colorbar = f"log10 {COUNTS}"
    _colorbar(ax, shown, colorbar)
    if ap is None:  # a movie: no apertures
        return _panel(ax, title, axes, UNCALIBRATED["frame"], colorbar)
    (y0, sy, uy), (x0, sx, ux) = (_calibration(a) for a in axes)
    cy, cx = ap["center"]
    radii = _radii(ap, sx if ux and (sx, ux) == (sy, uy) else None, ux, beam_energy)
    for radius, colour, label in (
        (ap["bf_radius"], "cyan", f"BF: r = {radii[0]}"),
        (ap["adf_inner"], "lime", f"ADF: r = {radii[1]}"),
        (ap["adf_outer"], "lime", None),
    ):
        ax.add_patch(Ellipse((x0 + sx * cx, y0 + sy * cy), 2 * radius * sx,
                             2 * radius * sy, fill=False, color=colour, lw=1,
                             label=label))  # fmt: skip
    legend = [f"BF: r = {radii[0]}", f"ADF: r = {radii[1]}"]
    # below the pattern, clear of its tick labels and axis label whatever the
    # pattern's height: a legend inside would hide the pattern's rim
    below = ax.transAxes + ScaledTranslation(0, -LEGEND_DROP, ax.figure.dpi_scale_trans)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below,
              fontsize=8, frameon=False)  # fmt: skip
    return _panel(ax, title, axes, UNCALIBRATED["frame"], colorbar, legend)


def _radii(ap, scale, units, beam_energy) -> tuple[str, str]:
    """Return the BF radius and the ADF annulus as text, in ``units`` or px.

    ``scale`` is None when the two axes of the pattern differ in scale or
    unit, or carry none: the radii are in pixels then.
    """
    values = np.array([ap["bf_radius"], ap["adf_inner"], ap["adf_outer"]])
    if scale is None:
        bf, inner, outer = (f"{v:.3g}" for v in values)
        return f"{bf} px", f"{inner} to {outer} px"
    bf, inner, outer = (f"{v:.3g}" for v in values * scale)
    texts = [f"{bf} {units}", f"{inner} to {outer} {units}"]
    if units == "1/nm" and beam_energy:
        # the scattering angle of a spatial frequency k is the wavelength
        # times k (small angles); the wavelength is in Angstrom, 0.1 nm
        to_mrad = 1000 * electron_wavelength(beam_energy) * 0.1 * scale
        bf, inner, outer = (f"{v:.3g}" for v in values * to_mrad)
        texts = [f"{texts[0]} ({bf} mrad)", f"{texts[1]} ({inner} to {outer} mrad)"]
    return texts[0], texts[1]


def _frame_plot(cell, headers, scan) -> dict:
    """Plot the rotator index and the time of every frame, one above the other.

    Two plots sharing the frame axis read more easily than one with a second
    y axis, whose scale and colour the eye has to match to its line.
    """
    from matplotlib.ticker import MaxNLocator

    frames = np.arange(headers.size)
    names = headers.dtype.names
    series = []
    if "rotidx" in names:
        series.append(("rotator index", headers["rotidx"], "tab:blue"))
    if {"timestamp", "ms"} <= set(names):
        t = frame_times_ms(headers)
        series.append(("time (s)", (t - t[0]) / MS_PER_S, "tab:orange"))
    plots = cell.subplots(max(len(series), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, values, colour) in zip(plots, series, strict=False):
        ax.plot(frames, values, lw=1, color=colour)
        ax.set_ylabel(label)
    if "rotidx" in names:  # a count: no tick at 2.5
        plots[0].yaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    marks = []  # (legend, line style, frame)
    if "start_frame" in scan:
        first = scan["start_frame"]
        marks.append((f"scan start: frame {first}", "--", first))
    if "stop_frame" in scan:
        last = scan["stop_frame"] - 1  # stop_frame is the frame after the scan
        marks.append((f"scan end: frame {last}", ":", last))
    for ax in plots:
        for label, style, frame in marks:
            ax.axvline(frame, color="k", ls=style, lw=1, label=label)
    if marks:
        # a rising rotator index or time leaves the lower right empty
        plots[0].legend(loc="lower right", fontsize=8)
    plots[-1].set_xlabel("frame")
    title = "rotator index and time per frame"
    plots[0].set_title(title)
    ys = [label for label, _, _ in series]
    return {"title": title, "x": "frame", "y": ys[0] if ys else "",
            "y2": ys[1] if len(ys) > 1 else None, "colorbar": None,
            "legend": [label for label, _, _ in marks] or None}  # fmt: skip


def _totals(ax, total, axis) -> dict:
    offset, scale, units = _calibration(axis)
    # a line scan's axis may carry no calibration: points, then
    x = offset + scale * np.arange(total.size)
    ax.plot(x, total, lw=1)
    name = axis.get("name", "frame")
    if units:
        ax.set_xlabel(f"{name} ({units})")
    else:  # frame numbers, or the points of a line scan
        ax.set_xlabel(name if name == "frame" else f"{name} ({UNCALIBRATED['scan']})")
    ax.set_ylabel(f"total intensity ({COUNTS})")
    title = "total intensity per frame"
    ax.set_title(title)
    return {"title": title, "x": ax.get_xlabel(), "y": ax.get_ylabel(),
            "colorbar": None, "legend": None}  # fmt: skip


def _tilt_plot(ax, tilt) -> dict:
    ax.plot(np.arange(tilt.size), tilt, lw=1, color="tab:green")
    ax.set_xlabel("frame")
    ax.set_ylabel("stage tilt alpha (degrees)")
    title = "stage tilt per frame"
    ax.set_title(title)
    return {"title": title, "x": ax.get_xlabel(), "y": ax.get_ylabel(),
            "colorbar": None, "legend": None}  # fmt: skip
