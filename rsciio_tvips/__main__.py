"""The ``tvips`` command (also ``python -m rsciio_tvips``).

Sub-commands:

``demo``
    Write a small 4D-STEM recording of several parts into a temporary folder
    (or ``--keep DIR``), read it back lazily as a scan, and print what was
    found: the parts, the frames, the headers and a virtual bright-field
    image of the scan.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ._api import file_reader
from ._demo import write_demo_recording
from ._reader import TvipsRecording


def _demo(keep: str | None, out=sys.stdout) -> int:
    def say(*args):
        print(*args, file=out)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        first = write_demo_recording(folder)
        rec = TvipsRecording(first)
        say(f"Wrote {first.name} and its parts in {folder}:")
        for part in rec.chain.parts:
            say(f"  {part.name:16s} {part.file_offset + part.length:>9d} bytes")
        say(repr(rec))
        h = rec.frame_headers
        say(
            f"frame header: {rec.header.frame_header_bytes} bytes; counter "
            f"{h['num'][0]}..{h['num'][-1]}; rotator index 0 for frames "
            f"{np.flatnonzero(h['rotidx'] == 0).tolist()}"
        )
        start = int(np.argmax(h["rotidx"] > 0))
        (d,) = file_reader(
            first, lazy=True, scan_shape=(16, 16), scan_start_frame=start
        )
        data = d["data"]
        say(f"scan from frame {start}: {data.shape} {data.dtype}, lazy")
        vbf = data[:, :, 28:36, 28:36].mean(axis=(2, 3)).compute()
        say("virtual bright field (mean of the central 8x8 pixels), rows 0, 8, 15:")
        for row in (0, 8, 15):
            say("  " + " ".join(f"{v:4.0f}" for v in vbf[row]))
        meta = d["metadata"]
        say(
            f"acquired {meta['General']['date']} {meta['General']['time']} UTC, "
            f"{meta['Acquisition_instrument']['TEM']['beam_energy']:.0f} kV, "
            f"signal type {meta['Signal'].get('signal_type')}"
        )
    return 0


def main(argv=None) -> int:
    """Run the ``tvips`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code.
    """
    parser = argparse.ArgumentParser(
        prog="tvips", description="Read TVIPS camera recordings (.tvips)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="write a small recording, read it back and print what was found"
    )
    demo.add_argument("--keep", metavar="DIR", help="write the recording into DIR")
    args = parser.parse_args(argv)
    return _demo(args.keep)


if __name__ == "__main__":
    sys.exit(main())
