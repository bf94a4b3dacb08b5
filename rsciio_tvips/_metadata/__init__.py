"""TVIPS fields and HyperSpy metadata: the mapping, decoding, encoding, time zones."""
