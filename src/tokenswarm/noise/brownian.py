"""Brownian increments on nested grids: one realisation for several step sizes (strong errors)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["BrownianPath"]


class BrownianPath:
    """Gaussian increments on a fine grid of ``steps`` steps over ``[0, t_max]``.

    ``increments(steps_coarse)`` returns the same realisation summed onto a coarser grid
    (``steps`` must be a multiple of it): ``(steps_coarse, *batch, *shape)``.
    """

    def __init__(self, batch: Sequence[int], shape: Sequence[int], t_max: float, steps: int, *,
                 generator=None, dtype=torch.float64, device=None):
        self.t_max, self.steps = float(t_max), int(steps)
        dt = self.t_max / self.steps
        self.fine = math.sqrt(dt) * torch.randn(
            self.steps, *batch, *shape, generator=generator, dtype=dtype, device=device
        )

    def increments(self, steps: int | None = None) -> torch.Tensor:
        steps = self.steps if steps is None else int(steps)
        if self.steps % steps:
            raise ValueError(f"coarse steps {steps} must divide the fine steps {self.steps}")
        factor = self.steps // steps
        return self.fine.reshape(steps, factor, *self.fine.shape[1:]).sum(dim=1)
