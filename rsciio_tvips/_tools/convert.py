"""Convert a recording to what analysis tools read: the ``tvips convert`` command.

The recording is opened lazily; a frame range, a crop of the frames and a
binning are applied to the dask array (nothing is read yet), and the result
streams chunk by chunk into a writer that a maintained library provides:

======================  ===================================================
extension               writer
======================  ===================================================
``.hspy``, ``.zspy``    HyperSpy (``s.save``), signal type and metadata kept
``.blo``                HyperSpy/RosettaSciIO blockfile (4D scans, 8 bits)
``.tif``, ``.tiff``     tifffile, one page per frame, BigTIFF when large
``.mrc``                mrcfile, a stack of frames (memory-mapped)
``.npy``                numpy (``open_memmap``), the array as it is
``.tvips``              this package's writer, split by ``max_file_size``
======================  ===================================================

Memory stays at a few chunks whatever the size of the recording: each
writer gets the data one dask chunk at a time (``rechunking`` sets their
size).

:func:`convert` only chooses between the two kinds of output:
:func:`to_tvips` (a new recording, frame headers kept, existing parts
checked by the writer's own naming) and :func:`to_format` (one file, by a
library's writer: :mod:`.formats`, which also says what each file holds).
Either shows one progress bar for the whole job
(:class:`~rsciio_tvips._progress.Progress`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from pathlib import Path

import numpy as np

from .._api import file_reader
from .._progress import Progress
from .._scans.ranges import parse_range
from .._writing import existing_parts, recording_names
from .formats import check_blo, write_hyperspy, write_mrc, write_npy, write_tiff

#: Extensions :func:`convert` writes, by writer.
FORMATS = {
    ".hspy": "hyperspy",
    ".zspy": "hyperspy",
    ".blo": "hyperspy",
    ".tif": "tifffile",
    ".tiff": "tifffile",
    ".mrc": "mrcfile",
    ".npy": "numpy",
    ".tvips": "tvips",
}


def convert(
    filename: str | os.PathLike,
    out: str | os.PathLike,
    *,
    frames: str | None = None,
    crop: str | None = None,
    binning: int = 1,
    max_file_size: int | None = None,
    intensity_scaling="minmax",
    overwrite: bool = False,
    progress: bool = False,
    **reader_kwargs,
) -> dict:
    """Convert a recording to another file format, streaming.

    Parameters
    ----------
    filename : str or os.PathLike
        Any part of the recording.
    out : str or os.PathLike
        The file to write; its extension chooses the format (see the module
        documentation).
    frames : str, optional
        ``"START:STOP"``: the frames to keep, for a stack (for a scan, give
        ``scan_start_frame`` and ``scan_shape``).
    crop : str, optional
        ``"Y0:Y1,X0:X1"``: the pixels of each frame to keep.
    binning : int, optional
        Sum blocks of ``binning`` x ``binning`` pixels (after cropping; the
        pixels that do not fill a block are dropped). The pixel type widens
        so that the sums cannot overflow.
    max_file_size : int, optional
        For ``.tvips``: the most bytes per part.
    intensity_scaling : optional
        For ``.blo`` (8 bits a pixel): RosettaSciIO's ``intensity_scaling``.
    overwrite : bool, optional
        Replace ``out`` (for ``.tvips``: the whole recording) if it exists.
    progress : bool, optional
        Show one progress bar for the whole conversion on stderr: frames
        done of the total, the rate and the time left (see
        :class:`~rsciio_tvips._progress.Progress`).
    **reader_kwargs
        Passed to :func:`rsciio_tvips.file_reader`.

    Returns
    -------
    dict
        ``format`` (the writer), ``shape`` and ``dtype`` as written (a scan
        written as a stack of frames has the stack's shape; ``.blo`` holds
        uint8), ``files``, ``description`` (what was written, in words:
        ``"a stack of 64 frames of 32 x 32 uint16 (the 8 x 8 scan
        flattened, row by row)"``) and ``notes`` (what else a reader of the
        file should know: the intensity mapping, the pixel size stored or
        why none is).

    Raises
    ------
    ValueError
        For an extension not written, options that do not fit the data, or
        a format that cannot hold them (``.blo`` needs a 2-D scan of square
        frames).
    FileExistsError
        If ``out`` exists and ``overwrite`` is False.

    Notes
    -----
    This only chooses: ``.tvips`` goes to :func:`to_tvips`, every other
    extension to :func:`to_format`.
    """
    out = Path(out)
    select = {"frames": frames, "crop": crop, "binning": binning}
    if _writer(out, FORMATS) == "tvips":
        return to_tvips(filename, out, max_file_size=max_file_size,
                        overwrite=overwrite, progress=progress, **select,
                        **reader_kwargs)  # fmt: skip
    return to_format(filename, out, intensity_scaling=intensity_scaling,
                     overwrite=overwrite, progress=progress, **select,
                     **reader_kwargs)  # fmt: skip


def to_tvips(
    filename: str | os.PathLike,
    out: str | os.PathLike,
    *,
    frames: str | None = None,
    crop: str | None = None,
    binning: int = 1,
    max_file_size: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **reader_kwargs,
) -> dict:
    """Write a recording (a selection of it) as a new ``.tvips`` recording.

    The per-frame headers (counter, times, rotator index ...) go along,
    unless ``frame_headers=False`` is passed to the reader.

    Parameters
    ----------
    filename, frames, crop, binning, progress, **reader_kwargs
        As for :func:`convert`.
    out : str or os.PathLike
        The recording to write (``x.tvips`` writes ``x_000.tvips`` ...).
    max_file_size : int, optional
        The most bytes per part.
    overwrite : bool, optional
        Replace every part of a recording of that name.

    Returns
    -------
    dict
        As for :func:`convert`; ``files`` lists every part written.

    Raises
    ------
    ValueError
        For options that do not fit the data.
    FileExistsError
        If a part of a recording named ``out`` exists and ``overwrite`` is
        False (checked before anything is read).
    """
    out = Path(out)
    directory, stem, _ = recording_names(out)
    taken = existing_parts(directory, stem)
    if taken and not overwrite:
        msg = (
            f"{directory / taken[0]}: a recording named {stem!r} exists: pass "
            "overwrite=True to replace it"
        )
        raise FileExistsError(msg)
    reader_kwargs.setdefault("frame_headers", True)
    d = _open(filename, frames, crop, binning, reader_kwargs)
    # the writer's own bar (show_progressbar) is the one bar of the job
    files = _write_tvips(d, out, max_file_size, overwrite, progress)
    data = d["data"]
    return _summary("tvips", data.shape, data.dtype, files)


def to_format(
    filename: str | os.PathLike,
    out: str | os.PathLike,
    *,
    frames: str | None = None,
    crop: str | None = None,
    binning: int = 1,
    intensity_scaling="minmax",
    overwrite: bool = False,
    progress: bool = False,
    **reader_kwargs,
) -> dict:
    """Write a recording (a selection of it) with a library's writer.

    HyperSpy for ``.hspy``, ``.zspy`` and ``.blo``, tifffile for ``.tif``,
    mrcfile for ``.mrc``, numpy for ``.npy`` (see the module
    documentation).

    Parameters
    ----------
    filename, frames, crop, binning, intensity_scaling, progress, **reader_kwargs
        As for :func:`convert`.
    out : str or os.PathLike
        The file to write; its extension chooses the writer.
    overwrite : bool, optional
        Replace ``out`` if it exists.

    Returns
    -------
    dict
        As for :func:`convert`.

    Raises
    ------
    ValueError
        For an extension not written here, options that do not fit the
        data, or a format that cannot hold them (``.blo`` needs a 2-D scan of square
        frames).
    FileExistsError
        If ``out`` exists and ``overwrite`` is False.
    """
    out = Path(out)
    ext = out.suffix.lower()
    others = {k: v for k, v in FORMATS.items() if v != "tvips"}
    writer = _writer(out, others)
    if out.exists() and not overwrite:
        msg = f"{out} exists: pass overwrite=True to replace it"
        raise FileExistsError(msg)
    # the frame headers are TVIPS's own: other formats have no place for
    # them but original_metadata, where HyperSpy would store each field
    reader_kwargs.setdefault("frame_headers", False)
    d = _open(filename, frames, crop, binning, reader_kwargs)
    if ext == ".blo":
        check_blo(d["data"])
    n = math.prod(d["data"].shape[:-2])
    # a .blo is two passes over the frames: the intensity range and the
    # navigator, then the frames written
    passes = 2 if ext == ".blo" else 1
    label = "convert" if passes == 1 else f"convert ({passes} passes)"
    with Progress(label, n * passes) if progress else contextlib.nullcontext() as bar:
        if writer == "hyperspy":
            written = write_hyperspy(d, out, ext, overwrite, bar, intensity_scaling)
        elif writer == "numpy":
            written = write_npy(d["data"], out, bar)
        elif writer == "tifffile":
            written = write_tiff(d, out, bar)
        else:
            written = write_mrc(d, out, bar)
    return _summary(writer, *written)


def _writer(out: Path, formats: dict) -> str:
    """Return the writer of ``out``'s extension among ``formats``, or refuse it."""
    ext = out.suffix.lower()
    if ext not in formats:
        known = ", ".join(sorted(formats))
        raise ValueError(
            f"cannot write {out.name!r}: the extension must be one of {known}"
        )
    return formats[ext]


def _open(filename, frames, crop, binning, reader_kwargs: dict) -> dict:
    """Read the recording lazily and apply the selection: nothing is read yet."""
    (d,) = file_reader(filename, lazy=True, **reader_kwargs)
    return _select(d, frames, crop, int(binning))


def _summary(writer: str, shape, dtype, files, description=None, notes=()) -> dict:
    """Return what :func:`convert` returns: what was written, and where."""
    dtype = np.dtype(dtype).name
    if description is None:
        description = f"{' x '.join(map(str, shape))} {dtype}"
    return {"format": writer, "shape": [int(n) for n in shape], "dtype": dtype,
            "files": [str(f) for f in files], "description": description,
            "notes": list(notes)}  # fmt: skip


def _select(d: dict, frames, crop, binning: int) -> dict:
    """Apply the frame range, the crop and the binning to a lazy signal dict."""
    d = dict(d, axes=copy.deepcopy(d["axes"]))
    data, axes = d["data"], d["axes"]
    nav = data.ndim - 2
    if frames is not None:
        if nav != 1:
            raise ValueError(
                "frames selects frames of a stack; for a scan give scan_start_frame "
                "and scan_shape"
            )
        sl = parse_range(frames, "frames")
        start, stop, _ = sl.indices(data.shape[0])
        if stop <= start:
            raise ValueError(f"frames {frames!r} selects no frame of {data.shape[0]}")
        data = data[start:stop]
        time = axes[0]
        time["offset"] = time.get("offset", 0.0) + start * time.get("scale", 1.0)
        axes[0]["size"] = stop - start
        om = d["original_metadata"]
        if "frame_headers" in om:  # one value per frame: keep those kept
            om = dict(om, frame_headers={
                k: v[start:stop] for k, v in om["frame_headers"].items()
            })  # fmt: skip
            d["original_metadata"] = om
    if crop is not None:
        rows, _, cols = crop.partition(",")
        box = [parse_range(rows, "crop rows"), parse_range(cols or ":", "crop columns")]
        for k, sl in enumerate(box):
            axis = axes[nav + k]
            size = data.shape[nav + k]
            # slices clip silently: a crop past the frame is a mistake
            for end in (sl.start, sl.stop):
                if end is not None and not -size <= end <= size:
                    what = ("rows", "columns")[k]
                    msg = f"crop {crop!r} goes past the frames: they have {size} {what}"
                    raise ValueError(msg)
            start, stop, _ = sl.indices(size)
            if stop <= start:
                raise ValueError(f"crop {crop!r} leaves no pixel of the frames")
            # an uncalibrated axis has no scale: it counts in pixels
            axis["offset"] = axis.get("offset", 0.0) + start * axis.get("scale", 1.0)
            axis["size"] = stop - start
            box[k] = slice(start, stop)
        data = data[(Ellipsis, box[0], box[1])]
    if binning != 1:
        data = _bin(data, binning, axes[nav:])
    d["data"] = data
    return d


def _bin(data, n: int, signal_axes):
    import dask.array as da

    if n < 1 or any(s < n for s in data.shape[-2:]):
        raise ValueError(f"binning {n} does not fit frames of {data.shape[-2:]} pixels")
    # The sum of n * n pixels needs log2(n * n) more bits than one pixel;
    # signed pixels (signed=True) keep their sign.
    size = data.dtype.itemsize
    width = {1: 4 if n * n > 256 else 2, 2: 4}.get(size, 8)
    wide = np.dtype(f"{'i' if data.dtype.kind == 'i' else 'u'}{width}")
    trimmed = data[..., : data.shape[-2] // n * n, : data.shape[-1] // n * n]
    binned = da.coarsen(
        np.sum, trimmed, {data.ndim - 2: n, data.ndim - 1: n}, dtype=wide
    )
    for axis in signal_axes:
        # the centre of a bin is the mean of the centres of its pixels (an
        # uncalibrated axis counts in pixels of the frame)
        scale = axis.get("scale", 1.0)
        axis["offset"] = axis.get("offset", 0.0) + (n - 1) / 2 * scale
        axis["scale"] = scale * n
        axis["size"] = axis["size"] // n
    return binned


def _write_tvips(d, out, max_file_size, overwrite, progress):
    from .._writing.writer import file_writer

    d = dict(d, attributes={"_lazy": True})
    file_writer(out, d, max_file_size=max_file_size, show_progressbar=progress,
                overwrite_recording=overwrite)  # fmt: skip
    directory, stem, _ = recording_names(out)  # the writer's own naming of the parts
    return [directory / name for name in existing_parts(directory, stem)]
