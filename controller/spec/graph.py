"""Dependency order of services (depends_on), with cycles reported as a path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wire.errors import SpecError


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path ['router', 'media', 'router'], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topo_order(deps: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Services with dependencies first, ties by name; SpecError on a cycle."""
    cycle = find_cycle(deps)
    if cycle:
        raise SpecError(f"services.{cycle[0]}.depends_on: cycle {' -> '.join(cycle)}")
    done: dict[str, None] = {}

    def visit(node: str) -> None:
        if node in done:
            return
        for nxt in sorted(deps.get(node, ())):
            if nxt in deps:
                visit(nxt)
        done[node] = None

    for node in sorted(deps):
        visit(node)
    return tuple(done)
