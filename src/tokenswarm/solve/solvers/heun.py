"""Explicit trapezoidal rule (Heun) plus retraction (order 2)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import Solver

__all__ = ["Heun"]


@dataclass(frozen=True)
class Heun(Solver):
    """Explicit trapezoidal rule (order 2)."""

    name = "heun"
    order = 2
    evaluations_per_step = 2
    stability_boundary = 2.0  # |1 + z + z²/2| <= 1 reaches z = -2 on the real axis

    def increment(self, field, t, x, h):
        k1 = field.velocity(t, x)
        k2 = field.velocity(t + h, x + h * k1)
        return 0.5 * h * (k1 + k2)
