"""The byte layout of TVIPS recordings, in one place.

Everything that says where a byte lives in a ``.tvips`` file is defined here:
the main header, the frame headers of both versions, the pixel types, the part
naming rule and the numbers that go with them. No other module writes a
literal offset or size.

No official specification of the format is public. The fields below were
reverse-engineered by others and compared between the public readers
(RosettaSciIO's ``rsciio.tvips``, LiberTEM's ``TVIPSDataSet``, TVIPSconverter,
the TVIPS recorder script preserved in TVIPSconverter's history, Leginon and a
MATLAB MicroED reader); ``docs/format.rst`` says where each fact comes from.

Two naming schemes are in use. The primary field names are RosettaSciIO's
(what ``rsciio.tvips`` users already see in ``original_metadata``); the names
of LiberTEM, which follow the vendor's C structure, are numpy field *titles*,
so ``headers["rotidx"]`` and ``headers["Index_of_rotator"]`` are the same
column. Fields that only LiberTEM names (offset 60 and later) have only that
name.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePath

import numpy as np

#: Size of the main header at the start of ``NAME_000.tvips``, in bytes.
MAIN_HEADER_SIZE = 256
#: Header versions this package reads and writes.
SUPPORTED_VERSIONS = (1, 2)
#: Size of a version 1 frame header, in bytes (counter, seconds, milliseconds).
V1_FRAME_HEADER_SIZE = 12
#: Smallest frame header a version 2 file may declare: the three fields that
#: every known reader relies on for frame times. Any larger size is accepted and
#: only the fields that fit are decoded.
V2_MIN_FRAME_HEADER_SIZE = 12
#: Version 2 frame-header size RosettaSciIO's writer (and ours) writes before
#: any extra bytes: the fields up to ``objective`` (offset 56).
V2_BASE_FRAME_HEADER_SIZE = 60
#: Largest version 2 frame header accepted (16 MiB). Sizes seen are 60 to
#: 180 bytes; a larger value is a damaged header, and one of 2**31 bytes or
#: more cannot even be described as a numpy record.
V2_MAX_FRAME_HEADER_SIZE = 2**24
#: Frame-header sizes seen in files of known origin (format.md); any other
#: size is read, and remarked on by the validator.
KNOWN_FRAME_HEADER_SIZES = (60, 108, 180)
#: ``bitsperpixel`` values and the unsigned pixel type each one means. 8 and 16
#: come from cameras; 32 and 64 are written by RosettaSciIO's writer.
PIXEL_DTYPES = {
    8: np.dtype("<u1"),
    16: np.dtype("<u2"),
    32: np.dtype("<u4"),
    64: np.dtype("<u8"),
}
#: ``bitsperpixel`` values whose pixels can be read as signed integers
#: (``signed=True``), and the type they are then read as: the same bytes,
#: another interpretation. MicroED users store gain- and dark-corrected
#: frames, which can be negative, as int16 in the 16 bits of an ordinary
#: file (Leginon reads them so); no other depth is known to hold signed
#: values, so no other depth is read as signed.
SIGNED_PIXEL_DTYPES = {16: np.dtype("<i2")}
#: ``mode`` frame-header values.
MODE_IMAGING = 1
MODE_DIFFRACTION = 2

#: Suffix of the part that holds the main header.
FIRST_PART_NUMBER = 0
#: Number of digits of the part number in a file name.
PART_DIGITS = 3
#: A part of a recording: ``<stem>_NNN.tvips``, extension in any case.
PART_RE = re.compile(r"^(?P<stem>.+)_(?P<part>\d{3})\.(?P<ext>tvips)$", re.IGNORECASE)

# Main header: thirteen 32-bit little-endian integers, then filler. The TVIPS
# software fills the rest with repeated "TVIPS "; RosettaSciIO's writer with
# "HYPERSPY ". RosettaSciIO reads the integers unsigned, LiberTEM signed; every
# known value is small and positive, so unsigned it is.
MAIN_HEADER_DTYPE = np.dtype(
    [
        (("ISize", "size"), "<u4"),  # header size in bytes, always 256
        (("IVersion", "version"), "<u4"),  # 1 or 2; nothing else seen
        (("IXDim", "dimx"), "<u4"),  # image width in pixels (last array axis)
        (("IYDim", "dimy"), "<u4"),  # image height in pixels
        (("IBPP", "bitsperpixel"), "<u4"),  # 8 or 16 (camera); 32, 64 (rsciio)
        (("IXOff", "offsetx"), "<u4"),  # read-out offset on the chip, pixels
        (("IYOff", "offsety"), "<u4"),  # read-out offset on the chip, pixels
        (("IXBin", "binx"), "<u4"),  # binning along x
        (("IYBin", "biny"), "<u4"),  # binning along y
        # Pixel size in nm (an integer) in imaging mode; in diffraction mode
        # RosettaSciIO's writer stores 1/nm, the camera's meaning is unknown.
        (("IPixelSize", "pixelsize"), "<u4"),
        (("IHT", "ht"), "<u4"),  # high tension in kV
        # Total magnification including post-magnification; the TVIPS recorder
        # script uses it as the camera length (mm) in diffraction mode.
        (("IMagTotal", "magtotal"), "<u4"),
        # Bytes of each frame header; only meaningful in version 2 (version 1
        # frame headers are always 12 bytes whatever this says).
        (("IImgHeaderBytes", "frameheaderbytes"), "<u4"),
        ("dummy", "u1", (MAIN_HEADER_SIZE - 13 * 4,)),  # filler, kept raw
    ]
)

#: Where the filler of the main header starts.
FILLER_OFFSET = MAIN_HEADER_DTYPE.fields["dummy"][1]

# Frame header fields as (offset, RosettaSciIO name, LiberTEM name, type).
# Every field is 4 bytes. A field is decoded only when it lies wholly inside
# the frame-header size a file declares; bytes past the last decoded field
# are kept raw in "extra". Offsets 60 and later are known from LiberTEM only.
FRAME_HEADER_FIELDS = (
    # Frame counter. LiberTEM: continues through all parts; pyautoprocess:
    # 1-based; TVIPSconverter saw it cycle.
    (0, "num", "ICounter", "<u4"),
    (4, "timestamp", "ITime", "<u4"),  # unix time of the frame, s (UTC)
    (8, "ms", "IMS", "<u4"),  # milliseconds to add to timestamp
    (12, "LUTidx", "LUT_Index", "<u4"),  # look-up table index
    (16, "fcurrent", "Faraday", "<f4"),  # Faraday cup / beam current
    (20, "mag", "TEM_Mag", "<u4"),  # microscope magnification (meaning unclear)
    (24, "mode", "TEM_Mag_mode", "<u4"),  # 1 imaging, 2 diffraction
    (28, "stagex", "TEM_Stage_x", "<f4"),  # stage x, nm
    (32, "stagey", "TEM_Stage_y", "<f4"),  # stage y, nm
    (36, "stagez", "TEM_Stage_z", "<f4"),  # stage z, nm
    (40, "stagea", "TEM_Stage_alpha", "<f4"),  # alpha tilt, degrees
    (44, "stageb", "TEM_Stage_beta", "<f4"),  # beta tilt, degrees
    # EM-Konos scan-point index: 1-based, 0 before the scan, drops back after.
    (48, "rotidx", "Index_of_rotator", "<u4"),
    (52, "temperature", "DENS_T_measure", "<f4"),  # in-situ holder temperature
    # The two readers disagree: RosettaSciIO maps this to the objective
    # (defocus), LiberTEM to the holder's temperature set point.
    (56, "objective", "DENS_T_setpoint", "<f4"),
    (60, "DENS_Power", None, "<f4"),  # in-situ holder power
    (64, "TEM_Obj_current", None, "<f4"),  # objective lens current
    (68, "Scan_x", None, "<f4"),  # EM-Scan beam position x, scan points
    (72, "Scan_y", None, "<f4"),  # EM-Scan beam position y, scan points
    (76, "DENS_Bias_U_setpoint", None, "<f4"),  # biasing holder, 76..104
    (80, "DENS_Bias_U_value", None, "<f4"),
    (84, "DENS_Bias_I_setpoint", None, "<f4"),
    (88, "DENS_Bias_I_value", None, "<f4"),
    (92, "DENS_Bias_E_setpoint", None, "<f4"),
    (96, "DENS_Bias_R", None, "<f4"),
    (100, "DENS_Bias_limit_U", None, "<f4"),
    (104, "DENS_Bias_limit_I", None, "<f4"),
)
#: Largest coordinate taken as a beam position (``Scan_x``, ``Scan_y``, in scan
#: points); anything larger is garbage, not a scan.
MAX_POSITION = 2**20
#: Size of the longest frame header whose every byte is known (LiberTEM's).
FULL_FRAME_HEADER_SIZE = 108
#: Smallest frame header that holds the EM-Scan beam positions ``Scan_x`` and
#: ``Scan_y`` (the field at 72 is the last one it holds).
POSITIONS_FRAME_HEADER_SIZE = 76
#: Name of the field that keeps the frame-header bytes past the known fields.
EXTRA_FIELD = "extra"


# cached: every block of frames read asks for it (a dtype is immutable)
@functools.lru_cache(maxsize=256)
def frame_header_dtype(nbytes: int) -> np.dtype:
    """Return the structured dtype of a frame header of ``nbytes`` bytes.

    Parameters
    ----------
    nbytes : int
        Frame-header size declared by the file (12 for version 1).

    Returns
    -------
    numpy.dtype
        Little-endian structured dtype of exactly ``nbytes`` bytes: every
        known field that fits whole, then ``extra`` (``uint8`` array) with the
        remaining bytes, if any.
    """
    fields = []
    end = 0
    for offset, name, alias, typ in FRAME_HEADER_FIELDS:
        if offset + np.dtype(typ).itemsize > nbytes:
            break
        fields.append(((alias, name), typ) if alias else (name, typ))
        end = offset + np.dtype(typ).itemsize
    if nbytes > end:
        fields.append((EXTRA_FIELD, "u1", (nbytes - end,)))
    dtype = np.dtype(fields)
    assert dtype.itemsize == nbytes
    return dtype


def frame_header_size_fits(nbytes: int) -> bool:
    """Return whether a version 2 file may declare frame headers of ``nbytes``.

    The one rule of frame-header sizes: the reader refuses a main header
    that breaks it, and the writer refuses to write one.

    Parameters
    ----------
    nbytes : int
        The frame-header size (``frameheaderbytes``) of a version 2 main
        header; version 1 ignores the field.

    Returns
    -------
    bool
        Whether ``nbytes`` is from :data:`V2_MIN_FRAME_HEADER_SIZE` to
        :data:`V2_MAX_FRAME_HEADER_SIZE`.
    """
    return V2_MIN_FRAME_HEADER_SIZE <= nbytes <= V2_MAX_FRAME_HEADER_SIZE


@functools.lru_cache(maxsize=256)
def decoded_header_dtype(nbytes: int) -> np.dtype:
    """Return the dtype of the decoded fields of a frame header of ``nbytes``.

    :func:`frame_header_dtype` without ``extra``: the known fields that fit,
    at most :data:`FULL_FRAME_HEADER_SIZE` bytes whatever ``nbytes`` is.
    Passes over every frame header read this much of each, so that their
    memory does not grow with the declared header size (up to
    :data:`V2_MAX_FRAME_HEADER_SIZE`).
    """
    full = frame_header_dtype(min(nbytes, FULL_FRAME_HEADER_SIZE))
    known = [n for n in full.names if n != EXTRA_FIELD]
    ends = (full.fields[n][1] + full.fields[n][0].itemsize for n in known)
    end = max(ends, default=0)
    return frame_header_dtype(end)


def record_dtype(frame_header_bytes: int, pixel_dtype, shape) -> np.dtype:
    """Return the dtype of one frame record: frame header then pixels.

    Parameters
    ----------
    frame_header_bytes : int
        Size of the frame header in bytes.
    pixel_dtype : numpy.dtype
        Pixel type.
    shape : tuple of int
        ``(dimy, dimx)``.

    Returns
    -------
    numpy.dtype
        Packed structured dtype with fields ``header`` and ``data``.
    """
    return np.dtype(
        [
            ("header", frame_header_dtype(frame_header_bytes)),
            ("data", np.dtype(pixel_dtype).newbyteorder("<"), tuple(shape)),
        ]
    )


def frame_header_size(version: int, declared: int) -> int:
    """Return the frame-header size of a file of this version.

    Parameters
    ----------
    version : int
        Main header version.
    declared : int
        The main header's ``frameheaderbytes``.

    Returns
    -------
    int
        12 for version 1 (which ignores ``declared``); ``declared`` otherwise.
    """
    return V1_FRAME_HEADER_SIZE if version == 1 else int(declared)


#: Milliseconds in a second: a frame's time is ``timestamp`` s + ``ms`` ms.
MS_PER_S = 1000


def frame_times_ms(headers) -> np.ndarray:
    """Return the unix time of frames in whole milliseconds (exact, int64).

    Parameters
    ----------
    headers : numpy.ndarray or numpy.void
        Frame headers (any layout: every one has ``timestamp`` and ``ms``).

    Returns
    -------
    numpy.ndarray of int64
        ``timestamp * 1000 + ms``, of the shape of ``headers``. Integer
        arithmetic: unix seconds as float64 would lose the last digits.
    """
    seconds = np.asarray(headers["timestamp"], dtype=np.int64)
    return seconds * MS_PER_S + np.asarray(headers["ms"], dtype=np.int64)


def split_times_ms(times_ms) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(timestamp, ms)`` of unix times in ms: the inverse of frame_times_ms."""
    t = np.asarray(times_ms, dtype=np.int64)
    return t // MS_PER_S, t % MS_PER_S


def float_field(headers, name: str) -> np.ndarray:
    """Return a float32 frame-header field widened to float64.

    Any four bytes can be a signalling NaN; widening one raises numpy's
    "invalid value" warning. Here it quietly becomes NaN, which every check
    treats as a value that is not usable.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(headers[name], dtype=np.float64)


def field_offset(name: str) -> int:
    """Return the byte offset of a main-header or frame-header field.

    Main-header fields are at their offset in ``NAME_000.tvips``; frame-header
    fields at their offset in a frame record.
    """
    if name in MAIN_HEADER_DTYPE.names:
        return MAIN_HEADER_DTYPE.fields[name][1]
    for offset, field, alias, _type in FRAME_HEADER_FIELDS:
        if name in (field, alias):
            return offset
    raise KeyError(name)


def part_name(stem: str, number: int, ext: str = "tvips") -> str:
    """Return the file name of part ``number`` of the recording ``stem``."""
    return f"{stem}_{number:0{PART_DIGITS}d}.{ext}"


def recording_stem(name: str) -> tuple[str, str]:
    """Return the stem and the extension of the recording a file name means.

    The one rule of naming, which the reader and the writer both follow
    (as RosettaSciIO's writer does): a part ``x_003.tvips`` belongs to the
    recording ``x``; a name without the ``_NNN`` suffix gets ``_000``
    added, so ``x.tvips`` (the extension in any case) means the recording
    ``x``, and any other name, ``x`` or ``x.dat``, the recording of that
    whole name with the extension ``tvips``. The parts are then
    ``part_name(stem, k, ext)``.

    Parameters
    ----------
    name : str
        A file name, without its folder.

    Returns
    -------
    stem : str
        The name the part numbers are appended to.
    ext : str
        The extension of the parts, without the dot, in the case ``name``
        spells it.

    Examples
    --------
    >>> recording_stem("x_003.TVIPS")
    ('x', 'TVIPS')
    >>> recording_stem("x.tvips"), recording_stem("x.dat")
    (('x', 'tvips'), ('x.dat', 'tvips'))
    """
    match = PART_RE.match(name)
    if match:
        return match["stem"], match["ext"]
    # PurePath, not a split at the last dot: ".tvips" alone is a hidden
    # name, not an extension
    path = PurePath(name)
    if path.suffix.lower() == ".tvips":
        return path.stem, path.suffix[1:]
    return name, "tvips"


# Sizes are facts of the format: fail at import if an edit breaks them.
assert MAIN_HEADER_DTYPE.itemsize == MAIN_HEADER_SIZE
assert frame_header_dtype(FULL_FRAME_HEADER_SIZE).names[-1] == "DENS_Bias_limit_I"
assert frame_header_dtype(POSITIONS_FRAME_HEADER_SIZE).names[-1] == "Scan_y"
