"""The files of other libraries' formats, and what each file says it holds.

:func:`~.convert.to_format` hands the lazy signal to one function per
writer: :func:`write_hyperspy` (``.hspy``, ``.zspy``, ``.blo``),
:func:`write_tiff`, :func:`write_mrc` and :func:`write_npy`. Each streams
the data chunk by chunk, counts the frames into the job's progress bar and
returns what it wrote: the shape and pixel type in the file (a scan goes
into TIFF and MRC as a stack of frames, into ``.blo`` as 8 bits), and notes
on what else the file holds or does not:

1. the pixel size, where the format has a field for it (TIFF resolution,
   MRC voxel size) and the frames are calibrated in a length; an inverse
   length (a diffraction pattern) is not stored, and the note says so;
2. for ``.blo``, the intensity range mapped onto 0..255, and the scan step
   and pixel of uncalibrated axes written as 1 (not as pint's reading of
   "px", 1/96 inch).
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings

import numpy as np

from .._format.layout import MODE_DIFFRACTION
from .._metadata.units import is_pixel_unit, length_in, unit_kind

#: The frames' pixel sizes a ``.blo`` holds, in cm: its ``SDP``, a uint16,
#: is 100 / the pixel size.
BLO_PIXEL_CM = (100 / 65535, 100.0)


def check_blo(data) -> None:
    """Refuse what a ``.blo`` cannot hold, before a pass over the data."""
    if data.ndim != 4:
        raise ValueError(".blo files hold 2-D scans of 2-D frames: give scan_shape")
    if data.shape[-1] != data.shape[-2]:
        rows, cols = data.shape[-2:]
        msg = f".blo files hold square frames, these are {rows} x {cols}: crop them"
        raise ValueError(msg)


def _uncalibrated(axis: dict) -> bool:
    """Whether an axis counts in pixels or scan points: no unit, or a pixel's."""
    return is_pixel_unit(axis.get("units"))


def _length(axis: dict, target: str) -> float | None:
    """Return an axis's step in the length unit ``target``, or None if not a length."""
    if _uncalibrated(axis):
        return None
    return length_in(axis.get("scale", 1.0), axis.get("units"), target)


def _numbers(values, unit: str) -> str:
    """Return ``"5 Å"``, or ``"5 by 2.5 Å"`` (x, y) when they differ.

    Large numbers are written out (``5000000``, not ``5e+06``).
    """
    shown = [f"{v:.0f}" if abs(v) >= 1e4 else f"{v:g}" for v in values]
    return f"{' by '.join(dict.fromkeys(shown))} {unit}"


def _pixel_size(axes, field: str, target: str):
    """Return the frames' pixel size in ``target`` as [x, y] (or None), and a note.

    ``field`` names where the file stores a pixel size, for the note.
    """
    y, x = axes[-2:]  # the signal axes come last, rows then columns
    steps = [_length(x, target), _length(y, target)]
    if None not in steps:
        shown = f"{x.get('scale', 1.0):g} {x['units']}"
        if (y.get("scale", 1.0), y["units"]) != (x.get("scale", 1.0), x["units"]):
            shown += f" (x) by {y.get('scale', 1.0):g} {y['units']} (y)"
        return steps, f"pixel size {shown} stored as the {field}"
    if _uncalibrated(x) and _uncalibrated(y):
        return None, "no pixel size stored: the frame axes are not calibrated"
    odd = [a for a in (x, y) if not _uncalibrated(a) and _length(a, target) is None]
    if not odd:
        return None, "no pixel size stored: only one frame axis is calibrated"
    units = odd[0]["units"]
    kind = "an inverse length" if unit_kind(units) == MODE_DIFFRACTION else "no length"
    shown = f"{odd[0].get('scale', 1.0):g} {units}"
    return None, f"pixel size {shown} not stored: {kind}, and the {field} is a length"


def _stack_description(data, stack, dtype, note: str = "") -> str:
    """Say in words what a stack of frames written from ``data`` is."""
    n, rows, cols = stack.shape
    text = f"a stack of {n} frame{'s' if n != 1 else ''} of {rows} x {cols} {dtype}"
    nav = data.shape[:-2]
    extra = []
    if len(nav) == 2:
        extra.append(f"the {nav[0]} x {nav[1]} scan flattened, row by row")
    elif len(nav) > 2:
        shape = " x ".join(map(str, nav))
        extra.append(f"the {shape} scan flattened, the last axis fastest")
    if note:
        extra.append(note)
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _blo_scaling(data, intensity_scaling, bar):
    """Compute what the ``.blo`` writer needs in one pass: the range and navigator.

    Returns the ``intensity_scaling`` to pass on (the range found, so that
    what is reported is what is written), the navigator and the words that
    describe the mapping.
    """
    import dask

    n = math.prod(data.shape[:-2])
    wanted = [data.mean(axis=(-2, -1))]
    if intensity_scaling == "minmax":
        wanted += [data.min(), data.max()]
    with bar.dask(n) if bar is not None else contextlib.nullcontext():
        navigator, *extremes = dask.compute(*wanted)
    if intensity_scaling is None:
        words = "intensities not mapped (cast to uint8: above 255 wraps)"
        return None, navigator, words
    if intensity_scaling == "minmax":
        low, high = (v.item() for v in extremes)
    elif intensity_scaling == "dtype" and data.dtype.kind in "iu":
        low, high = np.iinfo(data.dtype).min, np.iinfo(data.dtype).max
    elif intensity_scaling == "crop":
        low, high = 0, 255
    elif isinstance(intensity_scaling, (tuple, list)) and len(intensity_scaling) == 2:
        low, high = intensity_scaling
    else:  # RosettaSciIO's (and scikit-image's) to check and to apply
        words = f"intensities mapped {intensity_scaling!r} -> 0..255"
        return intensity_scaling, navigator, words
    name = intensity_scaling if isinstance(intensity_scaling, str) else ""
    words = f"intensities mapped {name} {low:g}..{high:g} -> 0..255".replace("  ", " ")
    return (low, high), navigator, words


def write_hyperspy(d, out, ext, overwrite, bar, intensity_scaling):
    """Write ``.hspy``, ``.zspy`` or ``.blo`` with HyperSpy (RosettaSciIO).

    Parameters
    ----------
    d : dict
        The lazy signal dictionary.
    out : pathlib.Path
        The file.
    ext : str
        Its extension, lower case.
    overwrite : bool
        Replace ``out``.
    bar : Progress or None
        Counts the frames of each pass (``.blo``: two).
    intensity_scaling
        For ``.blo``: RosettaSciIO's ``intensity_scaling``.

    Returns
    -------
    tuple
        Shape and dtype written, the files, the description (None: the
        shape and dtype say it) and the notes.
    """
    from hyperspy.io import dict2signal

    data = d["data"]
    kw, notes, description = {}, [], None
    if ext == ".blo":
        axes, notes = _blo_axes(d["axes"])
        d = dict(d, axes=axes)
        scaling, kw["navigator"], words = _blo_scaling(data, intensity_scaling, bar)
        kw["intensity_scaling"] = scaling
        description = f"{' x '.join(map(str, data.shape))} uint8, {words}"
    s = dict2signal(d, lazy=True)
    n = math.prod(data.shape[:-2])
    with warnings.catch_warnings():
        # about the writers' own internals (zarr, hyperspy), not the data
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        if ext == ".blo" and notes:
            # RosettaSciIO's warning that it stores a unit it cannot convert
            # as the number it is: the notes printed say that, and what
            warnings.filterwarnings(
                "ignore", message="BLO file expects cm units", category=UserWarning
            )
        # one bar for the job: this module's, counting HyperSpy's pass
        with bar.dask(n) if bar is not None else contextlib.nullcontext():
            s.save(out, overwrite=overwrite, show_progressbar=False, **kw)
    dtype = np.uint8 if ext == ".blo" else data.dtype
    return data.shape, dtype, [out], description, notes


def _blo_axes(axes) -> tuple[list, list[str]]:
    """Return the axes to write into a ``.blo``, and notes on what they hold.

    A ``.blo`` holds the scan step in nm and the frames' pixel as ``SDP``,
    100 / (pixel in cm), a uint16; RosettaSciIO converts the axes' units
    with pint, which reads "px" as 1/96 inch: an uncalibrated scan would
    claim a step of 0.26 mm. An axis in pixels or scan points is written as
    a step of 1 instead, which is what it is, and so is a pixel that
    ``SDP`` cannot hold (any of a real-space image, nm in size). A pixel in
    another unit (an inverse length) RosettaSciIO writes as the number it
    is, with a warning; the note says what is read back.
    """
    axes = copy.deepcopy(axes)
    nav = [a for a in axes if a["navigate"]]
    sig = [a for a in axes if not a["navigate"]]
    notes = []
    if all(_uncalibrated(a) for a in nav):
        notes.append("scan step not calibrated: stored as 1 (read back as 1 nm)")
    calibrated = [a for a in sig if not _uncalibrated(a)]
    if not calibrated:
        notes.append("frame pixels not calibrated: stored as 1 (read back as 1 cm)")
    else:
        axis = calibrated[-1]
        shown = f"{axis.get('scale', 1.0):g} {axis['units']}"
        cm = _length(axis, "cm")
        number = axis.get("scale", 1.0) if cm is None else cm
        low, high = BLO_PIXEL_CM
        if low <= number <= high:
            back = 100 / round(100 / number)  # SDP is a whole number
            as_is = (
                "" if cm is not None else ", the number as it is: a .blo holds a length"
            )
            notes.append(f"pixel size {shown} stored as {back:.4g} cm{as_is}")
        else:
            notes.append(
                f"pixel size {shown} does not fit the .blo field (100 / SDP cm, "
                "SDP a uint16): stored as 1 (read back as 1 cm)"
            )
            for a in sig:
                a["units"] = None  # written as a step of 1, below
    for a in axes:
        if _uncalibrated(a):
            a.update(scale=1.0, offset=0.0, units="nm" if a["navigate"] else "cm")
    return axes, notes


def _frames_of(data):
    """Return the data as a stack of frames: an (n, y, x) dask array."""
    return (
        data.reshape((-1, *data.shape[-2:]), limit="128MiB") if data.ndim != 3 else data
    )


def _rows(data, bar):
    """Blocks of whole trailing axes, in C order: each is one piece of the file."""
    whole = data.rechunk({axis: -1 for axis in range(1, data.ndim)})
    for block in whole.blocks:
        yield np.ascontiguousarray(block.compute())
        if bar is not None:  # counted once written
            bar.update(math.prod(block.shape[:-2]))


def write_npy(data, out, bar):
    """Write the dask array ``data`` as it is into ``.npy``, a block at a time.

    Returns the shape and dtype written and the files (see
    :func:`write_hyperspy`); ``bar`` counts the frames written.
    """
    from numpy.lib import format as npy

    header = {"descr": npy.dtype_to_descr(data.dtype), "fortran_order": False,
              "shape": tuple(data.shape)}  # fmt: skip
    with open(out, "wb") as f:
        npy.write_array_header_2_0(f, header)
        for block in _rows(data, bar):
            f.write(memoryview(block).cast("B"))
    return data.shape, data.dtype, [out]


def write_tiff(d, out, bar):
    """Write the frames as a TIFF stack, one page a frame, with the pixel size.

    Returns what :func:`write_hyperspy` returns; ``bar`` counts the frames
    written.
    """
    import tifffile

    data = d["data"]
    stack = _frames_of(data)

    def pages():
        # one dask chunk in memory at a time
        for block in stack.blocks:
            frames = block.compute()
            yield from frames
            if bar is not None:
                bar.update(len(frames))

    kw = {}
    steps, note = _pixel_size(d["axes"], "TIFF resolution", "cm")
    if steps is not None:
        per_cm = [1 / step for step in steps]
        # a resolution is a fraction of two uint32s, in pixels per cm
        if all(1 / 2**32 <= v <= 2**32 - 1 for v in per_cm):
            kw = {"resolution": tuple(per_cm), "resolutionunit": "CENTIMETER"}
            note += f" ({_numbers(per_cm, 'pixels per cm')})"
        else:
            shown = _numbers(per_cm, "pixels per cm")
            note = f"no pixel size stored: {shown} does not fit the TIFF resolution"
    big = stack.nbytes > 2**31
    tifffile.imwrite(out, pages(), shape=stack.shape, dtype=stack.dtype, bigtiff=big,
                     photometric="minisblack", **kw)  # fmt: skip
    description = _stack_description(data, stack, stack.dtype.name)
    return stack.shape, stack.dtype, [out], description, [note]


def write_mrc(d, out, bar):
    """Write the frames as an MRC image stack, with the voxel size in Å.

    Returns what :func:`write_hyperspy` returns; ``bar`` counts the frames
    written.
    """
    import dask.array as da
    import mrcfile

    data = d["data"]
    stack = _frames_of(data)
    if stack.dtype in (np.uint8, np.uint16):
        dtype, mode = np.uint16, 6
    elif stack.dtype == np.int16:
        dtype, mode = np.int16, 1
    else:  # MRC has no wider integers: 32-bit floats (exact below 2**24)
        dtype, mode = np.float32, 2
    dtype = np.dtype(dtype)
    widened = ""
    if dtype != stack.dtype:
        why = {6: "MRC has no unsigned 8-bit mode",
               2: "MRC has no wider integers; exact up to 2**24"}[mode]  # fmt: skip
        widened = f"{stack.dtype.name} pixels written as {dtype.name}: {why}"
    steps, note = _pixel_size(d["axes"], "MRC voxel size", "angstrom")
    if steps is not None:
        note += f" ({_numbers(steps, 'Å')})"
    with mrcfile.new_mmap(out, shape=stack.shape, mrc_mode=mode, overwrite=True) as mrc:
        # frames, not the sections of a volume: an image stack (ispg 0),
        # whose voxel size along z means nothing and stays 0
        mrc.set_image_stack()
        if steps is not None:
            mrc.voxel_size = (*steps, 0.0)
        with bar.dask(len(stack)) if bar is not None else contextlib.nullcontext():
            da.store(stack.astype(dtype), mrc.data, lock=False)
        # the statistics would need another pass over the data: say so
        mrc.reset_header_stats()
    description = _stack_description(data, stack, dtype.name, widened)
    return stack.shape, dtype, [out], description, [note]
