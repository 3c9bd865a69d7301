"""The `bosun-agent` command as a machine runs it: the console script and `python -m agent`.

It runs `agent.cli.main` (which tests call in-process) the way a short process should:

- The cyclic garbage collector is off while the modules import: they make many objects
  that live as long as the process, and each collection pass would walk them all again.
  Once imported they are frozen out of later passes (`gc.freeze`), and the collector is on
  for the cycle and for the daemon, as in any Python process.
- An exit through `sys.exit` (every exit code of the CLI, `--help` and argparse's errors
  included) flushes stdout, stderr and the log handlers, then ends the process with
  `os._exit`: freeing every object at interpreter shutdown costs a cron cycle about 10 ms
  and gives nothing back (the cycle has written, fsynced and closed its files before it
  returns; a supervised process runs in its own session either way). An exception that
  escapes the CLI is a bug and ends as Python ends it: a traceback and exit 1.
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    gc.disable()
    try:
        from agent.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = _status(exc.code)
    os._exit(_flushed(code))


def _status(code: object) -> int:
    """The exit status Python gives `sys.exit(code)`; a message is printed, as it prints it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flushed(code: int) -> int:
    """Flush what Python flushes at exit; 120 when stdout cannot be, as Python exits."""
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    status = code
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = 120 if status == 0 else status
    return status
