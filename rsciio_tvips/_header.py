"""Parse and check the main header of a recording.

:func:`parse_main_header` turns the first 256 bytes of ``NAME_000.tvips`` into
a frozen :class:`MainHeader`, or raises :class:`TvipsFormatError` naming the
field, its offset, what was expected and what was found. It does no I/O, so
it can be fed any bytes (tests, fuzzing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._format import (
    MAIN_HEADER_DTYPE,
    MAIN_HEADER_SIZE,
    PIXEL_DTYPES,
    SUPPORTED_VERSIONS,
    V2_MIN_FRAME_HEADER_SIZE,
    frame_header_dtype,
    frame_header_size,
)
from .exceptions import TvipsFormatError


def _offset(field: str) -> int:
    return MAIN_HEADER_DTYPE.fields[field][1]


def _fail(name: str, what: str, field: str, expected: str, found) -> None:
    msg = (
        f"{name}: {what} ({field}) at offset {_offset(field)}: "
        f"expected {expected}, found {found}"
    )
    raise TvipsFormatError(msg)


@dataclass(frozen=True)
class MainHeader:
    """The decoded main header of a recording.

    Attributes
    ----------
    raw : bytes
        The 256 header bytes as read, for byte-exact round trips.
    fields : dict
        Every integer field by its RosettaSciIO name (``dimx``, ``ht`` ...).
    version : int
        1 or 2.
    shape : tuple of int
        ``(dimy, dimx)`` of a frame.
    pixel_dtype : numpy.dtype
        Little-endian unsigned pixel type.
    frame_header_bytes : int
        Size of each frame header (12 for version 1).
    """

    raw: bytes
    fields: dict
    version: int
    shape: tuple
    pixel_dtype: np.dtype
    frame_header_bytes: int

    @property
    def frame_nbytes(self) -> int:
        """Bytes of pixel data in one frame."""
        return self.shape[0] * self.shape[1] * self.pixel_dtype.itemsize

    @property
    def record_size(self) -> int:
        """Bytes of one frame record (frame header and pixels)."""
        return self.frame_header_bytes + self.frame_nbytes

    @property
    def frame_header_dtype(self) -> np.dtype:
        """Structured dtype of this recording's frame headers."""
        return frame_header_dtype(self.frame_header_bytes)


def parse_main_header(buf: bytes, name: str) -> MainHeader:
    """Decode and check a main header.

    Parameters
    ----------
    buf : bytes
        The first bytes of the first part (at least 256 for success).
    name : str
        File name used in error messages.

    Returns
    -------
    MainHeader

    Raises
    ------
    TvipsFormatError
        In this order, when:

        1. ``buf`` is shorter than 256 bytes;
        2. the ``size`` field is not 256;
        3. the version is not 1 or 2;
        4. ``dimx`` or ``dimy`` is 0;
        5. ``bitsperpixel`` is not 8, 16, 32 or 64;
        6. a version 2 header declares frame headers shorter than 12 bytes.
    """
    if len(buf) < MAIN_HEADER_SIZE:
        msg = (
            f"{name}: file is shorter than the main header at offset 0: "
            f"expected at least {MAIN_HEADER_SIZE} bytes, found {len(buf)}"
        )
        raise TvipsFormatError(msg)
    raw = bytes(buf[:MAIN_HEADER_SIZE])
    rec = np.frombuffer(raw, MAIN_HEADER_DTYPE)[0]
    fields = {k: int(rec[k]) for k in MAIN_HEADER_DTYPE.names if k != "dummy"}
    if fields["size"] != MAIN_HEADER_SIZE:
        _fail(name, "main header size", "size", str(MAIN_HEADER_SIZE), fields["size"])
    version = fields["version"]
    if version not in SUPPORTED_VERSIONS:
        _fail(name, "unsupported header version", "version", "1 or 2", version)
    for field, what in (("dimx", "image width"), ("dimy", "image height")):
        if fields[field] == 0:
            _fail(name, what, field, "a positive number of pixels", 0)
    bpp = fields["bitsperpixel"]
    if bpp not in PIXEL_DTYPES:
        _fail(name, "unsupported pixel depth", "bitsperpixel", "8, 16, 32 or 64", bpp)
    declared = fields["frameheaderbytes"]
    if version == 2 and declared < V2_MIN_FRAME_HEADER_SIZE:
        _fail(
            name,
            "frame header size",
            "frameheaderbytes",
            f"at least {V2_MIN_FRAME_HEADER_SIZE} bytes for version 2",
            declared,
        )
    return MainHeader(
        raw=raw,
        fields=fields,
        version=version,
        shape=(fields["dimy"], fields["dimx"]),
        pixel_dtype=PIXEL_DTYPES[bpp],
        frame_header_bytes=frame_header_size(version, declared),
    )
