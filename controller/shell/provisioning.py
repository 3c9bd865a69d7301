"""The plan's provision requests handed to their services' provisioners (the cycle's last
step before the records): every result or failure becomes an event."""

from __future__ import annotations

import logging
from collections.abc import Callable

from controller.planner.model import Event, ProvisionNeeded
from controller.provision import ProvisionRequest, build_provisioner
from controller.spec.model import ClusterSpec
from wire import codec
from wire.codec import JsonValue

log = logging.getLogger(__name__)


def provision(
    spec: ClusterSpec | None,
    requests: tuple[ProvisionNeeded, ...],
    can_act: Callable[[], bool] = lambda: True,
) -> list[Event]:
    """Hand each provision request of the plan to its service's provisioner; every result
    or failure is an event (the planner remembers the request either way and asks again
    only after its boot_timeout)."""
    out: list[Event] = []
    for req in requests:
        settings = spec.provisioner_of(req.service) if spec is not None else None
        if settings is None or not can_act():
            continue
        data: dict[str, JsonValue] = {
            "request_id": req.request_id,
            "count": req.count,
            "target": req.target,
        }
        try:
            provisioner = build_provisioner(dict(settings))
            result = provisioner.provision(
                ProvisionRequest(req.service, req.count, req.target, req.reason, req.request_id)
            )
        except Exception as exc:  # a provisioner must never stop the cycle
            log.warning("provision.failed %s: %s", req.request_id, exc)
            reason = f"{type(exc).__name__}: {exc}"
            out.append(Event("provision.failed", reason, service=req.service, data=data))
            continue
        log.info("provision.started %s: %s", req.request_id, result.started)
        out.append(
            Event(
                "provision.started",
                result.detail or f"{len(result.started)} started",
                service=req.service,
                data={**data, "started": list(result.started)},
            )
        )
    return out


def run_provisions(
    spec: ClusterSpec | None,
    requests: tuple[ProvisionNeeded, ...],
    can_act: Callable[[], bool] = lambda: True,
) -> list[dict[str, JsonValue]]:
    """`provision`, its events in the JSON form they are written in (events/*.jsonl)."""
    return [codec.encode(e) for e in provision(spec, requests, can_act)]
