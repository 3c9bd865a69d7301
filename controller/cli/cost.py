"""`bosun cost`: monthly S3 request cost for a fleet and its intervals."""

from __future__ import annotations

import click
import orjson
from rich.table import Table

from controller.cli.common import Duration, make_console
from controller.spec.request_cost import GET_PER_1000, PUT_PER_1000, CostInputs, estimate


@click.command("cost")
@click.option(
    "--machines",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Machines in the fleet (agents).",
)
@click.option(
    "--poll", type=Duration(), default="30s", show_default=True, help="Agent poll interval."
)
@click.option(
    "--heartbeat",
    type=Duration(),
    default="5m",
    show_default=True,
    help="Agent heartbeat: a snapshot PUT at least this often.",
)
@click.option(
    "--controller-interval",
    type=Duration(),
    default="10s",
    show_default=True,
    help="The spec's controller_interval: one LIST page per 1,000 machines per cycle.",
)
@click.option(
    "--desired-lifetime",
    type=Duration(),
    default="1h",
    show_default=True,
    help="The spec's desired_lifetime (default 1h, as in the spec): desired documents are "
    "re-signed every half of it.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table, or JSON with every line and the totals.",
)
def cost(
    machines: int,
    poll: float,
    heartbeat: float,
    controller_interval: float,
    desired_lifetime: float,
    output: str,
) -> None:
    """Monthly S3 request cost at AWS list prices (S3 Standard, us-east-1).

    Prints each kind of request Bosun makes, how many per month and what they cost, the
    design's floor (agent GET per poll, PUT per heartbeat, controller GET per heartbeat,
    one LIST per 1,000 machines per cycle) and the total. Storage and transfer are not
    included; retried requests are billed too but not counted here.
    """
    est = estimate(CostInputs(machines, poll, heartbeat, controller_interval, desired_lifetime))
    if output == "json":
        click.echo(
            orjson.dumps(
                {
                    "machines": machines,
                    "poll": poll,
                    "heartbeat": heartbeat,
                    "controller_interval": controller_interval,
                    "desired_lifetime": desired_lifetime,
                    "lines": [
                        {
                            "what": ln.what,
                            "kind": ln.kind,
                            "requests": round(ln.requests),
                            "usd": round(ln.usd, 4),
                            "floor": ln.floor,
                        }
                        for ln in est.lines
                    ],
                    "floor_usd": round(est.floor_usd, 4),
                    "total_usd": round(est.total_usd, 4),
                    "usd_per_1000_machines": round(est.per_thousand_machines(), 4),
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return
    table = Table(title=f"S3 requests per month for {machines:,} machines")
    for col, justify in (
        ("request", "left"),
        ("kind", "left"),
        ("per month", "right"),
        ("USD", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for ln in est.lines:
        table.add_row(
            ln.what + ("" if ln.floor else " (above floor)"),
            ln.kind,
            f"{ln.requests:,.0f}",
            f"{ln.usd:,.2f}",
        )
    table.add_row("floor", "", "", f"{est.floor_usd:,.2f}")
    table.add_row(
        "[bold]total[/bold]", "", f"{est.requests:,.0f}", f"[bold]{est.total_usd:,.2f}[/bold]"
    )
    console = make_console()
    console.print(table)
    console.print(
        f"${est.per_thousand_machines():,.2f} per 1,000 machines per month "
        f"(PUT/LIST ${PUT_PER_1000}/1k, GET ${GET_PER_1000}/1k)"
    )
