"""MicroED: SMV images of a tilt series for DIALS, XDS and MOSFLM."""
