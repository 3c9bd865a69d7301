"""`python -m agent` is `bosun-agent`."""

from agent.entry import main

main()
