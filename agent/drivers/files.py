"""`files` driver: render desired data to files atomically, keeping the previous content.

Formats: json (pretty, sorted), yaml, env (KEY="value" lines), template (`${version}`,
`${mode}`, `${port}`, `${config.some.key}`, `${config_json}`, `${peers_json}`) and jinja
(a sandboxed Jinja2 template with loops over the peers: `agent.templates`). Sources:
`config` (optionally one `key` of it), `peers` (`{"backends": [...], "mirror": [...]}`) or
`desired` (service, mode, version, generation, config, peers). Each write is temp + fsync +
rename (or the rename of a staged file its `check` accepted: `agent.staging`); the previous
bytes are kept (in memory for the transaction and as `<state_dir>/files/<name>.prev`) so a
failed apply restores them exactly.
"""

from __future__ import annotations

import functools
import os
import re
import string
from pathlib import Path
from typing import Any

import orjson

from agent.config import FileSpec
from agent.drivers import ApplyError, Target, peers_value
from wire.atomic import write_atomic
from wire.records import record


@functools.cache
def _template() -> type[string.Template]:
    """`${config.some.key}` templates. Made on first use: defining a Template subclass
    compiles its pattern (~4 ms), which a cycle that renders nothing never needs."""

    class _Template(string.Template):
        idpattern = r"(?a:[_a-z][_a-z0-9]*(?:\.[_a-zA-Z0-9-]+)*)"

    return _Template


@record
class FileChange:
    """A file the driver replaced, and what it held before (to restore it)."""

    path: Path
    previous: bytes | None  # None: the file did not exist
    previous_mode: int | None


def source_value(spec: FileSpec, target: Target) -> Any:
    if spec.source == "peers":
        return peers_value(target.doc)
    if spec.source == "desired":
        return {
            "service": target.service,
            "mode": target.mode,
            "version": target.version,
            "generation": target.doc.generation if target.doc else 0,
            "config": target.config,
            "peers": peers_value(target.doc),
        }
    value = target.config
    if spec.key is not None:
        if not isinstance(value, dict) or spec.key not in value:
            raise ApplyError(f"{spec.path}: desired config has no key {spec.key!r}")
        value = value[spec.key]
    return value


def _env_quote(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    elif isinstance(value, bool):
        value = "true" if value else "false"
    elif value is None:
        value = ""
    text = str(value)
    for ch in ("\\", '"', "$", "`"):
        text = text.replace(ch, "\\" + ch)
    return '"' + text.replace("\n", "\\n") + '"'


def _lookup(target: Target, name: str) -> str:
    fields = target.fields
    if name in fields:
        return fields[name]
    if name == "config_json":
        return orjson.dumps(target.config, option=orjson.OPT_SORT_KEYS).decode()
    if name == "peers_json":
        return orjson.dumps(peers_value(target.doc)).decode()
    if name.startswith("config."):
        value: Any = target.config
        for part in name.split(".")[1:]:
            if not isinstance(value, dict) or part not in value:
                raise KeyError(name)
            value = value[part]
        if isinstance(value, (dict, list)):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
    raise KeyError(name)


def render(spec: FileSpec, target: Target) -> bytes:
    if spec.format == "jinja":
        from agent.templates import render_jinja  # Jinja2 only when a template renders

        return render_jinja(spec, target)
    if spec.format == "template":
        text = spec.template
        if text is None:
            try:
                text = Path(spec.template_file or "").read_text()
            except OSError as exc:
                raise ApplyError(
                    f"{spec.path}: cannot read template {spec.template_file}: {exc.strerror}"
                ) from None
        template = _template()
        names = {m.group("named") or m.group("braced") for m in template.pattern.finditer(text)}
        values: dict[str, str] = {}
        for name in names:
            if not name:
                continue
            try:
                values[name] = _lookup(target, name)
            except KeyError:
                raise ApplyError(
                    f"{spec.path}: template placeholder ${{{name}}} has no value"
                ) from None
        try:
            return template(text).substitute(values).encode()
        except ValueError as exc:
            raise ApplyError(f"{spec.path}: bad template: {exc}") from None
    value = source_value(spec, target)
    if spec.format == "json":
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if spec.format == "yaml":
        import yaml

        return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).encode()
    if not isinstance(value, dict):
        raise ApplyError(f"{spec.path}: env format needs an object, got {type(value).__name__}")
    lines = []
    for k in sorted(value):
        name = re.sub(r"[^A-Z0-9_]", "_", str(k).upper())
        lines.append(f"{name}={_env_quote(value[k])}\n")
    return "".join(lines).encode()


class FilesDriver:
    def __init__(self, state_dir: Path) -> None:
        self.backup_dir = state_dir / "files"

    def write(
        self, spec: FileSpec, content: bytes, staged: Path | None = None
    ) -> FileChange | None:
        """Write `content` if it differs (by renaming `staged`, which holds exactly those
        bytes, when given); the change to undo, or None when unchanged."""
        path = Path(spec.path)
        mode = int(spec.mode, 8)
        previous, previous_mode = current(path)
        if previous == content and previous_mode == mode:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if previous is not None:
                self.backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_atomic(self.backup_dir / (_flat(path) + ".prev"), previous)
            if staged is not None:
                os.replace(staged, path)
                _fsync_dir(path.parent)
            else:
                write_atomic(path, content, mode)
            os.chmod(path, mode)
        except OSError as exc:
            raise ApplyError(f"{path}: cannot write: {exc.strerror}") from None
        return FileChange(path, previous, previous_mode)

    @staticmethod
    def undo(change: FileChange) -> None:
        if change.previous is None:
            change.path.unlink(missing_ok=True)
        else:
            write_atomic(change.path, change.previous, change.previous_mode or 0o644)
            os.chmod(change.path, change.previous_mode or 0o644)


def current(path: Path) -> tuple[bytes | None, int | None]:
    """The live bytes and mode of `path`; (None, None) when it does not exist."""
    try:
        return path.read_bytes(), path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise ApplyError(f"{path}: cannot read: {exc.strerror}") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flat(path: Path) -> str:
    return str(path).strip("/").replace("/", "__")
