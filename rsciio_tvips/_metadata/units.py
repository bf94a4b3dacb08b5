"""Units of a signal's axes: a length, an inverse length, a time, or a pixel.

:func:`unit_kind` says whether a unit is a length (imaging) or an inverse
length (diffraction), :func:`_quantity` reads a unit's name as pint does,
with the spellings of electron microscopy, and :func:`is_pixel_unit` says
whether a unit names a pixel rather than a length.

pint is imported, and its unit registry built, only when a unit is first
converted (:func:`unit_registry`): building the registry takes a noticeable
time, and reading a file never needs it.
"""

from __future__ import annotations

import functools
import re

from .._format.layout import MODE_DIFFRACTION, MODE_IMAGING

#: Units that name a pixel, not a length (pint reads "px" as a CSS length).
PIXEL_UNITS = {"px", "pixel", "pixels", "pix", "<undefined>", ""}


@functools.cache
def unit_registry():
    """Return the pint unit registry, built on the first call.

    Returns
    -------
    pint.UnitRegistry
    """
    import pint

    return pint.UnitRegistry()


def is_pixel_unit(units) -> bool:
    """Return whether ``units`` names no length: none, a pixel, a scan point."""
    return units is None or str(units).strip().lower() in PIXEL_UNITS


def _quantity(units):
    """Return the pint quantity of a unit name, or None.

    Electron microscopy writes Å as "A" (which pint reads as ampere) and
    pyxem writes "k_A^-1" for 1/Å; both are read as ångström here.
    """
    text = str(units).strip().replace("Å", "angstrom").replace("k_A", "angstrom")
    text = re.sub(r"(?<![A-Za-z_])A(?![A-Za-z_])", "angstrom", text)
    registry = unit_registry()
    import pint  # imported by unit_registry: this only binds the name

    try:
        quantity = registry(text)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError):
        return None
    return quantity if isinstance(quantity, pint.Quantity) else None


def length_in(scale: float, units, target: str) -> float | None:
    """Return a length of ``scale`` ``units`` in the unit ``target``, or None.

    Parameters
    ----------
    scale : float
        The number.
    units : str
        Its unit, as an axis holds it ("nm", "A" or "Å" for ångström ...).
    target : str
        The pint unit wanted ("angstrom", "cm" ...).

    Returns
    -------
    float or None
        None when ``units`` is no length (a pixel, an inverse length,
        nothing pint reads).
    """
    if unit_kind(units) != MODE_IMAGING:
        return None
    return float((scale * _quantity(units)).to(target).magnitude)


def unit_kind(units) -> int | None:
    """Return MODE_IMAGING for a length, MODE_DIFFRACTION for 1/length."""
    if is_pixel_unit(units):
        return None
    quantity = _quantity(units)
    if quantity is None:
        return None
    if quantity.is_compatible_with("m"):
        return MODE_IMAGING
    if quantity.is_compatible_with("1/m"):
        return MODE_DIFFRACTION
    return None
