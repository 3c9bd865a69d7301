"""Jinja2 file templates (`format: jinja`), rendered in Jinja's immutable sandbox.

The template text is local (the agent config's `template` or `template_file`); the desired
document gives it only data: `machine`, `service`, `mode`, `version`, `generation`, `port`,
`state_dir`, `config` and `peers` (`backends`, `mirror` and `evicted`, each a list of
`{machine, address, port, weight}`). Nothing from the bucket is ever compiled or executed,
and the sandbox refuses attribute tricks (`__class__`, mutating methods) even in a local
template. A name the data does not have is an error (StrictUndefined), never an empty
string: a config with a silently missing `server` line is worse than none.

Peers are checked before a template sees them: a machine id, an IP address or host name, a
port number and a non-negative weight. A backend reports its own address in its snapshot,
so a hostile one could otherwise write lines of its choosing into its balancer's config
(docs/security.md#hostile-input).

Errors name the rendered file, the template and line, and the variable, for example
`/etc/haproxy/haproxy.cfg: template haproxy.cfg.j2 line 12 ({{ config.timeout }}):
'dict object' has no attribute 'timeout'`.

Jinja2 is imported here, on the first render only: the agent's steady cycle never renders,
so it never pays for the import.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agent.drivers import ApplyError, Target, peers_value
from wire.layout import MACHINE_ID_PATTERN

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from agent.config import FileSpec

_ENV: ImmutableSandboxedEnvironment | None = None
_HOST = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _check_peer(where: str, peer: dict[str, Any]) -> None:
    machine, address, port, weight = (peer.get(k) for k in ("machine", "address", "port", "weight"))
    problem = None
    if not isinstance(machine, str) or not MACHINE_ID_PATTERN.fullmatch(machine):
        problem = f"machine {machine!r} is not a machine id"
    elif not isinstance(address, str) or not _is_host(address):
        problem = f"address {address!r} is not an IP address or host name"
    elif port is not None and (type(port) is not int or not 0 < port < 65536):
        problem = f"port {port!r} is not a port number"
    elif type(weight) is not int or weight < 0:
        problem = f"weight {weight!r} is not a non-negative integer"
    if problem:
        raise ApplyError(
            f"{where} ({machine!r}): {problem}; not rendered into a config "
            "(docs/security.md#hostile-input)"
        )


def _is_host(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return bool(_HOST.fullmatch(address))
    return True


def context(target: Target) -> dict[str, Any]:
    """What a template sees: the desired values for this service on this machine."""
    peers = peers_value(target.doc)
    peers.setdefault("evicted", [])
    for kind in ("backends", "mirror", "evicted"):
        for i, peer in enumerate(peers[kind]):
            _check_peer(f"peers.{kind}[{i}]", peer)
    return {
        "machine": target.machine,
        "service": target.service,
        "mode": target.mode,
        "version": target.version,
        "generation": target.doc.generation if target.doc else 0,
        "port": target.port,
        "state_dir": target.state_dir,
        "config": target.config,
        "peers": peers,
    }


def _environment() -> ImmutableSandboxedEnvironment:
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        _ENV = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
    return _ENV


def _source(spec: FileSpec) -> tuple[str, str]:
    """The template text and the name errors give it."""
    if spec.template is not None:
        return spec.template, f"{spec.path} (inline template)"
    name = spec.template_file or ""
    try:
        return Path(name).read_text(), name
    except OSError as exc:
        raise ApplyError(f"{spec.path}: cannot read template {name}: {exc.strerror}") from None


def _line_of(tb: TracebackType | None, filename: str) -> int | None:
    """The template line of the innermost traceback frame Jinja mapped to `filename`."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _where(text: str, name: str, line: int | None) -> str:
    if line is None:
        return f"template {name}"
    lines = text.splitlines()
    source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    shown = f" ({source[:120]})" if source else ""
    return f"template {name} line {line}{shown}"


def compile_jinja(spec: FileSpec) -> None:
    """Read and compile `spec`'s Jinja2 template without data (`bosun-agent check`): its
    syntax errors are ApplyError naming the file and line, as at apply time."""
    text, name = _source(spec)
    from jinja2 import TemplateSyntaxError

    try:
        _environment().compile(text, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise ApplyError(
            f"{spec.path}: {_where(text, name, exc.lineno)}: syntax error: {exc.message}"
        ) from None


def render_jinja(spec: FileSpec, target: Target) -> bytes:
    """Render `spec`'s Jinja2 template with `target`'s desired values, or raise ApplyError."""
    try:
        values = context(target)
    except ApplyError as exc:
        raise ApplyError(f"{spec.path}: {exc}") from None
    text, name = _source(spec)
    env = _environment()
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        code = env.compile(text, name=name, filename=name)
        template = env.template_class.from_code(env, code, env.make_globals(None))
    except TemplateSyntaxError as exc:
        raise ApplyError(
            f"{spec.path}: {_where(text, name, exc.lineno)}: syntax error: {exc.message}"
        ) from None
    try:
        return template.render(values).encode()
    except UndefinedError as exc:
        where = _where(text, name, _line_of(exc.__traceback__, name))
        raise ApplyError(f"{spec.path}: {where}: {_undefined(exc)}") from None
    except SecurityError as exc:
        where = _where(text, name, _line_of(exc.__traceback__, name))
        raise ApplyError(f"{spec.path}: {where}: refused by the sandbox: {exc}") from None
    except Exception as exc:  # a filter or an operator failed on the data it was given
        where = _where(text, name, _line_of(exc.__traceback__, name))
        raise ApplyError(f"{spec.path}: {where}: {type(exc).__name__}: {exc}") from None


def _undefined(exc: Exception) -> str:
    message = str(exc)
    missing = re.fullmatch(r"'(.+)' is undefined", message)
    if missing:
        return (
            f"variable {missing.group(1)!r} is undefined (a template sees machine, service, "
            "mode, version, generation, port, state_dir, config and peers)"
        )
    return f"undefined value: {message}"
