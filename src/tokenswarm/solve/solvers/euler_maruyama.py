"""Euler–Maruyama plus retraction on the sphere (Itô; strong order 1/2, weak order 1).

``x <- N(x + dt F(x) + ξ(x, dW))``. The retraction supplies the radial Itô drift
(``N(x + w) = x + P⊥w − <x,w>P⊥w − ½|P⊥w|² x + O(|w|³)``), so this converges to the Itô SDE
``dx = P⊥F dt + P⊥ξ(x, dW) − ½ (trace term) x dt``; with ``split=True`` the drift and the noise
are applied as two retracted sub-steps (Lie–Trotter), which is exactly an attention layer
followed by a random-MLP layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import SDESolver, drift_velocity
from tokenswarm.sphere import retract

__all__ = ["EulerMaruyama"]


@dataclass(frozen=True)
class EulerMaruyama(SDESolver):
    """Itô Euler–Maruyama step followed by retraction; ``split``: drift, then noise, each retracted."""

    split: bool = False
    name = "euler"
    order = 0.5
    evaluations_per_step = 1

    def advance(self, drift, noise, t, x, dt, dW):
        if self.split:
            if drift is not None:
                x = retract(x + dt * drift.velocity(t, x))
            return retract(x + noise.apply(t, x, dW))
        return retract(x + dt * drift_velocity(drift, t, x) + noise.apply(t, x, dW))
