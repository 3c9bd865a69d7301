"""`bosun ui`: the read-only dashboard and REST API (controller.web), served from here."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import click

from controller.cli.common import store_option
from controller.cli.operator_key import controller_key_option

DEFAULT_PORT = 8742


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(token_file: Path | None, env_token: str | None) -> str:
    if token_file is not None:
        try:
            text = token_file.read_text().strip()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {token_file}: {exc.strerror}", param_hint="--token-file"
            ) from None
        if len(text) < 16:
            raise click.BadParameter(
                f"{token_file} holds {len(text)} characters: a token needs at least 16 "
                "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                param_hint="--token-file",
            )
        return text
    return env_token or ""


@click.command("ui")
@store_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but a loopback address needs a token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="TCP port (0: any free port; the URL is printed).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the access token (at least 16 characters). Requests then need "
    "`Authorization: Bearer TOKEN`; a browser opens any page once with ?token=TOKEN and "
    "keeps it in a cookie. Required when --host is not a loopback address.",
)
@click.option(
    "--generate-token",
    is_flag=True,
    help="Make up a token for this run and print it (instead of --token-file).",
)
@click.option(
    "--refresh",
    type=click.IntRange(0, 3600),
    default=5,
    show_default=True,
    help="Seconds between the pages' own reloads (0: never).",
)
@controller_key_option
def ui_cmd(
    store: str,
    host: str,
    port: int,
    token_file: Path | None,
    generate_token: bool,
    refresh: int,
    controller_key: str | None,
) -> None:
    """Serve a read-only web dashboard and the REST API (docs/api.md) of the cluster.

    Pages: the fleet, each service, each machine (snapshot history and desired documents,
    with diffs), each rollout (stages, gates, a chart of the new version against the old)
    and the events. status/cluster.json's controller signature is checked as `bosun
    status` checks it (pin the key with --controller-key; every page and /api/v1/status say
    how far it verified). The API under /api/v1 filters machines by service, mode, status,
    health, version and address as JSON, XML or CSV. Reads use this command's store
    credentials; nothing is written. Needs the `ui` extra (aiohttp): pip install
    'PATH/TO/bosun-VERSION-py3-none-any.whl[ui]' (the `bosun` on PyPI is another project).
    """
    import os

    if token_file is not None and generate_token:
        raise click.UsageError("give one of --token-file and --generate-token")
    token = secrets.token_urlsafe(32) if generate_token else _token(
        token_file, os.environ.get("BOSUN_UI_TOKEN")
    )  # fmt: skip
    if not token and not _loopback(host):
        raise click.UsageError(
            f"--host {host} is reachable from other machines: give --token-file FILE (or "
            "BOSUN_UI_TOKEN, or --generate-token), or listen on 127.0.0.1 and use an SSH tunnel"
        )
    try:
        from controller.web.server import create_app, serve
    except ImportError as exc:
        raise click.ClickException(
            f"bosun ui needs the ui extra ({exc.name} is missing): pip install "
            "'/path/to/bosun-<version>-py3-none-any.whl[ui]' (Bosun's own wheel; the `bosun` "
            "on PyPI is another project), or pip install aiohttp"
        ) from None
    from controller.web.pages import PageSettings
    from controller.web.reader import FleetReader
    from wire.store import open_store

    reader = FleetReader(open_store(store, create=False), controller_key=controller_key)
    app = create_app(reader, PageSettings(store=_shown(store), refresh=refresh), token)

    def ready(url: str) -> None:
        click.echo(f"bosun ui: serving {_shown(store)} read-only at {url}", err=True)
        if generate_token:
            click.echo(f"bosun ui: token {token} (open {url}?token={token})", err=True)

    serve(app, host, port, ready)


def _shown(url: str) -> str:
    """The store URL without its query (an endpoint may carry credentials in it)."""
    return url.split("?", 1)[0]


__all__ = ["ui_cmd"]
