"""The cluster side of Bosun: spec, planner (pure), cycle, lease, and the `bosun` CLI."""
