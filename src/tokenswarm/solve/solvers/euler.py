"""Euler plus retraction: ``x <- N(x + h P⊥F(x))``, one post-norm residual layer (order 1)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import Solver

__all__ = ["Euler"]


@dataclass(frozen=True)
class Euler(Solver):
    """``x <- N(x + h F(x))``: one post-norm residual layer of step ``h`` (ODE scaling)."""

    name = "euler"
    order = 1
    evaluations_per_step = 1
    stability_boundary = 2.0  # |1 + z| <= 1 reaches z = -2 on the real axis

    def increment(self, field, t, x, h):
        return h * field.velocity(t, x)
