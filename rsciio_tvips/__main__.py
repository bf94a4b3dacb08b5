"""``python -m rsciio_tvips``: the ``tvips`` command (see :mod:`._tools.cli`)."""

import sys

from ._tools.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
