"""`bosun doctor`: is this store safe for controllers, and if not, what to do about it?"""

from __future__ import annotations

import click
from rich.table import Table

from controller.cli.common import make_console, store_option
from controller.operations.store_probe import probe
from controller.operations.store_verdict import Verdict, Where, classify, reach, verdict
from wire.errors import BosunError, StoreError
from wire.retry import RetryPolicy
from wire.store import Store, open_store, parse_store_url

REACH_CONNECT_TIMEOUT = 2.0  # a closed port or a wrong host fails in seconds, not after retries


@click.command("doctor")
@store_option
def doctor_cmd(store: str) -> None:
    """Check that the store is reachable with these credentials, then probe conditional
    writes and conditional GETs as S3 documents them.

    Includes a 20-thread create-only race and a 20-thread If-Match race: exactly one
    writer must win. The verdict names the problem and its fix, and tells setup mistakes
    (unreachable endpoint, missing or unknown credentials, missing bucket, access denied)
    apart from a store that lacks a behaviour; any of them exits 2.
    """
    where = _where(store)
    try:
        quick = _open(store, quick=True)
    except StoreError as exc:
        _fail(classify(exc, where))
    first = reach(quick, where)
    if not first.ok:
        _fail(first)
    results = probe(_open(store, quick=False))  # the client a controller cycle writes with
    table = Table(title=f"bosun doctor {where.url}")
    table.add_column("behaviour")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for r in results:
        table.add_row(r.behaviour, "[green]ok[/]" if r.ok else "[red]MISSING[/]", r.detail)
    make_console().print(table)
    outcome = verdict(results, where)
    if not outcome.ok:
        _fail(outcome)
    click.echo(outcome.text())


def _where(url: str) -> Where:
    scheme, parts = parse_store_url(url)
    if scheme == "file":
        return Where(url)
    return Where(url, parts.get("endpoint"), parts.get("bucket"))


def _open(url: str, *, quick: bool) -> Store:
    if not quick:
        return open_store(url, create=False)
    from wire.store.s3 import Timeouts

    return open_store(
        url,
        create=False,
        retry=RetryPolicy.none(),
        timeouts=Timeouts(connect=REACH_CONNECT_TIMEOUT, read=10.0),
    )


def _fail(outcome: Verdict) -> None:
    raise BosunError(outcome.text())
