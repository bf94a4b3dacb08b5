"""Where each frame goes.

Frame tables, snake scans and hysteresis, scans found in the headers.
"""
