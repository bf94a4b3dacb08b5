"""Reading frames.

The recording object, planned preadv reads, the lazy graph, buffer reuse,
the read-ahead of cold chunks.
"""
