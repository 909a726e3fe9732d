"""One-step methods on the sphere: each takes ``(field, t, x, h)`` and returns the next state.

Runge–Kutta stages are evaluated on the extension ``dx/dt = P⊥_x F(x)`` off the sphere
(for which the sphere is invariant) and the step ends with the retraction ``z / |z|``: a
projection method, which keeps the order of the underlying Runge–Kutta scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tokenswarm.fields.attention import Attention
from tokenswarm.fields.base import Field, LieTrotter
from tokenswarm.sphere import retract

__all__ = ["Method", "Euler", "Heun", "RK4", "Authors", "DormandPrince", "METHODS"]


@dataclass(frozen=True)
class Method:
    """A fixed-step method: ``increment`` is the Runge–Kutta update before retraction."""

    name: str = "method"
    order: int = 1
    evaluations_per_step: int = 1

    def increment(self, field: Field, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
        raise NotImplementedError

    def step(self, field: Field, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
        if isinstance(field, LieTrotter):
            for part in field.parts:
                x = x + self.increment(part, t, x, h)
                if field.renormalize:
                    x = retract(x)
            return x if field.renormalize else retract(x)
        return retract(x + self.increment(field, t, x, h))


@dataclass(frozen=True)
class Euler(Method):
    """``x <- N(x + h F(x))``: one post-norm residual layer of step ``h`` (ODE scaling)."""

    name: str = "euler"
    order: int = 1
    evaluations_per_step: int = 1

    def increment(self, field, t, x, h):
        return h * field.velocity(t, x)


@dataclass(frozen=True)
class Heun(Method):
    """Explicit trapezoidal rule (order 2)."""

    name: str = "heun"
    order: int = 2
    evaluations_per_step: int = 2

    def increment(self, field, t, x, h):
        k1 = field.velocity(t, x)
        k2 = field.velocity(t + h, x + h * k1)
        return 0.5 * h * (k1 + k2)


@dataclass(frozen=True)
class RK4(Method):
    """Classical fourth-order Runge–Kutta."""

    name: str = "rk4"
    order: int = 4
    evaluations_per_step: int = 4

    def increment(self, field, t, x, h):
        k1 = field.velocity(t, x)
        k2 = field.velocity(t + h / 2, x + (h / 2) * k1)
        k3 = field.velocity(t + h / 2, x + (h / 2) * k2)
        k4 = field.velocity(t + h, x + h * k3)
        return (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


@dataclass(frozen=True)
class Authors(Method):
    """The original code's scheme (docs/theory/attention_ode.md §3.2): ``x <- N(x + eta y(x))``.

    ``y`` is the attention output *before* tangent projection, so the radial part of ``y``
    shortens the effective step by about ``1/(1 + eta <x, y>)``; this is a consistent
    first-order method whose error at ``eta = 0.1`` is visible in the figures.
    """

    name: str = "authors"
    order: int = 1
    evaluations_per_step: int = 1

    def increment(self, field, t, x, h):
        return h * field.output(t, x)

    @staticmethod
    def usa_step(step: float, beta: float) -> float:
        """The original code's USA step normalisation ``step / max(sqrt(beta) e^{beta - 1/2}, 1)``."""
        return step / max(math.sqrt(beta) * math.exp(beta - 0.5), 1.0)

    @classmethod
    def effective_step(cls, field: Field, step: float) -> float:
        if isinstance(field, Attention) and field.normalization == "usa":
            if isinstance(field.beta, torch.Tensor):
                raise ValueError("the authors' USA step rule needs one scalar beta; run each beta separately")
            return cls.usa_step(step, field.beta)
        return step


@dataclass(frozen=True)
class DormandPrince(Method):
    """Embedded Runge–Kutta 5(4) of Dormand and Prince, used with step-size control."""

    name: str = "dopri5"
    order: int = 5
    evaluations_per_step: int = 7

    A = (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    B_LOW = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)

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


METHODS: dict[str, Method] = {m.name: m for m in (Euler(), Heun(), RK4(), Authors(), DormandPrince())}
