"""Coverage-guided fuzzing of the main-header parser and frame-header decoding.

Each input is turned into the first bytes of a ``NAME_000.tvips`` file: the
256-byte main header, either raw or built from thirteen fuzzed fields (so
that the fuzzer gets past the first checks quickly), then some frame-record
bytes. The target then

1. parses the main header with :func:`rsciio_tvips._format.header.parse_main_header`;
   the only exception allowed is ``TvipsFormatError``, whose message must
   start with the file name;
2. for a header it accepts, checks that the header describes its frames
   (record size, a frame-header type of exactly the declared size) and
   decodes the bytes that follow as frame headers of that type;
3. decodes the same bytes with :func:`rsciio_tvips._format.layout.frame_header_dtype`
   for a fuzzed size, and turns the decoded headers into what the reader
   makes of them (metadata dict, frame times, counter and clock checks).

Anything else raised, and any warning (they are errors here, as in the test
suite), is a bug and makes atheris stop with the input that caused it.

Run it as ``python fuzz/fuzz_header.py -runs=100000`` or
``python fuzz/fuzz_header.py -max_total_time=600``; see ``README.rst``.
"""

import struct
import sys
import warnings

import atheris

# numpy is imported before the hook: only the package's code is instrumented,
# numpy's would flood the coverage map.
import numpy as np

with atheris.instrument_imports(include=["rsciio_tvips"]):
    from rsciio_tvips._checks import FrameStream
    from rsciio_tvips._format.header import parse_main_header
    from rsciio_tvips._format.layout import MAIN_HEADER_SIZE, frame_header_dtype
    from rsciio_tvips._metadata.decode import header_dict, time_axis, utc_datetime
    from rsciio_tvips.exceptions import TvipsFormatError

#: The name errors must start with.
NAME = "fuzz_000.tvips"
#: Values worth trying for every field: the valid ones and the edges.
EDGES = [0, 1, 2, 8, 11, 12, 13, 16, 32, 60, 64, 108, 180, 256]
EDGES += [2**16, 2**31 - 1, 2**31, 2**32 - 1]
#: A valid main header's fields (version 2, 3 x 4 pixels of 16 bits, frame
#: headers of 60 bytes), the start of most inputs.
VALID = (256, 2, 4, 3, 16, 0, 0, 1, 1, 0, 300, 0, 60)
#: Most frame headers decoded per input; the bytes limit them anyway.
MAX_HEADERS = 64


def main_header_bytes(fdp) -> bytes:
    """Return 256 bytes (or fewer, to test short files) for the main header.

    A quarter of the time the bytes are raw. Otherwise a valid header with a
    few fields changed to an edge value or any 32-bit number, and fuzzed
    filler: a few input bytes then reach every check of the parser.
    """
    if fdp.ConsumeIntInRange(0, 3) == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, MAIN_HEADER_SIZE))
    fields = list(VALID)
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        index = fdp.ConsumeIntInRange(0, len(fields) - 1)
        if fdp.ConsumeBool():
            fields[index] = fdp.PickValueInList(EDGES)
        else:
            fields[index] = fdp.ConsumeIntInRange(0, 2**32 - 1)
    filler = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, MAIN_HEADER_SIZE - 52))
    return struct.pack("<13I", *fields) + filler.ljust(MAIN_HEADER_SIZE - 52, b" ")


def decode_frame_headers(dtype: np.dtype, data: bytes) -> None:
    """Decode ``data`` as frame headers of ``dtype`` and use every field.

    Does what the reader does with frame headers: a dict of the first one,
    its date, the time axis and the counter and clock checks over all.
    """
    assert dtype.itemsize > 0
    n = min(len(data) // dtype.itemsize, MAX_HEADERS)
    if n == 0:
        return
    headers = np.frombuffer(data, dtype, count=n)
    first, last = headers[0], headers[-1]
    info = header_dict(first)
    assert set(info) == set(dtype.names)
    if "ms" in dtype.names:
        utc_datetime(first)
        axis = time_axis(n, first, last)
        assert axis["size"] == n
        stream = FrameStream(len(headers))
        stream.feed(headers)
        stream.summary()


def test_one_input(data: bytes) -> None:
    """Fuzz target: parse a main header, decode frame headers after it."""
    fdp = atheris.FuzzedDataProvider(data)
    raw = main_header_bytes(fdp)
    size = fdp.ConsumeIntInRange(12, 512)
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        header = parse_main_header(raw, NAME)
    except TvipsFormatError as e:
        assert str(e).startswith(NAME + ": "), str(e)
        header = None
    if header is not None:
        assert header.raw == raw
        assert header.version in (1, 2)
        assert header.shape[0] > 0 and header.shape[1] > 0
        assert header.frame_header_bytes >= 12
        assert header.record_size == header.frame_header_bytes + header.frame_nbytes
        dtype = header.frame_header_dtype
        assert dtype.itemsize == header.frame_header_bytes
        decode_frame_headers(dtype, rest)
    # frame headers of any size a version 2 file may declare
    dtype = frame_header_dtype(size)
    assert dtype.itemsize == size
    decode_frame_headers(dtype, rest)


def main() -> None:
    """Run atheris with the command-line options (``-runs``, ...)."""
    # A warning is a bug too: numpy's RuntimeWarnings would reach users.
    warnings.simplefilter("error")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
