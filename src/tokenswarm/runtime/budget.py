"""Resource estimates made before any allocation or loop: refuse what cannot finish.

A mistyped size (``n=100000`` for an equiangular start that needs an ``n x n`` matrix,
``step=1e-300``, ``t=0,1e9``) must not end in an 80 GB allocation, a silent hang or a run of
several days. The library estimates what it is about to do at the places where the cost is
decided (samplers, integrators, layer loops, pairwise metrics) and raises
:class:`ResourceLimitError` with the estimate and the limit. The command line turns that
into one line and exit code 2; ``--force`` (:func:`forced`) lifts the limits for a user
who knows the machine can take it.

Limits:

* memory: a fraction :data:`MEMORY_FRACTION` of what the device has available now
  (``MemAvailable`` on Linux, the free memory of a CUDA device);
* steps: :data:`STEP_LIMIT` steps (solver steps or network layers) in one loop, so a
  mistyped step size is refused at once instead of looping for days.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar

from tokenswarm.params import UsageError

__all__ = [
    "ResourceLimitError",
    "MEMORY_FRACTION",
    "STEP_LIMIT",
    "forced",
    "is_forced",
    "available_memory",
    "check_memory",
    "check_steps",
    "check_count",
    "check_solve_memory",
    "format_bytes",
]

MEMORY_FRACTION = 0.8
STEP_LIMIT = 10_000_000

_force: ContextVar[bool] = ContextVar("tokenswarm_force_resources", default=False)


class ResourceLimitError(UsageError):
    """A request whose estimated memory or step count exceeds the limits (see module docs)."""


@contextlib.contextmanager
def forced(enabled: bool = True) -> Iterator[None]:
    """Within the block, estimates are still made but never refuse (the CLI's ``--force``)."""
    token = _force.set(enabled)
    try:
        yield
    finally:
        _force.reset(token)


def is_forced() -> bool:
    return _force.get()


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


def available_memory(device=None) -> int:
    """Bytes that can be allocated now on ``device`` (CPU: ``MemAvailable``)."""
    kind = getattr(device, "type", None) or (str(device).split(":")[0] if device is not None else "cpu")
    if kind == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse on a guess


def check_memory(nbytes: float, what: str, device=None) -> None:
    """Refuse ``what`` if it needs more than :data:`MEMORY_FRACTION` of the available memory."""
    if _force.get():
        return
    available = available_memory(device)
    limit = MEMORY_FRACTION * available
    if nbytes > limit:
        raise ResourceLimitError(
            f"{what} needs about {format_bytes(nbytes)} of memory, more than the limit of "
            f"{format_bytes(limit)} ({MEMORY_FRACTION:.0%} of the {format_bytes(available)} available "
            f"on {device or 'cpu'}); choose a smaller size, or pass --force to try anyway"
        )


def check_steps(count: float, what: str) -> None:
    """Refuse a loop of more than :data:`STEP_LIMIT` steps."""
    if _force.get():
        return
    if not count <= STEP_LIMIT:  # also catches inf and NaN
        raise ResourceLimitError(
            f"{what} needs {count:.3g} steps, more than the limit of {STEP_LIMIT:.0e}; "
            "increase the step, shorten the horizon, or pass --force to run it anyway"
        )


def check_count(value: int, what: str) -> None:
    """Refuse a count (tokens, runs, layers, epochs, cells) above :data:`STEP_LIMIT`."""
    if _force.get():
        return
    if value > STEP_LIMIT:
        raise ResourceLimitError(
            f"{what} is more than the limit of {STEP_LIMIT:.0e} on counts (tokens, runs, layers, steps, "
            "epochs, cells); choose a smaller value, or pass --force to run it anyway"
        )


def check_solve_memory(x0, recorded_states: int, what: str) -> None:
    """Refuse a solve of ``x0`` (a tensor) that keeps ``recorded_states`` copies of the state
    plus a working set of 8 (stages, temporaries) beyond what is available."""
    state = x0.numel() * x0.element_size()
    check_memory((recorded_states + 8) * state, what, x0.device)
