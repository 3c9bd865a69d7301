"""Local agent config: `/etc/bosun/agent.yaml`, `--config`, `BOSUN_*` overrides.

The top-level keys are shared with `bosun enroll` (which writes the skeleton) and fixed:
machine, store, key_file, key_epoch, state_dir, eligible, poll_interval,
heartbeat_interval, jitter, addresses, capacity, services, metrics_textfile. `services.<name>`
says how this machine applies a desired document for that service (files, commands, process, probes).
Everything is decoded strictly with `wire.codec`: an unknown or mistyped key is an error
that names its path. Durations are seconds (int/float) or strings like "30s", "5m", "1h".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Any, Literal

from wire import codec, durations
from wire.errors import BosunError, InvalidDocument
from wire.layout import SERVICE_NAME_PATTERN, machine_id
from wire.records import record
from wire.signing import format_kid

DEFAULT_PATH = Path("/etc/bosun/agent.yaml")
DEFAULT_STATE_DIR = "/var/lib/bosun"
RUNNING_MODES = ("active", "canary", "shadow", "warm", "draining")
TEMPLATE_FIELDS = ("machine", "service", "version", "mode", "port", "generation", "state_dir")
CHECK_FIELDS = (*TEMPLATE_FIELDS, "file")  # a file's `check` also gets the staged file
TEMPLATED_FORMATS = ("template", "jinja")

Command = str | tuple[str, ...]
"""A hook or process command: a string runs through /bin/sh (desired values reach it only
as environment variables), a list is argv where {version}, {port}, {mode}... are replaced."""


class ConfigError(BosunError):
    """The agent config is invalid: the message names the file, the path and the fix."""


@record
class AddressConfig:
    """`addresses`: each an address, or auto (the address of the route out)."""

    internal: str = "auto"
    external: str = "auto"


@record
class FileSpec:
    """Render part of the desired document to a file, check it staged, switch it atomically."""

    path: str
    format: Literal["json", "yaml", "env", "template", "jinja"] = "json"
    source: Literal["config", "peers", "desired"] = "config"
    key: str | None = None  # with source=config: only config[key]
    # format=template: ${version}, ${config.x}; format=jinja: a sandboxed Jinja2 template
    template: str | None = None
    template_file: str | None = None
    mode: str = "0644"
    # run against the staged file ({file}, BOSUN_FILE) before it replaces the live one
    check: Command | None = None


@record
class CommandsSpec:
    """Local hooks, each run with the desired fields in BOSUN_* environment variables."""

    install: Command | None = None
    reload: Command | None = None
    restart: Command | None = None
    stop: Command | None = None
    timeout: float = 60.0
    cwd: str | None = None


@record
class ProcessSpec:
    """A supervised process: runs in RUNNING_MODES, stopped in standby/deactivated."""

    command: Command
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 10.0
    backoff_max: float = 60.0
    restart_on_config: bool = True
    log_file: str | None = None  # default: <state_dir>/logs/<service>.log


@record
class ProbeSpec:
    """Exactly one of http, tcp, command, file. `key` selects a sub-object of the result."""

    http: str | None = None
    tcp: str | None = None
    command: Command | None = None
    file: str | None = None
    key: str | None = None
    timeout: float = 2.0


@record
class SecretsSpec:
    """Where the service's secret config values go (docs/agent.md#secrets): each to a file
    `dir/<config path>` (mode 0600; the config the files and hooks see holds that file's
    path instead of the value), and the ones named in `env` to those environment variables
    of the hooks and the process (`{VAR: config.path}`)."""

    dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@record
class ServiceConfig:
    """`services.<name>`: how this machine applies a desired document for it."""

    port: int | None = None
    files: tuple[FileSpec, ...] = ()
    commands: CommandsSpec = field(default_factory=CommandsSpec)
    process: ProcessSpec | None = None
    health: ProbeSpec | None = None
    metrics: ProbeSpec | None = None
    sessions: ProbeSpec | None = None
    # a load balancer's report of the backends it fails to reach (docs/agent.md#backends)
    backends: ProbeSpec | None = None
    secrets: SecretsSpec | None = None


@record
class AgentConfig:
    """The agent config (`agent.yaml` and `BOSUN_*`), decoded and validated."""

    machine: str
    store: str
    key_file: str
    key_epoch: int = 0
    state_dir: str = DEFAULT_STATE_DIR
    eligible: tuple[str, ...] = ()
    poll_interval: float = 30.0
    heartbeat_interval: float = 300.0
    jitter: float = 0.1
    addresses: AddressConfig = field(default_factory=AddressConfig)
    capacity: dict[str, float] = field(default_factory=dict)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    # a node_exporter textfile (docs/metrics.md#agent) rewritten after every cycle
    metrics_textfile: str | None = None

    @property
    def kid(self) -> str:
        return format_kid(self.machine, self.key_epoch)


# ---- loading ------------------------------------------------------------------------------

_DURATION_KEYS = {
    "poll_interval",
    "heartbeat_interval",
    "timeout",
    "stop_timeout",
    "backoff_max",
}

ENV_OVERRIDES: dict[str, str] = {
    "BOSUN_MACHINE": "machine",
    "BOSUN_STORE": "store",
    "BOSUN_KEY_FILE": "key_file",
    "BOSUN_KEY_EPOCH": "key_epoch",
    "BOSUN_STATE_DIR": "state_dir",
    "BOSUN_ELIGIBLE": "eligible",
    "BOSUN_POLL_INTERVAL": "poll_interval",
    "BOSUN_HEARTBEAT_INTERVAL": "heartbeat_interval",
    "BOSUN_JITTER": "jitter",
}


def parse_duration(value: object, path: str) -> float:
    """Seconds from 30, 2.5, "30", "30s", "5m", "1h" or "500ms" (`wire.durations`)."""
    seconds = durations.parse_duration(value)
    if seconds is None:
        raise ConfigError(
            f"{path}: expected a duration like 30, '30s' or '5m' (not negative), got {value!r}"
        )
    return seconds


def _normalise_durations(value: Any, path: str, problems: list[str]) -> Any:
    """Durations to seconds; a bad one is a problem and is dropped (its default stands in,
    so the decoder does not report it a second time)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if not isinstance(k, str):
                problems.append(f"{sub}: keys must be strings")
                continue
            if k in _DURATION_KEYS:
                try:
                    out[k] = parse_duration(v, sub)
                except ConfigError as exc:
                    problems.append(str(exc))
            else:
                out[k] = _normalise_durations(v, sub, problems)
        return out
    if isinstance(value, list):
        return [_normalise_durations(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, key in ENV_OVERRIDES.items():
        text = env.get(var)
        if text is None or text == "":
            continue
        if key == "key_epoch":
            if not text.strip().isdigit():
                raise ConfigError(f"{var}: expected a non-negative integer, got {text!r}")
            raw[key] = int(text)
        elif key == "jitter":
            try:
                raw[key] = float(text)
            except ValueError:
                raise ConfigError(
                    f"{var}: expected a number between 0 and 1, got {text!r}"
                ) from None
        elif key == "eligible":
            raw[key] = [s.strip() for s in text.split(",") if s.strip()]
        else:
            raw[key] = text


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read, override from the environment, decode strictly and validate."""
    env = os.environ if env is None else env
    path = path or Path(env.get("BOSUN_CONFIG") or DEFAULT_PATH)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it (bosun enroll writes one, "
            "see docs/agent.md) or pass --config"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    from agent.config_cache import settings

    raw = settings(path, text, env, DEFAULT_STATE_DIR, lambda: _parse_yaml(path, text))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return parse_config(raw, env=env, where=str(path))


def _parse_yaml(path: Path, text: str) -> Any:
    # only when the text changed since the last cycle (agent.config_cache): wire.yaml_text
    # imports PyYAML when it parses
    from wire import yaml_text

    try:
        return yaml_text.load(text, source=str(path))
    except yaml_text.YamlError as exc:
        raise ConfigError(str(exc)) from None


def parse_config(
    raw: dict[str, Any], *, env: Mapping[str, str] | None = None, where: str = "agent.yaml"
) -> AgentConfig:
    """Decode strictly and validate; ConfigError lists every problem, one per line, each
    with its path."""
    raw = dict(raw)
    problems: list[str] = []
    try:
        _apply_env(raw, env or {})
    except ConfigError as exc:
        problems.append(str(exc))
    value = _normalise_durations(raw, "", problems)
    services_raw = value.pop("services", {})
    cfg: AgentConfig | None = None
    try:
        cfg = codec.decode(AgentConfig, value, "config")
    except InvalidDocument as exc:
        problems.append(str(exc).removeprefix("config."))
    services: dict[str, ServiceConfig] = {}
    if not isinstance(services_raw, dict):
        problems.append(
            f"services: expected a mapping of service name to how to apply it, got {type(services_raw).__name__}"
        )
        services_raw = {}
    for name, svc_raw in services_raw.items():
        try:
            services[str(name)] = codec.decode(ServiceConfig, svc_raw, f"services.{name}")
        except InvalidDocument as exc:
            problems.append(str(exc))
    if cfg is not None:
        cfg = replace(cfg, services=services)
        _validate(cfg, problems.append)
    if problems or cfg is None:
        many = len(problems) > 1
        raise ConfigError(
            f"{where}: "
            + (f"{len(problems)} problems:\n  " if many else "")
            + "\n  ".join(problems)
        )
    return cfg


def _validate(cfg: AgentConfig, fail: Callable[[str], None]) -> None:
    try:
        machine_id(cfg.machine)
    except BosunError as exc:
        fail(f"machine: {exc}")
    if cfg.key_epoch < 0:
        fail("key_epoch: must be >= 0")
    if not 0 <= cfg.jitter <= 1:
        fail(f"jitter: must be a fraction between 0 and 1, got {cfg.jitter}")
    if cfg.poll_interval < 1:
        fail("poll_interval: must be at least 1 second")
    if cfg.heartbeat_interval < cfg.poll_interval:
        fail("heartbeat_interval: must be at least poll_interval")
    if not cfg.key_file:
        fail("key_file: required (the machine key written by bosun enroll)")
    textfile = cfg.metrics_textfile
    if textfile is not None and (
        not Path(textfile).is_absolute() or not textfile.endswith(".prom")
    ):
        fail(
            f"metrics_textfile: expected an absolute path ending in .prom in node_exporter's "
            f"--collector.textfile.directory, got {textfile!r}"
        )
    from wire.store import parse_store_url

    try:
        parse_store_url(cfg.store)
    except BosunError as exc:
        fail(f"store: {exc}")
    for name in (*cfg.eligible, *cfg.services):
        if not SERVICE_NAME_PATTERN.fullmatch(name):
            fail(f"service name {name!r}: use a-z, 0-9, '.', '_', '-'")
    for name in cfg.eligible:
        if name not in cfg.services:
            fail(f"eligible: {name!r} has no entry under services (say how to apply it)")
    for name, svc in cfg.services.items():
        _validate_service(name, svc, fail)


def _validate_service(name: str, svc: ServiceConfig, fail: Callable[[str], None]) -> None:
    base = f"services.{name}"
    if svc.port is not None and not 0 < svc.port < 65536:
        fail(f"{base}.port: must be 1-65535")
    if svc.secrets is not None:
        if svc.secrets.dir is not None and not Path(svc.secrets.dir).is_absolute():
            fail(f"{base}.secrets.dir: must be an absolute path, got {svc.secrets.dir!r}")
        for var in svc.secrets.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) or var.startswith("BOSUN_"):
                fail(f"{base}.secrets.env: {var!r} is not a usable variable name")
    for i, f in enumerate(svc.files):
        p = f"{base}.files[{i}]"
        if not Path(f.path).is_absolute():
            fail(f"{p}.path: must be an absolute path, got {f.path!r}")
        if f.format in TEMPLATED_FORMATS and (f.template is None) == (f.template_file is None):
            fail(f"{p}: format {f.format} needs exactly one of template, template_file")
        if f.format not in TEMPLATED_FORMATS and (f.template or f.template_file):
            fail(f"{p}: template/template_file need format: jinja or template")
        if isinstance(f.check, tuple):
            if not f.check:
                fail(f"{p}.check: an argv list cannot be empty")
            for arg in f.check:
                _check_placeholders(arg, f"{p}.check", fail, CHECK_FIELDS)
        elif f.check is not None and not f.check.strip():
            fail(f"{p}.check: empty command")
        if f.key is not None and f.source != "config":
            fail(f"{p}.key: only valid with source: config")
        if not re.fullmatch(r"0?[0-7]{3}", f.mode):
            fail(f"{p}.mode: expected an octal mode like '0644', got {f.mode!r}")
    commands = [
        (f"{base}.commands.{h}", getattr(svc.commands, h))
        for h in ("install", "reload", "restart", "stop")
    ]
    if svc.process is not None:
        commands.append((f"{base}.process.command", svc.process.command))
    for p, cmd in commands:
        if isinstance(cmd, tuple):
            if not cmd:
                fail(f"{p}: an argv list cannot be empty")
            for arg in cmd:
                _check_placeholders(arg, p, fail)
        elif cmd is not None and not cmd.strip():
            fail(f"{p}: empty command")
    for kind in ("health", "metrics", "sessions", "backends"):
        probe: ProbeSpec | None = getattr(svc, kind)
        if probe is None:
            continue
        set_ = [k for k in ("http", "tcp", "command", "file") if getattr(probe, k) is not None]
        if len(set_) != 1:
            fail(f"{base}.{kind}: set exactly one of http, tcp, command, file")
            continue
        if kind == "health" and set_[0] == "file":
            fail(f"{base}.health: use http, tcp or command")
        if kind != "health" and set_[0] == "tcp":
            fail(f"{base}.{kind}: tcp only answers health; use http, command or file")
        for k in ("http", "tcp", "file"):
            v = getattr(probe, k)
            if v is not None:
                _check_placeholders(v, f"{base}.{kind}.{k}", fail)
        if isinstance(probe.command, tuple):
            for arg in probe.command:
                _check_placeholders(arg, f"{base}.{kind}.command", fail)


def _check_placeholders(
    text: str,
    path: str,
    fail: Callable[[str], None],
    allowed: tuple[str, ...] = TEMPLATE_FIELDS,
) -> None:
    try:
        text.format_map(dict.fromkeys(allowed, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        fail(
            f"{path}: unknown placeholder {exc} in {text!r} (allowed: "
            + ", ".join("{" + f + "}" for f in allowed)
            + "; write {{ and }} for literal braces)"
        )
