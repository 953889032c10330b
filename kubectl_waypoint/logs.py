"""Loggers that leave `logging` unimported until something could be shown.

`import logging` (with traceback, string and the rest it pulls in) is about 4 ms of every start,
and without -v nothing below a warning is ever shown: until cli.py configures logging for -v, the
root level is WARNING and no handler is attached. So a debug or info record made while `logging`
is not imported is dropped without importing it, exactly as logging would have dropped it; a
warning imports it and goes where it always went (logging's last-resort handler: stderr). Once
anything has imported `logging`, every record goes to the real logger of the same name.
"""

from __future__ import annotations

import sys

DEBUG, INFO, WARNING = 10, 20, 30  # logging's own values


class Logger:
    """What `logging.getLogger(name)` would give, as far as this package uses it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        logging = sys.modules.get("logging")
        return logging is not None and logging.getLogger(self.name).isEnabledFor(level)

    def debug(self, message: str, *args) -> None:
        self._log(DEBUG, message, args)

    def info(self, message: str, *args) -> None:
        self._log(INFO, message, args)

    def warning(self, message: str, *args) -> None:
        self._log(WARNING, message, args)

    def _log(self, level: int, message: str, args: tuple) -> None:
        if level < WARNING and "logging" not in sys.modules:
            return
        import logging

        # stacklevel 3: the record names the caller of debug()/info()/warning(), not this module.
        logging.getLogger(self.name).log(level, message, *args, stacklevel=3)


def getLogger(name: str) -> Logger:  # noqa: N802 (logging's name)
    return Logger(name)
