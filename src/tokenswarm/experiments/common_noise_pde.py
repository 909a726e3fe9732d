"""Stochastic continuity equation with common noise on the circle, pathwise against particles.

docs/theory/random_mlp.md §3.3 and docs/theory/mean_field.md §4: with the random-MLP field
``W_t(x) = Σ_r φ_r(x) B^r_t + σ_W B^0_t`` (finite rank
``M``, ``φ_r(x) = σ(U_r·x/√d + b_r)/√M``, one draw shared by all tokens) the tokens follow
``dX = P⊥Attn dt + P⊥∘dW_t(X)`` and their empirical measure solves the SPDE
``dμ + ∂_θ(μ v[μ]) dt + Σ_j ∂_θ(μ c_j)∘dB^j = 0``. One realisation of ``B`` drives both:

* particles: :func:`tokenswarm.solve.sde.integrate_sde` (Stratonovich Heun in the plane, then
  retraction) with the attention field on ``S^1``;
* density: :func:`tokenswarm.meanfield.circle.solve_circle` with the *same* ``FieldNoise`` and
  increments (face map + conservative remap, Strang-split with the transport).

W1 between the particles' empirical measure and the SPDE solution is tracked over time for
several ``n``; the baseline is the same SPDE driven by an *independent* realisation, which shows
how much of the agreement is the shared noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, equivalent, less
from tokenswarm.io.density_claims import add_mass_and_positivity, drifting_density
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.meanfield.circle import (
    CircleGrid,
    CircleModel,
    sample_density,
    solve_circle,
    three_bumps,
    w1_circle,
)
from tokenswarm.meanfield.particles import common_noise_angles
from tokenswarm.noise import BrownianPath, FieldNoise
from tokenswarm.plots import angle_histograms, coarsen, line_plot, space_time
from tokenswarm.stats import loglog_slope, loglog_slope_of_means
from tokenswarm.theory.random_mlp import ActivationName


@dataclass
class Params:
    beta: float = field(default=1.0, metadata={"min": 0, "max": 300, "help": "inverse temperature"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    value: Literal["identity", "minus_identity"] = field(default="identity", metadata={"help": "V = I or V = -I"})
    activation: ActivationName = field(default="tanh", metadata={"help": "noise activation"})
    rank: int = field(default=32, metadata={"min": 1, "help": "rank M of the random-MLP field"})
    sigma_u: float = field(default=0.5, metadata={"min": 0, "help": "first-layer bias scale"})
    sigma_w: float = field(default=0.0, metadata={"min": 0, "help": "output bias scale"})
    cells: int = field(default=2048, metadata={"min": 64, "help": "finite-volume cells"})
    t_max: float = field(default=3.0, metadata={"min_exclusive": 0, "help": "final time"})
    steps: int = field(default=600, metadata={"min": 1, "help": "noise steps (shared)"})
    n: list[int] = field(default_factory=lambda: [1000, 4000, 16000], metadata={"min": 10, "help": "particle counts"})
    runs: int = field(default=4, metadata={"min": 2, "help": "particle draws per n (same noise)"})
    samples: int = field(default=31, metadata={"min": 2, "help": "output times"})

    def __post_init__(self):
        if self.steps % (self.samples - 1):
            raise ValueError(f"samples - 1 = {self.samples - 1} must divide steps = {self.steps}")


def w1_means(w1: np.ndarray, w1_other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean W1 over draws (same noise, independent noise) and the standard error of the first, ``(n, t)``."""
    mean, other_mean = w1.mean(1), w1_other.mean(1)
    return mean, other_mean, w1.std(1, ddof=1) / np.sqrt(w1.shape[1])


def summary(data: xr.Dataset, p: Params) -> dict[str, float]:
    """Coupling ratio and W1 rate at t_max, mass error and smallest density, from the dataset."""
    mean, other_mean, _ = w1_means(data.w1.values, data.w1_independent_noise.values)
    slope, slope_se = loglog_slope(data.n.values, mean[:, -1])
    mass = data.mass.values
    return {"ratio": float(mean[-1, -1] / other_mean[-1, -1]), "slope": slope, "slope_se": slope_se,
            "mass_error": float((np.abs(mass - mass[0]) / mass[0]).max()), "min_density": float(data.min_density)}


def _decoupled(data: xr.Dataset) -> xr.Dataset:
    """Negative control: particles driven by a realisation other than the SPDE's (the noise is not
    shared), so they are as far from it as from the independent baseline."""
    return data.assign(w1=data.w1_independent_noise.copy())


CLAIMS = ClaimSet()


add_mass_and_positivity(CLAIMS, summary,
                        Ref("2604.26898", "numerical check: conservative remap + finite volumes"),
                        Ref("2604.26898", "numerical check: monotone remap, CFL"))


@CLAIMS.rule("particles follow the SPDE driven by their own noise, not another realisation",
             Ref("2604.26898", "SPDE pathwise limit (docs/theory/random_mlp.md §3.3)"), control=_decoupled)
def _coupling(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(summary(data, p)["ratio"], 0.2,
                detail=f"W1(particles, SPDE same noise) / W1(particles, SPDE independent noise) at t_max, n = {p.n[-1]}")


#: How close to -1/2 the fitted rate must be: the rate is asymptotic, so finite n may bend it.
RATE_TOLERANCE = 0.15


@CLAIMS.rule("W1(particles, SPDE) falls like n^(-1/2) at t_max", Ref("2604.26898", "Prop. 1.2 (d = 2: n^(-1/2))"),
             control=drifting_density)
def _rate(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    slope, se, dof = loglog_slope_of_means(data.n.values, data.w1.values[:, :, -1])
    return equivalent(slope, se, dof, -0.5, RATE_TOLERANCE,
                      detail=f"slope of the mean W1 over n = {p.n} ({p.runs} draws each; s.e. propagated from the draws)")


@register(
    "common-noise-pde",
    title="SPDE with common noise on the circle against particles driven by the same noise",
    summary="one realisation of the stochastic continuity equation vs particles driven by the same noise; baseline: an independent realisation",
    reference="2604.26898 §1 (SPDE, Prop. 1.2); docs/theory/random_mlp.md §3.3",
    params=Params,
    dtypes=("float64",),
    dtype_reason="the SPDE remap conserves mass to 1e-12, a float64 statement",
    quick={"cells": 512, "steps": 100, "t_max": 1.0, "n": [250, 1000, 4000], "runs": 2, "samples": 6},
    claims=CLAIMS,
    variants=[{"beta": "4"}, {"model": "usa"}, {"activation": "relu"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    grid = CircleGrid(p.cells, device=ctx.device)
    model = CircleModel(beta=p.beta, model=p.model, value=p.value)
    rho0 = three_bumps(grid)
    generator = ctx.generator()
    noise = FieldNoise.draw((), 2, p.rank, activation=p.activation, sigma_u=p.sigma_u, sigma_w=p.sigma_w,
                            generator=generator, device=ctx.device)
    shape = noise.shape(1, 2)
    path = BrownianPath((), shape, p.t_max, p.steps, generator=generator, device=ctx.device).increments()
    other = BrownianPath((), shape, p.t_max, p.steps, generator=ctx.generator(1), device=ctx.device).increments()
    every = p.steps // (p.samples - 1)
    times = np.linspace(0.0, p.t_max, p.samples)

    spde = solve_circle(model, grid, rho0, p.t_max, save_times=times, noise=noise.apply, increments=path,
                        progress=True)
    baseline = solve_circle(model, grid, rho0, p.t_max, save_times=times, noise=noise.apply, increments=other)

    w1 = np.zeros((len(p.n), p.runs, len(times)))
    w1_other = np.zeros_like(w1)
    for a, n in enumerate(p.n):
        theta0 = sample_density(grid, rho0, n, batch=(p.runs,), generator=generator)
        theta = common_noise_angles(model, theta0, noise, path.unsqueeze(1).expand(-1, p.runs, *shape),
                                    p.t_max, save_every=every)
        for i in range(len(times)):
            w1[a, :, i] = w1_circle(theta[i], spde.density[i], grid)
            w1_other[a, :, i] = w1_circle(theta[i], baseline.density[i], grid)
        last_theta = theta[:, 0]
    mean, other_mean, se = w1_means(w1, w1_other)
    bins = min(p.cells, 256)
    coarse = coarsen(spde.density, bins)
    hist = angle_histograms(last_theta, bins)
    fig = space_time({"SPDE density (one realisation)": coarse, f"particles, same noise, n = {p.n[-1]}": hist}, p.t_max)
    curves = {f"n = {n}": mean[a] for a, n in enumerate(p.n)}
    curves[f"n = {p.n[-1]}, independent noise (baseline)"] = other_mean[-1]
    w1_fig = line_plot(times, curves, xlabel="t", ylabel="W1(particles, SPDE)", logy=True,
                       bands={f"n = {n}": (mean[a] - se[a], mean[a] + se[a]) for a, n in enumerate(p.n)},
                       title=f"common noise ({p.activation}, M = {p.rank}), {p.model.upper()} beta = {p.beta:g}")
    data = xr.Dataset(
        {"density": (("t", "bin"), coarse), "particle_histogram": (("t", "bin"), hist),
         "w1": (("n", "run", "t"), w1), "w1_independent_noise": (("n", "run", "t"), w1_other),
         "mass": ("t", spde.mass.double().cpu().numpy()), "min_density": float(spde.min_density.min())},
        coords={"t": times, "n": np.asarray(p.n), "run": np.arange(p.runs),
                "bin": (np.arange(bins) + 0.5) * 2 * np.pi / bins},
    )
    s = summary(data, p)
    return Result(
        metrics={
            "w1": [float(v) for v in mean[-1]], "w1_final": [float(v) for v in mean[:, -1]],
            "w1_final_se": [float(v) for v in se[:, -1]], "w1_independent_noise": [float(v) for v in other_mean[-1]],
            "coupling_ratio": s["ratio"], "w1_rate": s["slope"], "w1_rate_se": s["slope_se"],
            "mass_error": s["mass_error"], "min_density": s["min_density"], "steps": spde.steps,
        },
        data=data, figures={"space_time": fig, "w1": w1_fig},
    )
