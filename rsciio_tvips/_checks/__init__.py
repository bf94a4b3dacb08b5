"""Every check of a recording, one function per defect, behind one policy.

Each check returns :class:`~rsciio_tvips.exceptions.Defect` objects: the
:class:`~rsciio_tvips.exceptions.Finding` that :func:`rsciio_tvips.validate`
lists and the sentence the reader raises or warns. A :class:`Report` applies
the policy (mrcfile's model: one implementation behind strict reading,
permissive reading and the validator):

1. ``fatal``: raised as :class:`TvipsFormatError` (no frame can be read);
2. ``error``: raised when strict; warned, with what is done instead, when
   permissive;
3. ``warning``: warned (the data can be read, with a defect);
4. ``info``: only collected (unusual, not a defect).

The checks that run when a recording is opened (:func:`chain_defects`: two
files for one part, parts that are not regular files, missing parts; the
main header's :func:`~rsciio_tvips._format.header.header_defects`,
:func:`size_defects`, :func:`boundary_defects`) read at most a few frame
headers. :class:`FrameStream` checks every frame header, block by block;
the validator and ``tvips info`` run it, and its counts are the reader's
``original_metadata.Diagnostics``. This module imports only the format
layer: the reader hands it a function that reads frame headers.

``report.py`` holds the policy, ``opening.py`` the checks made on opening,
``stream.py`` the checks over every frame header.
"""

from .opening import (
    boundary_defects,
    chain_defects,
    counter_joins,
    joins_key,
    size_defects,
    usable_last_part,
)
from .report import Report, worst_first
from .stream import FrameStream, frame_stream, stream_findings

__all__ = [
    "FrameStream",
    "Report",
    "boundary_defects",
    "chain_defects",
    "counter_joins",
    "frame_stream",
    "joins_key",
    "size_defects",
    "stream_findings",
    "usable_last_part",
    "worst_first",
]
