"""Status messages on stderr through :mod:`logging`, under the ``tokenswarm`` logger.

The library only emits records (``logger.info("...")``); the command line decides what
is shown with :func:`configure`: status lines by default, warnings only with ``--quiet``,
debugging detail with ``--verbose``. A program that imports tokenswarm as a library keeps
its own logging configuration: nothing is printed unless it (or ``configure``) adds a
handler, except warnings, which Python's last-resort handler prints.

Errors that end a command (``error: ...``, exit code 1 or 2) are printed by the command
line itself, not logged, so that ``--quiet`` never hides why a command failed.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["NORMAL", "QUIET", "VERBOSE", "configure", "is_quiet", "logger"]

logger = logging.getLogger("tokenswarm")

QUIET, NORMAL, VERBOSE = logging.WARNING, logging.INFO, logging.DEBUG


class _StderrHandler(logging.StreamHandler):
    """Writes to the *current* ``sys.stderr`` (tests and redirections replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Format(logging.Formatter):
    """``message`` for status lines, ``warning: message`` for warnings."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


def configure(level: int = NORMAL) -> None:
    """Show the ``tokenswarm`` logger's records of ``level`` and above on stderr, once."""
    logger.setLevel(level)
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Format("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def is_quiet() -> bool:
    """Whether :func:`configure` switched status output (progress bars included) off."""
    configured = any(isinstance(handler, _StderrHandler) for handler in logger.handlers)
    return configured and logger.level > NORMAL
