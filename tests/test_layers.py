"""The package's layers: imports point one way, and importing stays light.

``docs/architecture.rst`` lists the layers; a layer imports only layers
below it (or itself), never a tool, and never a private (``_x``) name of
another layer. Read from the source with ``ast``, so a new import that
breaks the rule fails here before it tangles the layers.
"""

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# found without importing it: an import that breaks the layering may also
# make the package fail to import, and this test should still say which
PACKAGE = Path(importlib.util.find_spec("rsciio_tvips").origin).parent
#: Rank of each layer (a top-level module or folder of the package): a
#: module may import from layers of a lower or the same rank only.
RANKS = {
    "exceptions": 0,
    "_docstrings": 0,
    "_progress": 0,
    "_format": 1,
    "_checks": 2,
    "_metadata": 2,
    "_reading": 3,
    "_scans": 4,
    "_writing": 4,
    "_microed": 5,
    "_api": 6,
    "_validate": 6,
    "_hyperspy": 6,
    "_tools": 7,
    "__init__": 8,
    "__main__": 8,
}


def imports():
    """Yield (module path, importing layer, imported layer, names) per import."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        package = list(parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            names = [alias.name for alias in node.names]
            layer = target[0] if target else names[0]
            yield path.relative_to(PACKAGE), parts[0], layer, target, names


def test_every_layer_has_a_rank():
    layers = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if p.suffix == ".py" or (p.is_dir() and p.name != "__pycache__")
    }
    assert layers == set(RANKS)


def test_imports_point_down():
    wrong = [
        f"{path}: {source} imports {layer}"
        for path, source, layer, _target, _names in imports()
        if RANKS[layer] > RANKS[source]
    ]
    assert wrong == []


def is_module(target, name) -> bool:
    """Whether ``from <target> import <name>`` imports a module, not a name."""
    return name in RANKS or PACKAGE.joinpath(*target, f"{name}.py").exists()


def test_no_private_name_crosses_a_layer():
    # a private module may be imported; a private name in it may not
    wrong = [
        f"{path}: {name} from {'.'.join(target)}"
        for path, source, layer, target, names in imports()
        if layer != source
        for name in names
        if name.startswith("_") and not is_module(target, name)
    ]
    assert wrong == []


@pytest.mark.parametrize("heavy", ["matplotlib", "hyperspy", "pint"])
def test_import_is_light(heavy):
    code = textwrap.dedent(
        f"""
        import sys
        import rsciio_tvips
        print({heavy!r} in sys.modules)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout == "False\n"
