"""Classical fourth-order Runge–Kutta plus retraction (order 4)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import Solver

__all__ = ["RK4"]


@dataclass(frozen=True)
class RK4(Solver):
    """Classical fourth-order Runge–Kutta."""

    name = "rk4"
    order = 4
    evaluations_per_step = 4
    stability_boundary = 2.785  # the classical RK4 region reaches z = -2.785 on the real axis (2.83 on the imaginary)

    def increment(self, field, t, x, h):
        k1 = field.velocity(t, x)
        k2 = field.velocity(t + h / 2, x + (h / 2) * k1)
        k3 = field.velocity(t + h / 2, x + (h / 2) * k2)
        k4 = field.velocity(t + h, x + h * k3)
        return (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
