"""`python -m agent` is `bosun-agent`."""

from agent.cli import main

main()
