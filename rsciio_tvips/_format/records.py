"""Where every frame record of a recording lies: the part chain and the header.

Frame ``k``'s record starts ``k * record_size`` bytes into the chain's
stream; its frame header comes first, then its pixels, row by row. Every
reader below the recording object asks :class:`Records` for these offsets
instead of computing them, and carries this one small, picklable object
instead of the part chain and the main header as a pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .header import MainHeader
from .parts import Chain, Part


@dataclass(frozen=True)
class Records:
    """The frame records of a recording.

    Attributes
    ----------
    chain : Chain
        The parts, as one stream of record bytes.
    header : MainHeader
        The main header: the record layout.
    """

    chain: Chain
    header: MainHeader

    @property
    def record_size(self) -> int:
        """Bytes of one record (frame header and pixels)."""
        return self.header.record_size

    @property
    def n_frames(self) -> int:
        """Whole records in the stream."""
        return self.chain.nbytes // self.header.record_size

    def record_offsets(self, frames) -> np.ndarray:
        """Return the stream offsets of the records of ``frames`` (int64)."""
        return np.asarray(frames, dtype=np.int64) * self.header.record_size

    def pixel_offsets(self, frames, row_start: int = 0) -> np.ndarray:
        """Return the stream offsets of row ``row_start`` of ``frames``' pixels."""
        h = self.header
        row_bytes = h.shape[1] * h.pixel_dtype.itemsize
        return (
            self.record_offsets(frames) + h.frame_header_bytes + row_start * row_bytes
        )

    def locate(self, frame: int) -> tuple[Part, int]:
        """Return the part that holds frame ``frame``'s record and its file offset."""
        return self.chain.locate(int(frame) * self.header.record_size)
