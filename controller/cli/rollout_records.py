"""`bosun rollout undo SERVICE [--to-revision N]` and `bosun rollout approve SERVICE`.

Both write one spec revision, as the other rollout commands do, conditional on the revision
they read (an apply in between makes them fail, not undo it):
- undo sets SERVICE's version and config back to those of an earlier revision (by default
  the newest one with another release of SERVICE) and records `services.<name>.undo`;
- approve records `services.<name>.approval` (who and why) for the rollout to the spec's
  version, which the planner reads at an `approve` step.
"""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from controller.cli import rollout_view as view
from controller.cli.common import store_option
from controller.cli.operator_key import apply_kwargs, operator_options, signing_for
from controller.planner.model import Memory
from controller.spec.commands import with_approval, with_undo
from controller.spec.model import ClusterSpec, Undo
from controller.spec.revisions import UNREADABLE, apply, read_revision
from controller.spec.signature import SpecTrust
from wire.errors import ObjectMissing, SpecError
from wire.store import Store, open_store

MAX_LOOKBACK = 1000  # spec revisions searched for the previous release


def previous_release(
    store: Store, spec: ClusterSpec, service: str, trust: SpecTrust | None = None
) -> tuple[int, ClusterSpec]:
    """(revision, spec) of the newest revision before `spec` in which SERVICE had another
    release (version or config); SpecError when none of the last MAX_LOOKBACK has one."""
    svc = spec.services[service]
    oldest = max(1, spec.revision - MAX_LOOKBACK)
    for revision in range(spec.revision - 1, oldest - 1, -1):
        try:
            past = read_revision(store, revision, trust)
        except (ObjectMissing, *UNREADABLE):
            continue  # deleted or damaged history: look further back
        old = past.services.get(service)
        if old is not None and (old.version, old.config) != (svc.version, svc.config):
            return revision, past
    raise SpecError(
        f"rollout undo: none of spec revisions {oldest}..{spec.revision - 1} has another "
        f"release of {service} than version {svc.version}; name one with --to-revision N "
        "(`bosun spec show --revision N` shows it)"
    )


@click.command("undo")
@click.argument("service")
@click.option(
    "--to-revision", type=click.IntRange(min=1), metavar="N",
    help="Return to SERVICE's release (version and config) of spec revision N (default: the "
    "newest revision with another release of SERVICE).",
)  # fmt: skip
@store_option
@operator_options
def undo_cmd(
    service: str, to_revision: int | None, store: str, operator_key: Path | None, message: str
) -> None:
    """Return SERVICE to its previous release, recorded as a new spec revision.

    The version and config of SERVICE are set back to those of the chosen revision; other
    services and the rest of SERVICE's spec stay as they are. A rollout to the current
    version still in progress is cancelled at once (its new-version machines go back);
    after a completed rollout the controller rolls the old release out again.

    A service of a coupled release takes the whole release back: every service of it whose
    release differs from that of the chosen revision is set back in the same spec revision,
    and the controller acts on them in one cycle, dependents first.
    """
    opened = open_store(store)
    signing = signing_for(opened, operator_key, message)
    spec = view.load_spec(opened, service, "undo", signing.trust)
    if to_revision is None:
        to_revision, target = previous_release(opened, spec, service, signing.trust)
    elif to_revision >= spec.revision:
        raise SpecError(
            f"rollout undo: --to-revision {to_revision} is not before the applied revision "
            f"{spec.revision}; `bosun spec show --revision N` shows a past one"
        )
    else:
        target = read_revision(opened, to_revision, signing.trust)
    names = [  # dependents first
        n
        for n in reversed(spec.released_with(service))
        if n == service or _differs(spec, target, n)
    ]
    new = spec
    for name in names:
        new = with_undo(new, name, to_revision=to_revision, target=target)
    memory = view.load_memory(opened)
    applied = apply(
        opened, new, now=time.time(), expect_revision=spec.revision, **apply_kwargs(signing)
    )
    undos = [u for n in names if (u := applied.services[n].undo) is not None]
    assert len(undos) == len(names)  # with_undo set them
    what = "; ".join(
        f"{n} {u.from_version} -> back to {u.version}" for n, u in zip(names, undos, strict=True)
    )
    hows = [_how(spec, n, u, memory) for n, u in zip(names, undos, strict=True)]
    if len(names) == 1:
        group, plural, how = "", "", hows[0]
    else:
        group, plural = f"coupled release {spec.coupled_of(service)}: ", "s"
        how = "; ".join(f"{n}: {h}" for n, h in zip(names, hows, strict=True))
    click.echo(
        f"recorded: undo of {group}{what} (the release{plural} of revision {to_revision}) as "
        f"spec revision {applied.revision}; on the controller's next cycle {how}. "
        f"`bosun rollout status {service} --watch` follows it"
    )


def _differs(spec: ClusterSpec, target: ClusterSpec, service: str) -> bool:
    """Does `target` hold another release (version or config) of `service` than `spec`?"""
    old, svc = target.services.get(service), spec.services[service]
    return old is not None and (old.version, old.config) != (svc.version, svc.config)


def _how(spec: ClusterSpec, service: str, undo: Undo, memory: Memory | None) -> str:
    """What the controller does with the undo of `service` on its next cycle."""
    rollout = memory.rollouts.get(service) if memory is not None else None
    if spec.rollout_of(service) is None:
        return "the change applies at once (no rollout strategy)"
    if rollout is not None and rollout.active and rollout.from_version == undo.version:
        return (
            f"the rollout {rollout.from_version} -> {rollout.to_version} in progress is "
            "cancelled: its new-version machines go back at once"
        )
    return (
        f"the controller rolls {undo.version} out again: in one cycle when the machines "
        "it left run it still (kept warm), otherwise through the rollout's stages"
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or passwd
        return ""


@click.command("approve")
@click.argument("service")
@click.option("--reason", required=True, help="Why it may go on (recorded with the approval).")
@click.option("--by", default=None, help="Who approves (default: your login name).")
@store_option
@operator_options
def approve_cmd(
    service: str,
    reason: str,
    by: str | None,
    store: str,
    operator_key: Path | None,
    message: str,
) -> None:
    """Let SERVICE's rollout go on past its approval step (`- approve: {}`), recording who
    and why as a new spec revision. For a service of a coupled release the approval is
    recorded for every service of it in progress (the release waits for all of them).
    See docs/spec.md#approval."""
    opened = open_store(store)
    signing = signing_for(opened, operator_key, message or reason)
    spec = view.load_spec(opened, service, "approve", signing.trust)
    strategy = spec.rollout_of(service)
    if strategy is None or not any(step.kind == "approve" for step in strategy.steps):
        raise SpecError(
            f"rollout approve: {service}'s rollout has no approval step (`- approve: {{}}` in "
            "its steps): nothing waits for an approval; `bosun rollout promote` skips a bake"
        )
    memory = view.load_memory(opened)
    ok, why = view.in_progress(spec, service, memory)
    if not ok:
        raise SpecError(f"rollout approve: no rollout of {service} in progress: {why}")
    who = by if by is not None else (signing.signer.name if signing.signer else _login())
    if not who:
        raise SpecError("rollout approve: no login name to record; give --by NAME")
    names = view.rolling_with(spec, service, memory)
    new = spec
    for name in names:
        new = with_approval(new, name, by=who, reason=reason)
    applied = apply(
        opened, new, now=time.time(), expect_revision=spec.revision, **apply_kwargs(signing)
    )
    click.echo(
        f"recorded: approval of {view.members_text(spec, names, 'rollout')} by {who} "
        f"({reason}) as spec revision {applied.revision}; the controller lets the approval "
        "step it waits at (or the next one it reaches) go on, on its next cycle"
    )
