"""A small, realistic 4D-STEM recording for the demo, the README and benchmarks.

:func:`write_demo_recording` writes what a TVIPS camera leaves on disk: a
version 2 recording with 108-byte frame headers (counter, times, diffraction
mode, rotator index, beam positions), split over parts at a fixed size so
that frame records straddle files, with a few frames before and after the
scan. Each diffraction pattern is a bright disk whose position drifts with
the scan point, over a faint background.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .._api import file_reader
from .._format.layout import (
    FULL_FRAME_HEADER_SIZE,
    MAIN_HEADER_DTYPE,
    MODE_DIFFRACTION,
    MS_PER_S,
    PIXEL_DTYPES,
    part_name,
    record_dtype,
    split_times_ms,
)
from .._reading.recording import TvipsRecording

#: When the demo recording was "acquired" (unix time, UTC).
DEMO_START = 1_700_000_000
#: Frame interval of the demo recording, in ms.
DEMO_FRAME_MS = 10


def demo_frames(scan_shape, frame_shape, before: int, after: int) -> np.ndarray:
    """Return the demo's frames: patterns of a scan, with junk frames around.

    Parameters
    ----------
    scan_shape : tuple of int
        ``(ny, nx)`` of the scan.
    frame_shape : tuple of int
        ``(dimy, dimx)`` of a frame.
    before, after : int
        Frames recorded before the scan starts and after it ends.

    Returns
    -------
    numpy.ndarray of uint16
        ``(before + ny * nx + after, dimy, dimx)``.
    """
    ny, nx = scan_shape
    dimy, dimx = frame_shape
    yy, xx = np.mgrid[:dimy, :dimx]
    iy, ix = np.mgrid[:ny, :nx]
    # the disk drifts by up to 4 pixels across the scan
    cy = dimy / 2 + 4 * (iy / max(ny - 1, 1) - 0.5)
    cx = dimx / 2 + 4 * (ix / max(nx - 1, 1) - 0.5)
    radius = min(dimy, dimx) / 8
    r2 = (yy - cy.reshape(-1, 1, 1)) ** 2 + (xx - cx.reshape(-1, 1, 1)) ** 2
    scan = np.where(r2 < radius**2, 1000, 10).astype(np.uint16)
    # a weaker disk where the sample scatters: a ring of scan points
    ring = np.hypot(iy - ny / 2, ix - nx / 2).reshape(-1, 1, 1) < ny / 3
    scan -= np.where(ring & (r2 < radius**2), 400, 0).astype(np.uint16)
    junk = np.full((before + after, dimy, dimx), 10, np.uint16)
    return np.concatenate([junk[:before], scan, junk[before:]])


def write_demo_recording(
    directory: str | os.PathLike,
    name: str = "demo",
    scan_shape=(16, 16),
    frame_shape=(64, 64),
    before: int = 5,
    after: int = 3,
    part_size: int = 700_000,
) -> Path:
    """Write the demo recording and return the path of its first part.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder to write into (it must exist).
    name : str, optional
        Recording name: the parts are ``<name>_000.tvips`` ...
    scan_shape, frame_shape : tuple of int, optional
        Scan and frame shapes.
    before, after : int, optional
        Frames before and after the scan.
    part_size : int, optional
        Size cap of each part in bytes; records straddle parts.

    Returns
    -------
    pathlib.Path
    """
    frames = demo_frames(scan_shape, frame_shape, before, after)
    n = frames.shape[0]
    header_bytes = FULL_FRAME_HEADER_SIZE  # LiberTEM's layout, beam positions
    records = np.zeros(n, record_dtype(header_bytes, np.uint16, frame_shape))
    h = records["header"]
    t_ms = DEMO_START * MS_PER_S + DEMO_FRAME_MS * np.arange(n)
    point = np.arange(n) - before
    in_scan = (point >= 0) & (point < scan_shape[0] * scan_shape[1])
    h["num"] = np.arange(1, n + 1)
    h["timestamp"], h["ms"] = split_times_ms(t_ms)
    h["mode"] = MODE_DIFFRACTION
    h["rotidx"] = np.where(in_scan, point + 1, 0)
    h["Scan_x"] = np.where(in_scan, point % scan_shape[1], 0)
    h["Scan_y"] = np.where(in_scan, point // scan_shape[1], 0)
    records["data"] = frames
    main = np.zeros((), MAIN_HEADER_DTYPE)
    bpp = {v: k for k, v in PIXEL_DTYPES.items()}[np.dtype("<u2")]
    for field, value in {
        "size": MAIN_HEADER_DTYPE.itemsize,
        "version": 2,
        "dimx": frame_shape[1],
        "dimy": frame_shape[0],
        "bitsperpixel": bpp,
        "binx": 1,
        "biny": 1,
        "pixelsize": 1,
        "ht": 300,
        "magtotal": 120,
        "frameheaderbytes": header_bytes,
    }.items():
        main[field] = value
    main["dummy"] = np.frombuffer((b"TVIPS " * 40)[: main["dummy"].size], np.uint8)
    data = main.tobytes() + records.tobytes()
    directory = Path(directory)
    for k, start in enumerate(range(0, len(data), part_size)):
        path = directory / part_name(name, k)
        path.write_bytes(data[start : start + part_size])
    return directory / part_name(name, 0)


def demo_summary(folder: str | os.PathLike) -> list[str]:
    """Write the demo recording into ``folder``, read it back, describe it.

    Parameters
    ----------
    folder : str or os.PathLike
        Where to write the parts (made if needed).

    Returns
    -------
    list of str
        The lines ``tvips demo`` prints: the parts and their sizes, the
        recording, its frame headers, the lazy scan, a virtual bright-field
        image (three of its rows) and the metadata of the acquisition.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = write_demo_recording(folder)
    rec = TvipsRecording(first)
    lines = [f"Wrote {first.name} and its parts in {folder}:"]
    for part in rec.chain.parts:
        lines.append(f"  {part.name:16s} {part.file_offset + part.length:>9d} bytes")
    lines.append(repr(rec))
    h = rec.header_fields
    lines.append(
        f"frame header: {rec.header.frame_header_bytes} bytes; counter "
        f"{h['num'][0]}..{h['num'][-1]}; rotator index 0 for frames "
        f"{np.flatnonzero(h['rotidx'] == 0).tolist()}"
    )
    # the scan starts at the first frame the rotator numbers
    start = int(np.argmax(h["rotidx"] > 0))
    (d,) = file_reader(first, lazy=True, scan_shape=(16, 16), scan_start_frame=start)
    data = d["data"]
    lines.append(f"scan from frame {start}: {data.shape} {data.dtype}, lazy")
    vbf = data[:, :, 28:36, 28:36].mean(axis=(2, 3)).compute()
    lines.append(
        "virtual bright field (mean of the central 8x8 pixels), rows 0, 8, 15:"
    )
    for row in (0, 8, 15):
        lines.append("  " + " ".join(f"{v:4.0f}" for v in vbf[row]))
    meta = d["metadata"]
    # the time of the scan's first frame, to the millisecond the headers hold
    lines.append(
        f"acquired {meta['General']['date']} {meta['General']['time'][:12]} UTC, "
        f"{meta['Acquisition_instrument']['TEM']['beam_energy']:.0f} kV, "
        f"signal type {meta['Signal'].get('signal_type')}"
    )
    return lines


def run_demo(keep: str | os.PathLike | None = None, out=None) -> list[str]:
    """Print :func:`demo_summary` of a demo written into ``keep`` or a temporary folder.

    Parameters
    ----------
    keep : str or os.PathLike, optional
        Folder to write into and leave the recording in. By default a
        temporary folder, removed afterwards.
    out : file, optional
        Where to print (default: standard output).

    Returns
    -------
    list of str
        The lines printed.
    """
    out = out or sys.stdout
    with tempfile.TemporaryDirectory() as tmp:
        lines = demo_summary(keep if keep else tmp)
    for line in lines:
        print(line, file=out)
    return lines
