"""Each machine's desired document, written only where its content changed (pure).

One rendering per (service, mode, override variant) is shared by the machines that have
it (`Template`: the machine-independent part); a machine's document adds its own header
(generation, fence, times, drain). A machine whose variant, liveness, drain and kept
config are as memory records, that is not repaired and whose document is not past half its
lifetime takes the fast path: skipped, memory kept. Otherwise the document is written when
it is new, its content changed (`changed`), the bucket's copy drifted (`repair`) or it is
past half its lifetime (`refresh`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controller.planner.assign import ACTIVE_MODES
from controller.planner.digests import machine_digest, variant_digest
from controller.planner.draft import Context, Draft
from controller.planner.evict import NONE
from controller.planner.model import Event, MachineMemory, PutDesired, Skip
from controller.planner.release import Release
from controller.planner.render import fill_references, lb_peers
from controller.spec.model import ClusterSpec
from wire import codec
from wire.codec import JsonValue
from wire.documents import Desired, Mode, Peer, Peers
from wire.layout import MachineId

_EMPTY = MachineMemory()
_NO_PEERS = Peers()
_PLAIN: tuple[tuple[int, ...], str | None] = ((), None)
_Key = tuple[str | None, Mode, tuple[tuple[int, ...], str | None]]


@dataclass(frozen=True, slots=True)
class Template:
    """The machine-independent part of a desired document, shared by every machine of the
    same (service, mode, override variant); each machine's document adds its own header."""

    mode: Mode
    service: str | None = None
    version: str | None = None
    config: dict[str, JsonValue] = field(default_factory=dict)
    peers: Peers = _NO_PEERS


def documents(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    """Writes, skips and each machine's new memory; `machine.assigned` events."""
    spec, work, rel = d.spec, d.work, d.releases
    serve, mirror, out_of, own = d.serve, d.mirror, d.evictions.everywhere, d.evictions.own
    drains, configs, kept = d.drains, d.configs, d.kept
    drains_get, kept_get = drains.get, kept.get
    settings = spec.settings
    now, fence = ctx.now, ctx.fence
    variants: dict[_Key, tuple[str, Template]] = {}
    # a balancer with evictions of its own (a minority report) has its own peers
    own_variants: dict[tuple[_Key, frozenset[str]], tuple[str, Template]] = {}
    events: list[Event] = []
    writes: list[PutDesired] = []
    skips: list[Skip] = []
    machines: dict[str, MachineMemory] = {}
    half_life = settings.desired_lifetime / 2
    mem_get = ctx.memory.machines.get
    live_get = d.live.get
    failed = work.failed
    drift = ctx.observed.drift
    service_of, mode_of = work.service, work.mode
    extras = bool(rel.variants or rel.pinned)  # any override or rollout pin this pass

    def variant(m: str, svc: str | None, mode: Mode) -> tuple[str, Template]:
        """The machine's shared part: rendered once per (service, mode, variant)."""
        key = (svc, mode, rel.key(m) if extras and svc is not None else _PLAIN)
        extra = own.get(m) if own else None
        if extra is None:
            hit = variants.get(key)
            if hit is None:
                release = rel.of(spec, svc, m) if svc else None
                out = out_of.get(svc, NONE) if out_of and svc is not None else NONE
                hit = variants[key] = _render(spec, svc, mode, release, serve, mirror, out)
            return hit
        hit = own_variants.get((key, extra))
        if hit is None:
            release = rel.of(spec, svc, m) if svc else None
            out = out_of.get(svc, NONE) | extra if svc is not None else extra
            hit = own_variants[(key, extra)] = _render(spec, svc, mode, release, serve, mirror, out)
        return hit

    # (service, mode) -> its shared part, when no machine has a variant of its own this
    # pass (most cycles): read first, the loop below runs over the whole fleet
    plain: dict[tuple[str | None, Mode], tuple[str, Template]] = {}
    simple = not extras and not own
    # no drain, kept config, failure or drift anywhere this pass (most cycles): the fast
    # path's test needs no lookup of them
    quiet = not drains and not kept and not failed and not drift
    skip, remember = skips.append, machines.__setitem__
    for m in ctx.known:
        svc, mode = service_of[m], mode_of[m]
        if simple:
            hit = plain.get((svc, mode))
            if hit is None:
                hit = plain[(svc, mode)] = variant(m, svc, mode)
        else:
            hit = variant(m, svc, mode)
        vdigest, template = hit
        mm = mem_get(m)
        obs = live_get(m)
        lost = obs is None
        drain = drains_get(m) if drains else None
        if (
            mm is not None
            and mm.variant == vdigest
            and mm.lost == lost
            and (lost or now < mm.issued_at + half_life)
            and (
                (mm.drain is None and mm.kept is None)
                if quiet
                else (
                    mm.drain == drain
                    and mm.kept == kept_get(m)
                    and m not in failed
                    and m not in drift
                )
            )
        ):
            # fast path: nothing about this machine changed
            skip(Skip(m, "lost" if lost else "unchanged"))  # type: ignore[arg-type]
            remember(m, mm)
            continue
        if mm is None:
            mm = _EMPTY
        content = machine_digest(m, vdigest, codec.encode(drain) if drain else None)
        moved = svc != mm.service or mode != mm.mode or template.version != mm.version
        if moved and not lost:
            events.append(
                Event(
                    "machine.assigned",
                    f"{_placed(mm.mode, mm.service, mm.version)} -> "
                    f"{_placed(mode, svc, template.version)}",
                    m,
                    svc,
                    data={"version": template.version, "from_version": mm.version},
                )
            )
        generation, issued_at = mm.generation, mm.issued_at
        reason = ""
        if m in drift:
            reason = "repair"  # the bucket's document is not the one memory records
        elif content != mm.digest:
            reason = "new" if not mm.digest else "changed"
        elif not lost and now >= mm.issued_at + half_life:
            reason = "refresh"
        if reason:
            applied = obs.snapshot.applied.generation if obs is not None else 0
            previous = max(mm.generation, applied, drift.get(m, 0))
            generation, issued_at = previous + 1, now
            doc = Desired(
                machine=m,
                generation=generation,
                fence=fence,
                issued_at=now,
                expires_at=now + settings.desired_lifetime,
                spec_revision=spec.revision,
                mode=template.mode,
                service=template.service,
                version=template.version,
                config=template.config,
                peers=template.peers,
                drain=drain,
            )
            writes.append(PutDesired(MachineId(m), doc, previous, reason))
        else:
            skips.append(Skip(MachineId(m), "lost" if lost else "unchanged"))
        new = MachineMemory(
            generation=generation,
            digest=content,
            variant=vdigest,
            issued_at=issued_at,
            service=svc,
            mode=template.mode,
            version=template.version,
            assigned_at=now if _restarts_grace(mm, svc, mode, template.version) else mm.assigned_at,
            failed_at=failed.get(m, mm.failed_at),
            lost=lost,
            drain=drain,
            config=configs.get(m, mm.config),
            kept=kept.get(m),
        )
        machines[m] = mm if new == mm else new
    return replace(d, machines=machines, writes=tuple(writes), skips=tuple(skips)), tuple(events)


def _restarts_grace(mm: MachineMemory, svc: str | None, mode: Mode, version: str | None) -> bool:
    """Does this placement start the machine's health grace again (`assigned_at`)? A new
    service or mode does; a new version does only where the machine runs the service. A
    standby (or deactivated) machine moved to a release's version starts nothing: restarting
    its grace would make the next plan, over this one's memory, judge its health otherwise
    and activate a machine this plan found failing (a plan over its own result must write
    nothing)."""
    if svc != mm.service or mode != mm.mode:
        return True
    return version != mm.version and mode not in _IDLE


_IDLE = frozenset({"standby", "deactivated"})


def _render(
    spec: ClusterSpec,
    svc: str | None,
    mode: Mode,
    release: Release | None,
    serve: Mapping[str, tuple[Peer, ...]],
    mirror: Mapping[str, tuple[Peer, ...]],
    out: frozenset[str] = NONE,
) -> tuple[str, Template]:
    """The shared part of a document (machine-independent) and its digest; `out`: the
    backends a balancer's peers leave out (evict.py)."""
    if svc is None:
        template = Template(mode="deactivated")
    else:
        s = spec.services[svc]
        version = release.version if release is not None else s.version
        config = release.config if release is not None else s.config
        peers = lb_peers(spec, svc, serve, mirror, out) if mode in ACTIVE_MODES else _NO_PEERS
        filled = fill_references(config, serve)
        template = Template(
            mode=mode,
            service=svc,
            version=version,
            config=filled if isinstance(filled, dict) else {},
            peers=peers,
        )
    vd = variant_digest(
        service=template.service,
        mode=template.mode,
        version=template.version,
        config=template.config,
        peers=codec.encode(template.peers),
    )
    return vd, template


def _placed(mode: str, service: str | None, version: str | None) -> str:
    """`active/web@1.0`; a machine with no service yet is just its mode (`standby`)."""
    if service is None:
        return mode
    return f"{mode}/{service}" + (f"@{version}" if version is not None else "")
