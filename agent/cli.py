"""`bosun-agent`: run (cron or daemon), check, status.

Exit codes: 0 ok; 1 the cycle ran but something failed or was refused (the reason is in
the next snapshot and in `bosun-agent status`); 2 bad config, missing or exposed key, bad
store URL, another agent holding the lock, or a failed `check`. argparse (not click) keeps
the cron path's import time small; nothing here imports boto3 unless the store needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from agent.config import AgentConfig, ConfigError, load_config
from wire import logs

if TYPE_CHECKING:
    from agent.cycle import Agent

log = logs.Log("agent")

DEFAULT_DEADLINE = 20.0


def _setup_logging(level: str, fmt: str) -> None:
    """Log to stderr from `level`, as text lines or JSON objects; `logging` is imported
    and the handler installed only when a message is written (`wire.logs`): a quiet cron
    cycle writes none."""
    logs.configure(level, lambda: _install_handler(level, fmt))


def _install_handler(level: str, fmt: str) -> None:
    import logging

    class _JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return orjson.dumps(
                {
                    "t": round(record.created, 3),
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "msg": record.getMessage(),
                }
            ).decode()

    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def duration(text: str) -> float:
    """An argparse type: 20, 2.5, "500ms", "30s", "5m" (`wire.durations`, as in the config)."""
    from wire.durations import parse_duration

    seconds = parse_duration(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds (20, 2.5) or 500ms, 30s, 5m, 1h"
        )
    return seconds


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own, as wide as `shutil.get_terminal_size` says, without importing shutil
    (with its bz2 and lzma): argparse makes a formatter for every option it adds, so that
    import would cost every cron cycle ~3 ms."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


def _columns() -> int:
    """The terminal's columns as shutil.get_terminal_size() finds them: $COLUMNS, else
    stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        out = sys.__stdout__
        try:
            columns = os.get_terminal_size(out.fileno()).columns if out is not None else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _common(p: argparse.ArgumentParser, *, sub: bool) -> None:
    """The global options, accepted before and after the subcommand (`run --once --config X`).
    On a subcommand they default to SUPPRESS so as not to undo a value given before it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    p.add_argument(
        "--config",
        type=Path,
        default=default(None),
        help="agent config (default /etc/bosun/agent.yaml, or $BOSUN_CONFIG)",
    )
    p.add_argument(
        "--log-level",
        default=default("warning"),
        choices=["debug", "info", "warning", "error"],
        help="log to stderr from this level (default warning); info: one line per --once cycle",
    )
    p.add_argument(
        "--log-format",
        default=default("text"),
        choices=["text", "json"],
        help="text lines, or one JSON object per line for journald/log shippers (default text)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bosun-agent", description="Bosun machine agent", formatter_class=_HelpFormatter
    )
    _common(p, sub=False)
    # prog given: argparse would otherwise build a help formatter (and import shutil) here
    sub = p.add_subparsers(dest="command", required=True, prog="bosun-agent")
    run = sub.add_parser(
        "run", help="run cycles: --once for cron, else a daemon", formatter_class=_HelpFormatter
    )
    _common(run, sub=True)
    run.add_argument("--once", action="store_true", help="one cycle, then exit (cron mode)")
    run.add_argument(
        "--deadline",
        type=duration,
        default=DEFAULT_DEADLINE,
        help="how long bucket requests may take in total, and the bound of each cycle's "
        "requests together (default 20s): a slow bucket ends the cycle with fetch_timeout",
    )
    run.add_argument(
        "--splay",
        type=duration,
        default=0.0,
        help="--once: sleep a random 0..SPLAY first (20, 20s, 1m; spreads a cron fleet)",
    )
    check = sub.add_parser(
        "check",
        help="validate the config, the key and the bucket's behaviour",
        description="Validate the config and the key, then probe the bucket: a conditional "
        "GET with the current ETag must answer 304, and PUTs of this machine's report with a "
        "wrong If-Match or If-None-Match: * must be refused. Exit 0 when all pass.",
        formatter_class=_HelpFormatter,
    )
    _common(check, sub=True)
    status = sub.add_parser(
        "status",
        help="print the local applied state and the last error",
        formatter_class=_HelpFormatter,
    )
    _common(status, sub=True)
    status.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="(default text)"
    )
    return p


def _agent(cfg: AgentConfig, deadline: float) -> Agent:
    from agent.cycle import Agent
    from wire.store import open_agent_store

    key = _read_key(Path(cfg.key_file), cfg.machine)
    timeouts = None
    if not cfg.store.startswith("file:"):  # the S3 client only for an s3:// bucket
        from wire.store.s3 import Timeouts

        timeouts = Timeouts(connect=min(3.0, deadline), read=min(10.0, deadline), total=deadline)
    store = open_agent_store(cfg.store, timeouts=timeouts)
    return Agent(cfg, key, store, deadline=deadline)


def _read_key(path: Path, machine: str) -> bytes:
    """The machine key, or a BosunError saying what is wrong with its file and the fix."""
    from wire.errors import BosunError
    from wire.signing import read_key_file

    if not path.exists():
        raise BosunError(
            f"key file {path} does not exist (key_file in the config); write it with "
            f"`bosun enroll {machine} --key-out {path} ...` on the host with the master "
            "key (mode 0600, owned by the agent's user), or point key_file at where it is"
        )
    try:
        return read_key_file(path)
    except OSError as exc:
        raise BosunError(f"key file {path}: cannot read it: {exc.strerror}") from None


def _with_key_problem(exc: ConfigError) -> ConfigError:
    """`check`: a bad config's problems, and after them its key file's, when the document
    says where that is."""
    if exc.key_file is None:
        return exc
    from wire.errors import BosunError

    try:
        _read_key(Path(exc.key_file), exc.machine or "MACHINE")
    except BosunError as key_exc:
        return exc.adding(str(key_exc))
    return exc


def _run(cfg: AgentConfig, args: argparse.Namespace) -> int:
    from agent.daemon import run_daemon, run_once

    agent = _agent(cfg, args.deadline)
    if not args.once:
        return run_daemon(agent)
    if args.splay > 0:
        import random

        time.sleep(random.uniform(0, args.splay))
    result = run_once(agent)
    for err in result.errors:
        print(f"bosun-agent: {err}", file=sys.stderr)
    a = agent.state.applied
    log.info(
        "once %s %s: applied generation %d (%s)%s; report %s",
        cfg.machine,
        "ok" if result.ok else "failed",
        a.generation,
        a.result,
        f": {a.error}" if a.error else "",
        "sent" if result.put else "unchanged, not sent",
    )
    return 0 if result.ok else 1


def _status(cfg: AgentConfig, args: argparse.Namespace) -> int:
    from agent.drivers.process import ProcessDriver
    from agent.state import StateDir
    from wire import codec

    sd = StateDir(Path(cfg.state_dir))
    state, _ = sd.load() if (Path(cfg.state_dir) / "state.json").exists() else (None, None)
    procs = ProcessDriver(Path(cfg.state_dir))
    services = {
        name: procs.state(name) if svc.process else "-" for name, svc in cfg.services.items()
    }
    if state is None:
        print(f"bosun-agent: no local state in {cfg.state_dir} yet (no cycle has run)")
        return 0
    if args.output == "json":
        out = {"machine": cfg.machine, "kid": cfg.kid, "processes": services, **codec.encode(state)}
        out.pop("last_fingerprint", None)
        sys.stdout.write(
            orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        )
        return 0
    a = state.applied

    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "never"

    print(f"machine       {cfg.machine} (kid {cfg.kid})")
    print(f"applied       generation {a.generation} fence {a.fence} digest {a.digest[:12] or '-'}")
    print(f"last apply    {a.result} at {when(a.at)}" + (f": {a.error}" if a.error else ""))
    print(
        f"last cycle    {when(state.last_cycle_at)}; last report {when(state.last_put_at)} (seq {state.seq})"
    )
    print(f"processes     {', '.join(f'{k}={v}' for k, v in services.items()) or '-'}")
    refusals = ", ".join(f"{k}={v}" for k, v in sorted(state.refusals.items())) or "none"
    from agent.verify import verify_failures

    print(f"refusals      {refusals} ({verify_failures(state.refusals)} failed verification)")
    if state.last_refusal:
        r = state.last_refusal
        print(f"last refusal  {r.reason} at {when(r.at)}: {r.detail}")
    print(f"last error    {state.last_error or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _setup_logging(args.log_level, args.log_format)
    from wire.errors import BosunError

    try:
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise _with_key_problem(exc) if args.command == "check" else exc from None
        if args.command == "run":
            code = _run(cfg, args)
        elif args.command == "check":
            from agent.check import run_check

            code = run_check(cfg, _agent(cfg, DEFAULT_DEADLINE))
        else:
            code = _status(cfg, args)
    except BosunError as exc:
        print(f"bosun-agent: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
