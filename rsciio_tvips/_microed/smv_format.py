"""The SMV (ADSC) image format and Leginon's offset rule, without any I/O.

An SMV file is a text header of ``KEY=VALUE;`` lines in braces, with
``HEADER_BYTES`` on the second line, padded to a multiple of 512 bytes, then
the pixels. This module makes the header text, the ``DATE`` string, the
numbered file names, the electron wavelength and Leginon's offset and
pedestal; :mod:`.smv` reads the frames and writes the files.

Which keys DIALS reads and how (``FormatSMVADSC`` in dxtbx): ``TIME`` is the
exposure in seconds, ``DATE`` is read as UTC in the form ``Tue Nov 14
22:13:20 2023``, ``BEAM_CENTER_X`` is measured along the slow axis (rows)
and ``BEAM_CENTER_Y`` along the fast one (columns), ``GAIN`` and
``IMAGE_PEDESTAL`` go into the detector model, and the scan is assembled
from ``OSC_START``/``OSC_RANGE``, which must make consecutive images
contiguous. A record ends at ``;`` and a value holds no ``=``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

#: SMV headers are a whole number of these blocks.
SMV_BLOCK = 512
#: Highest value of an SMV pixel (uint16).
SMV_MAX = int(np.iinfo(np.uint16).max)
#: Leginon's cap on the offset: lower minima are cosmic-ray artefacts.
LEGINON_MAX_OFFSET = 2000
#: Physical pixel of the TVIPS TemCam-F416, in mm (15.6 um).
TEMCAM_F416_PIXEL_MM = 0.0156
#: English names for DATE, whatever the locale (``strftime`` follows it).
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec")  # fmt: skip

# CODATA 2018 exact and recommended values, SI units.
PLANCK = 6.62607015e-34  # J s
ELECTRON_MASS = 9.1093837015e-31  # kg
ELEMENTARY_CHARGE = 1.602176634e-19  # C
LIGHT_SPEED = 299792458.0  # m/s

_HASHES = re.compile(r"#+")


def electron_wavelength(kilovolts: float) -> float:
    """Return the relativistic wavelength of electrons, in Angstrom.

    Parameters
    ----------
    kilovolts : float
        Accelerating voltage (high tension) in kV.

    Returns
    -------
    float
        ``h / sqrt(2 m e V (1 + e V / (2 m c**2)))`` in Angstrom: 0.019687
        at 300 kV, 0.025079 at 200 kV.
    """
    energy = ELEMENTARY_CHARGE * kilovolts * 1e3  # J
    rest = ELECTRON_MASS * LIGHT_SPEED**2
    momentum = math.sqrt(2 * ELECTRON_MASS * energy * (1 + energy / (2 * rest)))
    return PLANCK / momentum * 1e10


def leginon_offset(minima, max_offset: int = LEGINON_MAX_OFFSET) -> int:
    """Return the offset Leginon adds to every pixel of a series.

    Parameters
    ----------
    minima : sequence of int
        The minimum of each image.
    max_offset : int, optional
        The cap (Leginon: 2000).

    Returns
    -------
    int
        ``-min(minima)``, at most ``max_offset``; 0 if no minimum is below 0.
    """
    lowest = min(int(m) for m in minima)
    return 0 if lowest >= 0 else min(-lowest, int(max_offset))


def image_pedestal(minima, offset: int) -> int:
    """Return DIALS' ``IMAGE_PEDESTAL``: the highest image minimum plus the offset."""
    return max(int(m) for m in minima) + int(offset)


def format_number(value) -> str:
    """Format a header number: integers as they are, floats to 10 digits."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = f"{float(value):.10g}"
    return "0" if text == "-0" else text


def smv_header(values: dict) -> bytes:
    """Return an SMV header holding ``values`` (in their order), padded.

    Parameters
    ----------
    values : dict
        Keys and values (numbers or strings) after ``HEADER_BYTES``, which
        is added first, as every SMV reader expects it on the second line.

    Returns
    -------
    bytes
        ``{``, one ``KEY=VALUE;`` line each, ``}``, padded with spaces to
        512 bytes, or to the next multiple of 512 when the text is longer.
    """
    body = "".join(
        f"{key}={value if isinstance(value, str) else format_number(value)};\n"
        for key, value in values.items()
    )
    size = SMV_BLOCK
    while True:
        text = f"{{\nHEADER_BYTES={size:5d};\n{body}}}\n"
        if len(text) <= size:
            return text.encode("ascii").ljust(size, b" ")
        size = -(-len(text) // SMV_BLOCK) * SMV_BLOCK


def smv_date(unix_ms: int) -> str:
    """Return an SMV ``DATE`` (UTC): ``Tue Nov 14 22:13:20 2023``."""
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=unix_ms)
    return (
        f"{DAYS[t.weekday()]} {MONTHS[t.month - 1]} {t.day:02d} {t:%H:%M:%S} {t.year}"
    )


def output_names(template, start_number: int, count: int) -> list[Path]:
    """Return the file names of ``count`` images from a ``###`` template.

    Parameters
    ----------
    template : str or os.PathLike
        File name with one run of ``#`` in its last component, replaced by
        the image number, zero-padded to the length of the run.
    start_number : int
        Number of the first image.
    count : int
        Number of images.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    ValueError
        If the name holds no run of ``#``, or more than one, or the last
        number needs more digits than the run has.
    """
    path = Path(template)
    runs = _HASHES.findall(path.name)
    if len(runs) != 1:
        what = "no run" if not runs else f"{len(runs)} runs"
        msg = (
            f"the output name {path.name!r} must hold one run of '#' for the image "
            f"number, e.g. 'lyso_###.img'; it has {what}"
        )
        raise ValueError(msg)
    if start_number < 0:
        raise ValueError(f"start_number must be 0 or more, got {start_number}")
    width = len(runs[0])
    last = start_number + count - 1
    if len(str(last)) > width:
        msg = (
            f"the output name {path.name!r} has {width} digit(s) for the image "
            f"number, but the last image is number {last}: use more '#'"
        )
        raise ValueError(msg)
    return [
        path.with_name(_HASHES.sub(f"{n:0{width}d}", path.name))
        for n in range(start_number, last + 1)
    ]


def log_name(template) -> Path:
    """Return the JSON log's name: ``lyso_###.img`` gives ``lyso.json``."""
    path = Path(template)
    prefix = _HASHES.split(path.name)[0].rstrip("_-. ")
    return path.with_name(f"{prefix or 'smv'}.json")
