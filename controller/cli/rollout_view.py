"""Reading and rendering a rollout for `bosun rollout status|history` (no click here).

The controller writes `status/rollouts/<service>.json` (the planner's `RolloutStatus`)
whenever a rollout's status changes; the transitions are events (`rollout.*`) under
`events/`, and the planner memory (`control/memory.json`) holds the last rollout of each
service. Everything here only reads.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controller.operations.views import ago, number
from controller.planner.model import ROLLOUT_ACTIVE, Memory, RolloutMemory
from controller.spec.model import ClusterSpec
from controller.spec.revisions import read_current
from controller.spec.signature import SpecTrust
from wire.control import MAX_CONTROL_BYTES
from wire.errors import InvalidDocument, ObjectMissing, SpecError
from wire.layout import MEMORY, rollout_status_key
from wire.store import Store, StoredObject
from wire.times import parse_time

ROLLOUT_EVENTS = "rollout."


def load_spec(store: Store, service: str, what: str, trust: SpecTrust | None = None) -> ClusterSpec:
    """The applied spec, checked to name SERVICE (SpecError otherwise: exit 2) and, with
    `trust`, signed by a listed operator (SpecUnverified otherwise)."""
    current = read_current(store, trust)
    if current is None:
        raise SpecError(
            f"rollout {what}: no spec applied in {store.describe('spec/current.json')}; "
            "apply one with `bosun spec apply FILE`"
        )
    spec = current.spec
    if service not in spec.services:
        known = ", ".join(sorted(spec.services)) or "none"
        raise SpecError(f"rollout {what}: unknown service {service!r} (services: {known})")
    return spec


def load_status(store: Store, service: str) -> dict[str, Any]:
    """status/rollouts/<service>.json, or ObjectMissing saying why there is none."""
    key = rollout_status_key(service)
    got = store.get(key)
    if not isinstance(got, StoredObject):
        raise ObjectMissing(
            f"rollout status: {store.describe(key)} does not exist: {service} has had no "
            "rollout yet (one starts when the spec changes the version of a service with a "
            "rollout strategy) or no controller has run a cycle since"
        )
    try:
        doc = orjson.loads(got.body)
    except orjson.JSONDecodeError:
        raise InvalidDocument(f"{store.describe(key)}: not JSON") from None
    if not isinstance(doc, dict) or "state" not in doc:
        raise InvalidDocument(f"{store.describe(key)}: not a rollout status document")
    return doc


def load_memory(store: Store) -> Memory | None:
    got = store.get(MEMORY, max_bytes=MAX_CONTROL_BYTES)
    if not isinstance(got, StoredObject):
        return None
    return Memory.from_json(got.body, where=store.describe(MEMORY))


def in_progress(spec: ClusterSpec, service: str, memory: Memory | None) -> tuple[bool, str]:
    """(a rollout to the spec's version is in progress or about to start, why not)."""
    version = spec.services[service].version
    r: RolloutMemory | None = memory.rollouts.get(service) if memory is not None else None
    if r is not None and r.active and r.to_version == version:
        return True, ""
    svc_mem = memory.services.get(service) if memory is not None else None
    pending = (
        svc_mem is not None
        and svc_mem.version is not None
        and svc_mem.version != version
        and (r is None or r.to_version != version)
    )
    if pending:  # the controller starts it on its next cycle, and applies the command then
        return True, ""
    if r is None:
        return False, f"{service} has had no rollout (its version is {version})"
    return False, (
        f"the last rollout of {service}, {r.from_version} -> {r.to_version}, is {r.state}"
        + (f" ({r.reason})" if r.reason else "")
    )


def rolling_with(spec: ClusterSpec, service: str, memory: Memory | None) -> tuple[str, ...]:
    """The services a command for SERVICE's rollout acts on: every member of its coupled
    release whose rollout is in progress (dependency order), or SERVICE alone. A member
    moves only when every member may (docs/spec.md, "Coupled releases"), so promoting or
    approving one alone would hold the release as before."""
    return tuple(
        n for n in spec.released_with(service) if n == service or in_progress(spec, n, memory)[0]
    )


def members_text(spec: ClusterSpec, names: tuple[str, ...], what: str) -> str:
    """`web's rollout to version 2.0`, or for several `coupled release G (media to version
    2.1, router to version 3.0)`; `what` is the noun after the service name (`rollout`)."""
    if len(names) == 1:
        return f"{names[0]}'s {what} to version {spec.services[names[0]].version}"
    each = ", ".join(f"{n} to version {spec.services[n].version}" for n in names)
    return f"coupled release {spec.coupled_of(names[0])} ({each})"


# ---- rendering -------------------------------------------------------------------------------


_ago = ago  # one way to say an age, shared with bosun status


def _at(doc: dict[str, Any], name: str, default: float) -> float:
    """A time of the rollout document in Unix seconds (ISO 8601, or a number from an older
    controller); `default` when it is not there."""
    value = doc.get(name)
    return default if value is None else parse_time(value, f"rollout status: {name}")


def bake_left(doc: dict[str, Any], spec: ClusterSpec | None, now: float) -> float:
    """Seconds of bake left now: from the spec's step when it still describes this rollout,
    else what the controller computed when it wrote the document."""
    strategy = spec.rollout_of(doc["service"]) if spec is not None else None
    if doc.get("state") not in ROLLOUT_ACTIVE or doc.get("state") == "halted":
        return 0.0
    if doc.get("paused") or doc.get("state") == "awaiting_approval":  # its clocks stand
        return float(doc.get("bake_left", 0.0))
    if strategy is not None and spec is not None:
        target = spec.services.get(doc["service"])
        step = int(doc.get("step", 0))
        if target is not None and target.version == doc.get("to_version"):
            if doc.get("step_kind") == "watch":
                bake = strategy.watch
            elif 1 <= step <= len(strategy.steps):
                bake = strategy.steps[step - 1].bake
            else:
                bake = 0.0
            return max(0.0, _at(doc, "step_started_at", now) + bake - now)
    return float(doc.get("bake_left", 0.0))


def gate_table(gate: dict[str, Any]) -> Table:
    table = Table(title="gates (this step's window)", title_justify="left")
    for col in ("measure", "new version", "old version", "threshold", "ok"):
        table.add_column(col)

    def ok(value: Any, limit: Any, *, at_least: bool = False) -> str:
        if value is None or limit is None:
            return "-"
        good = value >= limit if at_least else value <= limit
        return "yes" if good else "NO"

    req, min_req = gate.get("new_requests"), gate.get("min_requests")
    enough = ok(req, min_req, at_least=True)
    table.add_row(
        "requests", number(req), number(gate.get("old_requests")), f">= {number(min_req)}",
        "waits" if enough == "NO" else enough,
    )  # fmt: skip
    table.add_row(
        "errors", number(gate.get("new_errors")), number(gate.get("old_errors")), "-", "-"
    )
    rate, max_rate = gate.get("new_error_rate"), gate.get("max_error_rate")
    table.add_row(
        "error rate",
        number(rate),
        number(gate.get("old_error_rate")),
        f"<= {number(max_rate)}" if max_rate is not None else "-",
        ok(rate, max_rate),
    )
    ratio, max_ratio = gate.get("error_ratio"), gate.get("max_error_ratio")
    table.add_row(
        "error ratio", number(ratio, 2), "-",
        f"<= {number(max_ratio)}" if max_ratio is not None else "-", ok(ratio, max_ratio),
    )  # fmt: skip
    lratio, max_l = gate.get("latency_ratio"), gate.get("max_latency_ratio")
    table.add_row(
        "latency ms (ratio)",
        f"{number(gate.get('new_latency_ms'), 1)}" + (f" ({number(lratio, 2)}x)" if lratio else ""),
        number(gate.get("old_latency_ms"), 1),
        f"<= {number(max_l)}x" if max_l is not None else "-",
        ok(lratio, max_l),
    )
    base, min_base = gate.get("old_requests"), gate.get("min_baseline_requests")
    if base is not None or min_base is not None:
        table.add_row(
            "baseline requests", "-", number(base),
            f">= {number(min_base)}" if min_base is not None else "-",
            "waits" if ok(base, min_base, at_least=True) == "NO" else ok(base, min_base, at_least=True),
        )  # fmt: skip
    conf, p_value = gate.get("confidence"), gate.get("p_value")
    if conf is not None or p_value is not None:
        z = gate.get("z")
        significant = "-" if p_value is None or conf is None else (
            "yes" if p_value < 1 - conf else "not yet"
        )  # fmt: skip
        table.add_row(
            "worse than old (z, p-value)",
            f"z {number(z, 2)}, p {number(p_value)}" if p_value is not None else "-", "-",
            f"p < {number(round(1 - conf, 6))}" if conf is not None else "-", significant,
        )  # fmt: skip
    return table


# ---- approval and undo (fields the planner writes in the status document) -------------------
#   "approval": {"waiting": true, "since": T}                  an approve step waits
#   "approval": {"waiting": false, "by": W, "reason": R, "revision": N}   it was approved
#   "undo": {"revision": N, "to_revision": M, "warm": true|false}  this rollout is an undo


def waiting_for_approval(doc: dict[str, Any]) -> bool:
    approval = doc.get("approval")
    return (
        isinstance(approval, dict)
        and bool(approval.get("waiting"))
        and (doc.get("state") in ROLLOUT_ACTIVE)
    )


def record_lines(doc: dict[str, Any], now: float) -> list[str]:
    """Lines about an approval step and an undo, when the status document has them."""
    out: list[str] = []
    if doc.get("group"):
        out.append(f"coupled release {doc['group']}: its services move, and revert, together")
    approval = doc.get("approval")
    if isinstance(approval, dict):
        if waiting_for_approval(doc):
            since = approval.get("since")
            ago_text = f" for {_ago(now - _at(approval, 'since', now))}" if since else ""
            out.append(
                f"waiting for approval{ago_text}: `bosun rollout approve {doc.get('service')} "
                "--reason ...`"
            )
        elif approval.get("by"):
            out.append(
                f"approved by {approval.get('by')}: {approval.get('reason', '')}"
                + (f" (spec revision {approval['revision']})" if approval.get("revision") else "")
            )
    undo = doc.get("undo")
    if isinstance(undo, dict):
        how = {True: "warm machines, in one cycle", False: "through the rollout's stages"}
        out.append(
            f"undo (spec revision {undo.get('revision', '?')}) back to the release of revision "
            f"{undo.get('to_revision', '?')}" + (f": {how[undo['warm']]}" if "warm" in undo else "")
        )
    return out


def status_line(service: str, doc: dict[str, Any] | None, spec: ClusterSpec) -> str:
    """One line that changes only when the rollout does (no clock in it): state, step,
    machines, gate verdict, approval and undo; the reason once it has ended."""
    if doc is None or (
        doc.get("to_version") != spec.services[service].version
        and doc.get("state") not in ROLLOUT_ACTIVE
        and doc.get("from_version") != spec.services[service].version
    ):
        return f"{service}: waiting for the rollout to {spec.services[service].version} to start"
    state = str(doc.get("state"))
    parts = [f"{service} {doc.get('from_version')} -> {doc.get('to_version')}: {state}"]
    if doc.get("group"):
        parts[0] += f" (coupled release {doc['group']})"
    if doc.get("paused"):
        parts[0] += " (paused)"
    if waiting_for_approval(doc):
        parts[0] += " (waiting for approval)"
    parts.append(f"step {doc.get('step')}/{doc.get('steps')} {doc.get('step_kind') or '-'}")
    parts.append(
        f"new {doc.get('cohort', 0)} shadow {doc.get('shadow', 0)} old {doc.get('old', 0)} "
        f"warm {doc.get('previous', 0)}"
    )
    verdict = (doc.get("gate") or {}).get("verdict")
    if verdict:
        parts.append(f"gate {verdict}")
    approval = doc.get("approval")
    if isinstance(approval, dict) and approval.get("by") and not approval.get("waiting"):
        parts.append(f"approved by {approval['by']}")
    if isinstance(doc.get("undo"), dict):
        parts.append(f"undo to revision {doc['undo'].get('to_revision', '?')}")
    if state not in ROLLOUT_ACTIVE and doc.get("reason"):
        parts.append(str(doc["reason"]))
    return "; ".join(parts)


def render_watch(
    service: str, doc: dict[str, Any] | None, spec: ClusterSpec, now: float | None = None
) -> RenderableType:
    """The live view: the status, or what the watch waits for."""
    if doc is None:
        return Text(status_line(service, None, spec))
    return render_status(doc, spec, now)


def render_status(
    doc: dict[str, Any], spec: ClusterSpec | None, now: float | None = None
) -> RenderableType:
    """The progress view: state and step, cohort sizes, gate numbers, time left in bake."""
    now = time.time() if now is None else now
    state = str(doc.get("state"))
    head = Text()
    head.append(f"{doc.get('service')}: {doc.get('from_version')} -> {doc.get('to_version')}  ")
    style = {"reverted": "bold red", "halted": "bold red", "complete": "bold green"}
    head.append(state, style=style.get(state, "bold yellow"))
    if doc.get("paused"):
        head.append("  PAUSED by the operator", style="bold magenta")
    if waiting_for_approval(doc):
        head.append("  WAITING FOR APPROVAL", style="bold magenta")
    kind = doc.get("step_kind") or "-"
    lines = [head]
    if state in ROLLOUT_ACTIVE:
        lines.append(
            Text(
                f"step {doc.get('step')} of {doc.get('steps')}: {kind}; "
                f"bake left {_ago(bake_left(doc, spec, now))}; "
                f"started {_ago(now - _at(doc, 'started_at', now))} ago, "
                f"this step {_ago(now - _at(doc, 'step_started_at', now))} ago"
            )
        )
    else:
        finished = doc.get("finished_at")
        when = f" {_ago(now - _at(doc, 'finished_at', now))} ago" if finished else ""
        lines.append(Text(f"finished{when} at step {doc.get('step')} of {doc.get('steps')}"))
    cohort = Text(
        f"machines: new version {doc.get('cohort', 0)} (serving), shadow {doc.get('shadow', 0)}, "
        f"old version {doc.get('old', 0)} (serving), kept warm {doc.get('previous', 0)}"
    )
    lines.append(cohort)
    lines += [Text(line) for line in record_lines(doc, now)]
    gate = doc.get("gate") or {}
    parts: list[RenderableType] = [*lines]
    if gate:
        parts.append(gate_table(gate))
        verdict = gate.get("verdict", "-")
        parts.append(Text(f"verdict: {verdict}: {gate.get('reason', '')}"))
    if doc.get("reason"):
        parts.append(Text(f"reason: {doc['reason']}"))
    return Group(*parts)


def history_rows(events: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """The rollout transitions of SERVICE among events, oldest first."""
    return [
        ev
        for ev in events
        if ev.get("service") == service and str(ev.get("kind", "")).startswith(ROLLOUT_EVENTS)
    ]


NUMBERS = ("new_requests", "new_error_rate", "old_error_rate", "error_ratio", "latency_ratio")


def numbers_text(data: dict[str, Any]) -> str:
    shown = [f"{k}={number(data[k])}" for k in NUMBERS if data.get(k) is not None]
    shown += [f"{k}={data[k]}" for k in ("from", "to", "new", "action") if k in data]
    return ", ".join(shown)
