"""Loggers that import `logging` only when there is something to write.

Importing `logging` (with `string`, `traceback`, `textwrap` and the regular expressions it
compiles) and installing a handler costs a cron agent about 3 ms of CPU at every start, and
a quiet cycle writes nothing at the default level. `Log(name)` has the methods of a
`logging.Logger` that Bosun calls. Once `configure(level, setup)` has been called (the agent
CLI) and while `logging` is not imported, a message below `level` is dropped at once; the
first message at or above it imports `logging`, runs `setup` (which installs the handlers)
once, and goes to `logging.getLogger(name)`. When `logging` is imported anyway (by
anything: a library, pytest), or without `configure` (the controller, operator commands),
every call goes to `logging`, which decides as a plain logger would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "critical": CRITICAL}

_threshold = 0  # messages below it are dropped while logging is not imported; 0: none
_setup: Callable[[], None] | None = None


def configure(level: str, setup: Callable[[], None]) -> None:
    """Drop messages below `level` (a name of LEVELS) without importing `logging`; run
    `setup` when the first message is written, or now if `logging` is imported already."""
    global _threshold, _setup
    _threshold = LEVELS[level.lower()]
    _setup = setup
    if "logging" in sys.modules:
        _ready()


def _ready() -> None:
    global _setup
    setup, _setup = _setup, None
    if setup is not None:
        setup()


class Log:
    """A `logging.Logger` by name, got (and `logging` imported) on the first message that
    is not dropped; see the module."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def _target(self) -> logging.Logger:
        logger = self._logger
        if logger is None:
            import logging

            _ready()
            logger = self._logger = logging.getLogger(self.name)
        return logger

    def _drop(self, level: int) -> bool:
        return level < _threshold and self._logger is None and "logging" not in sys.modules

    def isEnabledFor(self, level: int) -> bool:
        return not self._drop(level) and self._target().isEnabledFor(level)

    def _emit(self, level: int, msg: object, args: tuple[object, ...], kw: dict[str, Any]) -> None:
        if not self._drop(level):
            kw.setdefault("stacklevel", 3)  # the caller of the method below, not this module
            self._target().log(level, msg, *args, **kw)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(level, msg, args, kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(WARNING, msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(ERROR, msg, args, kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)  # as logging.Logger.exception
        self._emit(ERROR, msg, args, kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(CRITICAL, msg, args, kwargs)

    def __repr__(self) -> str:
        return f"Log({self.name!r})"
