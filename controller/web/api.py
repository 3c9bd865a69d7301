"""The REST API's answers as values (docs/api.md): no HTTP here, so each is testable alone.

Machine rows are `controller.operations.views.machine_rows`: the same columns, states and
XML as `bosun machines -o json|csv|xml`, so `examples/firewall.xsl` transforms the API's
XML as it transforms the CLI's. Every answer says how fresh it is (`controller`: the
freshness line, `stale`: the controller is silent or a service is held static).
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from controller.operations import views
from controller.web.reader import Fleet, GatePoint
from wire import codec
from wire.durations import parse_duration

API_VERSION = "v1"
FORMATS = ("json", "xml", "csv")
MACHINE_FILTERS = ("service", "mode", "status", "health", "version", "running", "address")
MODES = ("active", "canary", "shadow", "standby", "warm", "draining", "deactivated")
HEALTH = ("healthy", "unhealthy", "unknown", "lost")
CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
MAX_EVENTS_SINCE = 31 * 86400.0
MAX_HISTORY = 500


class ApiError(Exception):
    """A request the API refuses: the HTTP status and one line saying what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_params(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    """400 for a parameter the endpoint does not know (a typo must not widen the answer)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter {unknown[0]!r}; this endpoint takes: "
            + (", ".join(allowed) or "none"),
        )


def output_format(params: Mapping[str, str], allowed: tuple[str, ...] = FORMATS) -> str:
    fmt = params.get("format", "json")
    if fmt not in allowed:
        raise ApiError(400, f"format={fmt!r}: use one of {', '.join(allowed)}")
    return fmt


# ---- machines ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineQuery:
    service: str | None = None
    mode: str | None = None
    status: str | None = None
    health: str | None = None
    version: str | None = None
    running: str | None = None
    address: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> MachineQuery:
        def choice(name: str, allowed: tuple[str, ...]) -> str | None:
            value = params.get(name)
            if value is not None and value not in allowed:
                raise ApiError(400, f"{name}={value!r}: use one of {', '.join(allowed)}")
            return value

        address = None
        if "address" in params:
            try:
                address = ipaddress.ip_network(params["address"], strict=False)
            except ValueError:
                raise ApiError(
                    400,
                    f"address={params['address']!r}: give an IP address or a network "
                    "(10.0.0.7, 10.0.0.0/24, fd00::/8)",
                ) from None
        return cls(
            service=params.get("service"),
            mode=choice("mode", MODES),
            status=choice("status", views.MACHINE_STATES),
            health=choice("health", HEALTH),
            version=params.get("version"),
            running=params.get("running"),
            address=address,
        )

    def select(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = views.filter_rows(rows, service=self.service, status=self.status, mode=self.mode)
        return [
            r
            for r in rows
            if (self.health is None or r["health"] == self.health)
            and (self.version is None or r["version"] == self.version)
            and (self.running is None or r["running"] == self.running)
            and (self.address is None or self._address_in(r))
        ]

    def _address_in(self, row: dict[str, Any]) -> bool:
        for kind in ("internal", "external"):
            text = row.get(kind)
            if not text:
                continue
            try:
                if ipaddress.ip_address(text) in self.address:  # type: ignore[operator]
                    return True
            except ValueError:
                continue
        return False


def machines_body(fleet: Fleet, rows: list[dict[str, Any]], fmt: str) -> bytes:
    """The machine rows as `bosun machines -o FMT` prints them; json wrapped with the
    freshness of the read."""
    if fmt == "xml":
        return views.rows_xml(rows, fleet.doc)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(views.MACHINE_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode()
    return dumps({**freshness(fleet), "machines": rows})


def machine_value(fleet: Fleet, name: str) -> dict[str, Any]:
    row = next((r for r in fleet.rows if r["machine"] == name), None)
    if row is None:
        raise ApiError(404, f"machine {name!r} is not in status/cluster.json")
    doc = fleet.doc
    seen = doc.seen.get(name)
    return {
        **freshness(fleet),
        "machine": row,
        "seen": codec.encode(seen, times="epoch") if seen is not None else None,
        "rejected": codec.encode(doc.rejected[name], times="epoch")
        if name in doc.rejected
        else None,
        "agent_refusals": (
            codec.encode(doc.agent_refusals[name], times="epoch")
            if name in doc.agent_refusals
            else None
        ),
    }


# ---- services, rollouts, status ---------------------------------------------------------------


def freshness(fleet: Fleet) -> dict[str, Any]:
    f = fleet.fresh
    return {
        "api": API_VERSION,
        "read_at": f.now,
        "stale": fleet.stale,
        "controller": {
            "holder": f.holder,
            "last_cycle": f.last_cycle,
            "silent": f.controller_silent,
            "describe": f.describe(),
        },
        # how far status/cluster.json's controller signature verified: true (against the
        # pinned key), null (not verifiable here: no pin), false never reaches a reader
        "signature": {"verified": fleet.signature.ok, "describe": fleet.signature.text},
    }


def services_value(fleet: Fleet) -> dict[str, Any]:
    status = fleet.doc.status
    return {
        **freshness(fleet),
        "services": {name: service_entry(fleet, name) for name in sorted(status.services)},
    }


def service_entry(fleet: Fleet, name: str) -> dict[str, Any]:
    status = fleet.doc.status
    if name not in status.services:
        raise ApiError(404, f"service {name!r} is not in status/cluster.json")
    hold = status.holds.get(name)
    rows = [r for r in fleet.rows if r["service"] == name]
    return {
        **codec.encode(status.services[name], times="epoch"),
        "hold": codec.encode(hold, times="epoch") if hold is not None else None,
        "machines": {
            state: sum(r["status"] == state for r in rows) for state in views.MACHINE_STATES
        },
        "rollout": name in status.rollouts,
    }


def rollouts_value(fleet: Fleet) -> dict[str, Any]:
    return {
        **freshness(fleet),
        "rollouts": {
            name: codec.encode(r, times="epoch")
            for name, r in sorted(fleet.doc.status.rollouts.items())
        },
    }


def rollout_value(fleet: Fleet, service: str, points: list[GatePoint]) -> dict[str, Any]:
    r = fleet.doc.status.rollouts.get(service)
    if r is None:
        raise ApiError(404, f"service {service!r} has had no rollout (none in status/cluster.json)")
    return {
        **freshness(fleet),
        "rollout": codec.encode(r, times="epoch"),
        "points": [{"t": p.t, "source": p.source, **p.numbers} for p in points],
    }


def status_value(fleet: Fleet) -> dict[str, Any]:
    return {
        **freshness(fleet),
        "problems": [{"code": p.code, "kind": p.kind, "text": p.text} for p in fleet.problems],
        "status": fleet.doc.encode(),
    }


# ---- events and history -------------------------------------------------------------------------


def since_param(params: Mapping[str, str], default: str = "1h") -> float:
    text = params.get("since", default)
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0 or seconds > MAX_EVENTS_SINCE:
        raise ApiError(400, f"since={text!r}: use a duration up to 31d (10m, 1h, 2d)")
    return seconds


def filter_events(events: list[dict[str, Any]], params: Mapping[str, str]) -> list[dict[str, Any]]:
    from controller.operations.history import filter_events as keep

    return keep(
        events,
        kind=params.get("kind"),
        machine=params.get("machine"),
        service=params.get("service"),
    )


def limit_param(params: Mapping[str, str], default: int = 20) -> int:
    text = params.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= MAX_HISTORY:
        raise ApiError(400, f"limit={text!r}: use a whole number from 1 to {MAX_HISTORY}")
    return int(text)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


__all__ = [
    "API_VERSION",
    "CONTENT_TYPES",
    "FORMATS",
    "MACHINE_FILTERS",
    "ApiError",
    "MachineQuery",
    "check_params",
    "dumps",
    "filter_events",
    "freshness",
    "limit_param",
    "machine_value",
    "machines_body",
    "output_format",
    "rollout_value",
    "rollouts_value",
    "service_entry",
    "services_value",
    "since_param",
    "status_value",
]
