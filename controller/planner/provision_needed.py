"""When to ask a provisioner for machines, pure: `ProvisionNeeded` effects.

For every service with a provisioner (its own `provisioner:` or the cluster's), after
assignment and draining:

    wanted = count (the scaler's, for a scaled service) + scale.standby (warm machines)
    have   = live machines of the service: active, canary, shadow, draining or standby

- `have < wanted`: ask for `wanted - have` machines (`provision.requested`).
- a scaled service with more warm standby than `scale.standby`, its cooldown passed:
  ask to remove the excess (negative count) (`provision.requested`).
- `target` is the machines wanted in total for the provisioner's group: every live
  machine of the services sharing that provisioner, plus this request's count (an
  Auto Scaling group sets it as its desired capacity, so repeating it changes nothing).

A request in flight is remembered (`Memory.provisions[service]`) and not repeated: when
demand grows past what is booting, only the difference is asked (a new request_id and a
higher target). It is fulfilled when the service reaches its target (`provision.fulfilled`), or it expires
after `scale.boot_timeout` (default 10 min; `provision.expired`), after which the
planner may ask again. The shell (`controller/shell/cycle.py`) carries the requests out and
records each result as an event; a failed request also waits for the timeout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from controller.planner.assign import Assignment
from controller.planner.model import (
    Event,
    Memory,
    ProvisionMemory,
    ProvisionNeeded,
    ScaleMemory,
)
from controller.spec.model import ClusterSpec

MEMBER_MODES = frozenset({"active", "canary", "shadow", "draining", "standby", "warm"})
DEFAULT_BOOT_TIMEOUT = 600.0


def provision_pass(
    spec: ClusterSpec,
    work: Assignment,
    memory: Memory,
    now: float,
    scale: Mapping[str, ScaleMemory] | None = None,
) -> tuple[list[ProvisionNeeded], dict[str, ProvisionMemory], list[Event]]:
    """(requests to make now, provisions in flight after this pass, events). `scale`: the
    scaler's state after this pass (its last change starts the cooldown)."""
    scale = memory.scale if scale is None else scale
    wanted_by = {n: spec.provisioner_of(n) for n in sorted(spec.services)}
    with_prov = {n: p for n, p in wanted_by.items() if p is not None}
    if not with_prov and not memory.provisions:
        return [], {}, []
    have: dict[str, int] = {}
    standby: dict[str, int] = {}
    for m in work.live:
        of, mode = work.service.get(m), work.mode.get(m)
        if of is None or mode not in MEMBER_MODES:
            continue
        have[of] = have.get(of, 0) + 1
        if mode in ("standby", "warm"):
            standby[of] = standby.get(of, 0) + 1
    groups: dict[str, int] = {}  # provisioner identity -> live machines of its services
    for n, p in with_prov.items():
        key = json.dumps(p, sort_keys=True)
        groups[key] = groups.get(key, 0) + have.get(n, 0)
    requests: list[ProvisionNeeded] = []
    flight: dict[str, ProvisionMemory] = {}
    events: list[Event] = []
    for name, settings in with_prov.items():
        svc = spec.services[name]
        sc = svc.scale
        warm = sc.standby if sc is not None else 0
        boot = sc.boot_timeout if sc is not None else DEFAULT_BOOT_TIMEOUT
        wanted = svc.count + warm
        got = have.get(name, 0)
        pending = memory.provisions.get(name)
        if pending is not None:
            done = got >= pending.target if pending.count > 0 else got <= pending.target
            if done:
                events.append(
                    Event("provision.fulfilled",
                          f"{got} machines, target {pending.target} (request {pending.request_id})",
                          service=name, data={"request_id": pending.request_id, "have": got})
                )  # fmt: skip
            elif now - pending.at >= boot:
                events.append(
                    Event("provision.expired",
                          f"{got} of {pending.target} machines after {boot:g}s "
                          f"(request {pending.request_id}); may ask again",
                          service=name, data={"request_id": pending.request_id, "have": got})
                )  # fmt: skip
            elif pending.count < 0 or wanted <= pending.target:
                flight[name] = pending
                continue
            else:  # demand grew past what is booting: ask only for the difference
                count = wanted - pending.target
                reason = (
                    f"{got} of {wanted} machines (count {svc.count} + standby {warm}), "
                    f"{pending.target - got} already booting ({pending.request_id})"
                )
                flight[name] = _request(
                    name, count, wanted, reason, groups, settings, memory, now, requests, events
                )
                continue
        count = 0
        reason = ""
        if got < wanted:
            count = wanted - got
            reason = f"{got} of {wanted} machines (count {svc.count} + standby {warm})"
        elif sc is not None and standby.get(name, 0) > warm and got > wanted:
            scaled = scale.get(name)
            if scaled is None or now - scaled.changed_at >= sc.cooldown:
                count = -min(standby.get(name, 0) - warm, got - wanted)
                reason = f"{standby.get(name, 0)} warm standby, {warm} wanted"
        if count == 0:
            continue
        flight[name] = _request(
            name, count, got + count, reason, groups, settings, memory, now, requests, events
        )
    return requests, flight, events


def _request(
    name: str,
    count: int,
    service_target: int,
    reason: str,
    groups: dict[str, int],
    settings: object,
    memory: Memory,
    now: float,
    requests: list[ProvisionNeeded],
    events: list[Event],
) -> ProvisionMemory:
    key = json.dumps(settings, sort_keys=True)
    groups[key] = groups.get(key, 0) + count  # a later request to the same group adds up
    target = max(0, groups[key])
    request_id = f"{name}-{memory.cycle + 1}"
    requests.append(ProvisionNeeded(name, count, target, reason, request_id))
    events.append(
        Event("provision.requested", f"{count:+d} machines: {reason}", service=name,
              data={"count": count, "target": target, "request_id": request_id})
    )  # fmt: skip
    return ProvisionMemory(request_id, count, service_target, now, reason)


__all__ = ["provision_pass"]
