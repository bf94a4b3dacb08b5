"""A small, realistic 4D-STEM recording for the demo, the README and benchmarks.

:func:`write_demo_recording` writes what a TVIPS camera leaves on disk: a
version 2 recording with 108-byte frame headers (counter, times, diffraction
mode, rotator index, beam positions), split over parts at a fixed size so
that frame records straddle files, with a few frames before and after the
scan. The specimen is a wedge, thin at the left of the scan and thick at the
right, holding one crystal grain: each diffraction pattern is the
unscattered disk (weaker where the specimen is thick), diffuse scattering
around it (stronger where it is thick) and, over the grain, six Bragg disks.
So the virtual bright field and the annular dark field both show the wedge
and the grain. The whole pattern drifts with the scan point, as a descan
error makes it do, and carries shot noise drawn from a fixed seed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import dask
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
#: Seed of the demo's shot noise: the demo is the same on every run.
DEMO_SEED = 20231114
#: Counts per pixel of the unscattered disk where nothing scatters.
DEMO_DOSE = 1000.0
#: Counts per pixel the camera reads with the beam blanked (mean).
DARK_COUNTS = 2.0
#: Relative excitation of the grain's six Bragg disks (the crystal is a little
#: off its zone axis, so opposite pairs differ from their neighbours).
BRAGG_WEIGHTS = (1.0, 0.5, 0.8, 1.0, 0.5, 0.8)
#: Share of what the grain scatters that goes into its Bragg disks.
BRAGG_SHARE = 0.35
#: Angle of the first Bragg disk from the x axis, in radians.
BRAGG_ROTATION = 0.3
#: Peak of the diffuse scattering, as a share of the dose, per unit scattered.
DIFFUSE_SHARE = 0.08
#: Inner and outer radius of the annulus ``tvips demo`` averages, in pixels
#: from the frame's centre: where the Bragg disks of a 64 x 64 frame lie.
DEMO_ADF_RADII = (12, 24)


def demo_frames(scan_shape, frame_shape, before: int, after: int) -> np.ndarray:
    """Return the demo's frames: patterns of a scan, with dark frames around.

    The same arguments give the same frames: the shot noise comes from
    :data:`DEMO_SEED`.

    Parameters
    ----------
    scan_shape : tuple of int
        ``(ny, nx)`` of the scan.
    frame_shape : tuple of int
        ``(dimy, dimx)`` of a frame.
    before, after : int
        Frames recorded before the scan starts and after it ends (the beam
        blanked: the camera's dark counts only).

    Returns
    -------
    numpy.ndarray of uint16
        ``(before + ny * nx + after, dimy, dimx)``.

    Notes
    -----
    At each scan point, with ``t`` the thickness in mean free paths (0.3 at
    the left column, 1.5 at the right one):

    1. the unscattered disk (radius an eighth of the frame) holds
       ``exp(-t)`` of :data:`DEMO_DOSE` counts per pixel, less what the
       grain diffracts;
    2. inside the grain (a round region of scan points, a third of the scan
       high), :data:`BRAGG_SHARE` of what is scattered, ``1 - exp(-t)``,
       goes into six Bragg disks 2.5 disk radii from the centre, unequally
       excited;
    3. diffuse scattering, :data:`DIFFUSE_SHARE` of the dose times
       ``1 - exp(-t)`` at the centre, falls off exponentially (over 1.5
       disk radii) under everything;
    4. each pixel is a Poisson draw around that, plus the dark counts.
    """
    ny, nx = scan_shape
    dimy, dimx = frame_shape
    iy, ix = (a.reshape(-1, 1, 1) for a in np.mgrid[:ny, :nx])
    fy, fx = iy / max(ny - 1, 1), ix / max(nx - 1, 1)
    thickness = 0.3 + 1.2 * fx
    scattered = 1 - np.exp(-thickness)
    grain = np.hypot(iy - ny / 2, ix - nx / 2) < ny / 3
    bragg = np.where(grain, BRAGG_SHARE * scattered, 0.0)
    # the pattern drifts by up to 4 pixels across the scan (descan error)
    cy = dimy / 2 + 4 * (fy - 0.5)
    cx = dimx / 2 + 4 * (fx - 0.5)
    radius = min(dimy, dimx) / 8
    yy, xx = np.mgrid[:dimy, :dimx]

    def disk(y0, x0):
        # one pixel of soft edge: the disks' area does not jump with the drift
        return np.clip(radius + 0.5 - np.hypot(yy - y0, xx - x0), 0, 1)

    mean = DEMO_DOSE * np.exp(-thickness) * (1 - bragg) * disk(cy, cx)
    spacing = 2.5 * radius
    for k, weight in enumerate(BRAGG_WEIGHTS):
        angle = np.pi / 3 * k + BRAGG_ROTATION
        spot = disk(cy + spacing * np.sin(angle), cx + spacing * np.cos(angle))
        mean = mean + DEMO_DOSE * bragg * weight / len(BRAGG_WEIGHTS) * spot
    r = np.hypot(yy - cy, xx - cx)
    mean = mean + DIFFUSE_SHARE * DEMO_DOSE * scattered * np.exp(-r / (1.5 * radius))
    rng = np.random.default_rng(DEMO_SEED)
    scan = rng.poisson(mean + DARK_COUNTS).astype(np.uint16)
    dark = rng.poisson(DARK_COUNTS, (before + after, dimy, dimx)).astype(np.uint16)
    return np.concatenate([dark[:before], scan, dark[before:]])


def write_demo_recording(
    directory: str | os.PathLike,
    name: str = "demo",
    scan_shape=(16, 16),
    frame_shape=(64, 64),
    before: int = 5,
    after: int = 3,
    part_size: int = 700_000,
    live: bool = False,
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
    live : bool, default False
        Write it as a camera does, over the 2.6 s the frame times say: a
        frame record every 10 ms, the next part once one is full (to try
        ``tvips watch`` on).

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
    if live:
        return _acquire(directory, name, data, records.itemsize, part_size)
    for k, start in enumerate(range(0, len(data), part_size)):
        path = directory / part_name(name, k)
        path.write_bytes(data[start : start + part_size])
    return directory / part_name(name, 0)


def _acquire(directory: Path, name: str, data: bytes, record: int, part_size: int):
    """Write ``data`` as a camera does: a record every frame interval, in parts."""
    start = MAIN_HEADER_DTYPE.itemsize
    t0 = time.monotonic()
    done, part = 0, 0
    f = open(directory / part_name(name, part), "wb")
    try:
        while done < len(data):
            # the main header with the first record, then a record at a time
            end = min(len(data), max(done, start) + record)
            while done < end:
                n = min(end - done, (part + 1) * part_size - done)
                f.write(data[done : done + n])
                f.flush()
                done += n
                if done == (part + 1) * part_size and done < len(data):
                    f.close()
                    part += 1
                    f = open(directory / part_name(name, part), "wb")
            frames = (done - start) // record
            pause = t0 + frames * DEMO_FRAME_MS / MS_PER_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        f.close()
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
        recording, its frame headers, the lazy scan, three rows of a virtual
        bright-field and of an annular dark-field image, and the metadata of
        the acquisition.
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
    # the annulus around the frame's centre that holds the Bragg disks
    inner, outer = DEMO_ADF_RADII
    yy, xx = np.indices(data.shape[2:])
    r = np.hypot(yy - data.shape[2] / 2, xx - data.shape[3] / 2)
    ring = (r >= inner) & (r <= outer)
    vbf, adf = dask.compute(
        data[:, :, 28:36, 28:36].mean(axis=(2, 3)),
        (data * ring).sum(axis=(2, 3)) / ring.sum(),
    )
    lines.append(
        "virtual bright field (mean of the central 8x8 pixels), rows 0, 8, 15:"
    )
    for row in (0, 8, 15):
        lines.append("  " + " ".join(f"{v:4.0f}" for v in vbf[row]))
    lines.append(
        f"annular dark field (mean of the pixels {inner} to {outer} from the "
        "centre), rows 0, 8, 15:"
    )
    for row in (0, 8, 15):
        lines.append("  " + " ".join(f"{v:4.1f}" for v in adf[row]))
    meta = d["metadata"]
    # the time of the scan's first frame, to the millisecond the headers hold
    lines.append(
        f"acquired {meta['General']['date']} {meta['General']['time'][:12]} UTC, "
        f"{meta['Acquisition_instrument']['TEM']['beam_energy']:.0f} kV, "
        f"signal type {meta['Signal'].get('signal_type')}"
    )
    return lines


def run_live_demo(folder: str | os.PathLike, out=None) -> None:
    """Write the demo recording into ``folder`` as a camera would (see ``--live``)."""
    out = out or sys.stdout
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / part_name("demo", 0)
    existing = sorted(folder.glob("demo_*.tvips"))
    if existing:
        names = ", ".join(p.name for p in existing)
        raise FileExistsError(f"{folder} holds a demo recording already: {names}")
    print(f"writing {first} at 100 frames/s (2.6 s) ...", file=out, flush=True)
    write_demo_recording(folder, live=True)
    print(f"wrote {first} and the parts after it", file=out)


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
