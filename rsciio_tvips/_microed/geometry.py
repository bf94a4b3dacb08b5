"""The detector and beam geometry of an SMV export: what is given, and what is found.

:class:`SmvGeometry` holds the geometry options of :func:`~.smv.to_smv`
(pixel size, distance, beam centre, wavelength, rotation, frame time, gain,
orientation) and checks each of them once, when it is made, before anything
is read. :meth:`SmvGeometry.resolve` then fills in what was not given from
the recording (the camera length, the high tension, the stage tilt, the
frame times) and says where every value came from; the result, a
:class:`ResolvedGeometry`, is what the image headers and the log are made
of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._format.layout import MODE_DIFFRACTION, float_field
from .._reading.recording import TvipsRecording
from .smv_format import TEMCAM_F416_PIXEL_MM, electron_wavelength, format_number

#: Values of ``flip``: none, mirror the columns, mirror the rows.
FLIPS = (None, "x", "y")
#: Decimals kept of an angle read from the stage tilt. ``stagea`` is a
#: float32, good to about 7 significant digits: 1e-5 degree for tilts of tens
#: of degrees. The digits past it are the float32's residue (-28.3 is stored
#: as -28.299999237), not a reading, and would print as ``-28.29999924``.
ANGLE_DECIMALS = 5


def round_angle(value) -> float:
    """Return an angle from the stage tilt rounded to :data:`ANGLE_DECIMALS`.

    Parameters
    ----------
    value : float
        Degrees.

    Returns
    -------
    float
        ``value`` to 1e-5 degree; never ``-0.0``.

    Examples
    --------
    >>> round_angle(np.float32(-28.3))
    -28.3
    """
    # + 0.0 turns a rounded -0.0 into 0.0, which prints as 0
    return round(float(value), ANGLE_DECIMALS) + 0.0


def tilt_line(alpha: np.ndarray) -> tuple[float, float, float]:
    """Return the straight line through stage-tilt readings, rounded.

    Parameters
    ----------
    alpha : numpy.ndarray of float64
        The stage tilt of consecutive frames, in degrees (at least two).

    Returns
    -------
    start : float
        The line's angle at the first frame, to :data:`ANGLE_DECIMALS`.
    step : float
        Its rotation per frame, to 1e-5 degree for up to 10 readings, 1e-6
        for up to 100, 1e-7 for up to 1000 and so on: over the whole series
        the rounding moves the last angle by less than 5e-5 degree, while
        three readings of -28.3, -28.2 and -28.1 give 0.1, not the
        float32's 0.0999994.
    residual : float
        The largest distance of a reading from the rounded line, in degrees.

    Notes
    -----
    Least squares about the means (exact for readings on a straight line);
    ``start`` is computed from the rounded ``step``, so the line goes
    through the mean reading.
    """
    index = np.arange(alpha.size, dtype=np.float64)
    di = index - index.mean()
    start, step = rounded_line(alpha.size, float(alpha.mean()), float(di @ alpha))
    residual = float(np.abs(alpha - (start + step * index)).max())
    return start, step, residual


def rounded_line(n: int, mean: float, centred: float) -> tuple[float, float]:
    """Return :func:`tilt_line`'s ``start`` and ``step`` from sums of readings.

    For a pass that sees the readings a block at a time (``tvips info``).

    Parameters
    ----------
    n : int
        Number of readings (at least two).
    mean : float
        Their mean.
    centred : float
        The sum over readings of ``(i - (n - 1) / 2) * alpha_i``, ``i`` the
        frame of the reading.

    Returns
    -------
    start, step : float
        Rounded as :func:`tilt_line` says.
    """
    # least squares about the means: the sum of (i - mean index)**2 is
    # n (n**2 - 1) / 12
    slope = centred / (n * (n * n - 1) / 12)
    # one more decimal each time the number of steps gains a digit: the
    # rounding then moves the last angle, steps * step, by under 5e-5 degree
    step = round(slope, ANGLE_DECIMALS + len(str(n - 1)) - 1)
    start = round_angle(mean - step * (n - 1) / 2)
    return start, step + 0.0


@dataclass(frozen=True)
class ResolvedGeometry:
    """Every geometry value of an SMV export, with where it came from.

    Attributes
    ----------
    frame_time, frame_time_source : float, str
        Seconds per frame.
    angles : dict
        ``source``, ``start``, ``start_source``, ``step`` (degrees per
        frame), ``rotation_rate`` (degrees per second) and, from the stage
        tilt, ``stagea_first``, ``stagea_last`` and ``stagea_max_residual``.
        Angles read from the stage tilt are rounded (:func:`round_angle`,
        :func:`tilt_line`); those given as options are kept as given.
    distance, distance_source : float, str
        Detector distance in mm.
    wavelength, wavelength_source : float, str
        Electron wavelength in Angstrom.
    pixel_size : float
        ``PIXEL_SIZE`` in mm: the physical pixel times the binning.
    binning : tuple of int
        ``(binx, biny)`` of the main header, at least 1.
    shape : tuple of int
        ``(rows, columns)`` of a written image, after ``rot90``.
    beam_center, beam_center_source : tuple of float, str
        ``BEAM_CENTER_X`` and ``BEAM_CENTER_Y`` in mm.
    """

    frame_time: float
    frame_time_source: str
    angles: dict
    distance: float
    distance_source: str
    wavelength: float
    wavelength_source: str
    pixel_size: float
    binning: tuple[int, int]
    shape: tuple[int, int]
    beam_center: tuple[float, float]
    beam_center_source: str


@dataclass(frozen=True)
class SmvGeometry:
    """Geometry options of an SMV export, checked when made.

    Each attribute is the :func:`~.smv.to_smv` keyword of the same name
    and means what it documents there; None stands for "from the
    recording" (or, for ``beam_center``, the centre of the image).

    Attributes
    ----------
    physical_pixel_size : float
        Detector pixel before binning, in mm.
    distance : float or None
        Detector distance in mm.
    beam_center : tuple of float or None
        ``(x, y)`` in mm, kept as two floats.
    wavelength : float or None
        In Angstrom.
    rotation_rate : float or None
        Degrees per second.
    start_angle : float or None
        With ``rotation_rate``: degrees at the start of the first frame.
    frame_time : float or None
        Seconds per frame.
    gain : float
        ``GAIN``, counts per electron.
    flip : {None, "x", "y"}
        Mirror the columns (``"x"``) or the rows (``"y"``), before ``rot90``.
    rot90 : int
        Quarter turns after ``flip``, kept as 0 to 3.

    Raises
    ------
    ValueError
        For a value out of range, checked in this order (the first found
        is reported): ``physical_pixel_size``, ``flip``, ``rot90``,
        ``gain``, ``beam_center``, ``frame_time``, ``rotation_rate``,
        ``start_angle`` (which needs ``rotation_rate``), ``distance``,
        ``wavelength``.

    Examples
    --------
    >>> SmvGeometry(rot90=5).rot90
    1
    >>> SmvGeometry(gain=0)
    Traceback (most recent call last):
    ...
    ValueError: gain must be positive, got 0
    """

    physical_pixel_size: float = TEMCAM_F416_PIXEL_MM
    distance: float | None = None
    beam_center: tuple[float, float] | None = None
    wavelength: float | None = None
    rotation_rate: float | None = None
    start_angle: float | None = None
    frame_time: float | None = None
    gain: float = 1.0
    flip: str | None = None
    rot90: int = 0

    def __post_init__(self) -> None:
        """Check every value, then keep ``rot90`` and ``beam_center`` normalised."""
        if not self.physical_pixel_size > 0:
            msg = (
                f"physical_pixel_size must be positive, got {self.physical_pixel_size}"
            )
            raise ValueError(msg)
        if self.flip not in FLIPS:
            raise ValueError(f"flip must be None, 'x' or 'y', got {self.flip!r}")
        if int(self.rot90) != self.rot90:
            msg = f"rot90 must be an integer number of quarter turns, got {self.rot90}"
            raise ValueError(msg)
        if not self.gain > 0:
            raise ValueError(f"gain must be positive, got {self.gain}")
        if self.beam_center is not None and len(self.beam_center) != 2:
            msg = (
                f"beam_center takes two numbers (x, y) in mm, got {self.beam_center!r}"
            )
            raise ValueError(msg)
        # the order in which to_smv once met these, where each was used
        self._check_positive("frame_time")
        if self.rotation_rate is not None and self.rotation_rate == 0:
            raise ValueError("rotation_rate must not be 0 degrees per second")
        if self.rotation_rate is None and self.start_angle is not None:
            msg = (
                "start_angle goes with rotation_rate; without it the angles come "
                "from the stage tilt (stagea) of the frames"
            )
            raise ValueError(msg)
        self._check_positive("distance")
        self._check_positive("wavelength")
        # frozen: normalise through object.__setattr__, once, here
        object.__setattr__(self, "rot90", int(self.rot90) % 4)
        if self.beam_center is not None:
            centre = tuple(float(v) for v in self.beam_center)
            object.__setattr__(self, "beam_center", centre)

    def _check_positive(self, name: str) -> None:
        value = getattr(self, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")

    def orient(self, image: np.ndarray) -> np.ndarray:
        """Return ``image`` mirrored (``flip``), then turned (``numpy.rot90``).

        Parameters
        ----------
        image : numpy.ndarray
            One image, rows first.

        Returns
        -------
        numpy.ndarray
            A view of ``image``.
        """
        if self.flip == "x":
            image = image[:, ::-1]
        elif self.flip == "y":
            image = image[::-1]
        return np.rot90(image, self.rot90)

    def resolve(
        self, rec: TvipsRecording, headers: np.ndarray, times_ms: np.ndarray
    ) -> ResolvedGeometry:
        """Fill in from the recording what the options leave open.

        Parameters
        ----------
        rec : TvipsRecording
            The recording (its main header gives ``magtotal``, ``ht`` and
            the binning).
        headers : numpy.ndarray
            The frame headers of the frames used.
        times_ms : numpy.ndarray of int64
            Their times, in ms since 1970 (UTC).

        Returns
        -------
        ResolvedGeometry

        Raises
        ------
        ValueError
            If a value is neither given nor in the recording, in this order:
            the frame time (times that do not increase), the rotation (no
            ``stagea``, or one that does not change), the distance (not in
            diffraction mode, or no camera length), the wavelength (``ht``
            0); or if the binning is not square.
        """
        seconds, time_source = self._frame_time(times_ms)
        angles = self._angles(headers, seconds)
        distance, distance_source = self._distance(rec, headers)
        wavelength, wavelength_source = self._wavelength(rec)
        fields = rec.header.fields
        binx, biny = max(fields["binx"], 1), max(fields["biny"], 1)
        if binx != biny:
            msg = (
                f"the frames are binned {binx} x {biny}: SMV has one PIXEL_SIZE, "
                "for square pixels"
            )
            raise ValueError(msg)
        pixel = self.physical_pixel_size * binx
        rows, cols = rec.frame_shape[::-1] if self.rot90 % 2 else rec.frame_shape
        if self.beam_center is None:
            centre = (rows * pixel / 2, cols * pixel / 2)
            centre_source = "centre of the image"
        else:
            centre, centre_source = self.beam_center, "beam_center option"
        return ResolvedGeometry(
            frame_time=seconds, frame_time_source=time_source, angles=angles,
            distance=distance, distance_source=distance_source,
            wavelength=wavelength, wavelength_source=wavelength_source,
            pixel_size=pixel, binning=(binx, biny), shape=(rows, cols),
            beam_center=centre, beam_center_source=centre_source,
        )  # fmt: skip

    def _frame_time(self, times_ms: np.ndarray) -> tuple[float, str]:
        """Return the time per frame in s and where it came from."""
        if self.frame_time is not None:
            return float(self.frame_time), "frame_time option"
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

    def _angles(self, headers: np.ndarray, frame_time: float) -> dict:
        """Return the angle of the first frame and the step per frame, and why."""
        has_alpha = "stagea" in headers.dtype.names
        if self.rotation_rate is not None:
            if self.start_angle is None:
                start = round_angle(headers["stagea"][0]) if has_alpha else 0.0
                start_source = "stagea of the first frame" if has_alpha else "0"
            else:
                start, start_source = float(self.start_angle), "start_angle option"
            return {
                "source": "rotation_rate",
                "start": start,
                "start_source": start_source,
                "step": float(self.rotation_rate) * frame_time,
                "rotation_rate": float(self.rotation_rate),
            }
        if not has_alpha:
            msg = (
                f"the frame headers ({headers.dtype.itemsize} bytes) hold no stage "
                "tilt (stagea, offset 40): give rotation_rate in degrees per second"
            )
            raise ValueError(msg)
        alpha = float_field(headers, "stagea")
        if alpha.size < 2 or np.ptp(alpha) == 0:
            msg = (
                f"the frame headers do not show the rotation: stagea is "
                f"{format_number(alpha[0])} degrees in all {alpha.size} frame(s): "
                "give rotation_rate in degrees per second"
            )
            raise ValueError(msg)
        # a straight line through the readings: every image then gets the same
        # OSC_RANGE and starts where the one before ends, as DIALS requires
        start, step, residual = tilt_line(alpha)
        return {
            "source": "stagea",
            "start": start,
            "start_source": "straight-line fit of stagea",
            "step": step,
            "rotation_rate": step / frame_time,
            "stagea_first": round_angle(alpha[0]),
            "stagea_last": round_angle(alpha[-1]),
            "stagea_max_residual": residual,
        }

    def _distance(self, rec: TvipsRecording, headers: np.ndarray) -> tuple[float, str]:
        """Return the detector distance in mm and where it came from."""
        if self.distance is not None:
            return float(self.distance), "distance option"
        camera = rec.header.fields["magtotal"]
        mode = headers["mode"][0] if "mode" in headers.dtype.names else None
        if mode == MODE_DIFFRACTION and camera > 0:
            return float(camera), "camera length (magtotal) of the main header"
        msg = (
            "no detector distance: the recording does not say it is in diffraction "
            "mode with a camera length (magtotal, offset 44): give distance in mm"
        )
        raise ValueError(msg)

    def _wavelength(self, rec: TvipsRecording) -> tuple[float, str]:
        """Return the wavelength in Angstrom and where it came from."""
        if self.wavelength is not None:
            return float(self.wavelength), "wavelength option"
        kv = rec.header.fields["ht"]
        if kv <= 0:
            msg = (
                "no wavelength: the high tension of the main header (ht, offset 40) "
                "is 0: give wavelength in Angstrom"
            )
            raise ValueError(msg)
        return electron_wavelength(kv), f"high tension (ht) {kv} kV"
