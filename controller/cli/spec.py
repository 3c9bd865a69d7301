"""`bosun spec validate|apply|show|diff` and `bosun update` (sub-group updates).

Every command validates fully before touching the store; a problem prints one message
naming the path and the fix, exits 2 and writes nothing.
"""

from __future__ import annotations

import difflib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from controller.cli.common import optional_store_option, store_option
from controller.cli.operator_key import (
    Signing,
    apply_kwargs,
    operator_options,
    sealer,
    signing_for,
)
from controller.operations import views
from controller.read_trust import Anchor, anchor, list_trust, pinned_key
from controller.spec import document, revisions
from controller.spec.carry import Carried, carry_over
from controller.spec.checks import Problems, json_ok, version_ok
from controller.spec.load import check_semantics, load_yaml
from controller.spec.model import ClusterSpec, Override
from controller.spec.secrets import masked, plain_secrets, seal_spec
from controller.spec.selector import parse_selector
from controller.spec.signature import Provenance, SpecUnverified
from wire.errors import BosunError, ObjectMissing, SpecError
from wire.store import Store, open_store


def _read_file(path: Path) -> ClusterSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec file ({exc})") from None
    return load_yaml(text, source=str(path))


def _describe(spec: ClusterSpec) -> str:
    names = ", ".join(f"{n} ({s.kind}, {s.count} x {s.version})" for n, s in spec.services.items())
    return f"{len(spec.services)} services: {names}" if spec.services else "no services"


@click.group("spec")
def spec_group() -> None:
    """Validate, apply and read the cluster spec (spec/current.json and spec/history/)."""


@spec_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@optional_store_option
def validate_cmd(file: Path, store: str | None) -> None:
    """Check FILE without writing anything. With --store (or BOSUN_STORE), also warn about
    each balanced service whose machines, as status/cluster.json last saw them, can never
    become healthy (no health probe in their agent config, or one that always fails), so
    its balancer would route to no peer."""
    spec = _read_file(file)
    click.echo(f"{file}: valid; {_describe(spec)}")
    if store is not None:
        _warn_empty_pools(spec, open_store(store))


def _warn_empty_pools(spec: ClusterSpec, st: Store) -> None:
    """A warning on stderr per balanced service that status says no machine of can be a peer."""
    balancers: dict[str, list[str]] = {}
    for name, svc in spec.services.items():
        if svc.kind == "loadbalancer" and svc.balances:
            balancers.setdefault(svc.balances, []).append(name)
    if not balancers:
        return
    try:
        doc = views.load_status(st)
    except ObjectMissing:
        return  # no cycle has run yet: nothing observed to warn about
    except BosunError as exc:
        click.echo(f"warning: cannot check the balanced services' health: {exc}", err=True)
        return
    for service, why in views.never_healthy(doc).items():
        if service in balancers:
            click.echo(
                f"warning: services.{service} is balanced by {', '.join(balancers[service])}; "
                f"{why}",
                err=True,
            )


@spec_group.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--expect-revision", type=click.IntRange(min=0), metavar="N",
    help="Refuse (exit 2, nothing written) unless revision N is the applied one (0: none "
    "applied yet), as read when you reviewed it: a spec changed underneath is not overwritten.",
)  # fmt: skip
@click.option(
    "--drop-overrides", is_flag=True,
    help="Drop the overrides made with `bosun update` that FILE does not list (by default a "
    "service whose entry lists no overrides keeps them, and each kept one is reported).",
)  # fmt: skip
@store_option
@operator_options
def apply_cmd(
    file: Path,
    expect_revision: int | None,
    drop_overrides: bool,
    store: str,
    operator_key: Path | None,
    message: str,
) -> None:
    """Validate FILE and write it as the next spec revision, signed with your operator key.

    Overrides made with `bosun update` and the rollout commands' records (control, undo,
    approval) are kept when FILE does not give them; every override kept or dropped is
    reported (docs/spec.md#overrides). Secret config values (`{secret_file: PATH}`,
    `{secret_env: VAR}`, `{secret: ...}`) are sealed to the controller's key before
    anything is written (docs/spec.md#secrets).
    """
    spec = _read_file(file)
    st = open_store(store)
    signing = signing_for(st, operator_key, message)
    has_secrets = bool(plain_secrets(spec))
    if has_secrets:
        spec = seal_spec(spec, sealer(signing, st), base_dir=file.parent)
    current, resign = _current_to_build_on(st, signing)
    base = current.spec.revision if current is not None else 0
    if expect_revision is not None and expect_revision != base:
        raise revisions.SpecChanged(
            f"{st.describe('spec/current.json')} is at revision {base}, not {expect_revision} "
            f"as --expect-revision says: the spec changed underneath; nothing written. See what "
            f"changed with `bosun spec diff {file}` and apply again"
        )
    if current is not None:
        carried = carry_over(current.spec, spec, drop_overrides=drop_overrides)
        spec = carried.spec
        _report(carried)
        if document.same_content(current.spec, spec) and not resign and not has_secrets:
            click.echo(f"unchanged: revision {base} already has this content; nothing written")
            return
    # based on `base`: an apply in between makes this one fail instead of undoing it
    expect = base if current is not None else expect_revision
    applied = revisions.apply(
        st, spec, now=time.time(), expect_revision=expect, **apply_kwargs(signing)
    )
    click.echo(f"applied revision {applied.revision} ({signing.describe()}): {_describe(applied)}")
    _warn_empty_pools(applied, st)


def _current_to_build_on(st: Store, signing: Signing) -> tuple[revisions.Current | None, bool]:
    """The applied revision, checked against the listed operator keys before anything of it
    is carried over (an unverifiable one is not: its overrides could be an attacker's), and
    whether it must be written again to carry a valid signature."""
    try:
        return revisions.read_current(st, signing.trust), False
    except SpecUnverified as exc:
        click.echo(
            f"warning: the applied spec is not signed by a listed operator ({exc.reason}): "
            "nothing of it is carried over; this apply replaces it",
            err=True,
        )
        return None, True
    except revisions.UNREADABLE as exc:
        click.echo(f"warning: the applied spec is unreadable, replacing it: {exc}", err=True)
        return None, True


def _report(carried: Carried) -> None:
    for line in carried.kept:
        click.echo(
            f"kept override made with `bosun update`: {line} (the file lists no overrides for "
            "this service; --drop-overrides drops it)",
            err=True,
        )
    for line in carried.dropped:
        click.echo(f"dropped override: {line}", err=True)
    for line in carried.warnings:
        click.echo(f"warning: {line}", err=True)


@spec_group.command("show")
@click.option("--revision", type=click.IntRange(min=1), help="A past revision (default: current).")
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@store_option
def show_cmd(revision: int | None, output: str, store: str) -> None:
    """Print the applied spec (or a past revision), with who applied it and why.

    The signature is checked against the operator keys of control/keys.json; the first
    line says how far that could be trusted (docs/security.md#reading-tools)."""
    st = open_store(store, create=False)
    spec, prov, how = _load(st, revision)
    if output == "json":
        sys.stdout.write(document.to_json(spec, applied_at=0.0).decode())
        return
    click.echo(f"# revision {spec.revision}: {prov.describe()}{how}")
    click.echo(document.to_yaml(spec), nl=False)


@spec_group.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@store_option
def history_cmd(limit: int, store: str) -> None:
    """The latest spec revisions: when, who applied each, the message, and its signature."""
    st = open_store(store)
    current = revisions.read_current(st)
    if current is None:
        raise SpecError(f"{st.describe('spec/current.json')}: no spec applied yet")
    a = anchor(st, pinned_key(os.environ.get("BOSUN_CONTROLLER_KEY")))
    trust = list_trust(a)
    for rev in range(current.spec.revision, max(0, current.spec.revision - limit), -1):
        try:
            _spec, prov = revisions.read_revision_stored(st, rev, trust)
        except ObjectMissing:
            click.echo(f"{rev:>6}  (missing from spec/history/)")
            continue
        except SpecUnverified as exc:
            click.echo(f"{rev:>6}  REFUSED ({exc.reason}): {exc}")
            continue
        except revisions.UNREADABLE as exc:
            click.echo(f"{rev:>6}  unreadable: {exc}")
            continue
        click.echo(f"{rev:>6}  {prov.describe()}")
    click.echo(_trust_note(a), err=True)


@spec_group.command("diff")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences.")
@click.option("--drop-overrides", is_flag=True, help="As `spec apply --drop-overrides`.")
@store_option
def diff_cmd(file: Path, exit_code: bool, drop_overrides: bool, store: str) -> None:
    """Show what applying FILE would change against the current spec (with what apply
    keeps: overrides made with `bosun update`, the rollout commands' records)."""
    new = _read_file(file)
    current = revisions.read_current(open_store(store, create=False))
    if current is not None:
        new = carry_over(current.spec, new, drop_overrides=drop_overrides).spec
    old_text = _masked_yaml(current.spec) if current else ""
    old_name = f"revision {current.spec.revision}" if current else "(no spec applied)"
    lines = list(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            _masked_yaml(new).splitlines(keepends=True),
            fromfile=old_name,
            tofile=str(file),
        )
    )
    if not lines:
        click.echo(f"no differences between {old_name} and {file}")
        return
    click.echo("".join(lines), nl=False)
    if exit_code:
        sys.exit(1)


def _trust_note(a: Anchor) -> str:
    if a.keys_attested:
        return "signatures checked against the operator keys attested by the pinned controller key"
    if a.keys is not None and a.keys.operators:
        return (
            "signatures checked against the operator keys control/keys.json lists, which this "
            "tool cannot verify without a pin (BOSUN_CONTROLLER_KEY, from `bosun keys show`)"
        )
    return "no operator key is listed in control/keys.json: revisions are not signed"


def _load(st: Store, revision: int | None) -> tuple[ClusterSpec, Provenance, str]:
    a = anchor(st, pinned_key(os.environ.get("BOSUN_CONTROLLER_KEY")))
    trust = list_trust(a)
    how = "" if a.keys_attested or trust is None else " (operator keys as listed, not pinned)"
    if revision is not None:
        spec, prov = revisions.read_revision_stored(st, revision, trust)
        return spec, prov, how
    current = revisions.read_current(st, trust)
    if current is None:
        raise SpecError(f"{st.describe('spec/current.json')}: no spec applied yet; "
                        "run `bosun spec apply FILE`")  # fmt: skip
    return current.spec, current.provenance, how


def _masked_yaml(spec: ClusterSpec) -> str:
    """YAML with every secret shown as `<secret>`: a diff never prints one (and sealed
    values differ at every apply even when the secret did not change)."""
    return yaml.safe_dump(
        masked(document.operator_value(spec)), sort_keys=True, default_flow_style=False, width=100
    )


def parse_config_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`a.b=5` -> {"a": {"b": 5}}; values are YAML scalars (5, true, text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(f"--config {pair!r}: expected key=value (dotted keys nest: a.b=1)")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)) or (value is None and raw not in ("null", "~")):
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"--config {pair!r}: {part!r} was already given a value")
            node = child
        node[parts[-1]] = value
    return out


def add_override(
    spec: ClusterSpec, service: str, *, select: str, version: str | None, config: dict[str, Any]
) -> ClusterSpec:
    """The spec with a new override on SERVICE (id = next revision), fully re-validated."""
    if service not in spec.services:
        known = ", ".join(sorted(spec.services)) or "none"
        raise SpecError(f"update: unknown service {service!r} (services: {known})")
    if version is None and not config:
        raise SpecError("update: give --version, --config k=v, or both")
    parse_selector(select, where="--select")
    p = Problems("update")
    if version is not None:
        version_ok(p, "--version", version, required=False)
    json_ok(p, "--config", config)
    p.raise_if_any()
    svc = spec.services[service]
    override = Override(id=spec.revision + 1, select=select, version=version, config=config)
    new = replace(
        spec,
        services={**spec.services, service: replace(svc, overrides=(*svc.overrides, override))},
    )
    check_semantics(p, new, {})
    p.raise_if_any()
    return new


@click.command("update")
@click.argument("service")
@click.option("--version", "version", help="Version the selected machines run.")
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE",
              help="Config set on the selected machines (repeatable; dotted keys nest).")  # fmt: skip
@click.option("--select", "select", required=True, metavar="EXPR",
              help="id=a,b | count=N | percent=P | version=V | max(count=N,percent=P) | min(...)")  # fmt: skip
@store_option
@operator_options
def update_command(
    service: str,
    version: str | None,
    config: tuple[str, ...],
    select: str,
    store: str,
    operator_key: Path | None,
    message: str,
) -> None:
    """Move a sub-group of SERVICE's machines to a version/config, as a new spec revision.

    Machines outside the selection keep what they run.
    """
    st = open_store(store)
    signing = signing_for(st, operator_key, message)
    current = revisions.read_current(st, signing.trust)
    if current is None:
        raise SpecError("update: no spec applied yet; run `bosun spec apply FILE` first")
    new = add_override(current.spec, service, select=select, version=version,
                       config=parse_config_pairs(config))  # fmt: skip
    applied = revisions.apply(
        st, new, now=time.time(), expect_revision=current.spec.revision, **apply_kwargs(signing)
    )
    what = " and ".join(
        x for x in (f"version {version}" if version else "", "config" if config else "") if x
    )
    click.echo(f"applied revision {applied.revision}: {service} {select} -> {what}")
