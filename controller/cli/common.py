"""Options and helpers shared by the `bosun` commands (settings are built here, once)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wire.durations import parse_duration
from wire.store import Store, open_store

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


def store_option(fn: F) -> F:
    return _store(required=True)(fn)


def optional_store_option(fn: F) -> F:
    """--store that a group may leave to its subcommand (the command checks it is given)."""
    return _store(required=False)(fn)


def _store(*, required: bool) -> Callable[[F], F]:
    return click.option(
        "--store",
        envvar="BOSUN_STORE",
        required=required,
        metavar="URL",
        help="s3://bucket[/prefix][?endpoint=URL&region=R] or file:///abs/path (BOSUN_STORE).",
    )


def master_key_option(fn: F) -> F:
    return click.option(
        "--master-key",
        envvar="BOSUN_MASTER_KEY",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Master key file written by `bosun keygen` (BOSUN_MASTER_KEY).",
    )(fn)


def open_store_option(url: str) -> Store:
    return open_store(url)


if TYPE_CHECKING:  # click >= 8.2 makes ParamType generic; older versions are not subscriptable
    _ParamType = click.ParamType[float, Any]
else:
    _ParamType = click.ParamType


class Duration(_ParamType):
    """10s, 5m, 1h, 1d or plain seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            self.fail(f"{value!r} is not a duration: use 10s, 5m, 1h, 1d or seconds", param, ctx)
        return seconds


PIPED_WIDTH = 200


def make_console() -> Console:
    """A rich console; piped or redirected (no terminal, no COLUMNS) it is 200 columns wide
    instead of rich's 80, so `bosun status | less` or `> file` does not cut the tables."""
    import os

    from rich.console import Console

    out = Console()
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(width=PIPED_WIDTH)
    return out
