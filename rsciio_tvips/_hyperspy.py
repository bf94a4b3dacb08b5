"""Make HyperSpy use rsciio_tvips for ``.tvips``: :func:`register`.

HyperSpy finds readers and writers in RosettaSciIO's list of plugins
(``rsciio.IO_PLUGINS``), built from the ``specifications.yaml`` files inside
RosettaSciIO, and neither package has an entry point for outside plugins. So
:func:`register` replaces RosettaSciIO's TVIPS entry in that list with ours
(the same list object HyperSpy holds, changed in place): ``hs.load`` of a
``.tvips`` file and ``s.save("x.tvips")`` then run on this package, with no
"multiple file formats" error. :func:`unregister` puts RosettaSciIO's entry
back. Without either, ``hs.load(path, file_format=rsciio_tvips)`` uses this
package for one call.
"""

from __future__ import annotations

import importlib.resources

#: The ``api`` of our entry: the module HyperSpy imports to read and write.
API = "rsciio_tvips"


def _specification() -> dict:
    import yaml

    text = importlib.resources.files(API).joinpath("specifications.yaml").read_text()
    return {**yaml.safe_load(text), "api": API}


def _tvips_index(plugins) -> int | None:
    for i, plugin in enumerate(plugins):
        if "tvips" in [e.lower() for e in plugin.get("file_extensions", [])]:
            return i
    return None


def register() -> None:
    """Make HyperSpy read and write ``.tvips`` with rsciio_tvips.

    After ``rsciio_tvips.register()``, ``hs.load("x_000.tvips", ...)`` and
    ``s.save("x.tvips", ...)`` use this package for the rest of the Python
    session. Calling it again changes nothing.

    Examples
    --------
    >>> import hyperspy.api as hs  # doctest: +SKIP
    >>> import rsciio_tvips
    >>> rsciio_tvips.register()  # doctest: +SKIP
    >>> s = hs.load("scan_000.tvips", scan_shape=(128, 128))  # doctest: +SKIP
    """
    from rsciio import IO_PLUGINS

    index = _tvips_index(IO_PLUGINS)
    if index is not None and IO_PLUGINS[index].get("api") == API:
        return
    ours = _specification()
    if index is None:
        IO_PLUGINS.append(ours)
    else:
        # keep RosettaSciIO's entry inside ours, for unregister()
        ours["replaced_plugin"] = IO_PLUGINS[index]
        IO_PLUGINS[index] = ours


def unregister() -> None:
    """Give ``.tvips`` back to RosettaSciIO's built-in plugin in HyperSpy."""
    from rsciio import IO_PLUGINS

    index = _tvips_index(IO_PLUGINS)
    if index is None or IO_PLUGINS[index].get("api") != API:
        return
    replaced = IO_PLUGINS[index].get("replaced_plugin")
    if replaced is None:
        del IO_PLUGINS[index]
    else:
        IO_PLUGINS[index] = replaced


def is_registered() -> bool:
    """Return whether HyperSpy uses rsciio_tvips for ``.tvips`` files."""
    from rsciio import IO_PLUGINS

    index = _tvips_index(IO_PLUGINS)
    return index is not None and IO_PLUGINS[index].get("api") == API
