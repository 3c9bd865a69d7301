"""The one way Bosun reads YAML an operator wrote: safe, and refusing duplicate keys.

PyYAML keeps the last of two equal keys without a word (`web:` twice in a spec: the first
service silently vanishes). `load(text, source=...)` refuses that with the file and line of
both, and reports syntax errors as `source:line:column`. Used by the cluster spec, the agent
config and every other YAML reader; PyYAML is imported on first use only.
"""

from __future__ import annotations

from typing import Any

from wire.errors import BosunError


class YamlError(BosunError):
    """Text that is not valid YAML, or a mapping with a key written twice."""


_LOADER: Any = None


def _loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class StrictLoader(base):  # type: ignore[valid-type,misc]
            """SafeLoader whose mappings refuse a key written twice."""

        def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults`: explicit keys override merged ones, as YAML says
                key = loader.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the constructor reports it
                if first is not None:
                    raise _Duplicate(key, first, key_node.start_mark)
                seen[key] = key_node.start_mark
            return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

        StrictLoader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
        )
        _LOADER = StrictLoader
    return _LOADER


class _Duplicate(Exception):
    def __init__(self, key: Any, first: Any, again: Any) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


def load(text: str, *, source: str) -> Any:
    """Parse one YAML document; YamlError names `source`, the line and what is wrong."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: safe
    except _Duplicate as dup:
        raise YamlError(
            f"{source}:{dup.again.line + 1}: key {dup.key!r} appears twice (first at line "
            f"{dup.first.line + 1}); YAML would keep only the last: remove or rename one"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).replace("\n", " ")
        raise YamlError(f"{where}: not valid YAML ({problem})") from None


__all__ = ["YamlError", "load"]
