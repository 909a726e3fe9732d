"""Solver objects, one small file per scheme (ODE and SDE alike), in the style of diffrax.

``integrate(field, x0, times, solver=RK4(step=0.05))``,
``integrate_sde(drift, noise, x0, t_max, steps, solver=StratonovichHeun())``. String names are
for what a user types (CLI parameters): :func:`solver_from_name` maps them to objects.
"""

from __future__ import annotations

from tokenswarm.solve.solvers.authors import Authors
from tokenswarm.solve.solvers.base import SDESolver, Solver
from tokenswarm.solve.solvers.dopri5 import DormandPrince
from tokenswarm.solve.solvers.euler import Euler
from tokenswarm.solve.solvers.euler_maruyama import EulerMaruyama
from tokenswarm.solve.solvers.heun import Heun
from tokenswarm.solve.solvers.rk4 import RK4
from tokenswarm.solve.solvers.stratonovich_heun import StratonovichHeun

__all__ = [
    "Solver", "SDESolver", "Euler", "Heun", "RK4", "Authors", "DormandPrince",
    "EulerMaruyama", "StratonovichHeun", "SOLVERS", "SDE_SOLVERS", "solver_from_name", "sde_solver_from_name",
]

SOLVERS: dict[str, type[Solver]] = {cls.name: cls for cls in (Euler, Heun, RK4, Authors, DormandPrince)}
"""ODE solver classes by the name a user types (``-p solver=rk4``)."""

SDE_SOLVERS: dict[str, type[SDESolver]] = {cls.name: cls for cls in (EulerMaruyama, StratonovichHeun)}
"""SDE solver classes by name: ``"euler"`` (Itô Euler–Maruyama), ``"heun"`` (Stratonovich Heun)."""


def solver_from_name(name: str, step: float | None = None, *, rtol: float = 1e-7, atol: float = 1e-9,
                     usa_step: bool = True) -> Solver:
    """The ODE solver a typed name means: fixed-step ones take ``step``, ``"dopri5"`` takes
    ``rtol``/``atol`` (and ``step`` as its initial step), ``"authors"`` its ``usa_step`` flag."""
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {name!r}")
    cls = SOLVERS[name]
    if cls is DormandPrince:
        return DormandPrince(step=step, rtol=rtol, atol=atol)
    if cls is Authors:
        return Authors(step=step, usa_step=usa_step)
    return cls(step=step)


def sde_solver_from_name(name: str, *, split: bool = False) -> SDESolver:
    """The SDE solver a typed name means (``split`` applies to Euler–Maruyama only)."""
    if name not in SDE_SOLVERS:
        raise ValueError(f"method must be one of {tuple(SDE_SOLVERS)}, got {name!r}")
    return EulerMaruyama(split=split) if name == "euler" else StratonovichHeun()
