"""RosettaSciIO's reader entry point, ``file_reader`` (the writer: _writing).

``file_reader`` only checks its arguments and wires the layers together:
:class:`TvipsRecording` opens the files, :mod:`._scans.plan` places the frames,
:mod:`._metadata.decode` describes them.
"""

from __future__ import annotations

import itertools
import os

from ._checks import frame_stream
from ._docstrings import FILENAME_DOC, LAZY_DOC, RETURNS_DOC
from ._metadata import decode as _metadata
from ._reading.grid import consecutive, first_placed
from ._reading.lazy import auto_chunks, default_chunks, frame_headers_to_dask
from ._reading.recording import TvipsRecording
from ._scans.plan import plan_scan, stack_options


def file_reader(
    filename: str | os.PathLike,
    lazy: bool = False,
    scan_shape=None,
    scan_start_frame: int = 0,
    winding_scan_axis=None,
    hysteresis=0,
    rechunking="auto",
    *,
    scan_method=None,
    scan_index: int = 0,
    hysteresis_wrap: bool = False,
    repeated_points: str = "first",
    missing_points: str = "blank",
    incomplete_scan: str = "pad",
    diagnostics=None,
    frame_headers=None,
    permissive: bool = False,
    signed: bool = False,
    io: str = "pread",
) -> list[dict]:
    """Read a TVIPS recording (``.tvips``): a stack of frames or a scan.

    Parameters
    ----------
    %s
    %s
    scan_shape : tuple of int or "auto", optional
        By default (None) the frames are a stack with one navigation axis,
        time. A tuple is the shape of a scan, slowest axis first: ``(ny,
        nx)``, ``(n,)`` for a line scan, or more leading axes; frames are
        placed in order from ``scan_start_frame`` (unless ``scan_method``
        says otherwise). ``"auto"`` finds the scan and its shape in the frame
        headers: from the beam positions ``Scan_x``/``Scan_y`` (EM-Scan) when
        they show a scan, else from the rotator index ``rotidx`` (EM-Konos;
        its scan must be square, or give the shape with
        ``scan_method="rotator"``).
    scan_start_frame : int, default 0
        Frame at the first scan point of a sequential scan. The frames before
        it are skipped; a negative value puts that many blank points first.
        With the header-based methods, frames before it are not searched.
    winding_scan_axis : {None, "x", "y"}
        Snake scans: rows 0, 2, 4, ... run backwards along x (``"x"``), or
        columns 0, 2, 4, ... along y (``"y"``), as in RosettaSciIO and the
        TVIPS recorder script.
    hysteresis : int or "auto", default 0
        Snake scans: shift of the reversed rows, in scan points (2 to 5 are
        typical). Points the shift vacates are blank and counted; frames
        shifted past the edge are not shown (see ``hysteresis_wrap``).
        ``"auto"`` estimates it from the data (reads every frame once) and
        records the value in ``original_metadata.Scan.hysteresis``.
    rechunking : {"auto", True, False} or chunks, default "auto"
        Chunks of the lazy array. ``"auto"`` and True: about 100 MiB of whole
        frames, the last navigation axes kept whole first, signal axes never
        split (with ``io="mmap"``, a stack or a scan in frame order is also
        cut where a part starts, so that a chunk's frames lie in one part).
        A size such as ``"200MiB"``: the same with chunks of about
        that size. False: for a stack, one chunk per file (a frame that
        straddles two files goes with the first); for a scan, chunks as large
        as the largest file. A tuple or a dict by axis is passed to dask as
        ``chunks`` as it is (it may split the signal axes). Ignored when
        ``lazy`` is False.
    scan_method : {None, "sequential", "rotator", "positions"}
        How frames are placed; None: ``"sequential"`` for a tuple
        ``scan_shape``, detection for ``"auto"``. ``"rotator"`` with a tuple
        places frames by ``rotidx`` on a scan of that shape (non-square
        EM-Konos scans).
    scan_index : int, default 0
        Which scan, when the headers show several (0: the first, -1: the
        last); the number found is in ``original_metadata.Scan.scans_found``.
    hysteresis_wrap : bool, default False
        Roll the frames shifted past the edge round to the other edge, as
        RosettaSciIO does, to reproduce its results.
    repeated_points : {"first", "last"}, default "first"
        Header-based placement: which of several frames with the same point
        index the point shows. The others are counted as ``repeated_frames``.
    missing_points : {"blank", "previous"}, default "blank"
        Header-based placement: what a point no frame has shows: a blank
        frame, or the frame of the nearest earlier point. Counted either way.
    incomplete_scan : {"pad", "error"}, default "pad"
        When the recording ends before the scan does: pad the missing points
        with blank frames and warn, or raise :class:`TvipsFormatError`.
    diagnostics : bool, optional
        Check the frame counter and the frame times (reads every frame
        header, no pixels) into ``original_metadata.Diagnostics``. By default
        done when the headers are read anyway (header-based placement).
    frame_headers : bool, optional
        Put every frame header, field by field in the order of the
        navigation points, into ``original_metadata.frame_headers``, so that
        :func:`file_writer` can write them back exactly. Done by default
        (False leaves them out). With ``lazy=False`` they are read in the
        same pass as the pixels; with ``lazy=True`` they are dask arrays
        that read only the frame headers when computed, so opening stays
        instant and a lazy ``s.save`` writes the same files as an eager one.
    permissive : bool, default False
        Read what can be read instead of raising where the part chain is
        broken: a missing part ends the recording (the parts before it are
        read), and of two files that claim one part number the one spelled
        like ``filename`` is read. Each problem gives a ``TvipsFormatWarning``.
        Defects that leave no frame to read (a bad main header, a missing
        first part) still raise.
    signed : bool, default False
        Read 16-bit pixels as signed integers (int16) instead of uint16: the
        same bytes, read another way, lazily or not. MicroED recordings of
        gain- and dark-corrected frames hold negative values so. Nothing in
        a file says which is meant, so this is never guessed; other pixel
        depths refuse it.
    io : {"pread", "mmap"}, default "pread"
        How a lazy read gets its pixels. ``"pread"`` copies each chunk out of
        the page cache into a buffer, and raises a :class:`TvipsFormatError`
        naming the part if a file is cut short under it. ``"mmap"`` (opt in)
        hands numpy read-only views of a memory map of the part where the
        chunk's frames allow (a stack, a scan read in order), which a
        reduction reads without a copy; but a part truncated while it is
        mapped kills the process with SIGBUS. Ignored when ``lazy`` is
        False.

    Returns
    -------
    %s

    Raises
    ------
    TvipsFormatError
        If the files do not form a valid recording (the message names the
        file, the offset, what was expected and what was found), or the scan
        is incomplete and ``incomplete_scan="error"``; see ``permissive``.
    FileNotFoundError
        If ``filename`` does not exist.
    ValueError
        For options that do not fit the recording or each other (``signed``
        for pixels that are not 16 bits deep).

    Warns
    -----
    TvipsFormatWarning
        If the last frame record is incomplete (its bytes are ignored), if a
        part looks cut short in the middle of the recording, if the
        recording ends before the scan does (the missing points are blank),
        or, with ``permissive=True``, for each problem worked around.

    Notes
    -----
    Where frames are placed, what was skipped, padded, repeated or dropped,
    is in ``original_metadata.Scan``. Differences from ``rsciio.tvips`` are
    listed in the documentation ("Differences from rsciio.tvips").

    Examples
    --------
    >>> from rsciio_tvips import file_reader
    >>> d = file_reader("s_000.tvips", lazy=True, scan_shape=(64, 64))  # doctest: +SKIP
    >>> d[0]["data"].shape  # doctest: +SKIP
    (64, 64, 256, 256)
    """
    rec = TvipsRecording(filename, permissive=permissive, signed=signed, io=io)
    first = rec.read_headers([0])[0]
    placed_by_headers = False
    if scan_shape is None:
        stack_options(rec, scan_start_frame, winding_scan_axis, hysteresis)
        table = consecutive(rec.n_frames)
        last = rec.read_headers([rec.n_frames - 1])[0]
        nav_axes = [_metadata.time_axis(rec.n_frames, first, last)]
        scan = None
    else:
        table, scan, placed_by_headers = plan_scan(
            rec, scan_shape, scan_start_frame, winding_scan_axis, hysteresis,
            scan_method=scan_method, scan_index=scan_index,
            hysteresis_wrap=hysteresis_wrap, repeated_points=repeated_points,
            missing_points=missing_points, incomplete_scan=incomplete_scan,
        )  # fmt: skip
        nav_axes = _metadata.scan_axes(table.shape)
    checks = None
    if diagnostics or (diagnostics is None and placed_by_headers):
        # one more pass over the headers, block by block, as validate makes
        checks = frame_stream(rec).summary()
    want_headers = frame_headers is None or bool(frame_headers)
    mode = first["mode"].item() if "mode" in first.dtype.names else None
    axes = nav_axes + _metadata.signal_axes(rec.header, mode)
    for index, axis in enumerate(axes):
        axis["index_in_array"] = index
    per_point = None
    if lazy:
        data = rec.to_dask(table, chunks=_chunks(rec, table, scan, rechunking))
        if want_headers:
            # whole headers, read when computed (by the writer, say), so
            # opening stays instant and no undecoded byte is lost
            per_point = _metadata.frame_header_fields(
                frame_headers_to_dask(rec.records, table)
            )
    elif want_headers:
        # the whole frame headers of the points come in the same pass as the
        # pixels (a placement by the headers read their decoded fields only)
        data, point_headers = rec.asarray(table, headers=True)
        per_point = _metadata.frame_header_fields(point_headers)
    else:
        data = rec.asarray(table)
    shown = rec.read_headers([_first_point(table)])[0]
    return [
        {
            "data": data,
            "axes": axes,
            "metadata": _metadata.metadata(rec.chain.first.path, rec.header, shown),
            "original_metadata": _metadata.original_metadata(
                rec.chain,
                rec.header,
                first,
                rec.n_frames,
                rec.ignored_bytes,
                scan,
                checks,
                per_point,
            ),
            "mapping": {},
        }
    ]


file_reader.__doc__ %= (FILENAME_DOC, LAZY_DOC, RETURNS_DOC)


def _first_point(table) -> int:
    """Return the frame at the first point of the data (C order) that has one.

    ``General.date``/``time`` and the other per-frame metadata describe that
    frame, so that a re-saved ``scan_start_frame=2`` read keeps its time.
    """
    first = first_placed(table)
    return 0 if first is None else first


def _chunks(rec: TvipsRecording, table, scan, rechunking):
    """Translate ``rechunking`` into ``chunks`` for :meth:`TvipsRecording.to_dask`."""
    if rechunking is True or (isinstance(rechunking, str) and rechunking == "auto"):
        return None
    if isinstance(rechunking, str):
        # a chunk size: the default chunks, of that size
        from dask.utils import parse_bytes

        return default_chunks(rec.records, table, rec.io, parse_bytes(rechunking))
    if rechunking is not False:
        if not isinstance(rechunking, (tuple, list, dict)):
            msg = (
                "rechunking must be 'auto', True, False, a size such as '200MiB', "
                f"or chunks as a tuple or dict, got {rechunking!r}"
            )
            raise ValueError(msg)
        return rechunking
    if scan is not None:
        budget = max(p.length for p in rec.chain.parts)
        nav = auto_chunks(table.shape, rec.header.frame_nbytes, budget)
        return nav + rec.frame_shape
    # One chunk per file: the frames whose record starts in that file.
    edges = {0, table.size}
    edges.update(
        edge
        for edge in rec.chain.first_frames(rec.header.record_size)
        if 0 < edge < table.size
    )
    sizes = tuple(b - a for a, b in itertools.pairwise(sorted(edges)))
    return (sizes, *((n,) for n in rec.frame_shape))
