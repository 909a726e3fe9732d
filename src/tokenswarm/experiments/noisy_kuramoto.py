"""Noisy Kuramoto (β = 0 with noise): the pitchfork of the order parameter at κ = 2.

docs/theory/mean_field.md §3.2: ``dθ_i = (1/n) Σ_j sin(θ_j − θ_i) dt + √(2/κ) dW_i``, Fokker–Planck
``∂_tρ + ∂_θ(ρ v) = κ^{-1} ∂_θθρ``. Stationary densities are ``ρ ∝ e^{κ r cos(θ − ψ)}`` with the
order parameter ``r = |∫ρ e^{iθ}|`` solving the self-consistency equation
``r = I_1(κ r)/I_0(κ r)``; since ``I_1(x)/I_0(x) = x/2 − x³/16 + …`` a non-zero root exists iff
``κ > 2``. Equivalently the first mode's linear rate is ``1/2 − 1/κ`` (every other mode decays
at ``−k²/κ``): the uniform state loses stability at ``κ = 2``.

Measured here, for a grid of κ: the stationary ``r`` of the PDE (one batched solve, all κ at
once, from a small mode-1 perturbation, averaged over the last tenth of the run) and of ``n``
particles (``runs`` independent systems, time-averaged over the second half), against the
self-consistency root; ``κ_c`` from the PDE both as the first grid value where ``r`` is
non-zero and as the zero of the measured mode-1 linear rate (interpolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr
from scipy import optimize, special, stats

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, between, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.meanfield.circle import (
    CircleGrid,
    CircleModel,
    fourier_coefficient,
    perturbed_uniform,
    sample_density,
    solve_circle,
)
from tokenswarm.meanfield.particles import noisy_angles
from tokenswarm.plots import line_plot

__all__ = ["self_consistent_order"]


def self_consistent_order(kappa: float) -> float:
    """The stable root ``r >= 0`` of ``r = I_1(κr)/I_0(κr)`` (0 for ``κ <= 2``)."""
    if kappa <= 2.0:
        return 0.0
    f = lambda r: special.ive(1, kappa * r) / special.ive(0, kappa * r) - r  # noqa: E731
    return float(optimize.brentq(f, 1e-12, 1.0, xtol=1e-15))


@dataclass
class Params:
    kappa: list[float] = field(default_factory=lambda: [float(k) for k in np.round(np.arange(0.625, 5.0, 0.25), 3)],
                               metadata={"min_exclusive": 0, "increasing": True, "help": "noise parameters (diffusion 1/kappa)"})
    cells: int = field(default=256, metadata={"min": 32, "help": "finite-volume cells"})
    t_max: float = field(default=400.0, metadata={"min_exclusive": 0, "help": "PDE time to stationarity"})
    amplitude: float = field(default=0.05, metadata={"min_exclusive": 0, "max": 1, "help": "initial mode-1 perturbation"})
    n: int = field(default=2000, metadata={"min": 10, "help": "particles per system"})
    runs: int = field(default=4, metadata={"min": 2, "help": "independent particle systems per kappa"})
    particle_t_max: float = field(default=100.0, metadata={"min_exclusive": 0, "help": "particle time"})
    step: float = field(default=0.05, metadata={"min_exclusive": 0, "help": "particle step (stochastic Heun)"})
    threshold: float = field(default=0.02, metadata={"min_exclusive": 0, "help": "r above this counts as ordered (PDE)"})

    def __post_init__(self):
        if not (min(self.kappa) < 2.0 < max(self.kappa)):
            raise ValueError(
                f"kappa = {self.kappa} must have values on both sides of the bifurcation at kappa = 2 "
                "(the experiment brackets it)"
            )



def summary(data: xr.Dataset, p: Params) -> dict:
    """Stationary order parameters, the PDE's bracket of the onset, the zero of the mode-1 rate, errors."""
    kappas = data.kappa.values
    times, ptimes = data.t.values, data.pt.values
    tail = times >= 0.9 * p.t_max
    order_pde = data.order_pde.values[tail].mean(0)
    theory = data.theory.values
    rates = data.rate.values
    # the rate is affine in 1/kappa, so its zero is interpolated in 1/kappa
    sign_change = np.nonzero((rates[:-1] < 0) & (rates[1:] >= 0))[0]
    if sign_change.size:
        i = int(sign_change[0])
        x0, x1 = 1.0 / kappas[i], 1.0 / kappas[i + 1]
        kappa_c_rate = float(1.0 / (x0 - rates[i] * (x1 - x0) / (rates[i + 1] - rates[i])))
    else:
        kappa_c_rate = float("nan")
    ordered = order_pde > p.threshold
    first = int(np.argmax(ordered)) if ordered.any() else len(kappas)
    bracket = (float(kappas[first - 1]) if first > 0 else float("nan"),
               float(kappas[first]) if first < len(kappas) else float("nan"))
    r_run = data.order_particles.values[ptimes >= 0.5 * p.particle_t_max].mean(0)          # (K, runs)
    order_particles, order_particles_se = r_run.mean(1), r_run.std(1, ddof=1) / np.sqrt(p.runs)
    away = np.abs(kappas - 2.0) >= 0.5
    pde_error = float(np.abs(order_pde - theory)[away].max()) if away.any() else float("nan")
    above = kappas >= 3.0
    particle_z = np.abs(order_particles - theory)[above] / np.maximum(order_particles_se[above], 1e-3)
    return {"order_pde": order_pde, "order_particles": order_particles, "order_particles_se": order_particles_se,
            "kappa_c_rate": kappa_c_rate, "bracket": bracket, "pde_error": pde_error, "away": int(away.sum()),
            "particle_z": particle_z, "resolution": float(np.diff(kappas).max())}


def _stronger_noise(data: xr.Dataset, factor: float, *names: str) -> xr.Dataset:
    """Negative control: diffusion ``factor/kappa`` instead of ``1/kappa`` (with beta = 0 the same
    as coupling ``1/factor``): every system behaves as at ``kappa/factor``, so the pitchfork moves
    to ``2 factor``. Changes the variables ``names`` of: ``order_pde`` and ``order_particles``
    (each ordered series rescaled to the stationary root at ``kappa/factor``; a PDE series that
    is no longer ordered decays from its start at the linear rate), ``rate`` (``1/2 - factor/kappa``)."""
    kappas = data.kappa.values
    root = np.array([self_consistent_order(k) for k in kappas])
    shifted = np.array([self_consistent_order(k / factor) for k in kappas])
    scale = np.divide(shifted, root, out=np.ones_like(root), where=root > 0)
    changed = {}
    if "order_pde" in names:
        decay = data.order_pde.values[0] * np.exp(np.outer(data.t.values, 0.5 - factor / kappas))
        changed["order_pde"] = data.order_pde.copy(data=np.where(scale > 0, data.order_pde.values * scale, decay))
    if "order_particles" in names:
        changed["order_particles"] = data.order_particles * data.kappa.copy(data=scale)
    if "rate" in names:
        changed["rate"] = data.rate - (factor - 1) / data.kappa
    return data.assign(changed)


CLAIMS = ClaimSet()
_PAPER = "2512.01868"


@CLAIMS.rule("the PDE's order parameter switches on between neighbouring grid values around kappa = 2",
             Ref(_PAPER, "numerical check: docs/theory/mean_field.md §3.2 (pitchfork at kappa = 2)"),
             control=lambda data: _stronger_noise(data, 1.25, "order_pde"))  # pitchfork at kappa = 2.5
def _onset(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return between(2.0, s["bracket"][0], s["bracket"][1],
                   detail=f"last disordered / first ordered grid kappa (r > {p.threshold}); grid step {s['resolution']:g}")


@CLAIMS.rule("the zero of the measured mode-1 rate is kappa = 2", Ref(_PAPER, "numerical check: linear rate 1/2 - 1/kappa"),
             control=lambda data: _stronger_noise(data, 1.01, "rate"))  # diffusion 1% too strong: zero at 2.02
def _rate_zero(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(abs(s["kappa_c_rate"] - 2.0), 1e-2 * s["resolution"],
                detail=f"interpolated zero {s['kappa_c_rate']:.6g} (linear in 1/kappa between grid values)")


@CLAIMS.rule("stationary r of the PDE equals the self-consistent root (|kappa - 2| >= 0.5)",
             Ref(_PAPER, "numerical check: r = I_1(kappa r)/I_0(kappa r)"),
             control=lambda data: _stronger_noise(data, 1.01, "order_pde"))  # diffusion 1% too strong
def _pde_order(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(s["pde_error"], 1e-3, detail=f"max |r_PDE - r_theory| over {s['away']} kappas, {p.cells} cells")


@CLAIMS.rule("particles' stationary r agrees with the self-consistent root (kappa >= 3)",
             Ref(_PAPER, "numerical check: propagation of chaos"),
             control=lambda data: _stronger_noise(data, 1.05, "order_particles"))  # particles' noise 5% too strong
def _particle_order(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
    particle_z = summary(data, p)["particle_z"]
    if not particle_z.size:
        return None
    # the s.e. comes from p.runs systems: Student's t with runs - 1 dof, two-sided level 0.999
    bound = float(stats.t.ppf(0.9995, p.runs - 1))
    return less(float(particle_z.max()), bound,
                detail=f"max |r_particles - r_theory| / s.e. ({p.runs} systems of n = {p.n}, time average); "
                       f"bound: Student t quantile 0.9995 with {p.runs - 1} dof")


@register(
    "noisy-kuramoto",
    title="Noisy Kuramoto: the order parameter bifurcates at kappa = 2",
    summary="stationary order parameter vs kappa (PDE, particles, self-consistency r = I₁(κr)/I₀(κr)); zero of the first mode's rate",
    reference="2512.01868 (noisy Transformer, beta = 0); docs/theory/mean_field.md §3.2",
    params=Params,
    dtypes=("float64",),
    dtype_reason="the order parameter near the bifurcation is below float32 resolution",
    quick={"kappa": [1.0, 1.75, 2.25, 3.0, 4.0], "cells": 128, "t_max": 150.0, "n": 500, "runs": 6,
           "particle_t_max": 40.0, "step": 0.1},
    claims=CLAIMS,
    variants=[{"cells": "256"}, {"n": "1000"}, {"step": "0.05"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    kappas = np.asarray(p.kappa, float)
    grid = CircleGrid(p.cells, device=ctx.device)
    model = CircleModel(beta=0.0, model="sa", kappa=kappas.tolist())
    rho0 = perturbed_uniform(grid, {1: p.amplitude})
    times = np.linspace(0.0, p.t_max, 201)
    pde = solve_circle(model, grid, rho0, p.t_max, save_times=times, progress=True)
    order_t = np.stack([(fourier_coefficient(grid, r, 1).abs()).cpu().numpy() for r in pde.density])  # (T, K)
    theory = np.array([self_consistent_order(k) for k in kappas])

    # linear rate of mode 1: a separate short run from a tiny perturbation (linear regime);
    # the rate is affine in 1/kappa, so its zero is interpolated in 1/kappa
    linear_times = np.linspace(0.0, 5.0, 51)
    linear = solve_circle(model, grid, perturbed_uniform(grid, {1: 1e-6}), 5.0, save_times=linear_times)
    linear_t = np.stack([(fourier_coefficient(grid, r, 1).abs()).cpu().numpy() for r in linear.density])
    rates = np.polyfit(linear_times, np.log(linear_t), 1)[0]
    predicted_rates = 0.5 - 1.0 / kappas

    # particles: K kappas x runs systems of n tokens, one batch
    generator = ctx.generator()
    theta0 = sample_density(grid, rho0, p.n, batch=(len(kappas), p.runs), generator=generator)
    ptimes = np.linspace(0.0, p.particle_t_max, 101)
    theta = noisy_angles(model, theta0, ptimes, step=p.step, generator=generator)
    r_t = torch.polar(torch.ones_like(theta), theta).mean(-1).abs().cpu().numpy()       # (T, K, runs)
    data = xr.Dataset(
        {"order_pde": (("t", "kappa"), order_t), "order_particles": (("pt", "kappa", "run"), r_t),
         "theory": (("kappa",), theory), "rate": (("kappa",), rates)},
        coords={"t": times, "pt": ptimes, "kappa": kappas, "run": np.arange(p.runs)},
    )
    s = summary(data, p)
    order_pde, order_particles, order_particles_se = s["order_pde"], s["order_particles"], s["order_particles_se"]
    fig = line_plot(
        kappas, {"PDE (stationary)": order_pde, f"particles (n = {p.n})": order_particles},
        xlabel="kappa", ylabel="order parameter r", markers=True,
        bands={f"particles (n = {p.n})": (order_particles - 2 * order_particles_se, order_particles + 2 * order_particles_se)},
        reference={"self-consistency": (np.linspace(kappas[0], kappas[-1], 400),
                                         np.array([self_consistent_order(k) for k in np.linspace(kappas[0], kappas[-1], 400)]))},
        title="noisy Kuramoto (beta = 0): pitchfork at kappa = 2",
    )
    rate_fig = line_plot(kappas, {"PDE, measured": rates}, xlabel="kappa", ylabel="mode-1 linear rate", markers=True,
                         reference={"1/2 - 1/kappa": (kappas, predicted_rates)}, title="linear rate of the first mode")
    return Result(
        metrics={
            "kappa": kappas.tolist(), "order_pde": order_pde.tolist(), "order_theory": theory.tolist(),
            "order_particles": order_particles.tolist(), "order_particles_se": order_particles_se.tolist(),
            "mode1_rate": rates.tolist(), "kappa_c_rate": s["kappa_c_rate"], "kappa_c_bracket": list(s["bracket"]),
            "pde_error": s["pde_error"], "mass_error": float(pde.mass_error.max()),
            "min_density": float(pde.min_density.min()),
        },
        data=data, figures={"order_parameter": fig, "linear_rate": rate_fig},
    )
