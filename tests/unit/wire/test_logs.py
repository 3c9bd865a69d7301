"""wire.logs: below the configured level nothing imports `logging`; at or above it the
handlers are set up once and the message is written; with `logging` imported, `logging`
decides. Run in fresh interpreters (pytest itself imports logging)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
from wire import logs
calls = []
def setup():
    import logging
    calls.append("setup")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(lineno)d %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel("WARNING")
logs.configure("warning", setup)
log = logs.Log("agent.x")
log.debug("quiet %s", 1)
log.info("quiet %s", 2)
print("imported after info:", "logging" in sys.modules, calls)
log.warning("loud %s", 3)
log.info("dropped by logging now %s", 4)
log.error("louder %s", 5)
print("imported after warning:", "logging" in sys.modules, calls)
"""


def _run(script: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.splitlines()


def test_below_the_level_nothing_is_imported_and_above_it_logging_writes() -> None:
    out = _run(SCRIPT)
    assert out[0] == "imported after info: False []"
    # the caller's line (stacklevel), not wire.logs's
    assert out[1] == "WARNING agent.x 17 loud 3"
    assert out[2] == "ERROR agent.x 19 louder 5"
    assert out[3] == "imported after warning: True ['setup']"
    assert len(out) == 4


def test_with_logging_imported_first_setup_runs_at_once_and_logging_decides() -> None:
    out = _run("import logging\n" + SCRIPT.replace('"imported after info:"', "0"))
    assert out[0] == "0 True ['setup']"
    assert out[1].startswith("WARNING agent.x ") and out[1].endswith("loud 3")


def test_without_configure_every_call_goes_to_logging() -> None:
    out = _run(
        "import sys, logging\n"
        "logging.basicConfig(stream=sys.stdout, level='DEBUG', format='%(levelname)s %(message)s')\n"
        "from wire.logs import Log\n"
        "Log('c').debug('d %s', 1)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    Log('c').exception('boom')\n"
    )
    assert out[0] == "DEBUG d 1"
    assert out[1] == "ERROR boom"
    assert "ZeroDivisionError" in out[-1]
