"""The byte layout of a recording.

Dtypes and constants, the main header, the part chain.
"""
