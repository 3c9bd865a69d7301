"""Operator reads of what the controller wrote: status, machines, history, events.

Readers need no key: they parse what is there (snapshots in history/ are shown as
received; the controller verified them before archiving). status/cluster.json is decoded
strictly into a `ClusterStatus`; how old it is, and which machines are stale, is judged
here at read time (`Freshness`) from the lease's last renewal and each machine's last
accepted report, which the CLI reads and passes in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from controller.planner.core import silence_allowed
from controller.planner.model import MachineObservation, MachineStatus
from controller.spec.model import Settings
from controller.status_document import MAX_STATUS_BYTES, ClusterStatus, Seen
from wire.documents import Addresses, Snapshot
from wire.errors import InvalidDocument, ObjectMissing
from wire.layout import LEASE, SPEC_CURRENT, STATUS_CLUSTER
from wire.store import Store, StoredObject

MACHINE_FIELDS = (
    "machine",
    "service",
    "mode",
    "status",
    "health",
    "version",
    "running",
    "generation",
    "applied_generation",
    "age",
    "internal",
    "external",
    "apply_error",  # the agent's last apply failed: its error (not a table column: a line)
)
MACHINE_STATES = ("running", "unhealthy", "stale", "lost", "unseen")
SILENT_CYCLES = 3  # the controller is silent after this many of its intervals without a cycle


def load_status(store: Store) -> ClusterStatus:
    """status/cluster.json, strictly decoded; a clear InvalidDocument when it does not."""
    where = store.describe(STATUS_CLUSTER)
    got = store.get(STATUS_CLUSTER, max_bytes=MAX_STATUS_BYTES)
    if not isinstance(got, StoredObject):
        raise ObjectMissing(
            f"{where} does not exist yet: no controller cycle has run (bosun controller once)"
        )
    try:
        return ClusterStatus.from_json(got.body, where=where)
    except InvalidDocument as exc:
        raise InvalidDocument(
            f"{exc}; {where} is not a status document this bosun can read (written by "
            "another bosun version, or damaged): upgrade bosun to the controller's version, "
            "or let the controller rewrite it (it does at the next change in the cluster)"
        ) from None


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old the status is, judged by the reader's clock.

    `last_cycle` is the lease's `renewed_at` (control/lease.json: renewed by the leader at
    every cycle), not the status's `at` (rewritten only when its content changes). The
    controller is silent when its last cycle is older than SILENT_CYCLES times the spec's
    `controller_interval` (three missed cycles, so a late cron run is not an alarm); a
    machine is stale when its last accepted report is older than its liveness window
    (controller.planner.core.silence_allowed: what the planner itself allows).
    """

    now: float
    last_cycle: float | None  # None: no lease, no controller cycle yet
    heartbeat_timeout: float  # the spec's settings
    controller_interval: float
    holder: str = ""
    released: bool = False  # the leader stopped cleanly and no one took over since

    @classmethod
    def of(
        cls,
        now: float,
        settings: Settings,
        last_cycle: float | None,
        *,
        holder: str = "",
        released: bool = False,
    ) -> Freshness:
        return cls(
            now,
            last_cycle,
            settings.heartbeat_timeout,
            settings.controller_interval,
            holder,
            released,
        )

    @property
    def silent_after(self) -> float:
        return SILENT_CYCLES * self.controller_interval

    @property
    def cycle_age(self) -> float | None:
        return None if self.last_cycle is None else max(0.0, self.now - self.last_cycle)

    @property
    def controller_silent(self) -> bool:
        age = self.cycle_age
        return age is None or age > self.silent_after

    def window(self, machine: str, seen: Seen) -> float:
        """How long `machine` may stay silent before the planner calls it lost."""
        snapshot = Snapshot(
            machine=machine,
            seq=seen.seq,
            sent_at=seen.sent_at,
            boot_id="",
            agent_version=seen.agent_version,
            heartbeat_interval=seen.heartbeat_interval,
        )
        return silence_allowed(
            self.heartbeat_timeout, MachineObservation(snapshot, seen.accepted_at)
        )

    def describe(self) -> str:
        """One line: when the controller last cycled, and whether this view is stale."""
        age = self.cycle_age
        if age is None or self.last_cycle is None:
            return f"no controller cycle yet ({LEASE} missing): this view is stale"
        who = f"controller {self.holder}" if self.holder else "controller"
        last = f"last cycle {iso(self.last_cycle)}"
        if self.released:
            last += ", lease released"
        if self.controller_silent:
            return (
                f"{who} silent for {ago(age)} ({last}; more than {SILENT_CYCLES} x its "
                f"{interval(self.controller_interval)} interval): this view is stale"
            )
        return f"{who}: {last}, {ago(age)} ago"


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def interval(seconds: float) -> str:
    """A configured period for people: 0.5s, 10s, 5m (ago() would round 0.5 s to 0s)."""
    return f"{seconds:g}s" if seconds < 120 else ago(seconds)


def number(value: Any, digits: int = 4) -> str:
    """A gate figure for people: `-` for none, a float to `digits` places without trailing
    zeros (`0.0125`, `3`), anything else as it is."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def ago(seconds: float) -> str:
    """A relative age for people: 42s, 12m, 5.2h, 3.0d."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def machine_state(m: MachineStatus, age: float | None, window: float) -> str:
    """lost (the planner said so), unseen, stale (silent past its window), unhealthy, running."""
    if m.lost:
        return "lost"
    if age is None:
        return "unseen"
    if age > window:
        return "stale"
    return "unhealthy" if m.health == "unhealthy" else "running"


def machine_rows(doc: ClusterStatus, fresh: Freshness) -> list[dict[str, Any]]:
    """One row per machine the planner knows, with its age and state as of `fresh.now`."""
    rows = []
    for name, m in sorted(doc.status.machines.items()):
        seen = doc.seen.get(name)
        if seen is not None:
            age: float | None = round(fresh.now - seen.accepted_at, 1)
            window = fresh.window(name, seen)
            addresses = seen.addresses
        else:  # no accepted report on record: the planner's age, grown since it wrote it
            age = None if m.age is None else round(m.age + fresh.now - doc.status.at, 1)
            window = fresh.heartbeat_timeout
            addresses = Addresses()
        rows.append(
            {
                "machine": name,
                "service": m.service,
                "mode": m.mode,
                "status": machine_state(m, age, window),
                "health": m.health,
                "version": m.version,
                "running": m.running,
                "generation": m.generation,
                "applied_generation": m.applied_generation,
                "apply_error": m.apply_error,
                "age": age,
                "internal": addresses.internal,
                "external": addresses.external,
            }
        )
    return rows


def filter_rows(
    rows: list[dict[str, Any]], *, service: str | None, status: str | None, mode: str | None
) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if (service is None or r["service"] == service)
        and (status is None or r["status"] == status)
        and (mode is None or r["mode"] == mode)
    ]


def rows_xml(rows: list[dict[str, Any]], doc: ClusterStatus) -> bytes:
    root = ET.Element(
        "machines", {"spec_revision": str(doc.status.spec_revision), "at": str(doc.status.at)}
    )
    for r in rows:
        attrs = {
            k: "" if r[k] is None else str(r[k])
            for k in MACHINE_FIELDS
            if k not in ("machine", "internal", "external")
        }
        el = ET.SubElement(root, "machine", {"id": r["machine"], **attrs})
        for kind in ("internal", "external"):
            if r[kind]:
                ET.SubElement(el, "address", {"kind": kind}).text = r[kind]
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"


# ---- bosun status --check -------------------------------------------------------------------

WARNING, DEGRADED, STALE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Problem:
    code: int  # WARNING (0: said, exit code unchanged), DEGRADED (1) or STALE (2)
    kind: str  # warning | degraded | stale | blind
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


def never_healthy(doc: ClusterStatus) -> dict[str, str]:
    """Services with active machines of which none is healthy, because every one of them
    reports health `unknown` (its agent config has no `health` probe for the service) or
    `unhealthy` (its probe fails): the planner makes no such machine a balancer's peer, so
    a balancer in front of them routes to nothing. Only machines that applied their planned
    document count: a machine that has not yet started the service reports `unknown` too.
    Service -> why, for operators."""
    out: dict[str, str] = {}
    for name, s in sorted(doc.status.services.items()):
        if s.kind != "service" or s.active == 0 or s.healthy > 0:
            continue
        health = {
            m.health
            for m in doc.status.machines.values()
            if m.service == name
            and m.mode in ("active", "canary")
            and not m.lost
            and m.applied_generation >= m.generation
        }
        if health == {"unknown"}:
            out[name] = (
                "no active machine reports health: their agent config has no health probe "
                f"(services.{name}.health), so none can become healthy and no balancer "
                "gets one as a peer"
            )
        elif health == {"unhealthy"}:
            out[name] = (
                "every active machine's health probe fails, so no balancer gets one as a "
                f"peer; check services.{name}.health in their agent config"
            )
    return out


def problems(doc: ClusterStatus, fresh: Freshness, rows: list[dict[str, Any]]) -> list[Problem]:
    """What `bosun status --check` reports, worst first; the exit code is the highest code.

    Stale or blind (2): the controller is silent, or the planner holds a service static.
    Degraded (1): a service with fewer healthy machines than asked (and, when none of its
    active machines can become healthy, why: `never_healthy`), a lost machine, a
    machine silent past its window while the controller cycles (the next cycle judges
    it), a refused spec/current.json.
    """
    out: list[Problem] = []
    silent = fresh.controller_silent
    if silent:
        out.append(Problem(STALE, "stale", fresh.describe()))
    for name, hold in sorted(doc.status.holds.items()):
        out.append(
            Problem(
                STALE,
                "blind",
                f"{name}: held static for {ago(fresh.now - hold.since)} ({hold.scope}): "
                f"{hold.reason} ({hold.silent} of {hold.total} machines silent)",
            )
        )
    if doc.spec_refused is not None:
        out.append(
            Problem(DEGRADED, "degraded", f"{SPEC_CURRENT} refused: {doc.spec_refused.detail}")
        )
    sig = doc.spec_signature
    if sig is not None and not sig.enforced:
        out.append(
            Problem(
                WARNING,
                "warning",
                "spec revisions are not signed: no operator key is listed in control/keys.json, "
                "so anyone who can write spec/ decides what machines run (docs/deploy.md"
                "#operator-keys: bosun keygen --operator NAME, bosun keys add-operator)",
            )
        )
    for key, refusal in sorted(doc.control_refused.items()):
        if refusal.active:
            out.append(
                Problem(DEGRADED, "degraded", f"{key} refused ({refusal.reason}): {refusal.detail}")
            )
    for name, s in sorted(doc.status.services.items()):
        if s.healthy < s.count:
            out.append(
                Problem(DEGRADED, "degraded", f"{name}: {s.healthy} healthy of {s.count} asked")
            )
    for name, why in never_healthy(doc).items():
        out.append(Problem(DEGRADED, "degraded", f"{name}: {why}"))
    stale = [r for r in rows if r["status"] == "stale"]
    for r in rows:
        if r["apply_error"] and r["status"] != "lost":
            out.append(
                Problem(
                    DEGRADED,
                    "degraded",
                    f"{r['machine']}: applying generation {r['generation']} failed, still "
                    f"running {r['applied_generation']}: {r['apply_error']}",
                )
            )
    for r in rows:
        if r["status"] == "lost":
            last = "never reported" if r["age"] is None else f"last report {ago(r['age'])} ago"
            out.append(Problem(DEGRADED, "degraded", f"{r['machine']}: lost ({last})"))
    if silent and stale:
        out.append(
            Problem(
                STALE,
                "stale",
                f"{len(stale)} machines stale (no report accepted since the "
                "controller went silent)",
            )
        )
    elif stale:
        for r in stale:
            out.append(
                Problem(
                    DEGRADED,
                    "degraded",
                    f"{r['machine']}: stale: last report {ago(r['age'])} ago, past its "
                    "liveness window (the next controller cycle judges it)",
                )
            )
    out.sort(key=lambda p: -p.code)
    return out


__all__ = [
    "DEGRADED",
    "MACHINE_STATES",
    "STALE",
    "Freshness",
    "Problem",
    "ago",
    "filter_rows",
    "iso",
    "load_status",
    "machine_rows",
    "machine_state",
    "number",
    "problems",
    "rows_xml",
]
