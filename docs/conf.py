"""Sphinx configuration for the rsciio_tvips documentation."""

project = "rsciio_tvips"
author = "rsciio_tvips developers"
copyright = "2026, rsciio_tvips developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "dask": ("https://docs.dask.org/en/stable", None),
    "hyperspy": ("https://hyperspy.org/hyperspy-doc/current", None),
}
numpydoc_show_class_members = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
