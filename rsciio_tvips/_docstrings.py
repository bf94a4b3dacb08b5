"""Docstring fragments shared by the public functions, in our own words."""

FILENAME_DOC = """filename : str or os.PathLike
        Any part of the recording: ``x_000.tvips`` or a later ``x_NNN.tvips``
        (the extension may be upper case), or the recording's name as it was
        saved: ``x.tvips`` opens ``x_000.tvips`` when no file ``x.tvips``
        exists. All ``x_NNN.tvips`` files beside it are read as one
        recording, starting with ``x_000.tvips``."""

LAZY_DOC = """lazy : bool, default False
        If True, return a dask array that reads frames only when computed;
        opening reads no pixels and costs the same for any size. If False,
        read all frames into one numpy array."""

RETURNS_DOC = """list of dict
        One dictionary with the keys ``data``, ``axes``, ``metadata``,
        ``original_metadata`` and ``mapping``, as every RosettaSciIO reader
        returns."""

WRITE_FILENAME_DOC = """filename : str or os.PathLike
        Name of the recording: ``x.tvips`` or ``x_000.tvips`` both write the
        parts ``x_000.tvips``, ``x_001.tvips``, ... beside it, replacing any
        earlier recording of that name (all of its parts)."""
