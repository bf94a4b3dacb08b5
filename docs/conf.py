"""Sphinx configuration for the rsciio_tvips documentation.

Build (warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Cross-references to Python, numpy, dask, HyperSpy and RosettaSciIO
(intersphinx) need those projects' inventories from the internet. The build
machines and CI have no internet, and a failed download is a warning, which
``-W`` turns into a failed build. So the inventories are loaded only when the
environment variable ``RSCIIO_TVIPS_DOCS_ONLINE`` is ``1``::

    export RSCIIO_TVIPS_DOCS_ONLINE=1
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Offline (the default), such references render as plain text, with no link
and no warning.
"""

import os
import sys
from pathlib import Path

# Document the package of this checkout, even when another version is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rsciio_tvips

project = "rsciio_tvips"
author = "rsciio_tvips developers"
copyright = "2026, rsciio_tvips developers"
release = rsciio_tvips.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "numpydoc",
]

ONLINE = os.environ.get("RSCIIO_TVIPS_DOCS_ONLINE") == "1"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "dask": ("https://docs.dask.org/en/stable", None),
        "hyperspy": ("https://hyperspy.org/hyperspy-doc/current", None),
        "rsciio": ("https://hyperspy.org/rosettasciio", None),
    }
    if ONLINE
    else {}
)

# autodoc and numpydoc: the signatures keep their type hints; the numpydoc
# sections say what the types mean, so hints are not repeated there.
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Types in "Parameters" and "Returns" become cross-references: links with
# intersphinx online, plain text offline. numpydoc's own aliases name their
# targets "python:str", ":ref:`python:bltin-boolean-values`" and the like,
# which render with the prefix, or warn, when the inventories are not
# loaded; these name plain objects, which intersphinx resolves just as well.
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    **{name: name for name in ("None", "True", "False", "bool", "callable")},
    **{name: name for name in ("str", "int", "float", "dict", "list", "tuple")},
    "boolean": "bool",
    "string": "str",
    "array_like": "numpy.typing.ArrayLike",
    "array-like": "numpy.typing.ArrayLike",
    "iterable": "collections.abc.Iterable",
    "sequence": "collections.abc.Sequence",
    "generator": "collections.abc.Generator",
    "scalar": "numpy.generic",
    "PathLike": "os.PathLike",
    "dtype": "numpy.dtype",
    "Finding": "rsciio_tvips.Finding",
    "TvipsFormatError": "rsciio_tvips.TvipsFormatError",
    "TvipsFormatWarning": "rsciio_tvips.TvipsFormatWarning",
}
numpydoc_xref_ignore = {"optional", "default", "of", "or", "and", "with", "a"}

# README.rst holds notes for contributors, not a page of the site.
exclude_patterns = ["_build", "README.rst"]

html_theme = "pydata_sphinx_theme"
html_title = f"rsciio_tvips {release}"
html_show_sourcelink = False
# The site is one level deep: every page is in the top bar, and no page has
# sub-pages, so the theme's left column ("Section Navigation") would be
# empty on every page. Without sidebars the theme drops that column on wide
# windows; on narrow ones its menu button still opens the top bar's links.
html_sidebars = {"**": []}
html_theme_options = {
    "navigation_with_keys": False,
    # Every page is in the top bar, none under "More": users look for
    # MicroED, cluster or troubleshooting by name. index.rst gives the pages
    # short labels and _static/rsciio_tvips.css a smaller font, so that the
    # fifteen links fit in one row at 1280 pixels, with little to spare: a
    # new page needs a screenshot (docs/README.rst). The search box becomes
    # an icon (Ctrl+K still opens it), and the title leaves the version to
    # the browser's tab.
    "header_links_before_dropdown": 15,
    "navbar_persistent": [],
    "navbar_align": "left",
    "navbar_end": ["search-button", "theme-switcher"],
    "logo": {"text": project},
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "auto"}
# Wider text column and code blocks that fit in it: see the file's comments.
# Only the style sheet: the pictures in _static reach the site through the
# pages that show them.
html_static_path = ["_static/rsciio_tvips.css"]
html_css_files = ["rsciio_tvips.css"]
