"""What `bosun spec apply FILE` keeps of the applied spec that the file does not say.

A spec file is the operator's intent; some of the applied spec was written by commands
instead: overrides (`bosun update`) and the rollout records (`control:`, `undo:`,
`approval:`). Applying a file that does not mention them must not erase them unseen:

- overrides: a service whose file entry lists no `overrides:` keeps the applied ones (each
  reported), unless `drop_overrides`; an override the file now contains (its version is the
  file's version and its config is in the file's config) is dropped as absorbed; a file that
  lists overrides for a service replaces them (the applied ones it leaves out are reported);
- `control:`, `undo:`, `approval:` are kept when the file has none (they are commands,
  acted on once by their revision id, not desired state);
- a file that asks again for a version `bosun rollout undo` took back is reported.
Nothing here reads or writes the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.spec.load import Problems, check_semantics
from controller.spec.model import ClusterSpec, Override, ServiceSpec


@dataclass(frozen=True, slots=True)
class Carried:
    spec: ClusterSpec
    kept: tuple[str, ...] = ()  # overrides kept from the applied spec, one line each
    dropped: tuple[str, ...] = ()  # overrides of the applied spec that the new one drops
    warnings: tuple[str, ...] = ()


def describe(service: str, ov: Override) -> str:
    what = [f"version {ov.version}"] if ov.version is not None else []
    what += [f"config {', '.join(sorted(ov.config))}"] if ov.config else []
    return f"{service} #{ov.id} {ov.select} -> {' and '.join(what)}"


def _absorbed(ov: Override, svc: ServiceSpec) -> bool:
    return ov.version in (None, svc.version) and all(
        k in svc.config and svc.config[k] == v for k, v in ov.config.items()
    )


def carry_over(current: ClusterSpec, new: ClusterSpec, *, drop_overrides: bool) -> Carried:
    """`new` with what it must keep of `current`, and what was kept, dropped and noticed."""
    kept: list[str] = []
    dropped: list[str] = []
    warnings: list[str] = []
    services = dict(new.services)
    for name, old in sorted(current.services.items()):
        svc = services.get(name)
        if svc is None:
            dropped += [f"{describe(name, ov)} (service removed)" for ov in old.overrides]
            continue
        if svc.overrides:
            listed = {ov.id for ov in svc.overrides}
            dropped += [
                f"{describe(name, ov)} (not in the file's overrides)"
                for ov in old.overrides
                if ov.id not in listed
            ]
            overrides = svc.overrides
        else:
            overrides = ()
            for ov in old.overrides:
                if _absorbed(ov, svc):
                    dropped.append(f"{describe(name, ov)} (absorbed: the file has it)")
                elif drop_overrides:
                    dropped.append(f"{describe(name, ov)} (--drop-overrides)")
                else:
                    kept.append(describe(name, ov))
                    overrides = (*overrides, ov)
        undo = svc.undo or old.undo
        if (
            old.undo is not None
            and old.version == old.undo.version
            and svc.version == old.undo.from_version
        ):
            warnings.append(
                f"{name}: the file asks again for version {svc.version}, which `bosun rollout "
                f"undo` took back to {old.undo.version} in revision {old.undo.id}"
            )
        services[name] = replace(
            svc,
            overrides=overrides,
            control=svc.control or old.control,
            undo=undo,
            approval=svc.approval or old.approval,
        )
    out = replace(new, services=services)
    if kept:  # the file validated without them: check the spec they are kept in
        p = Problems(
            f"with the overrides kept from revision {current.revision} "
            "(--drop-overrides drops them)"
        )
        check_semantics(p, out, {})
        p.raise_if_any()
    return Carried(out, tuple(kept), tuple(dropped), tuple(warnings))
