"""`commands` driver: local hooks (install, reload, restart, stop) with a timeout each.

A string runs through /bin/sh -c exactly as written in the local config; desired values
reach it only through BOSUN_* environment variables (never spliced into shell text). An
argv list gets {version}, {port}, {mode}... substituted per argument, with no shell. The
output of a failed hook is captured into the error (and so into the report).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from agent.config import Command
from agent.drivers import ApplyError, tail
from wire.logs import Log

log = Log(__name__)

_AGENT_SECRETS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


def argv_for(command: Command, fields: Mapping[str, str]) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [arg.format_map(fields) for arg in command]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment without BOSUN_* and the agent's own bucket credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOSUN_") and k not in _AGENT_SECRETS
    }
    env.update(extra)
    return env


def run_hook(
    name: str,
    command: Command,
    *,
    fields: Mapping[str, str],
    env: Mapping[str, str],
    timeout: float,
    cwd: str | None = None,
    what: str | None = None,
) -> str:
    """Run one hook; its output, or ApplyError with the exit status and output tail.
    `what` names it in errors (default: "<name> hook")."""
    import signal  # here, not at the top: a steady cycle runs no hook
    import subprocess

    argv = argv_for(command, fields)
    what = what or f"{name} hook"
    log.info("hook.run hook=%s service=%s", name, fields.get("service", ""))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ApplyError(f"{what} {argv[0]!r} could not start: {exc.strerror}") from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise ApplyError(
            f"{what} timed out after {timeout:g}s and was killed; output: {tail(out) or '(none)'}"
        ) from None
    if proc.returncode != 0:
        raise ApplyError(f"{what} exited with {proc.returncode}; output: {tail(out) or '(none)'}")
    return out.decode("utf-8", "replace")
