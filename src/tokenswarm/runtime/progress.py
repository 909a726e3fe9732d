"""Progress bars for long loops, always on stderr so that stdout stays machine-readable.

Bars are shown only when stderr is a terminal (so logs and CI output stay clean) and
``--quiet`` (:func:`tokenswarm.runtime.log.is_quiet`) is not in effect; they are
transient (they vanish when done). Nested bars -- ``reproduce`` looping over experiments
whose solvers loop over steps -- share one live display, because rich allows only one
at a time; the active display is tracked in a ``ContextVar`` for that reason.

Usage::

    for step in track(range(steps), "integrating"):
        ...

    with progress_bar(total=steps, description="integrating") as bar:
        while ...:
            bar.advance()
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tokenswarm.runtime import log

__all__ = ["ProgressBar", "progress_bar", "track", "stderr_console"]

T = TypeVar("T")

_active_display: ContextVar[Progress | None] = ContextVar("tokenswarm_progress_display", default=None)


def stderr_console() -> Console:
    """A rich console bound to the current ``sys.stderr`` (resolved at each write)."""
    return Console(stderr=True)


class ProgressBar:
    """Handle on one task of a live display; a no-op when progress is disabled."""

    def __init__(self, display: Progress | None = None, task: TaskID | None = None) -> None:
        self._display = display
        self._task = task

    def advance(self, steps: float = 1.0) -> None:
        if self._display is not None and self._task is not None:
            self._display.advance(self._task, steps)

    def update(self, *, completed: float | None = None, description: str | None = None) -> None:
        if self._display is not None and self._task is not None:
            self._display.update(self._task, completed=completed, description=description)


@contextmanager
def progress_bar(
    total: float | None, description: str, *, enabled: bool | None = None
) -> Iterator[ProgressBar]:
    """A progress bar on stderr for the duration of the ``with`` block.

    Args:
        total: number of steps, or ``None`` for an indeterminate bar.
        description: text shown to the left of the bar.
        enabled: force on/off; by default on exactly when stderr is a terminal and the
            command line is not ``--quiet`` (or when an enclosing bar is live, whose display
            then shows this one as a nested task).
    """
    if enabled is False or (enabled is None and log.is_quiet()):  # off, also inside another bar
        yield ProgressBar()
        return
    outer = _active_display.get()
    if outer is not None:
        task = outer.add_task(description, total=total)
        try:
            yield ProgressBar(outer, task)
        finally:
            outer.remove_task(task)
        return
    console = stderr_console()
    if not (console.is_terminal if enabled is None else enabled):
        yield ProgressBar()
        return
    display = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with display:
        token = _active_display.set(display)
        try:
            yield ProgressBar(display, display.add_task(description, total=total))
        finally:
            _active_display.reset(token)


def track(
    iterable: Iterable[T],
    description: str,
    *,
    total: float | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar (see :func:`progress_bar`)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar(total, description, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.advance()
