"""Intra-op thread control for loops of small tensor operations.

Solvers that loop over many small operations (a 4096-cell grid, a few dozen tokens) gain
nothing from intra-op parallelism, and on a machine whose cores are shared the idle-spinning
worker threads slow them down 5-30x (measured on 2 shared cores: a 128-cell Fokker-Planck run
took 5.8 s with one thread and 36.7 s with two). Such loops run under
``torch_threads(1)``; the previous setting is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(count: int | None, device: torch.device | str | None = None) -> Iterator[None]:
    """Temporarily ``torch.set_num_threads(count)``; ``None`` or a non-CPU ``device``: no change."""
    if count is None or (device is not None and torch.device(device).type != "cpu"):
        yield
        return
    if count < 1:
        raise ValueError(f"thread count must be >= 1 or None, got {count!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
