"""Backward-compatible names: the solvers now live one per file in :mod:`tokenswarm.solve.solvers`.

``Method`` is :class:`~tokenswarm.solve.solvers.Solver`; ``METHODS`` maps the old string names
to step-less instances (the deprecated ``integrate(..., method="rk4", step=h)`` form).
"""

from __future__ import annotations

from tokenswarm.solve.solvers import (
    RK4,
    SOLVERS,
    Authors,
    DormandPrince,
    Euler,
    Heun,
    Solver,
)

__all__ = ["Method", "Euler", "Heun", "RK4", "Authors", "DormandPrince", "METHODS"]

Method = Solver

METHODS: dict[str, Solver] = {name: cls() for name, cls in SOLVERS.items()}
