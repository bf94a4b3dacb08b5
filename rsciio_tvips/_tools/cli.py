"""The ``tvips`` command (also ``python -m rsciio_tvips``): argument parsing.

Sub-commands:

``demo [--keep DIR] [--live]``
    Write a small 4D-STEM recording of several parts into a temporary folder
    (or ``--keep DIR``), read it back lazily as a scan, and print what was
    found: the parts, the frames, the headers and a virtual bright-field
    image of the scan. With ``--live``, write it into ``DIR`` as a camera
    would, a frame every 10 ms, for ``tvips watch`` to follow.

``info FILE [--json] [--estimate-hysteresis] [-q]``
    What the recording holds: parts, main header, frame layout, times, frame
    counter, rotator index, beam positions, and the reader arguments that
    rebuild its scan. Reads headers only (``--estimate-hysteresis`` reads the
    frames of a rotator scan once). Exit status 2 if it cannot be read.

``preview FILE -o OUT [reader options]``
    One picture (.png, .jpg, .svg or .pdf, as OUT's extension says): for a
    scan, virtual bright-field and annular dark-field images, the mean
    pattern (log scale) with the apertures, and the rotator index and frame
    time against the frame number; for a stack, the mean frame and the total
    intensity of each frame over time.

``convert FILE OUT [--frames A:B] [--crop Y0:Y1,X0:X1] [--bin N] [reader options]``
    Write the recording (or the scan made of it) as ``.hspy``, ``.zspy``,
    ``.blo``, ``.tif``, ``.mrc``, ``.npy`` or ``.tvips`` (re-split with
    ``--max-file-size``), streaming chunk by chunk with bounded memory.

``convert FILE OUT_###.img [--to smv] [--signed] [--sum N] [SMV options]``
    Write a MicroED tilt series as SMV images for DIALS, XDS or MOSFLM, one
    per frame (or per ``--sum N`` frames), numbered into the ``###``, with a
    JSON log beside them (see :func:`rsciio_tvips.to_smv`). ``--to smv``
    selects it for any extension, ``.img`` without it.

``validate FILE [-q]``
    Check a recording (any of its parts) and print one line per problem.
    Exit status 0: no problem (remarks marked ``info`` may be printed);
    1: problems, the data can be read (with ``permissive=True`` where a
    finding says so); 2: the recording cannot be read at all.

``watch FILE [-o OUT] [--every S] [--idle S] [--json] [-q] [reader options]``
    Follow a recording as it is written (it may not exist yet): a status
    line, each problem as it happens, a picture rewritten every ``--every``
    seconds; at the end (no growth for ``--idle`` seconds, or Ctrl-C) what
    ``validate`` prints, with its exit status (see :mod:`.watch`).

Long work (``convert``, ``preview``, and the header passes of ``info`` and
``validate`` that last more than a second) shows one progress bar on
stderr, or a line every few seconds where stderr is not a terminal
(:mod:`rsciio_tvips._progress`); ``-q`` silences it.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .._microed.options import SMV_OPTIONS
from .._progress import Progress, pass_delay
from .._validate import status, validate
from ..exceptions import SEVERITIES, TvipsFormatError
from .demo import run_demo, run_live_demo
from .preview import PICTURE_FORMATS
from .watch import EVERY_SECONDS, IDLE_SECONDS


def _info(
    filename: str, as_json: bool, estimate: bool, out=None, quiet: bool = True
) -> int:
    import json

    from .info import as_text, describe

    out = out or sys.stdout
    try:
        with _header_pass("info (2 passes)", quiet) as bar:
            hook = None if bar is None else bar.advance_to
            summary = describe(filename, estimate_hysteresis=estimate, progress=hook)
    except (OSError, TvipsFormatError) as e:
        print(f"tvips info: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if as_json else as_text(summary), file=out)
    return 0


def _reader_options(parser) -> None:
    group = parser.add_argument_group("reader options (as in file_reader)")
    group.add_argument(
        "--scan-shape", nargs="+", metavar="N",
        help="the scan's shape, slowest axis first (NY NX; one number for a "
        "line scan), or 'auto' (from the frame headers); without it the "
        "frames are a stack",
    )  # fmt: skip
    group.add_argument("--scan-start-frame", type=int, default=0, metavar="N")
    group.add_argument("--winding-scan-axis", choices=("x", "y"))
    group.add_argument("--hysteresis", default="0", help="an integer or 'auto'")
    group.add_argument("--scan-method", choices=("sequential", "rotator", "positions"))
    group.add_argument("--scan-index", type=int, default=0, metavar="N")
    group.add_argument(
        "--rechunking", default="auto", metavar="SIZE",
        help="chunk size of the lazy reads, e.g. 50MiB (default: about 100 MiB)",
    )  # fmt: skip
    group.add_argument(
        "--permissive",
        action="store_true",
        help="read what can be read of a damaged recording",
    )
    group.add_argument(
        "--signed",
        action="store_true",
        help="read 16-bit pixels as signed int16 (gain-corrected MicroED frames)",
    )


def _reader_kwargs(args) -> dict:
    kw = {"permissive": args.permissive, "rechunking": args.rechunking}
    if args.signed:
        kw["signed"] = True
    if args.scan_shape:
        if args.scan_shape == ["auto"]:
            kw["scan_shape"] = "auto"
        elif all(n.isdigit() for n in args.scan_shape):
            kw["scan_shape"] = tuple(int(n) for n in args.scan_shape)
        else:
            given = " ".join(args.scan_shape)
            msg = f"--scan-shape takes numbers (NY NX) or auto, got {given}"
            raise ValueError(msg)
        kw["scan_start_frame"] = args.scan_start_frame
        kw["winding_scan_axis"] = args.winding_scan_axis
        h = args.hysteresis
        kw["hysteresis"] = h if h == "auto" else int(h)
        kw["scan_method"] = args.scan_method
        kw["scan_index"] = args.scan_index
    return kw


def _fail(command: str, error: Exception) -> int:
    print(f"tvips {command}: {_as_flags(error)}", file=sys.stderr)
    return 2


def _as_flags(error) -> str:
    """Return the message of ``error`` with the keyword it names as the flag.

    ``convert()`` and ``to_smv()`` refuse an output that exists by naming
    their keyword (``pass overwrite=True``), which is right for a script;
    here the caller is the command, whose ``--overwrite`` sets that keyword.
    """
    text = str(error)
    if isinstance(error, FileExistsError):
        text = text.replace("pass overwrite=True", "pass --overwrite")
    return text


def _preview(args) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return _fail("preview", "needs matplotlib: pip install 'rsciio_tvips[preview]'")
    from .preview import preview

    try:
        kw = _reader_kwargs(args)
        summary = preview(args.file, args.output, progress=_show_progress(args), **kw)
    except (OSError, ValueError) as e:  # TvipsFormatError is a ValueError
        return _fail("preview", e)
    panels = "; ".join(summary["panels"])
    print(f"wrote {args.output}: {summary['kind']}, panels: {panels}")
    for hint in summary["hints"]:
        print(f"hint: {hint}")
    return 0


def _smv_options(parser) -> None:
    group = parser.add_argument_group(
        "SMV output (--to smv, or an OUTPUT ending in .img): MicroED images for "
        "DIALS, one per frame; OUTPUT holds ### for the image number"
    )
    group.add_argument("--to", choices=("smv",), help="write SMV images")
    for row in SMV_OPTIONS:
        # only what a row sets: argparse's defaults (metavar, one value, any
        # text) hold for the rest
        given = {"type": row.type, "metavar": row.metavar, "nargs": row.nargs,
                 "choices": row.choices}  # fmt: skip
        kw = {key: value for key, value in given.items() if value is not None}
        group.add_argument(row.option, dest=row.flag, help=row.help, **kw)


def _convert_smv(args) -> int:
    from .._microed.smv import to_smv
    from .._microed.smv_format import format_number

    others = {"--crop": args.crop, "--bin": args.bin != 1,
              "--max-file-size": args.max_file_size,
              "--scan-shape": args.scan_shape}  # fmt: skip
    given = [name for name, value in others.items() if value]
    if given:
        return _fail("convert", f"SMV output does not take {', '.join(given)}")
    kw = {row.keyword: getattr(args, row.flag) for row in SMV_OPTIONS}
    try:
        log = to_smv(
            args.file, args.output, frames=args.frames, signed=args.signed,
            overwrite=args.overwrite, permissive=args.permissive,
            progress=_show_progress(args),
            **{key: value for key, value in kw.items() if value is not None},
        )  # fmt: skip
    except (OSError, ValueError) as e:  # TvipsFormatError is a ValueError
        return _fail("convert", e)
    files = [os.path.basename(f) for f in log["files"]]
    names = files[0] if len(files) == 1 else f"{files[0]} ... {files[-1]}"
    rows, cols = log["shape"]
    angles = log["angles"]
    print(
        f"wrote {names}: {len(files)} images of {rows} x {cols} uint16 (smv); "
        f"log {os.path.basename(log['log'])}\n"
        f"offset {log['offset']} ({log['offset_source']}), pedestal "
        f"{log['pedestal']}; pixels clipped: {log['clipped_low']} below 0, "
        f"{log['clipped_high']} above 65535\n"
        f"angles from {angles['source']}: OSC_START {format_number(angles['start'])}, "
        f"OSC_RANGE {format_number(angles['osc_range'])} degrees per image"
    )
    return 0


def _convert(args) -> int:
    from dask.utils import parse_bytes

    from .convert import convert

    if args.to == "smv" or Path(args.output).suffix.lower() == ".img":
        return _convert_smv(args)
    given = [row.option for row in SMV_OPTIONS if getattr(args, row.flag) is not None]
    if given:
        msg = f"{', '.join(given)}: only for SMV output (--to smv or an .img OUTPUT)"
        return _fail("convert", msg)
    try:
        kw = _reader_kwargs(args)
        size = parse_bytes(args.max_file_size) if args.max_file_size else None
        summary = convert(
            args.file, args.output, frames=args.frames, crop=args.crop,
            binning=args.bin, max_file_size=size,
            intensity_scaling=args.intensity_scaling, overwrite=args.overwrite,
            progress=_show_progress(args), **kw,
        )  # fmt: skip
    except ImportError as e:
        return _fail("convert", f"{e}: pip install 'rsciio_tvips[convert]'")
    except (OSError, ValueError) as e:  # TvipsFormatError is a ValueError
        return _fail("convert", e)
    files = ", ".join(os.path.basename(f) for f in summary["files"])
    print(f"wrote {files}: {summary['description']} ({summary['format']})")
    for note in summary["notes"]:
        print(note)
    return 0


def _show_progress(args) -> bool:
    # on a terminal a bar, elsewhere a line every few seconds: a batch job's
    # log shows how far it got too
    return not args.quiet


def _header_pass(command: str, quiet: bool):
    """Return the progress of a pass over the frame headers (None if quiet).

    Shown only once the pass has run for a second
    (:func:`rsciio_tvips._progress.pass_delay`): most passes end sooner,
    and a bar would only flicker.
    """
    import contextlib

    if quiet:
        return contextlib.nullcontext()
    return Progress(command, delay=pass_delay())


def _validate(filename: str, out=None, quiet: bool = True) -> int:
    with _header_pass("validate", quiet) as bar:
        findings = validate(filename, progress=None if bar is None else bar.advance_to)
    return _print_findings(filename, findings, out)


def _print_findings(filename: str, findings, out=None) -> int:
    """Print what validate prints of ``findings``; return its exit status."""
    out = out or sys.stdout
    code = status(findings)
    for finding in findings:
        print(finding, file=out)
    verdict = {0: "no problem found", 1: "problems found", 2: "cannot be read"}
    tally = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    counts = ", ".join(
        f"{n} {s}" + ("s" if n > 1 and s in ("error", "warning") else "")
        for s, n in tally.items()
        if n
    )
    print(f"{filename}: {verdict[code]}" + (f" ({counts})" if counts else ""), file=out)
    return code


def _picture_option(parser, what: str, required: bool = False) -> None:
    """Add ``-o``/``--output``, a picture in one of preview's formats."""
    formats = ", ".join(PICTURE_FORMATS)
    parser.add_argument("-o", "--output", required=required,
                        help=f"{what}: {formats}")  # fmt: skip


def _seconds(text: str) -> float:
    """Return a number of seconds of the command line, >= 0 (argparse's type)."""
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text}: seconds must be 0 or more")
    return value


def _watch(args) -> int:
    import json

    from .watch import Watch, failed_summary

    try:
        if args.output is not None:
            import matplotlib  # noqa: F401

            from .preview import picture_format

            picture_format(args.output)  # a mistyped name, before the wait
            folder = Path(args.output).absolute().parent
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise ValueError(f"{args.output}: cannot write into {folder}")
        kw = _reader_kwargs(args)
        if kw.get("hysteresis") == "auto":
            raise ValueError("--hysteresis auto needs the whole scan: give a number")
    except ImportError:
        need = "-o needs matplotlib: pip install 'rsciio_tvips[preview]'"
        return _fail("watch", need)
    except ValueError as e:
        return _fail("watch", e)
    scan = None
    if "scan_shape" in kw or args.scan_method:
        keys = ("scan_shape", "scan_start_frame", "winding_scan_axis", "hysteresis")
        scan = {k: kw[k] for k in keys if k in kw} | {"scan_method": args.scan_method}
    try:
        watcher = Watch(args.file, args.output, args.every, args.idle, scan=scan,
                        signed=args.signed, io=args.io, quiet=args.quiet)  # fmt: skip
    except (OSError, ValueError) as e:  # the options, before any wait
        return _fail("watch", e)
    try:
        findings = watcher.run()
    except (OSError, ValueError) as e:  # TvipsFormatError is a ValueError
        if args.json:  # a script reads the verdict from stdout whatever it is
            print(json.dumps(failed_summary(args.file, e), indent=2))
        return _fail("watch", e)
    if args.json:
        summary = watcher.summary(findings)
        print(json.dumps(summary, indent=2))
        return summary["status"]
    return _print_findings(args.file, findings)


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
    demo.add_argument(
        "--live", action="store_true",
        help="with --keep: write it as a camera would, over 2.6 s (for tvips watch)",
    )  # fmt: skip
    info = sub.add_parser(
        "info", help="what a recording holds, and the reader arguments for its scan"
    )
    info.add_argument("file", help="any part of the recording")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    info.add_argument(
        "--estimate-hysteresis",
        action="store_true",
        help="for a rotator scan, estimate the hysteresis (reads the frames once)",
    )
    info.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pre = sub.add_parser(
        "preview",
        help="one picture: virtual images, mean pattern, rotator index and time",
    )
    pre.add_argument("file", help="any part of the recording")
    _picture_option(pre, "the picture to write", required=True)
    pre.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _reader_options(pre)
    conv = sub.add_parser(
        "convert",
        help="write as .hspy .zspy .blo .tif .mrc .npy .tvips or SMV (.img), streaming",
    )
    conv.add_argument("file", help="any part of the recording")
    conv.add_argument("output", help="the file to write; its extension sets the format")
    conv.add_argument("--frames", metavar="A:B", help="keep frames A to B-1 (stacks)")
    conv.add_argument("--crop", metavar="Y0:Y1,X0:X1", help="keep these pixels")
    conv.add_argument("--bin", type=int, default=1, metavar="N",
                      help="sum N x N pixels (after --crop)")  # fmt: skip
    conv.add_argument("--max-file-size", metavar="SIZE",
                      help="for .tvips: most bytes per part, e.g. 2GB")  # fmt: skip
    conv.add_argument("--intensity-scaling", default="minmax",
                      choices=("minmax", "dtype", "crop"),
                      help="for .blo (8 bits): how to map intensities")  # fmt: skip
    conv.add_argument("--overwrite", action="store_true", help="replace OUTPUT")
    conv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _reader_options(conv)
    _smv_options(conv)
    check = sub.add_parser(
        "validate",
        help="check a recording; exit 0 (clean), 1 (problems), 2 (unreadable)",
    )
    check.add_argument("file", help="any part of the recording")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    live = sub.add_parser(
        "watch",
        help="follow a recording as it is written: status, problems, a picture",
    )
    live.add_argument("file", help="any part of the recording (it may not exist yet)")
    _picture_option(live, "a picture rewritten every --every seconds")
    live.add_argument(
        "--every", type=_seconds, default=EVERY_SECONDS, metavar="SECONDS",
        help=f"seconds between two pictures (default {EVERY_SECONDS:g})",
    )  # fmt: skip
    live.add_argument(
        "--idle", type=_seconds, default=IDLE_SECONDS, metavar="SECONDS",
        help="end once the recording has not grown for this long "
        f"(default {IDLE_SECONDS:g})",
    )  # fmt: skip
    live.add_argument("--json", action="store_true", help="print JSON for scripts")
    live.add_argument(
        "--io", choices=("pread", "mmap"), default="pread",
        help="mmap: read the frames where they lie (less CPU; a part truncated "
        "while read kills the watcher)",
    )  # fmt: skip
    live.add_argument("-q", "--quiet", action="store_true", help="no status line")
    _reader_options(live)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # pyxem 0.21 imports a helper HyperSpy 2.5 has moved, so every load
        # of a diffraction signal warns: nothing a person at the command line
        # can act on. Only the command's output is spared (the library still
        # warns), and only this warning: its message, where HyperSpy issues
        # it, and its category's base, UserWarning, because naming HyperSpy's
        # VisibleDeprecationWarning would import HyperSpy for every command.
        warnings.filterwarnings(
            "ignore",
            message="`_get_block_pattern` has moved",
            category=UserWarning,
            module=r"hyperspy\.misc\.utils\Z",
        )
        if args.command == "validate":
            return _validate(args.file, quiet=args.quiet)
        if args.command == "watch":
            return _watch(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "preview":
            return _preview(args)
        if args.command == "info":
            return _info(args.file, args.json, args.estimate_hysteresis,
                         quiet=args.quiet)  # fmt: skip
        if args.live:
            if not args.keep:
                return _fail("demo", "--live writes into a folder: give --keep DIR")
            try:
                run_live_demo(args.keep)
            except OSError as e:
                return _fail("demo", e)
            return 0
        run_demo(args.keep)
        return 0
