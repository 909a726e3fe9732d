"""Mean field on the circle: the density solver against n particles (2312.10794 §3, Rem. 3.3).

The finite-volume solution of ``∂_tρ + ∂_θ(ρ v[ρ]) = κ^{-1}∂_θθρ`` (:mod:`tokenswarm.meanfield.circle`)
is compared with the empirical measures of ``n`` particles whose initial angles are drawn
i.i.d. from the solver's own initial density, for ``n`` from 10^2 to 10^5 (``runs`` independent
draws each). In one dimension ``E W1(μ_n(0), ρ₀) ~ c n^{-1/2}``, and Rem. 3.3
(``W1(μ_n(t), μ(t)) <= e^{O(t)} W1(μ_n(0), μ(0))``) carries the rate to later times, so the fitted
log-log slope in ``n`` at fixed ``t`` should be ``−1/2`` as long as the solver resolves the
density (before clusters collapse below the cell size). The invariants of the scheme are
measured on the same run: mass, positivity, monotone energy (``κ = 0``; with noise the free
energy ``E − κ^{-1}∫ρ log ρ`` for USA, the Wasserstein gradient structure of the Fokker–Planck
equation; none is claimed for SA with noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, between, equivalent
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
from tokenswarm.meanfield.particles import flow_angles, noisy_angles
from tokenswarm.plots import (
    angle_histograms,
    coarsen,
    density_snapshots,
    line_plot,
    space_time,
)
from tokenswarm.stats import loglog_slope, loglog_slope_of_means


@dataclass
class Params:
    beta: float = field(default=4.0, metadata={"min": 0, "max": 300, "help": "inverse temperature"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    value: Literal["identity", "minus_identity"] = field(default="identity", metadata={"help": "V = I or V = -I"})
    cells: int = field(default=4096, metadata={"min": 64, "help": "finite-volume cells"})
    t_max: float = field(default=3.0, metadata={"min_exclusive": 0, "help": "final time (compare here)"})
    n: list[int] = field(default_factory=lambda: [100, 1000, 10000, 100000],
                         metadata={"min": 10, "help": "particle counts"})
    kappa: float = field(default=0.0, metadata={"min": 0, "help": "noise parameter: diffusion 1/kappa (0: none)"})
    runs: int = field(default=4, metadata={"min": 2, "help": "independent particle draws per n"})
    step: float = field(default=0.05, metadata={"min_exclusive": 0, "help": "particle time step (RK4; Heun with noise)"})
    samples: int = field(default=31, metadata={"min": 2, "help": "output times"})


def _monotone(e: np.ndarray, increasing: bool, tolerance: float = 1e-12) -> bool:
    """Whether ``e`` never moved against ``increasing`` by more than ``tolerance · max|e|``
    (:meth:`DensityTrajectory.energy_monotone` on the saved series)."""
    change = e[1:] - e[:-1]
    if not increasing:
        change = -change
    return bool((change >= -tolerance * np.abs(e).max(0)).all(0))


def summary(data: xr.Dataset, p: Params) -> dict:
    """The measurements of a run, from its dataset: invariants of the scheme and the W1 rate in n."""
    w1 = data.w1.values
    mean = w1.mean(1)
    se = w1.std(1, ddof=1) / np.sqrt(p.runs)
    slope, slope_se = loglog_slope(p.n, mean[:, -1])
    slope0, _ = loglog_slope(p.n, mean[:, 0])
    mass = data.mass.values
    if p.kappa == 0:
        functional, increasing = "energy", p.value == "identity"
        series = data.step_energy if "step_energy" in data else data.energy
        monotone = _monotone(series.values, increasing)
    elif p.model == "usa":
        functional, increasing = "free energy", p.value == "identity"
        monotone = _monotone(data.free_energy.values, increasing)
    else:
        functional, increasing, monotone = None, None, None
    return {
        "mass_error": float((np.abs(mass - mass[0]) / mass[0]).max(0)),
        "min_density": float(data.min_density),
        "w1": [float(v) for v in mean[:, -1]], "w1_se": [float(v) for v in se[:, -1]],
        "w1_initial": [float(v) for v in mean[:, 0]],
        "w1_rate": slope, "w1_rate_se": slope_se, "w1_rate_initial": slope0,
        "energy_monotone": monotone, "monotone_functional": functional, "increasing": increasing,
    }


def _energy_reversed_at_last_step(data: xr.Dataset, size: float = 1e-9) -> xr.Dataset:
    """Negative control: a scheme whose last step moves the monotone functional (the energy or
    free energy that :func:`summary` reads) against its direction by ``size`` times its magnitude."""
    changed = {}
    for name in ("step_energy" if "step_energy" in data else "energy", "free_energy"):
        if name in data:
            e = data[name].values.copy()
            trend = 1.0 if e[-1] >= e[0] else -1.0
            e[-1] = e[-2] - trend * size * np.abs(e).max()
            changed[name] = data[name].copy(data=e)
    return data.assign(changed)


CLAIMS = ClaimSet()


add_mass_and_positivity(CLAIMS, summary,
                        Ref("2312.10794", "numerical check: finite volumes (flux form)"),
                        Ref("2312.10794", "numerical check: positivity under the CFL bound"))


#: How close to -1/2 the fitted rate must be: the rate is asymptotic, so finite n may bend it.
RATE_TOLERANCE = 0.15


@CLAIMS.rule("W1(particles, PDE) falls like n^(-1/2) at t_max", Ref("2312.10794", "Rem. 3.3 (1-D sampling rate)"),
             control=drifting_density)
def _rate(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    slope, se, dof = loglog_slope_of_means(p.n, data.w1.values[:, :, -1])
    return equivalent(slope, se, dof, -0.5, RATE_TOLERANCE,
                      detail=f"slope of the mean W1 over n = {p.n} ({p.runs} draws each; s.e. propagated from the draws)")


@CLAIMS.rule("the {functional} {direction} monotonically", Ref("2312.10794", "§3 (gradient structure)"),
             control=_energy_reversed_at_last_step)
def _monotone_energy(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
    s = summary(data, p)
    if s["energy_monotone"] is None:
        return None
    direction = "increases" if s["increasing"] else "decreases"
    return between(float(s["energy_monotone"]), 1.0, 1.0,
                   detail=f"checked at every one of {int(data.steps)} steps (round-off 1e-12)",
                   labels={"functional": s["monotone_functional"], "direction": direction})


@register(
    "mean-field",
    title="Particles converge to the mean-field density on the circle at rate n^(-1/2)",
    summary="finite-volume density vs n = 10²..10⁵ particles: W1 over time and its rate in n; mass, positivity, monotone energy",
    reference="2312.10794 §3 (continuity equation, Rem. 3.3); 2512.01868 §1.10 (noisy variant)",
    params=Params,
    dtypes=("float64",),
    dtype_reason="mass conservation to 1e-12 is a float64 statement",
    quick={"cells": 1024, "n": [100, 400, 1600, 6400], "t_max": 1.5, "runs": 3, "samples": 7, "step": 0.1},
    claims=CLAIMS,
    variants=[{"beta": "1"}, {"model": "usa"}, {"kappa": "0.5"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    grid = CircleGrid(p.cells, device=ctx.device)
    model = CircleModel(beta=p.beta, model=p.model, value=p.value, kappa=p.kappa)
    rho0 = three_bumps(grid)
    times = np.linspace(0.0, p.t_max, p.samples)
    pde = solve_circle(model, grid, rho0, p.t_max, save_times=times, progress=True)

    generator = ctx.generator()
    w1 = np.zeros((len(p.n), p.runs, len(times)))
    largest = None
    for a, n in enumerate(p.n):
        theta0 = sample_density(grid, rho0, n, batch=(p.runs,), generator=generator)
        if p.kappa > 0:
            theta = noisy_angles(model, theta0, times, step=p.step, generator=generator)
        else:
            theta = flow_angles(model, theta0, times, step=p.step)
        for i in range(len(times)):
            w1[a, :, i] = w1_circle(theta[i], pde.density[i], grid)
        largest = theta[:, 0]
    mean = w1.mean(1)
    se = w1.std(1, ddof=1) / np.sqrt(p.runs)

    # ---- figures: space-time image beside the particle histogram; snapshots; W1 against n
    bins = min(p.cells, 256)
    coarse = coarsen(pde.density, bins)
    hist = angle_histograms(largest, bins)
    centers = (np.arange(bins) + 0.5) * 2 * np.pi / bins
    fig = space_time({"PDE density": coarse, f"particles, n = {p.n[-1]}": hist}, p.t_max)
    snap = density_snapshots(coarse, hist, times, sorted({0, len(times) // 2, len(times) - 1}), label=f"n = {p.n[-1]}")
    rate_fig = line_plot(
        np.asarray(p.n, float), {f"t = {times[-1]:.2g}": mean[:, -1], "t = 0": mean[:, 0]},
        xlabel="n", ylabel="W1(particles, PDE)", logx=True, logy=True, markers=True,
        bands={f"t = {times[-1]:.2g}": (mean[:, -1] - se[:, -1], mean[:, -1] + se[:, -1])},
        reference={"n^(-1/2)": (np.asarray(p.n, float), mean[0, -1] * (np.asarray(p.n, float) / p.n[0]) ** -0.5)},
        title=f"{p.model.upper()}, beta = {p.beta:g}, kappa = {p.kappa:g}, {p.cells} cells",
    )
    data = xr.Dataset(
        {
            "density": (("t", "bin"), coarse),
            "particle_histogram": (("t", "bin"), hist),
            "w1": (("n", "run", "t"), w1),
            "mass": (("t",), pde.mass.cpu().numpy()),
            "energy": (("t",), pde.energy.cpu().numpy()),
            "min_density": ((), float(pde.min_density.min())),
            "steps": ((), pde.steps),
        },
        coords={"t": times, "n": np.asarray(p.n), "run": np.arange(p.runs), "bin": centers},
    )
    if pde.step_energy is not None:
        data["step_energy"] = ("step", pde.step_energy.cpu().numpy())
    if pde.free_energy is not None:
        data["free_energy"] = ("t", pde.free_energy.cpu().numpy())
    measured = summary(data, p)
    return Result(
        metrics={
            **{key: value for key, value in measured.items() if key != "increasing"},
            "steps": pde.steps, "rejected_steps": pde.rejected,
            "peak_density": float(pde.density[-1].max()),
        },
        data=data,
        figures={"space_time": fig, "snapshots": snap, "w1_rate": rate_fig},
    )
