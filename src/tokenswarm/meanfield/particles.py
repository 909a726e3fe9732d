"""Finite particle systems on the circle that the density solvers are compared with.

All three reuse the particle view of the toolkit: the attention field is
:class:`tokenswarm.fields.circle.CircleAttention` (exact to round-off, ``O(nK)``), so 10^5 tokens
are cheap; the deterministic flow goes through :func:`tokenswarm.solve.integrate`, the common
noise through :func:`tokenswarm.solve.sde.integrate_sde`.

* :func:`flow_angles`: deterministic flow (RK4 on the circle), angles at the requested times.
* :func:`noisy_angles`: per-token noise ``dθ_i = v_i dt + √(2/κ) dW_i`` (docs/theory/mean_field.md §3.2),
  stochastic Heun (strong order 1 for additive noise), one κ per leading batch entry.
* :func:`common_noise_angles`: the random-MLP common noise of docs/theory/random_mlp.md §5.3 on ``S^1``
  (Stratonovich Heun, the increments supplied so that a density solve can share them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from tokenswarm.fields.circle import CircleAttention
from tokenswarm.meanfield.circle import CircleModel
from tokenswarm.noise import CommonNoise
from tokenswarm.runtime.budget import check_steps
from tokenswarm.solve import RK4, StratonovichHeun, integrate
from tokenswarm.solve.sde import integrate_sde

__all__ = ["attention_for", "flow_angles", "noisy_angles", "common_noise_angles", "to_points", "to_angles"]


def attention_for(model: CircleModel) -> CircleAttention:
    if np.ndim(model.beta):
        raise ValueError("particle systems take one beta (run a loop for several)")
    return CircleAttention(float(model.beta), normalization=model.model, value=model.sign)


def to_points(theta: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(theta), torch.sin(theta)], -1)


def to_angles(x: torch.Tensor) -> torch.Tensor:
    return torch.atan2(x[..., 1], x[..., 0]) % (2 * math.pi)


def flow_angles(model: CircleModel, theta0: torch.Tensor, times: Sequence[float], *, step: float = 0.02
                ) -> torch.Tensor:
    """Angles ``(T, *batch, n)`` of the deterministic particle flow (RK4, fixed ``step``)."""
    traj = integrate(attention_for(model), to_points(theta0), list(map(float, times)), RK4(step=step),
                     observe=to_angles, span_reduction=False)
    return traj.states


def noisy_angles(model: CircleModel, theta0: torch.Tensor, times: Sequence[float], *, step: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Angles ``(T, *batch, n)`` of tokens with independent noise ``√(2/κ) dW_i``.

    ``model.kappa`` may be a sequence: its entries run as the *first* batch dimension of
    ``theta0`` (``(P, ..., n)``). ``κ = 0`` means no noise.
    """
    field = CircleAttention(float(model.beta), normalization=model.model, value=model.sign)
    kappa = torch.as_tensor(np.asarray(model.kappa, float), dtype=theta0.dtype, device=theta0.device)
    sigma = torch.where(kappa > 0, torch.sqrt(2.0 / torch.where(kappa > 0, kappa, torch.ones_like(kappa))),
                        torch.zeros_like(kappa))
    sigma = sigma.reshape(sigma.shape + (1,) * (theta0.ndim - sigma.ndim))
    times = np.asarray(times, float)
    check_steps(float(np.ceil(times.max(initial=0.0) / step)), f"noisy particles to t = {times.max(initial=0.0):g} with step {step:g}")
    theta, t, out = theta0.clone(), 0.0, []
    for target in times:
        while t < target - 1e-12:
            dt = min(step, target - t)
            dW = math.sqrt(dt) * torch.randn(theta.shape, generator=generator, dtype=theta.dtype, device=theta.device)
            v = field.angular(theta)
            predictor = theta + dt * v + sigma * dW
            theta = theta + 0.5 * dt * (v + field.angular(predictor)) + sigma * dW
            t += dt
        out.append(theta % (2 * math.pi))
    return torch.stack(out)


def common_noise_angles(model: CircleModel, theta0: torch.Tensor, noise: CommonNoise, increments: torch.Tensor,
                        t_max: float, *, save_every: int = 1) -> torch.Tensor:
    """Angles ``(T, *batch, n)`` under attention plus a common noise, Stratonovich Heun with the
    given increments ``(steps, *batch, *noise.shape(n, 2))``."""
    traj = integrate_sde(attention_for(model), noise, to_points(theta0), t_max, increments.shape[0],
                         solver=StratonovichHeun(), increments=increments, save_every=save_every, observe=to_angles)
    return traj.states
