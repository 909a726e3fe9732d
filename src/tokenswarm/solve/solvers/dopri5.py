"""Adaptive embedded Runge–Kutta 5(4) of Dormand and Prince, plus retraction after each step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from tokenswarm.solve.solvers.base import Solver

__all__ = ["DormandPrince"]


@dataclass(frozen=True)
class DormandPrince(Solver):
    """Embedded Runge–Kutta 5(4) of Dormand and Prince, used with step-size control.

    ``step`` is the initial step (default ``max(1e-3, 1e-2 * span)``); ``rtol``/``atol``
    bound the RMS scaled local error of the worst system in the batch.
    """

    rtol: float = 1e-7
    atol: float = 1e-9
    name = "dopri5"
    order = 5
    evaluations_per_step = 7
    adaptive = True

    A: ClassVar[tuple] = (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    C: ClassVar[tuple] = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    B: ClassVar[tuple] = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    B_LOW: ClassVar[tuple] = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)

    def stages(self, field, t, x, h):
        """Returns (fifth-order increment, embedded error estimate)."""
        ks: list[torch.Tensor] = []
        for a_row, c in zip(self.A, self.C):
            xi = x
            for a, k in zip(a_row, ks):
                if a != 0.0:
                    xi = xi + (h * a) * k
            ks.append(field.velocity(t + c * h, xi))
        increment = sum((h * b) * k for b, k in zip(self.B, ks) if b != 0.0)
        error = sum((h * (b - bl)) * k for b, bl, k in zip(self.B, self.B_LOW, ks) if b != bl)
        return increment, error

    def increment(self, field, t, x, h):
        return self.stages(field, t, x, h)[0]
