"""Sub-group selection expressions for `bosun update --select EXPR` (and rollout steps).

    id=a,b            exactly these machines
    count=N           N machines of the service
    percent=P         P% of the service's machines, rounded up, at least one when P > 0
    version=V         the machines running version V when the selection is first resolved
    max(count=N,percent=P) / min(...)   the larger / smaller of the sizes

Parsing is pure and strict; `size()` turns count/percent forms into a number of machines.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from wire.errors import SpecError
from wire.layout import MACHINE_ID_PATTERN

SelectorKind = Literal["id", "count", "percent", "version", "max", "min"]

USAGE = "use id=a,b | count=N | percent=P | version=V | max(count=N,percent=P) | min(...)"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Selector:
    kind: SelectorKind
    ids: tuple[str, ...] = ()
    number: float = 0.0  # count or percent
    version: str = ""
    parts: tuple[Selector, ...] = ()  # for max/min: count and percent selectors

    @property
    def sized(self) -> bool:
        """True when the selection is a number of machines (count/percent/max/min)."""
        return self.kind in ("count", "percent", "max", "min")

    def size(self, total: int) -> int:
        """How many of `total` machines a sized selector picks."""
        if self.kind == "count":
            return min(total, int(self.number))
        if self.kind == "percent":
            if self.number <= 0 or total == 0:
                return 0
            return min(total, max(1, math.ceil(total * self.number / 100 - 1e-9)))
        sizes = [p.size(total) for p in self.parts]
        return max(sizes) if self.kind == "max" else min(sizes)

    def __str__(self) -> str:
        if self.kind == "id":
            return "id=" + ",".join(self.ids)
        if self.kind == "count":
            return f"count={int(self.number)}"
        if self.kind == "percent":
            return f"percent={self.number:g}"
        if self.kind == "version":
            return f"version={self.version}"
        return f"{self.kind}(" + ",".join(str(p) for p in self.parts) + ")"


def parse_selector(text: str, *, where: str = "select") -> Selector:
    """Parse EXPR; SpecError names `where`, what is wrong and the accepted forms."""
    if not isinstance(text, str):
        raise SpecError(f"{where}: expected a selection expression string; {USAGE}")
    expr = text.strip()
    m = re.fullmatch(r"(max|min)\((.*)\)", expr)
    if m:
        kind: SelectorKind = "max" if m.group(1) == "max" else "min"
        parts = tuple(
            _simple(p.strip(), where, nested=True) for p in m.group(2).split(",") if p.strip()
        )
        if len(parts) < 2:
            raise SpecError(f"{where}: {expr!r}: {kind}() needs at least two terms; {USAGE}")
        return Selector(kind=kind, parts=parts)
    return _simple(expr, where, nested=False)


def _simple(expr: str, where: str, *, nested: bool) -> Selector:
    name, sep, value = expr.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value:
        raise SpecError(f"{where}: {expr!r} is not a selection; {USAGE}")
    if nested and name not in ("count", "percent"):
        raise SpecError(f"{where}: {expr!r}: only count= and percent= go inside max()/min()")
    if name == "id":
        ids = tuple(i.strip() for i in value.split(","))
        bad = [i for i in ids if not MACHINE_ID_PATTERN.fullmatch(i)]
        if bad:
            raise SpecError(f"{where}: {bad[0]!r} is not a machine id (e.g. 'web-1'); {USAGE}")
        return Selector(kind="id", ids=tuple(sorted(set(ids))))
    if name == "count":
        if not value.isdigit() or int(value) < 1:
            raise SpecError(f"{where}: count must be a whole number >= 1, got {value!r}")
        return Selector(kind="count", number=float(int(value)))
    if name == "percent":
        try:
            pct = float(value.rstrip("%"))
        except ValueError:
            pct = -1.0
        if not 0 < pct <= 100:
            raise SpecError(f"{where}: percent must be a number in (0, 100], got {value!r}")
        return Selector(kind="percent", number=pct)
    if name == "version":
        if not _VERSION.fullmatch(value):
            raise SpecError(f"{where}: {value!r} is not a version (letters, digits, . _ + ~ -)")
        return Selector(kind="version", version=value)
    raise SpecError(f"{where}: unknown selection {name!r}; {USAGE}")
