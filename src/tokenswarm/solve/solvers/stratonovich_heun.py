"""Stochastic Heun on the projected noise plus retraction: the Stratonovich SDE on the sphere.

Predictor–corrector on ``P⊥_x ξ(x, dW)``, followed by retraction: it converges to
``dx = P⊥F dt + P⊥_x ∘ ξ(x, dW)``. For the random-MLP field this is the same process as the Itô
one (docs/theory/random_mlp.md §3.2); for value noise it is not (docs/theory/common_noise.md
§1.4, "Stratonovich trap").
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import SDESolver, drift_velocity
from tokenswarm.sphere import project, retract

__all__ = ["StratonovichHeun"]


@dataclass(frozen=True)
class StratonovichHeun(SDESolver):
    """Stratonovich Heun: predictor ``x + dt k1 + s1``, corrector with the trapezoidal average."""

    name = "heun"
    order = 1.0  # strong order for commutative noise
    evaluations_per_step = 2

    def advance(self, drift, noise, t, x, dt, dW):
        k1 = drift_velocity(drift, t, x)
        s1 = project(x, noise.apply(t, x, dW))
        predictor = x + dt * k1 + s1
        k2 = drift_velocity(drift, t + dt, predictor)
        s2 = project(predictor, noise.apply(t + dt, predictor, dW))
        return retract(x + 0.5 * dt * (k1 + k2) + 0.5 * (s1 + s2))
