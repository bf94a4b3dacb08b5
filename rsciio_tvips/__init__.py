"""Read and write TVIPS camera recordings (``.tvips``), RosettaSciIO-style.

``file_reader`` and ``file_writer`` are a RosettaSciIO reader and writer;
``hs.load("x_000.tvips", file_format=rsciio_tvips)`` works with them.
:class:`TvipsRecording` gives the frames and the per-frame headers without
HyperSpy; :func:`validate` checks a recording and lists what is wrong;
:func:`to_smv` writes a MicroED tilt series as SMV images for DIALS;
:func:`follow` yields the frames of a recording while it is written.
"""

from ._api import file_reader
from ._hyperspy import is_registered, register, unregister
from ._microed.smv import to_smv
from ._reading.follow import FrameBlock, follow
from ._reading.recording import TvipsRecording
from ._validate import validate
from ._writing.writer import file_writer
from .exceptions import Finding, TvipsFormatError, TvipsFormatWarning

__version__ = "0.1.0.dev0"

__all__ = [
    "Finding",
    "FrameBlock",
    "TvipsFormatError",
    "TvipsFormatWarning",
    "TvipsRecording",
    "file_reader",
    "file_writer",
    "follow",
    "is_registered",
    "register",
    "to_smv",
    "unregister",
    "validate",
]


def __dir__():
    return sorted(__all__)
