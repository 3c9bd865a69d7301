"""Read the operator's YAML spec into a validated `ClusterSpec`; every error names its path.

All problems are collected and reported together, one per line, each naming the path
(`services.router.depends_on`), what is wrong and the fix. Nothing is guessed: unknown keys
are errors (with the closest allowed key suggested), versions must be strings, durations
are `10s`, `5m`, `1h`, `1d` (or plain seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.spec.budget import check_cost_budget
from controller.spec.checks import (
    Problems,
    duration_field,
    fmt_seconds,
    got,
    json_ok,
    names_field,
    suggest,
    threshold_field,
    unknown_keys,
    version_ok,
)
from controller.spec.commands import parse_approval, parse_undo
from controller.spec.coupled import check_coupled, parse_coupled
from controller.spec.graph import find_cycle
from controller.spec.model import (
    ClusterSpec,
    HealthSpec,
    Override,
    ServiceSpec,
    SessionsSpec,
    Settings,
)
from controller.spec.refs import references
from controller.spec.rollout import parse_control, parse_rollout
from controller.spec.scale import parse_budget, parse_provisioner, parse_scale
from controller.spec.selector import parse_selector
from wire import yaml_text
from wire.durations import parse_duration
from wire.errors import SpecError
from wire.layout import MACHINE_ID_PATTERN, SERVICE_NAME_PATTERN

MAX_SPEC_BYTES = 4 * 1024 * 1024

TOP_KEYS = ("settings", "services", "rollout", "provisioner", "forget", "coupled")
SETTINGS_KEYS = ("heartbeat_timeout", "desired_lifetime", "skew_window", "controller_interval")
SERVICE_KEYS = (
    "version", "count", "kind", "balances", "config", "depends_on", "port", "weight",
    "pools", "health", "sessions", "overrides", "rollout", "control", "undo", "approval",
    "scale", "max_unavailable", "provisioner",
)  # fmt: skip
HEALTH_KEYS = ("grace", "quarantine", "blind_threshold")
HEALTH_DURATIONS = ("grace", "quarantine")
SESSIONS_KEYS = ("drain_timeout", "channels", "config_disruptive")
OVERRIDE_KEYS = ("id", "select", "version", "config")


def load_yaml(text: str, *, source: str = "spec") -> ClusterSpec:
    """Parse and validate YAML text; SpecError lists every problem."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: {len(text)} bytes is over the {MAX_SPEC_BYTES}-byte limit")
    try:
        value = yaml_text.load(text, source=source)
    except yaml_text.YamlError as exc:
        raise SpecError(str(exc)) from None
    if value is None:
        value = {}
    _check_expanded(value, source)
    return from_value(value, source=source)


MAX_SPEC_NODES = 200_000
MAX_SPEC_DEPTH = 64
MAX_COUNT = 100_000  # machines per service; ten times the largest fleet measured
INT_RANGE = (-(2**63), 2**64 - 1)  # what JSON encoders (orjson) and readers keep exactly


def _short(number: int) -> str:
    text = str(number)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def _check_expanded(value: object, source: str) -> None:
    """Bound the document YAML aliases expand to (a 400-byte alias bomb is millions of
    nodes) and its nesting; the walk stops as soon as a bound is crossed."""
    stack: list[tuple[object, int]] = [(value, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_SPEC_NODES:
            raise SpecError(
                f"{source}: expands to more than {MAX_SPEC_NODES:,} values (YAML aliases?); "
                "write the spec out without anchors/aliases or split it"
            )
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(f"{source}: nested deeper than {MAX_SPEC_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and not INT_RANGE[0] <= node <= INT_RANGE[1]:
            raise SpecError(f"{source}: the number {_short(node)} does not fit in 64 bits")


def from_value(value: object, *, source: str = "spec", revision: int = 0) -> ClusterSpec:
    """Validate a parsed YAML/JSON value; SpecError lists every problem."""
    p = Problems(source)
    if not isinstance(value, dict):
        p.add("(top)", f"expected a mapping with {', '.join(TOP_KEYS)}, got {got(value)}")
        p.raise_if_any()
    assert isinstance(value, dict)
    unknown_keys(p, "", value, TOP_KEYS)
    settings = _settings(p, value.get("settings"))
    services_raw = value.get("services", {})
    services: dict[str, ServiceSpec] = {}
    if not isinstance(services_raw, dict):
        p.add("services", f"expected a mapping of service name to service, got {got(services_raw)}")
    else:
        for name in sorted(services_raw, key=str):
            path = f"services.{name}"
            if not isinstance(name, str) or not SERVICE_NAME_PATTERN.fullmatch(name):
                p.add(path, "service names use 1-63 of a-z, 0-9, '.', '_', '-' (e.g. 'router')")
                continue
            svc = _service(p, path, services_raw[name])
            if svc is not None:
                services[name] = svc
    rollout = parse_rollout(p, "rollout", value.get("rollout"))
    provisioner = parse_provisioner(p, "provisioner", value.get("provisioner"))
    forget = _forget(p, value.get("forget"))
    coupled = parse_coupled(p, value.get("coupled"))
    spec = ClusterSpec(
        revision=revision,
        settings=settings,
        services=services,
        rollout=rollout,
        provisioner=provisioner,
        forget=forget,
        coupled=coupled,
    )
    check_semantics(p, spec, services_raw if isinstance(services_raw, dict) else {})
    spec = check_coupled(p, spec, services_raw if isinstance(services_raw, dict) else {})
    p.raise_if_any()
    return spec


def _forget(p: Problems, raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("forget", f"expected a list of machine ids, got {got(raw)}")
        return ()
    out: list[str] = []
    for i, m in enumerate(raw):
        if not isinstance(m, str) or not MACHINE_ID_PATTERN.fullmatch(m) or ".." in m:
            p.add(f"forget[{i}]", f"not a machine id (1-63 of a-z 0-9 . _ -): {got(m)}")
        elif m not in out:
            out.append(m)
    return tuple(sorted(out))


def _settings(p: Problems, raw: object) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        p.add("settings", f"expected a mapping, got {got(raw)}")
        return Settings()
    unknown_keys(p, "settings", raw, (*SETTINGS_KEYS, "cost_budget", "blind_threshold"))
    d = Settings()
    out = {k: duration_field(p, f"settings.{k}", raw.get(k), getattr(d, k)) for k in SETTINGS_KEYS}
    blind = threshold_field(
        p, "settings.blind_threshold", raw.get("blind_threshold"), d.blind_threshold
    )
    s = Settings(**out, blind_threshold=blind or d.blind_threshold)
    if s.heartbeat_timeout < 2 * s.controller_interval:
        p.add(
            "settings.heartbeat_timeout",
            f"{fmt_seconds(s.heartbeat_timeout)} is under two "
            f"controller intervals ({fmt_seconds(s.controller_interval)}): machines would be declared "
            "lost between cycles; raise it or lower controller_interval",
        )
    if s.desired_lifetime <= 2 * s.controller_interval:
        p.add(
            "settings.desired_lifetime",
            f"{fmt_seconds(s.desired_lifetime)} must exceed two "
            f"controller intervals ({fmt_seconds(s.controller_interval)}) so documents are re-signed "
            "before they expire",
        )
    if s.skew_window <= 0:
        p.add("settings.skew_window", "must be above 0s (e.g. 5m)")
    if s.controller_interval <= 0:
        p.add("settings.controller_interval", "must be above 0s (e.g. 10s)")
    if raw.get("cost_budget") is not None and s.controller_interval > 0 and s.desired_lifetime > 0:
        check_cost_budget(p, raw["cost_budget"], s)
    return s


def _service(p: Problems, path: str, raw: object) -> ServiceSpec | None:
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with at least version and count, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, SERVICE_KEYS)
    ok = True
    version = raw.get("version")
    if not version_ok(p, f"{path}.version", version, required=True):
        ok = False
    count = raw.get("count")
    if count is None and raw.get("scale") is not None:
        pass  # the scaler starts from scale.min
    elif count is None:
        p.add(f"{path}.count", "missing: how many machines should run it (e.g. count: 3)")
        ok = False
    elif not isinstance(count, int) or isinstance(count, bool):
        p.add(f"{path}.count", f"expected a whole number of machines, got {got(count)} {count!r}")
        ok = False
    elif count < 0:
        p.add(f"{path}.count", f"impossible count {count}: use 0 or more machines")
        ok = False
    elif count > MAX_COUNT:
        p.add(f"{path}.count", f"count {_short(count)} is above the {MAX_COUNT:,} machines "
              "one Bosun bucket can manage")  # fmt: skip
        ok = False
    kind = raw.get("kind", "service")
    if kind not in ("service", "loadbalancer"):
        p.add(f"{path}.kind", f"expected 'service' or 'loadbalancer', got {kind!r}")
        ok = False
    balances = raw.get("balances")
    if kind == "loadbalancer" and balances is None:
        p.add(f"{path}.balances", "a loadbalancer needs 'balances: <service>'")
        ok = False
    elif kind != "loadbalancer" and balances is not None:
        p.add(
            f"{path}.balances",
            "only a service with 'kind: loadbalancer' balances another; "
            "add kind: loadbalancer or remove balances",
        )
        ok = False
    elif balances is not None and not isinstance(balances, str):
        p.add(f"{path}.balances", f"expected a service name, got {got(balances)}")
        ok = False
    config = raw.get("config", {})
    if not isinstance(config, dict):
        p.add(f"{path}.config", f"expected a mapping, got {got(config)}")
        ok = False
    else:
        ok &= json_ok(p, f"{path}.config", config)
    depends_on = names_field(p, f"{path}.depends_on", raw.get("depends_on", []))
    pools = names_field(p, f"{path}.pools", raw.get("pools", []))
    port = raw.get("port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
    ):
        p.add(f"{path}.port", f"expected a port number 1-65535, got {port!r}")
        ok = False
    weight = raw.get("weight", 100)
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1000:
        p.add(f"{path}.weight", f"expected a whole number 0-1000, got {weight!r}")
        ok = False
    health = _health(p, f"{path}.health", raw.get("health"))
    sessions = _sessions(p, f"{path}.sessions", raw.get("sessions"))
    overrides = _overrides(p, f"{path}.overrides", raw.get("overrides", []))
    rollout = parse_rollout(p, f"{path}.rollout", raw.get("rollout"))
    control = parse_control(p, f"{path}.control", raw.get("control"))
    undo = parse_undo(p, f"{path}.undo", raw.get("undo"))
    approval = parse_approval(p, f"{path}.approval", raw.get("approval"))
    scale = parse_scale(p, f"{path}.scale", raw.get("scale"), count if ok else None)
    budget = parse_budget(p, f"{path}.max_unavailable", raw.get("max_unavailable"))
    provisioner = parse_provisioner(p, f"{path}.provisioner", raw.get("provisioner"))
    if not ok or depends_on is None or pools is None:
        return None
    if scale is not None:
        count = scale.max  # the scaler's bound; it starts from scale.start
    return ServiceSpec(
        version=str(version), count=int(count),  # type: ignore[arg-type]
        kind=kind, balances=balances, config=config, depends_on=depends_on, port=port,
        weight=weight, pools=pools, health=health, sessions=sessions, overrides=overrides,
        rollout=rollout,
        control=control, undo=undo, approval=approval, scale=scale, max_unavailable=budget, provisioner=provisioner,
    )  # fmt: skip


def _health(p: Problems, path: str, raw: object) -> HealthSpec:
    d = HealthSpec()
    if raw is None:
        return d
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(HEALTH_KEYS)}, got {got(raw)}")
        return d
    unknown_keys(p, path, raw, HEALTH_KEYS)
    return HealthSpec(
        **{
            k: duration_field(p, f"{path}.{k}", raw.get(k), getattr(d, k)) for k in HEALTH_DURATIONS
        },
        blind_threshold=threshold_field(
            p, f"{path}.blind_threshold", raw.get("blind_threshold"), None
        ),
    )


def _sessions(p: Problems, path: str, raw: object) -> SessionsSpec:
    d = SessionsSpec()
    if raw is None:
        return d
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(SESSIONS_KEYS)}, got {got(raw)}")
        return d
    unknown_keys(p, path, raw, SESSIONS_KEYS)
    channels = names_field(p, f"{path}.channels", raw.get("channels", [])) or ()
    disruptive = raw.get("config_disruptive", False)
    if not isinstance(disruptive, bool):
        p.add(f"{path}.config_disruptive", f"expected true or false, got {got(disruptive)}")
        disruptive = False
    return SessionsSpec(
        duration_field(p, f"{path}.drain_timeout", raw.get("drain_timeout"), d.drain_timeout),
        channels,
        disruptive,
    )


def _overrides(p: Problems, path: str, raw: object) -> tuple[Override, ...]:
    if not isinstance(raw, list):
        p.add(path, f"expected a list of overrides, got {got(raw)}")
        return ()
    out: list[Override] = []
    for i, item in enumerate(raw):
        ipath = f"{path}[{i}]"
        if not isinstance(item, dict):
            p.add(ipath, f"expected a mapping with {', '.join(OVERRIDE_KEYS)}, got {got(item)}")
            continue
        unknown_keys(p, ipath, item, OVERRIDE_KEYS)
        oid, select = item.get("id"), item.get("select")
        if not isinstance(oid, int) or isinstance(oid, bool) or oid < 1:
            p.add(f"{ipath}.id", f"expected the spec revision that made it (>= 1), got {oid!r}")
            continue
        try:
            parse_selector(select, where=f"{ipath}.select")  # type: ignore[arg-type]
        except SpecError as exc:
            p.items.append(str(exc))
            continue
        version = item.get("version")
        config = item.get("config", {})
        if version is None and not config:
            p.add(ipath, "an override needs a version, a config, or both")
            continue
        if version is not None and not version_ok(p, f"{ipath}.version", version, required=False):
            continue
        if not isinstance(config, dict) or not json_ok(p, f"{ipath}.config", config):
            if not isinstance(config, dict):
                p.add(f"{ipath}.config", f"expected a mapping, got {got(config)}")
            continue
        out.append(Override(id=oid, select=str(select), version=version, config=config))
    ids = [o.id for o in out]
    if len(ids) != len(set(ids)):
        p.add(path, "override ids must be unique")
    return tuple(out)


def check_semantics(p: Problems, spec: ClusterSpec, raw: Mapping[str, Any]) -> None:
    """Cross-service rules: targets exist, no cycles, counts that can be met."""
    names = set(spec.services) | {n for n in raw if isinstance(n, str)}  # incl. invalid ones
    for name, svc in sorted(spec.services.items()):
        path = f"services.{name}"
        for dep in svc.depends_on:
            if dep not in names:
                p.add(
                    f"{path}.depends_on",
                    f"unknown service {dep!r}{suggest(dep, names)}; "
                    "list only services defined under services:",
                )
            elif dep == name:
                p.add(
                    f"{path}.depends_on",
                    f"cycle {name} -> {name}: a service cannot depend on itself",
                )
        if svc.balances is not None:
            target = spec.services.get(svc.balances)
            if target is None and svc.balances in names:
                pass  # the target itself is invalid: its own problem is reported
            elif target is None:
                p.add(
                    f"{path}.balances",
                    f"unknown service {svc.balances!r}"
                    f"{suggest(svc.balances, names)}; name the service this load balancer fronts",
                )
            elif target.kind == "loadbalancer":
                p.add(
                    f"{path}.balances",
                    f"{svc.balances!r} is itself a loadbalancer; balance a service",
                )
            elif svc.count > 0 and target.count == 0:
                p.add(
                    f"{path}.count",
                    f"impossible: {svc.count} load balancers for "
                    f"{svc.balances!r}, which has count 0; set {svc.balances}.count above 0 or this count to 0",
                )
        for ref in sorted(references(svc.config)):
            if ref not in names:
                p.add(
                    f"{path}.config",
                    f"$instances names unknown service {ref!r}{suggest(ref, names)}",
                )
        for pool in svc.pools:
            if pool in names:
                p.add(
                    f"{path}.pools",
                    f"pool {pool!r} has the name of a service; pick another pool name",
                )
        for ov in svc.overrides:
            sel = parse_selector(ov.select)
            if sel.kind == "count" and sel.number > svc.count:
                p.add(
                    f"{path}.overrides",
                    f"impossible selection {ov.select!r}: {name} has only "
                    f"{svc.count} machines; select at most count={svc.count}",
                )
    deps = {n: [d for d in s.depends_on if d in names and d != n] for n, s in spec.services.items()}
    cycle = find_cycle(deps)
    if cycle:
        p.add(
            f"services.{cycle[0]}.depends_on",
            f"cycle {' -> '.join(cycle)}; remove one of these depends_on entries",
        )


__all__ = ["Problems", "check_semantics", "from_value", "load_yaml", "parse_duration"]
