"""Entry point for `python -m examples.lb`."""

from examples.lb.server import main

main()
