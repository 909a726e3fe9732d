"""Linear stability of the uniform density on the circle, and the clusters it forms (2512.01868).

Perturb the uniform density in mode ``k``, ``ρ₀ = (1 + a cos kθ)/2π``. Linearising the continuity
equation (:func:`tokenswarm.theory.circle_growth_rate`, from ``e^{β cos s} = Σ_k I_k(β)e^{iks}``)
gives the growth rate ``λ_k = s k² I_k(β)/β`` (USA; SA divides by ``I_0(β)``; ``s = ±1`` the
value sign). It is measured twice: in the finite-volume solver (Fourier coefficient of the cell
averages, exact per cell) and in ``n`` particles started at the quantiles of ``ρ₀`` (no sampling
noise; coefficient ``(1/n)Σ_j e^{−ikθ_j}``). The window ends before modes seeded by round-off
(``1e-16`` growing at the fastest rate) or the nonlinearity could matter: ``t <= min(3/|λ_k|,
20/λ_max)``. The slope of ``log|ρ̂_k|`` is fitted on the second half of the window.

From a uniform density with a small random perturbation of every mode, the fastest mode
``k* = argmax λ_k ~ √(2β)`` should set the number of clusters of the first metastable state
(the Θ(√β) prediction of 2512.01868): the PDE's cluster count is reported beside ``k*`` for
several β.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.meanfield.circle import (
    TWO_PI,
    CircleGrid,
    CircleModel,
    count_clusters,
    fourier_coefficient,
    perturbed_uniform,
    quantile_points,
    solve_circle,
)
from tokenswarm.meanfield.particles import flow_angles
from tokenswarm.plots import line_plot
from tokenswarm.stats import loglog_slope

__all__ = ["measure_rate"]


@dataclass
class Params:
    beta: float = field(default=4.0, metadata={"min": 0, "max": 300, "help": "inverse temperature"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    value: Literal["identity", "minus_identity"] = field(default="identity", metadata={"help": "V = I or V = -I"})
    mode: int = field(default=3, metadata={"min": 1, "help": "Fourier mode k of the perturbation"})
    amplitude: float = field(default=1e-4, metadata={"min_exclusive": 0, "max": 0.01,
                                                     "help": "relative amplitude a of cos(k theta)"})
    modes: int = field(default=8, metadata={"min": 1, "help": "the rate sweep covers k = 1..modes"})
    cells: int = field(default=2048, metadata={"min": 64, "help": "finite-volume cells"})
    n: int = field(default=4096, metadata={"min": 64, "help": "particles (quantile start)"})
    cluster_betas: list[float] = field(default_factory=lambda: [4.0, 9.0, 16.0, 25.0, 36.0, 64.0],
                                       metadata={"min": 0, "max": 300, "help": "betas of the cluster-count panel"})
    noise: float = field(default=1e-6, metadata={"min_exclusive": 0, "max": 0.5, "help": "amplitude of the random start (clusters; the density must stay positive)"})


def _window(model: CircleModel, k: int, kmax: int) -> float:
    rates = np.abs(model.growth_rate(np.arange(1, kmax + 1)))
    fastest = max(float(rates.max()), 1e-12)
    rate = max(abs(float(model.growth_rate(k))), 1e-12)
    return min(3.0 / rate, 20.0 / fastest)


def measure_rate(model: CircleModel, grid: CircleGrid, k: int, amplitude: float, *, n: int | None = None,
                 samples: int = 41) -> tuple[float, float | None]:
    """Measured growth rate of mode ``k`` in the PDE and (if ``n``) in ``n`` quantile particles."""
    rho0 = perturbed_uniform(grid, {k: amplitude})
    T = _window(model, k, grid.cells // 2)
    times = np.linspace(0.0, T, samples)
    half = samples // 2
    pde = solve_circle(model, grid, rho0, T, save_times=times)
    coefficient = np.array([abs(complex(fourier_coefficient(grid, r, k))) for r in pde.density])
    pde_rate = float(np.polyfit(times[half:], np.log(coefficient[half:]), 1)[0])
    if n is None:
        return pde_rate, None
    theta = flow_angles(model, quantile_points(grid, rho0, n), times, step=min(0.05, T / 200))
    moments = torch.polar(torch.ones_like(theta), -k * theta).mean(-1).abs().cpu().numpy()
    particle_rate = float(np.polyfit(times[half:], np.log(moments[half:]), 1)[0])
    return pde_rate, particle_rate


def clusters_from_uniform(beta: float, model_name: str, grid: CircleGrid, noise: float,
                          generator: torch.Generator) -> tuple[int, float]:
    """Cluster count of the PDE started from uniform × (1 + noise · white noise in every mode),
    counted when the peak density first exceeds 20× the uniform value."""
    model = CircleModel(beta=beta, model=model_name)
    rho = (1.0 + noise * torch.randn(grid.cells, generator=generator, dtype=grid.dtype).to(grid.device)) / TWO_PI
    rho = rho / grid.mass(rho)
    fastest = float(np.max(model.growth_rate(np.arange(1, grid.cells // 2 + 1))))
    t, dt = 0.0, 0.5 / fastest
    for _ in range(400):
        traj = solve_circle(model, grid, rho, dt, save_times=[dt])
        rho, t = traj.density[-1], t + dt
        if float(rho.max()) > 20.0 / TWO_PI:
            return int(count_clusters(rho, grid)), t
    return int(count_clusters(rho, grid)), t


def _relative_error(measured: float, predicted: float) -> float:
    """``|measured / predicted - 1|``; the absolute difference when the predicted rate is 0
    (a neutral mode, e.g. SA at beta -> 0), where a relative error means nothing."""
    if abs(predicted) < 1e-12:
        return abs(measured - predicted)
    return abs(measured / predicted - 1)


def summary(data: xr.Dataset, p: Params) -> dict:
    """Relative errors of the measured growth rates (mode ``p.mode`` and the resolved modes of the sweep)."""
    predicted = float(data.mode_rate_predicted)
    sweep_pred = data.predicted.values
    fastest = float(np.abs(sweep_pred).max())
    # modes whose rate is at least 1% of the fastest: their relative error is measurable
    resolved = np.abs(sweep_pred) >= 0.01 * fastest
    rel_pde = np.abs(data.pde.values / sweep_pred - 1)
    rel_particles = np.abs(data.particles.values / sweep_pred - 1)
    return {
        "measured": float(data.mode_rate_pde), "particles": float(data.mode_rate_particles), "predicted": predicted,
        "relative_error": _relative_error(float(data.mode_rate_pde), predicted),
        "relative_error_particles": _relative_error(float(data.mode_rate_particles), predicted),
        "resolved_modes": data.k.values[resolved].tolist(),
        "max_relative_error_pde": float(rel_pde[resolved].max()),
        "max_relative_error_particles": float(rel_particles[resolved].max()),
    }


def _fast_clock(*names: str, factor: float = 1.05):
    """Negative control: a solver whose clock runs ``factor`` times too fast, so the measured
    rates ``names`` come out ``factor`` times the true ones (5% off by default)."""
    def control(data: xr.Dataset) -> xr.Dataset:
        return data.assign({name: factor * data[name] for name in names})
    return control


CLAIMS = ClaimSet()
_PAPER = "2512.01868"


@CLAIMS.rule("PDE growth rate of mode {mode} matches the prediction",
             Ref(_PAPER, "numerical check: linearisation (docs/theory/mean_field.md §2.2)"),
             control=_fast_clock("mode_rate_pde"))
def _pde_rate(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(s["relative_error"], 0.02,
                detail=f"measured {s['measured']:.6g} vs predicted {s['predicted']:.6g} (relative error; absolute "
                       "where the predicted rate is 0)", labels={"mode": p.mode})


@CLAIMS.rule("particle growth rate of mode {mode} matches the prediction",
             Ref(_PAPER, "numerical check: linearisation, n particles"), control=_fast_clock("mode_rate_particles"))
def _particle_rate(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(s["relative_error_particles"], 0.02,
                detail=f"measured {s['particles']:.6g} with n = {p.n} quantile particles", labels={"mode": p.mode})


@CLAIMS.rule("PDE rates match for every resolved mode of the sweep", Ref(_PAPER, "numerical check: linearisation"),
             control=_fast_clock("pde"))
def _pde_sweep(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(s["max_relative_error_pde"], 0.02,
                detail=f"max relative error over k in {s['resolved_modes']} (rates >= 1% of the fastest)")


@CLAIMS.rule("particle rates match for every resolved mode of the sweep", Ref(_PAPER, "numerical check: linearisation"),
             control=_fast_clock("particles"))
def _particle_sweep(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(s["max_relative_error_particles"], 0.02, detail=f"max relative error over k in {s['resolved_modes']}")


@register(
    "linear-stability",
    title="Growth rates of Fourier modes at the uniform density; clusters against the fastest mode",
    summary="growth rates of Fourier modes in the PDE and in particles vs k² I_k(β)/β; clusters formed from uniform vs the fastest mode over beta",
    reference="2512.01868 (linearisation at the uniform measure, Θ(√β) clusters); docs/theory/mean_field.md §2.2",
    params=Params,
    dtypes=("float64",),
    dtype_reason="growth rates of 1e-4 perturbations are below float32 resolution",
    quick={"cells": 256, "n": 256, "modes": 3, "cluster_betas": [4.0, 16.0]},
    claims=CLAIMS,
    variants=[{"beta": "8"}, {"model": "usa"}, {"mode": "2"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    grid = CircleGrid(p.cells, device=ctx.device)
    model = CircleModel(beta=p.beta, model=p.model, value=p.value)
    predicted = float(model.growth_rate(p.mode))
    measured, particles = measure_rate(model, grid, p.mode, p.amplitude, n=p.n)

    ks = np.arange(1, max(p.modes, p.mode) + 1)
    sweep_pde, sweep_particles = [], []
    for k in ks:
        a, b = measure_rate(model, grid, int(k), p.amplitude, n=p.n)
        sweep_pde.append(a)
        sweep_particles.append(b)
    sweep_pred = model.growth_rate(ks)

    generator = ctx.generator()
    cluster_grid = grid
    counts, times = [], []
    for beta in p.cluster_betas:
        c, t = clusters_from_uniform(beta, p.model, cluster_grid, p.noise, generator)
        counts.append(c)
        times.append(t)
    k_star = CircleModel(beta=list(p.cluster_betas), model=p.model).fastest_mode()

    rates_fig = line_plot(
        ks, {"PDE": np.asarray(sweep_pde), f"particles (n = {p.n})": np.asarray(sweep_particles)},
        xlabel="mode k", ylabel="growth rate", markers=True,
        reference={"predicted": (ks, sweep_pred)},
        title=f"{p.model.upper()}, beta = {p.beta:g}, {p.value}",
    )
    cluster_fig = line_plot(
        np.asarray(p.cluster_betas), {"PDE clusters from uniform": np.asarray(counts, float)},
        xlabel="beta", ylabel="clusters", logx=True, logy=True, markers=True,
        reference={"fastest mode k*": (np.asarray(p.cluster_betas), np.asarray(k_star, float)),
                   "sqrt(2 beta)": (np.asarray(p.cluster_betas), np.sqrt(2 * np.asarray(p.cluster_betas)))},
        title=f"{p.model.upper()}: first clusters against the fastest linear mode",
    )
    data = xr.Dataset(
        {"predicted": (("k",), sweep_pred), "pde": (("k",), np.asarray(sweep_pde)),
         "particles": (("k",), np.asarray(sweep_particles)),
         "clusters": (("cluster_beta",), np.asarray(counts)), "fastest_mode": (("cluster_beta",), np.asarray(k_star)),
         "cluster_time": (("cluster_beta",), np.asarray(times)),
         "mode_rate_predicted": predicted, "mode_rate_pde": measured, "mode_rate_particles": particles},
        coords={"k": ks, "cluster_beta": np.asarray(p.cluster_betas)},
    )
    slope = loglog_slope(p.cluster_betas, np.maximum(counts, 1))[0] if len(p.cluster_betas) >= 2 else math.nan
    errors = summary(data, p)
    return Result(
        metrics={
            "measured_rate": measured, "measured_rate_particles": particles, "predicted_rate": predicted,
            "fastest_mode": model.fastest_mode(),
            "relative_error": errors["relative_error"],
            "sweep_modes": ks.tolist(), "sweep_predicted": [float(v) for v in sweep_pred],
            "sweep_pde": sweep_pde, "sweep_particles": sweep_particles,
            "max_relative_error_pde": errors["max_relative_error_pde"],
            "max_relative_error_particles": errors["max_relative_error_particles"],
            "cluster_betas": list(p.cluster_betas), "clusters": counts, "fastest_modes": k_star,
            "cluster_count_slope": slope,
        },
        data=data, figures={"rates": rates_fig, "clusters": cluster_fig},
    )
