"""SDEs on the sphere driven by common noise: Euler–Maruyama (Itô) and Heun (Stratonovich).

``dx_i = F(x)_i dt + [noise displacement]`` with a :class:`~tokenswarm.noise.CommonNoise`.

* ``"euler"``: ``x <- N(x + dt F(x) + ξ(x, dW))``. The retraction supplies the radial Itô
  drift (``N(x + w) = x + P⊥w − <x,w>P⊥w − ½|P⊥w|² x + O(|w|³)``), so this converges to the
  Itô SDE ``dx = P⊥F dt + P⊥ξ(x, dW) − ½ (trace term) x dt``; with ``split=True`` the drift
  and the noise are applied as two retracted sub-steps (Lie–Trotter), which is exactly an
  attention layer followed by a random-MLP layer.
* ``"heun"``: the stochastic Heun predictor–corrector on the projected noise
  ``P⊥_x ξ(x, dW)``, followed by retraction: it converges to the *Stratonovich* SDE
  ``dx = P⊥F dt + P⊥_x ∘ ξ(x, dW)``. For the random-MLP field this is the same process as the
  Itô one (docs/theory/random_mlp.md §3.2); for value noise it is not
  (docs/theory/common_noise.md §1.4, "Stratonovich trap").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tokenswarm.budget import check_memory, check_steps

from tokenswarm.fields.base import Field
from tokenswarm.noise import CommonNoise
from tokenswarm.solve.ode import Trajectory, _check_finite, _progress_bar, _stack
from tokenswarm.sphere import project, retract

__all__ = ["integrate_sde", "SDE_METHODS"]

SDE_METHODS = ("euler", "heun")


def integrate_sde(
    drift: Field | None,
    noise: CommonNoise,
    x0: torch.Tensor,
    t_max: float,
    steps: int,
    *,
    method: str = "euler",
    generator: torch.Generator | None = None,
    increments: torch.Tensor | None = None,
    save_every: int | None = None,
    observe: Callable[[torch.Tensor], Any] | None = None,
    split: bool = False,
    progress: bool = False,
) -> Trajectory:
    """Integrate on ``[0, t_max]`` with ``steps`` equal steps from ``x0`` ``(*batch, n, d)``.

    Parameters
    ----------
    drift:
        Deterministic field (e.g. attention) or ``None``.
    noise:
        Common-noise model; one increment per system and step, shared by its tokens.
    increments:
        Optional pre-drawn increments ``(steps, *batch, *noise.shape(n, d))`` (e.g. from
        :class:`~tokenswarm.noise.BrownianPath`) to couple runs on nested grids; otherwise
        increments are drawn step by step from ``generator`` (memory independent of steps).
    save_every:
        Record every this many steps (default: only start and end).
    observe:
        Function recorded at each saved step (default: the state).
    split:
        Euler only: drift step then noise step, each retracted (attention layer, then MLP).
    """
    if method not in SDE_METHODS:
        raise ValueError(f"method must be one of {SDE_METHODS}, got {method!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max!r}")
    if increments is not None and increments.shape[0] != steps:
        raise ValueError(f"increments has {increments.shape[0]} steps, expected {steps}")
    save_every = steps if save_every is None else int(save_every)
    check_steps(steps, f"an SDE run of {steps} steps")
    records = steps // max(save_every, 1) + 1
    check_memory((records if observe is None else 0) * x0.numel() * x0.element_size() + 8 * x0.numel() * x0.element_size(),
                 f"an SDE run of {tuple(x0.shape)} tokens", x0.device)
    observe = observe or (lambda state: state)
    batch, n, d = x0.shape[:-2], x0.shape[-2], x0.shape[-1]
    dt = t_max / steps

    def draw(k: int) -> torch.Tensor:
        if increments is not None:
            return increments[k]
        return noise.sample(batch, n, d, dt, generator=generator, dtype=x0.dtype, device=x0.device)

    def velocity(t, x):
        return drift.velocity(t, x) if drift is not None else torch.zeros_like(x)

    x = x0
    records, times = [observe(x)], [0.0]
    bar = _progress_bar(progress, t_max)
    try:
        for k in range(steps):
            t = k * dt
            dW = draw(k)
            if method == "euler":
                if split:
                    if drift is not None:
                        x = retract(x + dt * drift.velocity(t, x))
                    x = retract(x + noise.apply(t, x, dW))
                else:
                    x = retract(x + dt * velocity(t, x) + noise.apply(t, x, dW))
            else:
                k1 = velocity(t, x)
                s1 = project(x, noise.apply(t, x, dW))
                predictor = x + dt * k1 + s1
                k2 = velocity(t + dt, predictor)
                s2 = project(predictor, noise.apply(t + dt, predictor, dW))
                x = retract(x + 0.5 * dt * (k1 + k2) + 0.5 * (s1 + s2))
            _check_finite(x, t + dt, k + 1)
            if (k + 1) % save_every == 0 or k + 1 == steps:
                records.append(observe(x))
                times.append((k + 1) * dt)
            bar.advance(dt)
    finally:
        bar.stop()
    return Trajectory(
        times=torch.as_tensor(np.asarray(times)), states=_stack(records), method=f"sde-{method}",
        steps=steps, evaluations=steps * (1 if method == "euler" else 2),
    )
