"""What every solver object shares: an ODE one-step scheme, or an SDE one.

A solver is a small frozen dataclass holding its own settings (``step``, tolerances, ...),
with a ``name``, an ``order`` and the step method the loops of
:func:`tokenswarm.solve.integrate` / :func:`tokenswarm.solve.sde.integrate_sde` call. The
loops (output grid, budget checks, progress bar) live once in those functions.

Runge–Kutta stages are evaluated on the extension ``dx/dt = P⊥_x F(x)`` off the sphere (for
which the sphere is invariant) and the step ends with the retraction ``z / |z|``: a
projection method, which keeps the order of the underlying Runge–Kutta scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from tokenswarm.fields.base import Field, LieTrotter
from tokenswarm.sphere import retract

__all__ = ["Solver", "SDESolver", "drift_velocity"]


@dataclass(frozen=True)
class Solver:
    """A fixed-step ODE scheme: ``increment`` is the Runge–Kutta update before retraction.

    ``step`` is the largest step; :func:`~tokenswarm.solve.integrate` takes
    ``ceil(Δ/step)`` equal sub-steps between output times.
    """

    step: float | None = None
    name: ClassVar[str] = "solver"
    order: ClassVar[int] = 1
    evaluations_per_step: ClassVar[int] = 1
    adaptive: ClassVar[bool] = False
    #: ``|h λ|`` up to which the linear test equation ``x' = λ x`` (``λ`` real, negative) stays
    #: bounded; ``None`` where no check applies (adaptive schemes choose their own steps).
    stability_boundary: ClassVar[float | None] = None

    def step_for(self, field: Field) -> float | None:
        """The nominal step used on ``field`` (the Authors scheme rescales it)."""
        return self.step

    def increment(self, field: Field, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
        raise NotImplementedError

    def advance(self, field: Field, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
        """One step ``x(t) -> x(t + h)`` on the sphere (Lie–Trotter fields part by part)."""
        if isinstance(field, LieTrotter):
            for part in field.parts:
                x = x + self.increment(part, t, x, h)
                if field.renormalize:
                    x = retract(x)
            return x if field.renormalize else retract(x)
        return retract(x + self.increment(field, t, x, h))


def drift_velocity(drift: Field | None, t: float, x: torch.Tensor) -> torch.Tensor:
    return drift.velocity(t, x) if drift is not None else torch.zeros_like(x)


@dataclass(frozen=True)
class SDESolver:
    """A fixed-step scheme for ``dx = P⊥F dt + [common-noise displacement]`` on the sphere."""

    name: ClassVar[str] = "sde"
    order: ClassVar[float] = 0.5  # strong order
    evaluations_per_step: ClassVar[int] = 1

    def advance(self, drift: Field | None, noise, t: float, x: torch.Tensor, dt: float, dW: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
