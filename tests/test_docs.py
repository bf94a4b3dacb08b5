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
