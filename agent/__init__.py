"""bosun-agent: the machine side of Bosun (config, one cycle, drivers, local state, CLI)."""

__version__ = "0.2.0"
