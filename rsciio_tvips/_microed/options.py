"""The options of :func:`~.smv.to_smv` that a command line sets: one table.

Each row of :data:`SMV_OPTIONS` is one optional keyword of ``to_smv``:
the command-line flag that sets it, how the flag's text becomes a value,
and a one-line help. ``tvips convert`` builds its SMV options from this
table and passes the values back by keyword, so a keyword added to
``to_smv`` needs one row here and nothing in the command. The keywords
every output takes (``frames``, ``signed``, ``overwrite``,
``permissive``) are the command's own options, not rows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .geometry import FLIPS
from .smv_format import LEGINON_MAX_OFFSET, TEMCAM_F416_PIXEL_MM


class SmvOption(NamedTuple):
    """One optional keyword of ``to_smv`` and its command-line flag.

    Attributes
    ----------
    flag : str
        The flag without its dashes, with ``_`` for ``-``
        (``"max_offset"`` is ``--max-offset``); also the name argparse
        stores the value under.
    keyword : str
        The ``to_smv`` keyword it sets.
    type : callable or None
        Turns the text into the value (None: kept as text).
    help : str
        One line for ``--help``.
    metavar : str or tuple of str or None
        Name of the value in ``--help`` (None: argparse's default).
    nargs : int or None
        Number of values (None: one).
    choices : tuple or None
        The values allowed.
    """

    flag: str
    keyword: str
    type: Any
    help: str
    metavar: str | tuple[str, ...] | None = None
    nargs: int | None = None
    choices: tuple | None = None

    @property
    def option(self) -> str:
        """The flag as typed: ``--max-offset``."""
        return "--" + self.flag.replace("_", "-")


#: The optional keywords of ``to_smv`` a command line sets, in ``--help``
#: order. A flag not given leaves the function's default in force.
SMV_OPTIONS = (
    SmvOption("sum", "sum_frames", int, "sum N consecutive frames per image", "N"),
    SmvOption("offset", "offset", int,
              "add N to every pixel instead of Leginon's offset", "N"),
    SmvOption("max_offset", "max_offset", int,
              f"cap of Leginon's offset ({LEGINON_MAX_OFFSET})", "N"),
    SmvOption("physical_pixel_size", "physical_pixel_size", float,
              f"detector pixel before binning, mm ({TEMCAM_F416_PIXEL_MM}: "
              "TemCam-F416)", "MM"),
    SmvOption("distance", "distance", float,
              "detector distance (default: the camera length in diffraction mode)",
              "MM"),
    SmvOption("beam_center", "beam_center", float,
              "BEAM_CENTER_X (from the first row) and _Y (from the first column), "
              "mm (default: the centre)", ("X", "Y"), nargs=2),
    SmvOption("wavelength", "wavelength", float,
              "Angstrom (default: from the high tension)", "A"),
    SmvOption("rotation_rate", "rotation_rate", float,
              "angles from this rate and the frame times, not from stagea",
              "DEG_PER_S"),
    SmvOption("start_angle", "start_angle", float,
              "with --rotation-rate: angle of the first frame", "DEG"),
    SmvOption("frame_time", "frame_time", float,
              "seconds per frame (default: from the frame times)", "S"),
    SmvOption("gain", "gain", float, "GAIN for DIALS, counts per electron (1)"),
    SmvOption("flip", "flip", None, "mirror the columns (x) or rows (y)",
              choices=tuple(f for f in FLIPS if f is not None)),
    SmvOption("rot90", "rot90", int, "then turn by K quarter turns", "K"),
    SmvOption("start_number", "start_number", int,
              "number of the first image (1)", "N"),
)  # fmt: skip
