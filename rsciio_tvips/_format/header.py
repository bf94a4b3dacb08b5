"""Parse and check the main header of a recording.

:func:`parse_main_header` turns the first 256 bytes of ``NAME_000.tvips`` into
a frozen :class:`MainHeader`, or raises :class:`TvipsFormatError` naming the
field, its offset, what was expected and what was found. It does no I/O, so
it can be fed any bytes (tests, fuzzing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..exceptions import Defect, Finding, TvipsFormatError
from .layout import (
    KNOWN_FRAME_HEADER_SIZES,
    MAIN_HEADER_DTYPE,
    MAIN_HEADER_SIZE,
    PIXEL_DTYPES,
    SIGNED_PIXEL_DTYPES,
    SUPPORTED_VERSIONS,
    V2_MAX_FRAME_HEADER_SIZE,
    V2_MIN_FRAME_HEADER_SIZE,
    decoded_header_dtype,
    field_offset,
    frame_header_dtype,
    frame_header_size,
    frame_header_size_fits,
)


def _problem(field: str, what: str, expected: str, found: int, name: str) -> Defect:
    offset = field_offset(field)
    finding = Finding("fatal", name, offset, field, expected, str(found), what)
    message = (
        f"{name}: {what} ({field}) at offset {offset}: expected {expected}, "
        f"found {found}"
    )
    return Defect(finding, message)


def header_defects(raw: bytes, name: str) -> list[Defect]:
    """Check the first bytes of a recording as a main header; return every defect.

    Parameters
    ----------
    raw : bytes
        The first bytes of the first part (256 or fewer when it is shorter).
    name : str
        File name, for the findings and messages.

    Returns
    -------
    list of Defect
        In the order :func:`parse_main_header` checks them: ``fatal`` ones
        when the header cannot be used, then an ``info`` remark for a frame
        header size that no known file has; empty for a usual header.
    """
    if len(raw) < MAIN_HEADER_SIZE:
        finding = Finding(
            "fatal", name, 0, "main header", f"{MAIN_HEADER_SIZE} bytes",
            f"{len(raw)} bytes",
        )  # fmt: skip
        message = (
            f"{name}: file is shorter than the main header at offset 0: "
            f"expected at least {MAIN_HEADER_SIZE} bytes, found {len(raw)}"
        )
        return [Defect(finding, message)]
    fields = decode_fields(raw)
    problems = []
    if fields["size"] != MAIN_HEADER_SIZE:
        problems.append(
            _problem("size", "main header size", str(MAIN_HEADER_SIZE),
                     fields["size"], name)
        )  # fmt: skip
    version = fields["version"]
    if version not in SUPPORTED_VERSIONS:
        problems.append(
            _problem("version", "unsupported header version", "1 or 2", version, name)
        )
    for field, what in (("dimx", "image width"), ("dimy", "image height")):
        if fields[field] == 0:
            problems.append(
                _problem(field, what, "a positive number of pixels", 0, name)
            )
    bpp = fields["bitsperpixel"]
    if bpp not in PIXEL_DTYPES:
        problems.append(
            _problem("bitsperpixel", "unsupported pixel depth", "8, 16, 32 or 64",
                     bpp, name)
        )  # fmt: skip
    declared = fields["frameheaderbytes"]
    if version == 2 and not frame_header_size_fits(declared):
        expected = (
            f"{V2_MIN_FRAME_HEADER_SIZE} to {V2_MAX_FRAME_HEADER_SIZE} bytes for "
            "version 2"
        )
        problems.append(
            _problem("frameheaderbytes", "frame header size", expected, declared, name)
        )
    elif version == 2 and declared not in KNOWN_FRAME_HEADER_SIZES:
        offset = field_offset("frameheaderbytes")
        seen = " or ".join(map(str, KNOWN_FRAME_HEADER_SIZES))
        finding = Finding(
            "info", name, offset, "frameheaderbytes", f"{seen} (sizes seen)",
            str(declared), "the fields that fit are decoded, the rest kept raw",
        )  # fmt: skip
        message = (
            f"{name}: frame header size (frameheaderbytes) at offset {offset}: "
            f"expected {seen} (sizes seen), found {declared}"
        )
        problems.append(Defect(finding, message))
    return problems


def decode_fields(raw: bytes) -> dict:
    """Return every integer field of 256 main-header bytes, by RosettaSciIO name."""
    rec = np.frombuffer(raw[:MAIN_HEADER_SIZE], MAIN_HEADER_DTYPE)[0]
    return {k: int(rec[k]) for k in MAIN_HEADER_DTYPE.names if k != "dummy"}


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
        Little-endian pixel type: unsigned, as the file declares it, or
        signed for a header made by :func:`read_signed`.
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

    @property
    def decoded_header_dtype(self) -> np.dtype:
        """Dtype of the decoded fields at the start of each frame header."""
        return decoded_header_dtype(self.frame_header_bytes)


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
        6. a version 2 header declares frame headers shorter than 12 bytes or
           longer than 16 MiB.
    """
    fatal = [d for d in header_defects(buf, name) if d.finding.severity == "fatal"]
    if fatal:
        raise TvipsFormatError(fatal[0].message, findings=[fatal[0].finding])
    raw = bytes(buf[:MAIN_HEADER_SIZE])
    fields = decode_fields(raw)
    version, bpp = fields["version"], fields["bitsperpixel"]
    declared = fields["frameheaderbytes"]
    return MainHeader(
        raw=raw,
        fields=fields,
        version=version,
        shape=(fields["dimy"], fields["dimx"]),
        pixel_dtype=PIXEL_DTYPES[bpp],
        frame_header_bytes=frame_header_size(version, declared),
    )


def read_signed(header: MainHeader, name: str) -> MainHeader:
    """Return the header with its pixels to be read as signed integers.

    Only the interpretation changes (int16 instead of uint16): the bytes,
    the record size and every offset stay the same. MicroED recordings of
    gain- and dark-corrected frames hold negative values this way.

    Parameters
    ----------
    header : MainHeader
        The header as parsed.
    name : str
        File name used in error messages.

    Returns
    -------
    MainHeader
        A copy whose ``pixel_dtype`` is signed.

    Raises
    ------
    ValueError
        If the pixels are not 16 bits deep: no other depth is known to hold
        signed values.
    """
    bpp = header.fields["bitsperpixel"]
    if bpp not in SIGNED_PIXEL_DTYPES:
        msg = (
            f"{name}: signed=True reads 16-bit pixels as int16, but this recording "
            f"has {bpp}-bit pixels (bitsperpixel at offset "
            f"{field_offset('bitsperpixel')})"
        )
        raise ValueError(msg)
    return replace(header, pixel_dtype=SIGNED_PIXEL_DTYPES[bpp])
