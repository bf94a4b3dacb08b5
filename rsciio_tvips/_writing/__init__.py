"""Writing recordings: the writer and the crash-safe commit of its parts.

The layer-level names other layers and the tools use:

- :func:`recording_names`: the folder, stem and extension of the parts a
  recording's name stands for;
- :func:`existing_parts`: the parts of a recording already on disk.

Tools import them from here, not from the modules of this folder.
"""

from .names import existing_parts, recording_names

__all__ = ["existing_parts", "recording_names"]
