"""The one table between TVIPS header fields and HyperSpy metadata.

Each row of :data:`MAPPING` names a main-header or frame-header field (by its
RosettaSciIO name, as in :mod:`rsciio_tvips._format.layout`), the HyperSpy
metadata path of the value it holds, the units on both sides, the factor
between them and the recording mode in which the pair applies. The reader
(:func:`rsciio_tvips._metadata.decode.metadata`) and the writer
(:func:`rsciio_tvips._metadata.encode.main_header`,
:func:`~rsciio_tvips._metadata.encode.frame_headers` and its check of carried
frame headers) walk this table; no other module pairs a field with a path.
``tests/metadata/test_mapping.py`` writes and reads back every row.

What the table does not hold, because it is not a field-to-value pair: the
pixel size (it calibrates the signal axes, in units that depend on the mode),
the frame times (two fields make one ``General.date``/``time``) and the mode
itself (it decides the axes' units and the signal type).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._format.layout import MODE_DIFFRACTION

#: ``header`` of a row whose field is in the main header (``NAME_000.tvips``).
MAIN = "main"
#: ``header`` of a row whose field is in every frame header (the first
#: frame's value is the one in the metadata).
FRAME = "frame"
#: The HyperSpy node every mapped value lives under.
TEM = "Acquisition_instrument.TEM"
#: The HyperSpy node of the stage positions and tilts.
STAGE = f"{TEM}.Stage"
#: Stage positions are stored in nm; HyperSpy keeps them in mm.
NM_PER_MM = 1e6


@dataclass(frozen=True)
class FieldMapping:
    """One TVIPS header field and the HyperSpy metadata value it holds.

    Attributes
    ----------
    field : str
        RosettaSciIO's name of the field.
    header : {"main", "frame"}
        Which header holds the field (:data:`MAIN` or :data:`FRAME`).
    path : str
        HyperSpy metadata path of the value, dot separated.
    units : str or None
        Units of the metadata value, as HyperSpy documents them; None for a
        pure number.
    field_units : str or None
        Units of the stored field; None for a pure number or when not known.
    factor : float
        Stored value = metadata value * ``factor``.
    diffraction : bool or None
        True: the pair holds only in diffraction mode (``mode`` 2); False:
        only outside it (imaging, or a frame header without ``mode``);
        None: in every mode.
    """

    field: str
    header: str
    path: str
    units: str | None
    field_units: str | None
    factor: float = 1.0
    diffraction: bool | None = None

    def applies(self, mode: int | None) -> bool:
        """Return whether the row holds for a recording of this ``mode``.

        Parameters
        ----------
        mode : int or None
            The frame-header ``mode`` (None when the header has no such field).

        Returns
        -------
        bool
        """
        if self.diffraction is None:
            return True
        return (mode == MODE_DIFFRACTION) == self.diffraction

    def to_metadata(self, stored) -> float:
        """Return the metadata value of a stored field value.

        Parameters
        ----------
        stored : int or float
            The field's value as read from the header.

        Returns
        -------
        float
        """
        return stored / self.factor

    def to_field(self, value: float) -> float:
        """Return the value to store for a metadata value.

        Parameters
        ----------
        value : float
            The metadata value, in :attr:`units`.

        Returns
        -------
        float
            The value in :attr:`field_units`; the caller rounds it when the
            field is an integer.
        """
        return float(value) * self.factor


#: Every field the reader turns into metadata and the writer back into a
#: field, main header first. The order is the order of the keys the reader
#: puts in ``Acquisition_instrument.TEM``.
MAPPING = (
    FieldMapping("ht", MAIN, f"{TEM}.beam_energy", "kV", "kV"),
    # The TVIPS recorder script stores the camera length in magtotal when it
    # records diffraction, so one field has two meanings, chosen by the mode.
    FieldMapping(
        "magtotal", MAIN, f"{TEM}.camera_length", "mm", "mm", diffraction=True
    ),
    FieldMapping(
        "magtotal", MAIN, f"{TEM}.magnification", None, None, diffraction=False
    ),
    # The unit of the Faraday cup reading is not documented: the value is
    # copied as it is into HyperSpy's beam current (nA).
    FieldMapping("fcurrent", FRAME, f"{TEM}.beam_current", "nA", None),
    FieldMapping("stagea", FRAME, f"{STAGE}.tilt_alpha", "deg", "deg"),
    FieldMapping("stageb", FRAME, f"{STAGE}.tilt_beta", "deg", "deg"),
    FieldMapping("stagex", FRAME, f"{STAGE}.x", "mm", "nm", NM_PER_MM),
    FieldMapping("stagey", FRAME, f"{STAGE}.y", "mm", "nm", NM_PER_MM),
    FieldMapping("stagez", FRAME, f"{STAGE}.z", "mm", "nm", NM_PER_MM),
)


def rows(header: str, mode: int | None) -> tuple[FieldMapping, ...]:
    """Return the rows of one header that hold for a recording of ``mode``.

    Parameters
    ----------
    header : {"main", "frame"}
        :data:`MAIN` or :data:`FRAME`.
    mode : int or None
        The frame-header ``mode`` (None when the header has no such field).

    Returns
    -------
    tuple of FieldMapping
        In table order; at most one row per field.
    """
    return tuple(r for r in MAPPING if r.header == header and r.applies(mode))
