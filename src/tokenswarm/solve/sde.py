"""SDEs on the sphere driven by common noise: Euler–Maruyama (Itô) and Heun (Stratonovich).

``dx_i = F(x)_i dt + [noise displacement]`` with a :class:`~tokenswarm.noise.CommonNoise`.

The schemes are solver objects, one file each:

* :class:`~tokenswarm.solve.solvers.EulerMaruyama` (``"euler"``): Itô Euler–Maruyama plus
  retraction; ``EulerMaruyama(split=True)`` is an attention layer then a random-MLP layer;
* :class:`~tokenswarm.solve.solvers.StratonovichHeun` (``"heun"``): stochastic Heun on the
  projected noise plus retraction, which converges to the *Stratonovich* SDE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tokenswarm.fields.base import Field
from tokenswarm.noise import CommonNoise
from tokenswarm.runtime.budget import check_solve_memory, check_steps
from tokenswarm.solve.ode import NonFiniteStateError, Trajectory, _progress, _stack
from tokenswarm.solve.solvers import SDE_SOLVERS, SDESolver, sde_solver_from_name

__all__ = ["integrate_sde", "SDE_METHODS"]

SDE_METHODS = tuple(SDE_SOLVERS)
#: Steps between two finiteness checks of the state (each one reads a flag back to the host).
FINITE_CHECK_EVERY = 64


def integrate_sde(
    drift: Field | None,
    noise: CommonNoise,
    x0: torch.Tensor,
    t_max: float | None = None,
    steps: int | None = None,
    *,
    times: Sequence[float] | torch.Tensor | None = None,
    t0: float | None = None,
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

    Or, with ``times`` instead of ``t_max``/``save_every``, the contract of
    :func:`~tokenswarm.solve.integrate`: ``times`` are the non-decreasing output times,
    ``times[0]`` is the time of ``x0`` unless ``t0`` is given; the span from the start to
    ``times[-1]`` is cut into ``steps`` equal steps and every output time must lie on that grid.

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
        Record every this many steps (default: only start and end); not with ``times``.
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
    check_steps(steps, f"an SDE run of {steps} steps")  # before anything loops over the steps
    if times is not None:
        if t_max is not None or save_every is not None:
            raise ValueError("pass either times= or t_max (and save_every), not both")
        start, t_max, requested, saved = _output_grid(times, t0, steps)
    else:
        if t0 is not None:
            raise ValueError("t0 goes with times=; with t_max the run starts at 0")
        if t_max is None or not t_max > 0:
            raise ValueError(f"t_max must be > 0, got {t_max!r}")
        start, requested = 0.0, None
        every = steps if save_every is None else int(save_every)
        saved = {0: 1} | {k: 1 for k in range(1, steps + 1) if k % every == 0 or k == steps}
    if increments is not None and increments.shape[0] != steps:
        raise ValueError(f"increments has {increments.shape[0]} steps, expected {steps}")
    check_solve_memory(x0, sum(saved.values()) if observe is None else 0, f"an SDE run of {tuple(x0.shape)} tokens")
    observe = observe or (lambda state: state)
    batch, n, d = x0.shape[:-2], x0.shape[-2], x0.shape[-1]
    dt = t_max / steps

    def draw(k: int) -> torch.Tensor:
        if increments is not None:
            return increments[k]
        return noise.sample(batch, n, d, dt, generator=generator, dtype=x0.dtype, device=x0.device)

    x = x0
    records, recorded_times = [], []

    def record(k: int, x: torch.Tensor) -> None:
        if k in saved:
            value = observe(x)
            records.extend([value] * saved[k])
            recorded_times.extend([start + k * dt] * saved[k])

    record(0, x)
    checked = 0  # steps known to give finite states
    with _progress(progress, t_max) as bar:
        for k in range(steps):
            t = start + k * dt
            dW = draw(k)
            x = solver.advance(drift, noise, t, x, dt, dW)
            # A non-finite state stays non-finite: checking every FINITE_CHECK_EVERY steps and at
            # each record (not every step, a host synchronisation on an accelerator) still
            # catches it, within the steps since the last check.
            if (k + 1) % FINITE_CHECK_EVERY == 0 or k + 1 in saved or k + 1 == steps:
                if not bool(torch.isfinite(x).all()):
                    raise NonFiniteStateError(
                        f"non-finite token state by t = {t + dt:.6g} (step {k + 1}), appearing after step {checked} "
                        f"(t = {start + checked * dt:.6g}); reduce the step, or use float64"
                    )
                checked = k + 1
            record(k + 1, x)
            bar.advance(dt)
    out_times = requested if requested is not None else torch.as_tensor(np.asarray(recorded_times))
    return Trajectory(
        times=out_times, states=_stack(records), method=f"sde-{solver.name}",
        steps=steps, evaluations=steps * solver.evaluations_per_step,
    )


def _output_grid(times, t0: float | None, steps: int) -> tuple[float, float, torch.Tensor, dict[int, int]]:
    """(start, span, requested times, {step index: how many outputs}) of the ``times`` contract."""
    requested = torch.as_tensor(times, dtype=torch.float64).flatten()
    if requested.numel() < 1 or bool((requested.diff() < 0).any()):
        raise ValueError("times must be a non-empty, non-decreasing sequence")
    start = float(requested[0]) if t0 is None else float(t0)
    if float(requested[0]) < start:
        raise ValueError(f"output time {float(requested[0]):g} lies before the start time t0 = {start:g}")
    span = float(requested[-1]) - start
    if not span > 0:
        raise ValueError(f"the last output time must lie after the start {start:g}, got {float(requested[-1]):g}")
    dt = span / steps
    saved: dict[int, int] = {}
    for value in requested.tolist():
        k = round((value - start) / dt)
        if abs(k * dt - (value - start)) > 1e-9 * max(1.0, span):
            raise ValueError(f"output time {value:g} is not on the grid {start:g} + k * {dt:g} of {steps} steps")
        saved[k] = saved.get(k, 0) + 1
    return start, span, requested, saved
