"""`{"$instances": "<service>"}` in a service's config: replaced by the planner with the
sorted `address:port` list of that service's healthy active machines."""

from __future__ import annotations

from typing import Any

INSTANCES = "$instances"


def references(config: Any) -> set[str]:
    """Services named by `{"$instances": NAME}` inside a config value."""
    found: set[str] = set()
    _walk(config, found)
    return found


def _walk(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        if set(value) == {INSTANCES} and isinstance(value[INSTANCES], str):
            found.add(value[INSTANCES])
            return
        for v in value.values():
            _walk(v, found)
    elif isinstance(value, list):
        for v in value:
            _walk(v, found)
