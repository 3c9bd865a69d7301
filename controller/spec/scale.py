"""Spec sections for scaling and disruption: `scale:`, `max_unavailable:` and `provisioner:`.

services:
  voice:
    version: "3.1"
    count: 4                    # the starting point; the scaler moves it in [min, max]
    max_unavailable: 25%        # or a count: draining + changing + lost at once
    scale:
      min: 4
      max: 40
      metric: sessions.voice    # sessions.<channel>, load.<field>, sessions, load;
                                # a pooled service: "sessions.voice+sessions.sms" or a list
      target_per_machine: 50    # or up/down utilisation thresholds of it
      up: 0.75
      down: 0.30
      cooldown: 5m
      standby: 2                # warm machines kept ready
      fresh: 30s                # default: 3 controller intervals
      boot_timeout: 10m
    provisioner: {type: command, command: [/usr/local/bin/grow]}
provisioner: {type: ec2-asg, group: bosun-workers, region: eu-west-1}   # cluster default
"""

from __future__ import annotations

import re
from typing import Any

from controller.spec.checks import Problems, duration_field, got, json_ok, unknown_keys
from controller.spec.model import ScaleSpec

SCALE_KEYS = (
    "min", "max", "metric", "target_per_machine", "up", "down", "cooldown", "standby",
    "fresh", "min_fresh", "boot_timeout",
)  # fmt: skip
PROVISIONER_TYPES = ("command", "ec2-asg")
PROVISIONER_KEYS = {
    "command": ("type", "command", "timeout"),
    "ec2-asg": ("type", "group", "region", "endpoint"),
}
_TERM = re.compile(r"^(sessions|load)(\.[A-Za-z0-9_.-]+)?$")
_BUDGET = re.compile(r"^(\d+)(%?)$")


def parse_metric(p: Problems, path: str, raw: object) -> tuple[str, ...] | None:
    """`sessions.voice`, `sessions.voice+sessions.sms` or a list of such terms."""
    if isinstance(raw, str):
        terms = [t.strip() for t in raw.split("+")]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        terms = [t.strip() for t in raw]
    else:
        p.add(path, f"expected a metric such as sessions.voice (or a list to sum), got {got(raw)}")
        return None
    bad = [t for t in terms if not _TERM.fullmatch(t)]
    if bad:
        p.add(
            path,
            f"unknown metric {bad[0]!r}: use sessions.<channel>, load.<field>, sessions or load "
            "(join channels of a pooled service with '+')",
        )
        return None
    return tuple(terms)


def _number(p: Problems, path: str, raw: object, *, whole: bool = False) -> float | None:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or (whole and not isinstance(raw, int))
    ):
        kind = "a whole number" if whole else "a number"
        p.add(path, f"expected {kind}, got {got(raw)} {raw!r}")
        return None
    if raw < 0:
        p.add(path, f"must be 0 or more, got {raw!r}")
        return None
    return float(raw)


def parse_scale(p: Problems, path: str, raw: object, count: int | None) -> ScaleSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(
            path, f"expected a mapping with min, max, metric and target_per_machine, got {got(raw)}"
        )
        return None
    unknown_keys(p, path, raw, SCALE_KEYS)
    n = len(p.items)
    lo = _number(p, f"{path}.min", raw.get("min", 0), whole=True)
    hi = _number(p, f"{path}.max", raw.get("max"), whole=True) if "max" in raw else None
    if "max" not in raw:
        p.add(f"{path}.max", "missing: the most machines the scaler may ask (e.g. max: 40)")
    metric = parse_metric(p, f"{path}.metric", raw.get("metric"))
    target = raw.get("target_per_machine")
    up, down = raw.get("up"), raw.get("down")
    t = _number(p, f"{path}.target_per_machine", target) if target is not None else None
    if target is None:
        p.add(
            f"{path}.target_per_machine",
            "missing: the metric one machine should carry (e.g. 50 sessions); "
            "up/down are fractions of it",
        )
    elif t == 0:
        p.add(f"{path}.target_per_machine", "must be above 0")
    u = _number(p, f"{path}.up", up) if up is not None else None
    d = _number(p, f"{path}.down", down) if down is not None else None
    if (u is None) != (d is None) and len(p.items) == n:
        p.add(path, "give both up and down thresholds, or neither")
    elif u is not None and d is not None and not d < u:
        p.add(f"{path}.down", f"must be below up ({u:g}), got {d:g}")
    standby = _number(p, f"{path}.standby", raw.get("standby", 0), whole=True)
    min_fresh = _number(p, f"{path}.min_fresh", raw.get("min_fresh", 0.5))
    if min_fresh is not None and min_fresh > 1:
        p.add(f"{path}.min_fresh", f"a share of the machines, 0 to 1, got {min_fresh:g}")
    cooldown = duration_field(p, f"{path}.cooldown", raw.get("cooldown"), 300.0)
    fresh = duration_field(p, f"{path}.fresh", raw.get("fresh"), 0.0)
    boot = duration_field(p, f"{path}.boot_timeout", raw.get("boot_timeout"), 600.0)
    if lo is not None and hi is not None and lo > hi:
        p.add(f"{path}.min", f"min {lo:g} is above max {hi:g}")
    elif lo is not None and hi is not None and count is not None and not lo <= count <= hi:
        p.add(
            f"services.{path.split('.')[1]}.count",
            f"{count} is outside scale min..max ({lo:g}..{hi:g}); it is the scaler's start",
        )
    if len(p.items) > n or lo is None or hi is None or metric is None or t is None:
        return None
    return ScaleSpec(
        min=int(lo), max=int(hi), start=int(lo) if count is None else count, metric=metric, target_per_machine=t, up=u, down=d,
        cooldown=cooldown, standby=int(standby or 0), fresh=fresh,
        min_fresh=0.5 if min_fresh is None else min_fresh, boot_timeout=boot,
    )  # fmt: skip


# A version or config change never takes all of a service's machines at once unless the
# spec says so (`max_unavailable: 100%`), as Kubernetes' 25% maxUnavailable. Applied by the
# planner to services without `max_unavailable`, except to a rollout's revert.
DEFAULT_BUDGET = "25%"


def parse_budget(p: Problems, path: str, raw: object) -> str | None:
    """`max_unavailable`: a count (`2`) or a percent (`25%`) of the service's machines."""
    if raw is None:
        return None
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    m = _BUDGET.fullmatch(text) if isinstance(text, str) else None
    if m is None or (m.group(2) and not 0 < int(m.group(1)) <= 100):
        p.add(path, f"expected a count (e.g. 1) or a percent 1-100 (e.g. '25%'), got {raw!r}")
        return None
    if int(m.group(1)) == 0:
        p.add(path, "0 would hold every version or config change forever; use 1 or more")
        return None
    return str(text)


def budget_of(value: str | None, machines: int) -> int | None:
    """How many of `machines` may be unavailable at once (None: no limit). A percent
    rounds down but allows at least one."""
    if value is None:
        return None
    if value.endswith("%"):
        return max(1, machines * int(value[:-1]) // 100)
    return int(value)


def parse_provisioner(p: Problems, path: str, raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(
            path,
            f"expected {{type: command, command: [...]}} or {{type: ec2-asg, group: NAME}}, got {got(raw)}",
        )
        return None
    kind = raw.get("type")
    if kind not in PROVISIONER_TYPES:
        p.add(f"{path}.type", f"expected one of {', '.join(PROVISIONER_TYPES)}, got {kind!r}")
        return None
    unknown_keys(p, path, raw, PROVISIONER_KEYS[kind])
    if kind == "command":
        cmd = raw.get("command")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) and c for c in cmd):
            p.add(
                f"{path}.command",
                "expected the argv list of the command (e.g. [/usr/local/bin/grow])",
            )
            return None
        timeout = raw.get("timeout", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            p.add(f"{path}.timeout", f"expected seconds above 0, got {timeout!r}")
            return None
    else:
        for key in ("group", "region", "endpoint"):
            value = raw.get(key)
            if (key == "group" or value is not None) and (not isinstance(value, str) or not value):
                p.add(f"{path}.{key}", f"expected a non-empty string, got {got(value)}")
                return None
    if not json_ok(p, path, raw):
        return None
    return dict(raw)


__all__ = ["budget_of", "parse_budget", "parse_metric", "parse_provisioner", "parse_scale"]
