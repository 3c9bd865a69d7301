"""bosun-agent: the machine side of Bosun."""
