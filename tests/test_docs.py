"""The documentation keeps up with the code: the CLI page and the format tables.

These read the ``.rst`` sources as text (no Sphinx needed): every sub-command
and option of ``tvips`` is on ``docs/cli.rst``, the two field tables of
``docs/format.rst`` match ``_format.py``, and every picture a page shows is
committed. Building the site itself (``sphinx -W``) is CI's job.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from rsciio_tvips.__main__ import main
from rsciio_tvips._format import layout as _format

DOCS = Path(__file__).parent.parent / "docs"


def _help(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _subcommands(capsys) -> list[str]:
    usage = _help(capsys)
    (choices,) = re.findall(r"\{([a-z,]+)\}", usage.splitlines()[0])
    return choices.split(",")


def test_every_subcommand_and_option_is_on_the_cli_page(capsys):
    page = (DOCS / "cli.rst").read_text(encoding="utf-8")
    commands = _subcommands(capsys)
    assert {"demo", "info", "validate", "preview", "convert"} <= set(commands)
    for command in commands:
        heading = f"tvips {command}"
        assert f"\n{heading}\n{'-' * len(heading)}\n" in page, heading
        options = set(re.findall(r"--[a-z][a-z-]+", _help(capsys, command)))
        options.discard("--help")
        missing = sorted(o for o in options if f"``{o}" not in page)
        assert not missing, f"tvips {command}: {missing} not in cli.rst"


def _list_tables(text: str) -> list[list[list[str]]]:
    """Return the rows of each ``list-table`` as lists of cell texts."""
    tables = []
    rows = None
    for line in text.splitlines():
        if line.startswith(".. list-table::"):
            rows = []
            tables.append(rows)
        elif rows is None:
            continue
        elif line.startswith("   * -"):
            rows.append([line[6:].strip()])
        elif line.startswith("     -"):
            rows[-1].append(line[6:].strip())
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
        elif line and not line.startswith(" "):
            rows = None
    return tables


def _field_tables() -> list[list[list[str]]]:
    text = (DOCS / "format.rst").read_text(encoding="utf-8")
    return [t[1:] for t in _list_tables(text) if t and t[0][0] == "offset"]


def _literal(cell: str) -> str | None:
    return cell.strip("`") or None


TYPES = {"uint32": "<u4", "float32": "<f4"}


def test_format_tables_match_the_layout():
    main_table, frame_table = _field_tables()
    documented = [
        (int(row[0]), _literal(row[2]), _literal(row[3]), row[1]) for row in main_table
    ]
    fields = _format.MAIN_HEADER_DTYPE.fields
    actual = []
    for name in _format.MAIN_HEADER_DTYPE.names:
        dtype, offset, *title = fields[name]
        typ = (
            f"{dtype.itemsize} bytes"
            if dtype.subdtype
            else {"<u4": "uint32"}[dtype.str]
        )
        actual.append((offset, name, title[0] if title else None, typ))
    assert documented == actual

    documented = [
        (int(row[0]), _literal(row[2]), _literal(row[3]), TYPES[row[1]])
        for row in frame_table
    ]
    actual = [
        (offset, name, alias, np.dtype(typ).str)
        for offset, name, alias, typ in _format.FRAME_HEADER_FIELDS
    ]
    assert documented == actual


def test_every_picture_shown_is_committed():
    pictures = set()
    for page in DOCS.glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        pictures.update(re.findall(r"^\.\. (?:image|figure):: (\S+)", text, re.M))
    assert pictures
    missing = sorted(p for p in pictures if not (DOCS / p).is_file())
    assert not missing


# --- troubleshooting.rst: the messages it quotes are the ones users get ---------


def _troubleshooting() -> str:
    return (DOCS / "troubleshooting.rst").read_text(encoding="utf-8")


def _prose() -> str:
    """The troubleshooting page with its line breaks and indents as spaces."""
    return " ".join(_troubleshooting().split())


def _quoted_lines() -> set[str]:
    """The lines of the troubleshooting page, stripped (literal blocks too)."""
    return {line.strip() for line in _troubleshooting().splitlines()}


@pytest.fixture
def hyperspy_with_rsciio_reader():
    """hyperspy.api with RosettaSciIO's own TVIPS reader; registration restored."""
    hs = pytest.importorskip("hyperspy.api")
    import rsciio_tvips

    was_registered = rsciio_tvips.is_registered()
    rsciio_tvips.unregister()
    yield hs
    (rsciio_tvips.register if was_registered else rsciio_tvips.unregister)()


def test_troubleshooting_quotes_what_rosettasciio_raises(
    hyperspy_with_rsciio_reader, build, tmp_path, caplog
):
    # Build each situation of the page's table, in its order, and load it as
    # a user who forgot register() would: RosettaSciIO's reader answers.
    hs = hyperspy_with_rsciio_reader
    import rsciio_tvips

    def folder(name):
        (tmp_path / name).mkdir()
        return tmp_path / name

    # a record continues in the next part (100 bytes is inside the second)
    straddling = build(folder("a"), "scan", n_frames=4, split=[100]).paths[0]
    later_part = build(folder("b"), "scan", n_frames=4, records_per_part=2).paths[1]
    version_1 = build(folder("c"), "scan", n_frames=4, version=1).paths[0]
    renamed = build(folder("d"), "scan", n_frames=2).paths[0]
    renamed = renamed.rename(renamed.with_name("scan.tvips"))
    situations = [straddling, later_part, version_1, renamed]

    raised = []
    for path in situations:
        with pytest.raises(ValueError) as info:
            hs.load(str(path))
        raised.append(str(info.value))
        del info  # the traceback holds RosettaSciIO's frames
    tables = _list_tables(_troubleshooting())
    (table,) = [t for t in tables if t[0][0] == "RosettaSciIO's message"]
    assert raised == [_literal(row[0]) for row in table[1:]]

    # HyperSpy's own line, logged before the traceback, as the page quotes it
    logged = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
    (message,) = logged
    assert any(
        line.startswith(f"ERROR | Hyperspy | {message} (") for line in _quoted_lines()
    )

    # "This package reads all of these", once registered
    rsciio_tvips.register()
    for path in situations:
        s = hs.load(str(path))
        assert s.metadata.General.FileIO["0"].io_plugin == "rsciio_tvips"


def test_troubleshooting_quotes_what_rsciio_tvips_says(demo):
    from rsciio_tvips import TvipsFormatError, TvipsFormatWarning, file_reader

    lines = _quoted_lines()
    with pytest.warns(UserWarning) as record:
        file_reader(demo, scan_shape=(16, 16))
    (start,) = [str(w.message) for w in record if "scan_start_frame" in str(w.message)]
    assert start in lines

    # 100 bytes cut from the last part, then the third part deleted
    last = demo.with_name("demo_003.tvips")
    last.write_bytes(last.read_bytes()[:-100])
    with pytest.warns(TvipsFormatWarning) as record:
        file_reader(demo)
    (truncated,) = [str(w.message) for w in record]
    assert truncated in lines
    demo.with_name("demo_002.tvips").unlink()
    with pytest.raises(TvipsFormatError) as info:
        file_reader(demo)
    assert str(info.value) in lines


def test_troubleshooting_a_wildcard_loads_the_recording_once_per_part(
    hyperspy_with_rsciio_reader, demo, build, tmp_path
):
    hs = hyperspy_with_rsciio_reader
    import rsciio_tvips

    page = _prose()
    # unregistered: a recording RosettaSciIO can read says so in FileIO
    whole = build(tmp_path, "whole", n_frames=4, records_per_part=2).path
    s = hs.load(str(whole))
    assert s.metadata.General.FileIO["0"].io_plugin == "rsciio.tvips"
    assert "``rsciio.tvips`` for RosettaSciIO's" in page

    rsciio_tvips.register()
    signals = hs.load(str(demo.parent / "demo_*.tvips"))
    assert [x.data.shape for x in signals] == [(264, 64, 64)] * 4
    assert "a list of four signals, each the whole" in page
    stacked = hs.load(str(demo.parent / "demo_*.tvips"), stack=True)
    assert "dimensions: (264, 4|64, 64)" in repr(stacked)
    assert "``(264, 4|64, 64)``" in page
