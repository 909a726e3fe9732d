"""SDEs on the sphere driven by common noise: Euler–Maruyama (Itô) and Heun (Stratonovich).

``dx_i = F(x)_i dt + [noise displacement]`` with a :class:`~tokenswarm.noise.CommonNoise`.

The schemes are solver objects, one file each:

* :class:`~tokenswarm.solve.solvers.EulerMaruyama` (``"euler"``): Itô Euler–Maruyama plus
  retraction; ``EulerMaruyama(split=True)`` is an attention layer then a random-MLP layer;
* :class:`~tokenswarm.solve.solvers.StratonovichHeun` (``"heun"``): stochastic Heun on the
  projected noise plus retraction, which converges to the *Stratonovich* SDE.
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
from tokenswarm.solve.solvers import SDE_SOLVERS, SDESolver, sde_solver_from_name

__all__ = ["integrate_sde", "SDE_METHODS"]

SDE_METHODS = tuple(SDE_SOLVERS)


def integrate_sde(
    drift: Field | None,
    noise: CommonNoise,
    x0: torch.Tensor,
    t_max: float,
    steps: int,
    *,
    solver: SDESolver | None = None,
    method: str | None = None,
    generator: torch.Generator | None = None,
    increments: torch.Tensor | None = None,
    save_every: int | None = None,
    observe: Callable[[torch.Tensor], Any] | None = None,
    split: bool | None = None,
    progress: bool = False,
) -> Trajectory:
    """Integrate on ``[0, t_max]`` with ``steps`` equal steps from ``x0`` ``(*batch, n, d)``.

    Parameters
    ----------
    drift:
        Deterministic field (e.g. attention) or ``None``.
    noise:
        Common-noise model; one increment per system and step, shared by its tokens.
    solver:
        :class:`~tokenswarm.solve.solvers.EulerMaruyama` (default; ``split=True`` for drift then
        noise, each retracted: attention layer, then MLP) or
        :class:`~tokenswarm.solve.solvers.StratonovichHeun`.
    increments:
        Optional pre-drawn increments ``(steps, *batch, *noise.shape(n, d))`` (e.g. from
        :class:`~tokenswarm.noise.BrownianPath`) to couple runs on nested grids; otherwise
        increments are drawn step by step from ``generator`` (memory independent of steps).
    save_every:
        Record every this many steps (default: only start and end).
    observe:
        Function recorded at each saved step (default: the state).
    method, split:
        Deprecated shortcut kept for old callers: ``method="euler"``/``"heun"`` and ``split``
        (Euler only) map to a solver object. Not combined with ``solver``.
    """
    if solver is not None:
        if method is not None or split is not None:
            raise ValueError("pass the settings inside the solver object, not as method=/split= next to solver=")
        if not isinstance(solver, SDESolver):
            raise TypeError(f"solver must be an SDE solver object such as EulerMaruyama(), got {solver!r}")
    else:
        solver = sde_solver_from_name("euler" if method is None else method, split=bool(split))
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

    x = x0
    records, times = [observe(x)], [0.0]
    bar = _progress_bar(progress, t_max)
    try:
        for k in range(steps):
            t = k * dt
            dW = draw(k)
            x = solver.advance(drift, noise, t, x, dt, dW)
            _check_finite(x, t + dt, k + 1)
            if (k + 1) % save_every == 0 or k + 1 == steps:
                records.append(observe(x))
                times.append((k + 1) * dt)
            bar.advance(dt)
    finally:
        bar.stop()
    return Trajectory(
        times=torch.as_tensor(np.asarray(times)), states=_stack(records), method=f"sde-{solver.name}",
        steps=steps, evaluations=steps * solver.evaluations_per_step,
    )
