"""Hand a desired document's secret values to the service (docs/agent.md#secrets).

A secret reaches the service only where the agent config's `services.<name>.secrets` says:
a file `dir/<config path>` (mode 0600 in a 0700 directory, rewritten only when it changed)
and the environment variables named in `env`. In the config the files and hooks see (and in
BOSUN_CONFIG), the value is replaced by its file's path, or by null when no `dir` is set.
The values are decrypted with the machine key (wire.secret_box) each time they are needed
and are never written anywhere else: not to the state directory, reports or logs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.drivers import ApplyError
from wire.atomic import write_atomic
from wire.documents import Desired
from wire.layout import desired_key
from wire.secret_box import SecretRefused, decrypt_for_machine, find_secrets, map_secrets
from wire.signing import read_key_file


def file_name(path: str) -> str:
    """A config path as one file name (`db.password`, `tokens[0]`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", path).lstrip(".") or "_"


def materialize(cfg: AgentConfig, service: str, doc: Desired) -> tuple[Any, dict[str, str]]:
    """(the config with each secret replaced by its file's path, the secret environment);
    ApplyError when the agent config does not say where the secrets go."""
    found = find_secrets(doc.config)
    spec = cfg.services[service].secrets if service in cfg.services else None
    paths = ", ".join(p for p, _t in found)
    if spec is None or (spec.dir is None and not spec.env):
        raise ApplyError(
            f"the desired config of {service} carries secrets ({paths}) and the agent config "
            f"names no place for them: set services.{service}.secrets.dir and/or .env"
        )
    key = read_key_file(Path(cfg.key_file))
    object_key = desired_key(cfg.machine)
    values: dict[str, bytes] = {}
    try:
        for path, token in found:
            values[path] = decrypt_for_machine(
                key, cfg.machine, object_key, doc.generation, path, token
            )
    except SecretRefused as exc:
        raise ApplyError(str(exc)) from None
    env: dict[str, str] = {}
    for var, path in spec.env.items():
        if path not in values:
            raise ApplyError(
                f"services.{service}.secrets.env.{var}: the desired config has no secret at "
                f"{path!r} (secrets: {paths})"
            )
        env[var] = values[path].decode("utf-8", "replace")
    if spec.dir is None:
        return map_secrets(doc.config, lambda _p, _t: None), env
    folder = Path(spec.dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = {path: folder / file_name(path) for path in values}
    for path, file in files.items():
        data = values[path]
        try:
            same = file.read_bytes() == data and (file.stat().st_mode & 0o077) == 0
        except OSError:
            same = False
        if not same:
            write_atomic(file, data, 0o600)
    return map_secrets(doc.config, lambda p, _t: str(files[p])), env
