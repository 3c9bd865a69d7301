"""Local agent config: `/etc/bosun/agent.yaml`, `--config`, `BOSUN_*` overrides.

The top-level keys are shared with `bosun enroll` (which writes the skeleton) and fixed:
machine, store, key_file, key_epoch, state_dir, eligible, poll_interval,
heartbeat_interval, jitter, addresses, capacity, services, metrics_textfile. `services.<name>`
says how this machine applies a desired document for that service (files, commands, process, probes).
Everything is decoded strictly with `wire.codec`: an unknown or mistyped key is an error
that names its path. Durations are seconds (int/float) or strings like "30s", "5m", "1h".
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

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
    """The agent config is invalid: the message names the file, the path and the fix.

    From `parse_config`: `problems` are its lines, `where` the file, and `key_file` and
    `machine` what the document says of them when it could be read that far (None when
    not), so `bosun-agent check` can add the key file's own problem to the same list."""

    def __init__(
        self,
        message: str,
        *,
        where: str = "",
        problems: tuple[str, ...] = (),
        key_file: str | None = None,
        machine: str | None = None,
    ) -> None:
        super().__init__(message)
        self.where = where
        self.problems = problems
        self.key_file = key_file
        self.machine = machine

    @classmethod
    def listing(
        cls,
        where: str,
        problems: tuple[str, ...],
        key_file: str | None = None,
        machine: str | None = None,
    ) -> ConfigError:
        """`<where>: <problem>`, or `<where>: N problems:` and one indented line each."""
        many = len(problems) > 1
        message = (
            f"{where}: "
            + (f"{len(problems)} problems:\n  " if many else "")
            + "\n  ".join(problems)
        )
        return cls(message, where=where, problems=problems, key_file=key_file, machine=machine)

    def adding(self, *more: str) -> ConfigError:
        """The same error with `more` problems after the document's own."""
        return ConfigError.listing(self.where, (*self.problems, *more), self.key_file, self.machine)


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


def _normalise_durations(value: Any, path: str, problems: _Problems) -> Any:
    """Durations to seconds; a bad one is a problem and is dropped (its default stands in,
    so the decoder does not report it a second time)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if not isinstance(k, str):
                problems.decoding(f"{sub}: keys must be strings", sub)
                continue
            if k in _DURATION_KEYS:
                try:
                    out[k] = parse_duration(v, sub)
                except ConfigError as exc:
                    problems.decoding(str(exc), sub)
            else:
                out[k] = _normalise_durations(v, sub, problems)
        return out
    if isinstance(value, list):
        return [_normalise_durations(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], problems: _Problems) -> None:
    for var, key in ENV_OVERRIDES.items():
        text = env.get(var)
        if text is None or text == "":
            continue
        if key == "key_epoch":
            if not text.strip().isdigit():
                problems.environment(f"{var}: expected a non-negative integer, got {text!r}")
                continue
            raw[key] = int(text)
        elif key == "jitter":
            try:
                raw[key] = float(text)
            except ValueError:
                problems.environment(f"{var}: expected a number between 0 and 1, got {text!r}")
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
    """Decode strictly and validate; ConfigError lists every problem the document has, one
    per line, each with its path, in document order (the environment's first): unknown
    fields, wrong types and bad values at every level in one run.

    A valid config is decoded once by `wire.codec` (which stops at its first problem); only
    when that fails is the document walked again field by field (`_collect`), every problem
    kept, a bad field's default standing in so the rest can still be validated."""
    raw = dict(raw)
    problems = _Problems()
    _apply_env(raw, env or {}, problems)
    value = _normalise_durations(raw, "", problems)
    cfg: AgentConfig | None = None
    if not problems.lines:
        try:
            cfg = codec.decode(AgentConfig, value, "config")
        except InvalidDocument:
            cfg = None
    if cfg is None:
        cfg = _collect(value, problems)
    if cfg is not None:
        _validate(cfg, problems)
    if problems.lines or cfg is None:
        known = cfg is not None and not problems.is_bad("key_file")
        raise ConfigError.listing(
            where,
            problems.ordered(raw),
            key_file=cfg.key_file if known and cfg is not None and cfg.key_file else None,
            machine=cfg.machine if cfg is not None and not problems.is_bad("machine") else None,
        )
    return cfg


class _Problems:
    """The problems of one config, each with the path it is at (its place in the document).

    `decoding` problems make their path bad: a validation problem (`add`) at that path, above
    it or below it is left out, as it would judge the default or placeholder standing in for
    the value, not the value."""

    def __init__(self) -> None:
        self.lines: list[tuple[str | None, str]] = []
        self.bad: set[str] = set()

    def environment(self, text: str) -> None:
        self.lines.append((None, text))

    def decoding(self, text: str, at: str) -> None:
        self.lines.append((at, text))
        self.bad.add(at)

    def add(self, text: str, at: str | None = None) -> None:
        if at is None:
            lead = re.match(_LEADING_PATH, text)
            at = lead.group(0) if lead else ""
        if not self.bad or not self._related(at):
            self.lines.append((at, text))

    def is_bad(self, at: str) -> bool:
        return at in self.bad

    def _related(self, at: str) -> bool:
        return any(b == at or _within(b, at) or _within(at, b) for b in self.bad)

    def ordered(self, raw: dict[str, Any]) -> tuple[str, ...]:
        """The problems in document order: the environment's, then by the place of their
        path in `raw` (a path not in it: at its nearest enclosing one); stable."""
        positions: dict[str, int] = {}
        _positions(raw, "", positions)
        keyed = [
            (-1 if at is None else _position(at, positions), i, text)
            for i, (at, text) in enumerate(self.lines)
        ]
        return tuple(text for _, _, text in sorted(keyed))


_LEADING_PATH = r"[^\s:'\"]+(?=: )"  # compiled only for a problem (re's cache)


def _within(path: str, outer: str) -> bool:
    """`path` is inside `outer` (never inside the top level "")."""
    return (
        bool(outer) and path.startswith(outer) and path[len(outer) : len(outer) + 1] in (".", "[")
    )


def _positions(value: Any, path: str, out: dict[str, int]) -> None:
    out.setdefault(path, len(out))
    if isinstance(value, dict):
        for k, v in value.items():
            _positions(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _positions(v, f"{path}[{i}]", out)


def _position(at: str, positions: dict[str, int]) -> int:
    while at not in positions:
        cut = max(at.rfind("."), at.rfind("["))
        if cut < 0:
            return 0
        at = at[:cut]
    return positions[at]


class _Bad:
    """A value that could not be decoded (its problems are recorded)."""


_BAD = _Bad()


def _collect(value: dict[str, Any], problems: _Problems) -> AgentConfig | None:
    """Every decoding problem of the config (the messages `wire.codec` gives), and the
    config with each bad field's default, or a placeholder for a bad required one."""
    value = dict(value)
    services_raw = value.pop("services", {})
    cfg = _value(AgentConfig, value, "", problems)
    services: dict[str, ServiceConfig] = {}
    if not isinstance(services_raw, dict):
        problems.decoding(
            "services: expected a mapping of service name to how to apply it, "
            f"got {type(services_raw).__name__}",
            "services",
        )
        services_raw = {}
    for name, svc_raw in services_raw.items():
        svc = _value(ServiceConfig, svc_raw, f"services.{name}", problems)
        if isinstance(svc, ServiceConfig):
            services[str(name)] = svc
    return replace(cfg, services=services) if isinstance(cfg, AgentConfig) else None


def _value(tp: Any, value: object, path: str, problems: _Problems) -> Any:
    """`value` decoded as `tp`, every problem inside recorded, or _BAD."""
    if isinstance(value, dict) and isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record(tp, value, path, problems)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        one = [a for a in args if a is not type(None)]
        if value is None and len(one) < len(args):
            return None
        if len(one) == 1:
            return _value(one[0], value, path, problems)
    elif origin is tuple and isinstance(value, list) and len(value) <= codec.MAX_ITEMS:
        item_tp = get_args(tp)[0]
        items = [_value(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)
    elif origin is dict and isinstance(value, dict) and len(value) <= codec.MAX_ITEMS:
        item_tp = get_args(tp)[1]
        entries = {k: _value(item_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in entries.values()) else entries
    try:
        return codec.decode(tp, value, path)
    except InvalidDocument as exc:
        problems.decoding(str(exc), path)
        return _BAD


def _record(cls: type, value: dict[str, Any], path: str, problems: _Problems) -> Any:
    where = path or "config"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    annotations = codec.hints(cls)
    listing = ", ".join(sorted(fields))
    kwargs: dict[str, Any] = {}
    for name, v in value.items():
        sub = f"{path}.{name}" if path else str(name)
        if name not in fields:
            problems.decoding(f"{where}: unknown field {name!r} (allowed: {listing})"[:400], sub)
            continue
        got = _value(annotations[name], v, sub, problems)
        if got is not _BAD:
            kwargs[name] = got
    for name, f in fields.items():
        if name in kwargs or not (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ):
            continue
        sub = f"{path}.{name}" if path else name
        if name not in value:
            problems.decoding(f"{where}: missing required field {name!r}", sub)
        if not _takes_text(annotations[name]):
            return _BAD
        kwargs[name] = ""  # a placeholder; its own problem is reported
    return cls(**kwargs)


def _takes_text(tp: Any) -> bool:
    return tp is str or (get_origin(tp) in (Union, types.UnionType) and str in get_args(tp))


def _validate(cfg: AgentConfig, problems: _Problems) -> None:
    fail = problems.add
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
    if cfg.heartbeat_interval < cfg.poll_interval and not problems.is_bad("poll_interval"):
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
    for at, names in (("eligible", cfg.eligible), ("services", cfg.services)):
        for name in names:
            if not SERVICE_NAME_PATTERN.fullmatch(name):
                where = at if at == "eligible" else f"services.{name}"
                problems.add(f"service name {name!r}: use a-z, 0-9, '.', '_', '-'", where)
    for name in cfg.eligible:
        if name not in cfg.services and not (
            problems.is_bad("services") or problems.is_bad(f"services.{name}")
        ):
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
