"""Monte Carlo of the two-token diffusions of :mod:`tokenswarm.theory.two_token` (torch).

``simulate_rho`` (value noise) and ``simulate_hybrid_rho`` (the hybrid model) integrate the
one-dimensional diffusion of ``z = artanh rho`` by Euler–Maruyama, many runs at once, as an
independent check of the exact oracles and of the full token simulations
(docs/theory/common_noise.md §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from numpy.typing import ArrayLike

from tokenswarm import checks
from tokenswarm.theory.two_token import _is_uniform

__all__ = ["simulate_rho", "simulate_hybrid_rho"]


# --------------------------------------------------------------------------- torch simulators


def _generator(generator: torch.Generator | int | None, device: torch.device) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        if torch.device(generator.device).type != device.type:
            raise ValueError(f"generator is on {generator.device}, simulation on {device}")
        return generator
    seeded = torch.Generator(device=device)
    seeded.manual_seed(0 if generator is None else int(generator))
    return seeded


def _initial_z(
    rho0: float | ArrayLike | torch.Tensor | str,
    runs: int,
    d: int | None,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    if isinstance(rho0, str):
        if not _is_uniform(rho0):
            raise ValueError(f"rho0 must be a number, a tensor of shape (runs,) or 'uniform', got {rho0!r}")
        if d is None:
            raise ValueError("rho0='uniform' needs the dimension d")
        # <u, e_1> for u uniform on S^{d-1}: the law of the inner product of two uniform tokens.
        g = torch.randn(runs, d, generator=generator, dtype=torch.float64, device=device)
        rho = g[:, 0] / torch.linalg.vector_norm(g, dim=1)
        return torch.atanh(rho.clamp(-1.0, 1.0))
    rho = torch.as_tensor(rho0, dtype=torch.float64, device=device)
    if rho.ndim > 1 or (rho.ndim == 1 and rho.numel() != runs):
        raise ValueError(f"rho0 must be a scalar or have shape (runs,) = ({runs},), got shape {tuple(rho.shape)}")
    if bool(torch.any(rho.abs() > 1)):
        raise ValueError("rho0 must lie in [-1, 1]")
    return torch.atanh(rho).expand(runs).clone()


def _euler_maruyama(
    coefficients: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    z: torch.Tensor,
    t_max: float,
    steps: int,
    generator: torch.Generator,
    record_every: int | None,
    output: str,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    if output not in ("rho", "z"):
        raise ValueError(f"output must be 'rho' or 'z', got {output!r}")
    emit = torch.tanh if output == "rho" else torch.clone
    dt = t_max / steps
    root = math.sqrt(dt)
    saved, times = [], []
    if record_every is not None:
        saved.append(emit(z))
        times.append(0.0)
    for k in range(1, steps + 1):
        mu, s = coefficients(z)
        noise = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
        z = z + mu * dt + s * root * noise
        if record_every is not None and (k % record_every == 0 or k == steps):
            saved.append(emit(z))
            times.append(k * dt)
    if bool(torch.any(torch.isnan(z))):
        raise FloatingPointError("non-finite z in the reduced simulation")
    if record_every is None:
        return emit(z)
    return torch.tensor(times, dtype=torch.float64, device=z.device), torch.stack(saved)


def _check_run_sizes(t_max: float, steps: int, runs: int, record_every: int | None) -> None:
    checks.number("t_max", t_max, positive=True)
    for name, value in (("steps", steps), ("runs", runs)):
        checks.integer(name, value, 1, strict=True)
    if record_every is not None and (not isinstance(record_every, int) or record_every < 1):
        raise ValueError(f"record_every must be None or an integer >= 1, got {record_every!r}")


def simulate_rho(
    rho0: float | ArrayLike | torch.Tensor | str,
    beta: float,
    d: int,
    sigma2: float,
    t_max: float,
    steps: int,
    runs: int,
    generator: torch.Generator | int | None = None,
    *,
    device: torch.device | str | None = None,
    record_every: int | None = None,
    output: Literal["rho", "z"] = "rho",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reduced simulator of the value-noise limit: Euler–Maruyama on ``z = artanh rho`` (float64).

    ``z <- z + mu_z dt + s_z sqrt(dt) N(0, 1)`` with the bounded coefficients of
    :func:`z_coefficients` (weak order 1 in ``dt``; ``z`` may run off to ``±inf`` linearly but
    never blows up); ``rho = tanh z``. Starts ``±1`` are fixed points (``z = ±inf``).

    Args:
        rho0: float, tensor of shape ``(runs,)``, or ``"uniform"`` (two independent uniform tokens).
        beta, d, sigma2: model parameters (``beta >= 0``, ``d >= 2``, ``sigma2 > 0``).
        t_max, steps: horizon and number of steps.
        runs: independent runs (batched).
        generator: ``torch.Generator`` on ``device``, or an int seed (default seed 0).
        device: torch device (default CPU).
        record_every: if given, also record every ``record_every`` steps.
        output: ``"rho"`` or ``"z"`` (``artanh rho``: keeps ``log(1 ∓ rho) = log 2 ∓ 2z - log(1 + e^{∓2z})``
            exact where ``tanh z`` rounds to ``±1``, i.e. ``|z| > 19``).

    Returns:
        ``rho(t_max)`` (or ``z``) of shape ``(runs,)``; with ``record_every``: ``(times, values)``
        with values of shape ``(len(times), runs)``.

    Note: the loop runs ``steps`` small tensor operations; on a busy CPU torch's intra-op
    threads can slow it by 10-100x (``torch.set_num_threads(1)`` helps for small ``runs``).
    """
    d = checks.integer("d", d, 2)
    beta = checks.number("beta", beta)
    sigma2 = checks.number("sigma2", sigma2, positive=True)
    _check_run_sizes(t_max, steps, runs, record_every)
    device = torch.device("cpu" if device is None else device)
    gen = _generator(generator, device)
    z = _initial_z(rho0, runs, d, gen, device)

    def coefficients(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gap = 2.0 * torch.sigmoid(-2.0 * z)
        big_c = 0.5 / torch.cosh(0.5 * beta * gap) ** 2
        big_a = 1.0 - big_c
        return sigma2 * ((d - 2) * big_c + big_a * torch.tanh(z)), torch.sqrt(2.0 * sigma2 * big_a)

    return _euler_maruyama(coefficients, z, float(t_max), steps, gen, record_every, output)


def simulate_hybrid_rho(
    rho0: float | ArrayLike | torch.Tensor | str,
    beta: float,
    eps: float,
    t_max: float,
    steps: int,
    runs: int,
    generator: torch.Generator | int | None = None,
    *,
    d: int | None = None,
    device: torch.device | str | None = None,
    record_every: int | None = None,
    output: Literal["rho", "z"] = "rho",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reduced simulator of the hybrid model: Euler–Maruyama on
    ``dz = e^{beta tanh z}(1 - eps² e^beta/2) dt + eps e^{beta tanh z} dB`` (float64).

    Arguments as :func:`simulate_rho`, with ``eps >= 0`` in place of ``(d, sigma2)``; ``d`` is
    needed only for ``rho0 = "uniform"``.
    """
    beta = checks.number("beta", beta)
    eps = float(checks.numbers("eps", eps))
    if d is not None:
        d = checks.integer("d", d, 2)
    _check_run_sizes(t_max, steps, runs, record_every)
    device = torch.device("cpu" if device is None else device)
    gen = _generator(generator, device)
    z = _initial_z(rho0, runs, d, gen, device)
    kappa = 1.0 - 0.5 * eps**2 * math.exp(beta)

    def coefficients(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.exp(beta * torch.tanh(z))
        return f * kappa, eps * f

    return _euler_maruyama(coefficients, z, float(t_max), steps, gen, record_every, output)
