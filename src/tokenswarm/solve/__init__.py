"""Integrators on the sphere: solver objects (one file per scheme) and the loops that run them.

``integrate(field, x0, times, solver=RK4(step=0.05))`` and
``integrate_sde(drift, noise, x0, t_max, steps, solver=EulerMaruyama())`` return the same
:class:`Trajectory`.
"""

from tokenswarm.solve.methods import METHODS, Method
from tokenswarm.solve.ode import NonFiniteStateError, Trajectory, integrate
from tokenswarm.solve.solvers import (
    RK4,
    SDE_SOLVERS,
    SOLVERS,
    Authors,
    DormandPrince,
    Euler,
    EulerMaruyama,
    Heun,
    SDESolver,
    Solver,
    StratonovichHeun,
    sde_solver_from_name,
    solver_from_name,
)

__all__ = [
    "Solver", "SDESolver", "Euler", "Heun", "RK4", "Authors", "DormandPrince", "EulerMaruyama", "StratonovichHeun",
    "SOLVERS", "SDE_SOLVERS", "solver_from_name", "sde_solver_from_name", "METHODS", "Method",
    "integrate", "Trajectory", "NonFiniteStateError",
]
