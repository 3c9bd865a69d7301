"""The `rollout:` section (per service, or top level as the cluster default).

    rollout:
      steps:
        - {shadow: 1, bake: 10m}
        - {canary: 1, weight: 5, bake: 30m}
        - {percent: 25, bake: 10m}
        - {select: "max(count=2,percent=50)", bake: 10m}
        - approve: {}               # waits for `bosun rollout approve`
        - {percent: 100}
      gates: {max_error_rate: 0.02, max_error_ratio: 1.5, max_latency_ratio: 1.3, min_requests: 200,
              min_baseline_requests: 200, confidence: 0.95}
      on_failure: revert            # or halt
      keep_previous: 1h
      keep_warm: 10m                # of keep_previous, old machines' process keeps running
      watch: 30m
      progress_deadline: 2h

A final `percent: 100` step is added when the steps do not end with one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controller.spec.checks import Problems, duration_field, got, unknown_keys
from controller.spec.model import (
    ClusterSpec,
    Gates,
    RolloutControl,
    RolloutSpec,
    RolloutStep,
    StepKind,
)
from controller.spec.selector import parse_selector
from wire.errors import SpecError

ROLLOUT_KEYS = (
    "steps", "gates", "on_failure", "keep_previous", "keep_warm", "watch", "progress_deadline",
)  # fmt: skip
STEP_KINDS: tuple[StepKind, ...] = ("shadow", "canary", "percent", "select", "approve")
STEP_KEYS = (*STEP_KINDS, "weight", "bake")
GATE_KEYS = (
    "max_error_rate", "max_error_ratio", "max_latency_ratio", "min_requests",
    "min_baseline_requests", "confidence",
)  # fmt: skip
CONFIDENCE_RANGE = (0.5, 0.9999)

# Whether the planner acts on `approve` steps (it does: controller/planner/approval.py). Off,
# a spec with one is refused (a rollout would run through an approval the operator counts on).
APPROVAL_STEPS_ACTED_ON = True


def parse_rollout(p: Problems, path: str, raw: object) -> RolloutSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(ROLLOUT_KEYS)}, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, ROLLOUT_KEYS)
    d = RolloutSpec()
    steps_raw = raw.get("steps", [])
    steps: list[RolloutStep] = []
    if not isinstance(steps_raw, list):
        p.add(f"{path}.steps", f"expected a list of steps, got {got(steps_raw)}")
    else:
        for i, item in enumerate(steps_raw):
            step = _step(p, f"{path}.steps[{i}]", item)
            if step is not None:
                steps.append(step)
    if not steps or not (steps[-1].kind == "percent" and steps[-1].number == 100):
        steps.append(RolloutStep(kind="percent", number=100.0))
    approvals = [i for i, s in enumerate(steps) if s.kind == "approve"]
    if approvals and not APPROVAL_STEPS_ACTED_ON:
        p.add(
            f"{path}.steps[{approvals[0]}].approve",
            "this controller does not wait at approval steps yet (docs/spec.md#approval); "
            "remove the step, or hold the rollout with `bosun rollout pause` and go on with "
            "`bosun rollout resume`",
        )
    on_failure = raw.get("on_failure", "revert")
    if on_failure not in ("revert", "halt"):
        p.add(f"{path}.on_failure", f"expected 'revert' or 'halt', got {on_failure!r}")
        on_failure = "revert"
    keep_previous = duration_field(
        p, f"{path}.keep_previous", raw.get("keep_previous"), d.keep_previous
    )
    keep_warm = duration_field(p, f"{path}.keep_warm", raw.get("keep_warm"), d.keep_warm)
    if keep_warm > keep_previous:
        p.add(
            f"{path}.keep_warm",
            f"{keep_warm:g}s is longer than keep_previous ({keep_previous:g}s): machines are "
            "kept warm only while they are kept; raise keep_previous or lower keep_warm",
        )
    return RolloutSpec(
        steps=tuple(steps),
        gates=_gates(p, f"{path}.gates", raw.get("gates")),
        on_failure=on_failure,
        keep_previous=keep_previous,
        keep_warm=keep_warm,
        watch=duration_field(p, f"{path}.watch", raw.get("watch"), d.watch),
        progress_deadline=duration_field(
            p, f"{path}.progress_deadline", raw.get("progress_deadline"), d.progress_deadline
        ),
    )


def _step(p: Problems, path: str, raw: object) -> RolloutStep | None:
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping such as {{canary: 1, bake: 10m}}, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, STEP_KEYS)
    kinds = [k for k in STEP_KINDS if k in raw]
    if len(kinds) != 1:
        p.add(
            path,
            "give exactly one of shadow: N, canary: N, percent: P, select: EXPR, approve: {}",
        )
        return None
    kind = kinds[0]
    value: Any = raw[kind]
    if kind == "approve":
        return _approve_step(p, path, raw)
    bake = duration_field(p, f"{path}.bake", raw.get("bake"), 0.0)
    weight = raw.get("weight")
    if weight is not None:
        if kind != "canary":
            p.add(f"{path}.weight", "weight applies to canary steps only")
            return None
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1000:
            p.add(f"{path}.weight", f"expected a whole number 0-1000, got {weight!r}")
            return None
    if kind in ("shadow", "canary"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            p.add(f"{path}.{kind}", f"expected a whole number of machines >= 1, got {value!r}")
            return None
        return RolloutStep(kind=kind, number=float(value), weight=weight, bake=bake)
    if kind == "percent":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            p.add(f"{path}.percent", f"expected a number in (0, 100], got {value!r}")
            return None
        return RolloutStep(kind="percent", number=float(value), bake=bake)
    try:
        sel = parse_selector(value, where=f"{path}.select")
    except SpecError as exc:
        p.items.append(str(exc))
        return None
    if not sel.sized:
        p.add(
            f"{path}.select",
            f"{value!r}: a step needs a sized selection (count, percent, max, min)",
        )
        return None
    return RolloutStep(kind="select", select=str(sel), bake=bake)


def _approve_step(p: Problems, path: str, raw: dict[Any, Any]) -> RolloutStep | None:
    """`- approve: {}`: nothing else in the step (it has no machines and no bake)."""
    value = raw["approve"]
    if value is not None and value != {}:
        p.add(f"{path}.approve", f"expected {{}} (an approval step has no settings), got {value!r}")
        return None
    extra = [k for k in ("weight", "bake") if k in raw]
    if extra:
        p.add(f"{path}.{extra[0]}", "an approval step waits for the operator: no weight or bake")
        return None
    return RolloutStep(kind="approve")


def _gates(p: Problems, path: str, raw: object) -> Gates:
    if raw is None:
        return Gates()
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(GATE_KEYS)}, got {got(raw)}")
        return Gates()
    unknown_keys(p, path, raw, GATE_KEYS)
    out: dict[str, Any] = {}
    for key in GATE_KEYS[:3]:
        v = raw.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            p.add(f"{path}.{key}", f"expected a number >= 0, got {v!r}")
            continue
        out[key] = float(v)
    for key, default in (("min_requests", Gates().min_requests), ("min_baseline_requests", None)):
        mr = raw.get(key, default)
        if mr is None:
            continue
        if isinstance(mr, bool) or not isinstance(mr, int) or mr < 1:
            p.add(f"{path}.{key}", f"expected a whole number >= 1, got {mr!r}")
        else:
            out[key] = mr
    conf = raw.get("confidence")
    if conf is not None:
        lo, hi = CONFIDENCE_RANGE
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not lo <= conf <= hi:
            p.add(
                f"{path}.confidence",
                f"expected a confidence level from {lo:g} to {hi:g} (e.g. 0.95), got {conf!r}",
            )
        else:
            out["confidence"] = float(conf)
    return Gates(**out)


ACTIONS = ("pause", "resume", "promote", "abort")


def parse_control(p: Problems, path: str, raw: object) -> RolloutControl | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with id, action, version, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, ("id", "action", "version"))
    cid, action, version = raw.get("id"), raw.get("action"), raw.get("version")
    if not isinstance(cid, int) or isinstance(cid, bool) or cid < 1:
        p.add(f"{path}.id", f"expected the spec revision that issued it (>= 1), got {cid!r}")
        return None
    if action not in ACTIONS:
        p.add(f"{path}.action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
        return None
    if not isinstance(version, str) or not version:
        p.add(f"{path}.version", f"expected the rollout's target version, got {version!r}")
        return None
    return RolloutControl(id=cid, action=action, version=version)


def add_control(spec: ClusterSpec, service: str, action: str) -> ClusterSpec:
    """The spec with an operator command for SERVICE's rollout (id = next revision).

    For `bosun rollout pause|resume|promote|abort SERVICE`: apply the result with
    `controller.spec.revisions.apply`. The command targets the service's spec version.
    """
    svc = spec.services.get(service)
    if svc is None:
        known = ", ".join(sorted(spec.services)) or "none"
        raise SpecError(f"rollout {action}: unknown service {service!r} (services: {known})")
    if action not in ACTIONS:
        raise SpecError(f"rollout: unknown action {action!r}; use {', '.join(ACTIONS)}")
    if spec.rollout_of(service) is None:
        raise SpecError(
            f"rollout {action}: {service} has no rollout strategy (services.{service}.rollout "
            "or a top-level rollout); its version changes apply at once"
        )
    control = RolloutControl(id=spec.revision + 1, action=action, version=svc.version)  # type: ignore[arg-type]
    return replace(spec, services={**spec.services, service: replace(svc, control=control)})
