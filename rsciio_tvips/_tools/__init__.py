"""The ``tvips`` command and what only it uses: info, preview, convert, the demo.

The core never imports this package.
"""
