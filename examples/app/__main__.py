"""Entry point for `python -m examples.app`."""

from examples.app.server import main

main()
