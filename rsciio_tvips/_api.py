"""RosettaSciIO's entry points: ``file_reader`` (and, later, ``file_writer``).

``file_reader`` only checks its arguments and wires the layers together:
:class:`TvipsRecording` opens the files, :mod:`._scan` places the frames,
:mod:`._metadata` describes them.
"""

from __future__ import annotations

import itertools
import os

from . import _metadata
from ._docstrings import FILENAME_DOC, LAZY_DOC, RETURNS_DOC
from ._reader import TvipsRecording, auto_chunks
from ._scan import sequential_layout


def file_reader(
    filename: str | os.PathLike,
    lazy: bool = False,
    scan_shape=None,
    scan_start_frame: int = 0,
    winding_scan_axis=None,
    hysteresis: int = 0,
    rechunking="auto",
) -> list[dict]:
    """Read a TVIPS recording (``.tvips``): a stack of frames or a scan.

    Parameters
    ----------
    %s
    %s
    scan_shape : tuple of int, optional
        Shape of the scan, slowest axis first: ``(ny, nx)``, ``(n,)`` for a
        line scan, or more leading axes. By default (None) the frames are a
        stack with one navigation axis, time.
    scan_start_frame : int, default 0
        Frame at the first scan point. The frames before it are skipped; a
        negative value puts that many blank points before the first frame.
        The number of frames skipped before and after the scan is recorded in
        ``original_metadata.Recording``.
    winding_scan_axis : {None, "x", "y"}
        Snake scans: not implemented yet (only None is accepted).
    hysteresis : int, default 0
        Snake scans: not implemented yet (only 0 is accepted).
    rechunking : {"auto", True, False} or chunks, default "auto"
        Chunks of the lazy array. ``"auto"`` and True: about 100 MiB of whole
        frames, the last navigation axes kept whole first, signal axes never
        split. False: one chunk per file of the recording for a stack (a frame
        that straddles two files goes with the first). Anything else is
        passed to :func:`dask.array.from_array` as ``chunks`` (a tuple, a dict
        by axis, a size such as ``"200MiB"``). Ignored when ``lazy`` is False.

    Returns
    -------
    %s

    Raises
    ------
    TvipsFormatError
        If the files do not form a valid recording (the message names the
        file, the offset, what was expected and what was found).
    FileNotFoundError
        If ``filename`` does not exist.
    ValueError
        If ``scan_shape`` is not a tuple of positive integers.
    NotImplementedError
        For ``scan_shape="auto"``, ``winding_scan_axis`` and ``hysteresis``.

    Warns
    -----
    TvipsFormatWarning
        If the last frame record is incomplete (its bytes are ignored), or if
        the recording ends before the scan does (the missing points are
        blank).

    Notes
    -----
    Differences from ``rsciio.tvips``, all deliberate:

    1. Any part may be opened, version 1 files are read, and a recording
       whose last file was cut short opens with its whole frames.
    2. ``lazy=True`` reads nothing at open time; the dask graph holds only
       paths and offsets, so it runs on distributed schedulers.
    3. Signal axes have offset 0 (the read-out offsets are not a
       calibration); the time axis starts at 0 s.
    4. Date and time are UTC, as the label says.

    Examples
    --------
    >>> from rsciio_tvips import file_reader
    >>> d = file_reader("s_000.tvips", lazy=True, scan_shape=(64, 64))  # doctest: +SKIP
    >>> d[0]["data"].shape  # doctest: +SKIP
    (64, 64, 256, 256)
    """
    if scan_shape is not None and isinstance(scan_shape, str):
        raise NotImplementedError(
            f"scan_shape={scan_shape!r} is not implemented yet: give the scan "
            "shape as a tuple of integers"
        )
    if winding_scan_axis is not None or hysteresis:
        raise NotImplementedError(
            "snake scans (winding_scan_axis, hysteresis) are not implemented yet"
        )
    rec = TvipsRecording(filename)
    first = rec.read_headers([0])[0]
    if scan_shape is None:
        layout = rec.layout()
        last = rec.read_headers([rec.n_frames - 1])[0]
        nav_axes = [_metadata.time_axis(rec.n_frames, first, last)]
        info = {}
    else:
        layout, info = sequential_layout(rec.n_frames, scan_shape, scan_start_frame)
        nav_axes = _metadata.scan_axes(layout.nav_shape)
    mode = first["mode"].item() if "mode" in first.dtype.names else None
    axes = nav_axes + _metadata.signal_axes(rec.header, mode)
    for index, axis in enumerate(axes):
        axis["index_in_array"] = index
    if lazy:
        data = rec.to_dask(layout, chunks=_chunks(rec, layout, rechunking))
    else:
        data = rec.asarray(layout)
    return [
        {
            "data": data,
            "axes": axes,
            "metadata": _metadata.metadata(rec.chain.first.path, rec.header, first),
            "original_metadata": _metadata.original_metadata(
                rec.chain, rec.header, first, rec.n_frames, rec.ignored_bytes, info
            ),
            "mapping": {},
        }
    ]


file_reader.__doc__ %= (FILENAME_DOC, LAZY_DOC, RETURNS_DOC)


def _chunks(rec: TvipsRecording, layout, rechunking):
    """Translate ``rechunking`` into ``chunks`` for :meth:`TvipsRecording.to_dask`."""
    if rechunking is True or (isinstance(rechunking, str) and rechunking == "auto"):
        return None
    if rechunking is not False:
        return rechunking
    frame = tuple((n,) for n in rec.frame_shape)
    if len(layout.nav_shape) > 1:
        budget = max(p.length for p in rec.chain.parts)
        nav = auto_chunks(layout.nav_shape, rec.header.frame_nbytes, budget)
        return nav + rec.frame_shape
    # One chunk per file: the frames whose record starts in that file.
    record = rec.header.record_size
    size = layout.nav_shape[0]
    edges = {0, size}
    for part in rec.chain.parts:
        edge = -(-part.stream_start // record) - layout.start
        if 0 < edge < size:
            edges.add(edge)
    edges = sorted(edges)
    return (tuple(b - a for a, b in itertools.pairwise(edges)), *frame)
