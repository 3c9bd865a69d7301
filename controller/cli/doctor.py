"""`bosun doctor`: is this store safe for controllers?"""

from __future__ import annotations

import click
from rich.table import Table

from controller.cli.common import make_console, store_option
from controller.operations.store_probe import missing, probe
from wire.errors import BosunError
from wire.store import open_store


@click.command("doctor")
@store_option
def doctor_cmd(store: str) -> None:
    """Probe conditional writes and conditional GETs on the store, as S3 documents them.

    Includes a 20-thread create-only race and a 20-thread If-Match race: exactly one
    writer must win. Exits 2 naming every missing behaviour: Bosun refuses such a backend
    for controllers.
    """
    opened = open_store(store, fast=True, create=False)  # the client a controller cycle writes with
    results = probe(opened)
    table = Table(title=f"bosun doctor {opened.url}")
    table.add_column("behaviour")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for r in results:
        table.add_row(r.behaviour, "[green]ok[/]" if r.ok else "[red]MISSING[/]", r.detail)
    make_console().print(table)
    bad = missing(results)
    if bad:
        raise BosunError(
            "refusing this store for controllers; missing behaviour: "
            + "; ".join(r.behaviour for r in bad)
        )
    click.echo("store is fit for controllers")
