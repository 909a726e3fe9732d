"""Integrators on the sphere: fixed-step Runge–Kutta, the authors' scheme, adaptive DOPRI5."""

from tokenswarm.solve.methods import METHODS, RK4, Authors, DormandPrince, Euler, Heun, Method
from tokenswarm.solve.ode import NonFiniteStateError, Trajectory, integrate, span_basis

__all__ = [
    "METHODS", "Method", "Euler", "Heun", "RK4", "Authors", "DormandPrince",
    "integrate", "Trajectory", "NonFiniteStateError", "span_basis",
]
