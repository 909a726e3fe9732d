"""Interaction energy along the flow (2312.10794 eq. 3.6, Lemma 3.7, §3.4.1, §9.1).

``E_beta(X) = (1/(2 beta n²)) Σ_ij exp(beta <x_i, B x_j>)`` increases along the attractive
flow (V = I), decreases along the repulsive one (V = -I), and increases for symmetric
``B = QᵀK = V`` (gradient ascent in a weighted metric). It never falls below the energy of
the uniform measure (the kernel is positive definite and rotation invariant), and for
``n = d + 1`` the repulsive flow reaches the regular simplex (Cohn–Kumar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm import theory
from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, between, inconclusive, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import interaction_energy
from tokenswarm.plots import line_plot
from tokenswarm.runtime.budget import check_steps
from tokenswarm.solve import RK4, integrate
from tokenswarm.sphere import sample_uniform

Value = Literal["identity", "minus_identity", "symmetric"]


@dataclass
class Params:
    n: int = field(default=16, metadata={"min": 2, "help": "tokens"})
    d: int = field(default=3, metadata={"min": 2, "help": "dimension"})
    beta: float = field(default=1.0, metadata={"min_exclusive": 0, "help": "inverse temperature"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    value: list[Value] = field(
        default_factory=lambda: ["identity", "minus_identity", "symmetric"],
        metadata={"help": "V = I, V = -I, or symmetric B = QᵀK = V; top-level metrics describe the first"},
    )
    t_max: float = field(default=20.0, metadata={"min_exclusive": 0, "help": "final time"})
    step: float = field(default=0.01, metadata={"min_exclusive": 0, "help": "RK4 step (energy recorded every step)"})
    runs: int = field(default=4, metadata={"min": 1, "help": "independent starts"})
    simplex_check: bool = field(default=True, metadata={"help": "also run the repulsive flow with n = d + 1"})
    simplex_t_max: float = field(default=40.0, metadata={"min_exclusive": 0, "help": "final time of the simplex run"})

    def __post_init__(self):
        for name in ("t_max", "simplex_t_max"):
            horizon = getattr(self, name)
            if round(horizon / self.step) < 1:
                raise ValueError(f"{name} = {horizon:g} is shorter than one step ({self.step:g})")
            check_steps(round(horizon / self.step), f"{name} = {horizon:g} at step {self.step:g}")


def _weights(value: str, d: int, generator, dtype, device):
    """(field kwargs, energy matrix B) for a value choice."""
    if value == "identity":
        return {}, None
    if value == "minus_identity":
        return {"V": -1.0}, None
    g = torch.randn(d, d, generator=generator, dtype=dtype, device=device)
    B = (g + g.T) / math.sqrt(2 * d)  # GOE scaled so its spectrum is about [-2, 2]
    return {"K": B, "V": B}, B


def energy_path(p: Params, value: str, n: int, d: int, t_max: float, ctx: RunContext, generator) -> np.ndarray:
    """Energy at every RK4 step, shape ``(steps + 1, runs)``."""
    kwargs, B = _weights(value, d, generator, ctx.dtype, ctx.device)
    field_ = Attention(p.beta, normalization=p.model, **kwargs)
    x0 = sample_uniform(n, d, p.runs, generator=generator, dtype=ctx.dtype, device=ctx.device)
    steps = round(t_max / p.step)
    times = np.arange(steps + 1) * p.step
    traj = integrate(
        field_, x0, times, RK4(step=p.step),
        observe=lambda x: interaction_energy(x, p.beta, B), progress=True,
    )
    return traj.states.double().cpu().numpy()


def _floor(energy: np.ndarray, run: RunSettings) -> float:
    """Round-off floor: a few ulps of the energy itself per recorded step."""
    return 64 * float(np.finfo(run.dtype).eps) * float(np.abs(energy).max())


def summary(data: xr.Dataset, p: Params) -> dict[str, dict[str, float]]:
    """Per value choice: extreme step-to-step changes, final and smallest energy, uniform bound."""
    uniform = theory.uniform_energy(p.beta, p.d)
    out = {}
    for value in p.value:
        energy = data[f"energy_{value}"].values
        increments = np.diff(energy, axis=0)
        out[value] = {
            "min_increment": float(increments.min()),
            "max_increment": float(increments.max()),
            "final_energy": float(energy[-1].mean()),
            "min_energy": float(energy.min()),
            "uniform_energy": uniform,
        }
    return out


def _simplex_gap(data: xr.Dataset, p: Params) -> float:
    return float(data["energy_simplex_run"].values[-1].max() - theory.simplex_energy(p.beta, p.d))


CLAIMS = ClaimSet()


def _increases(value: str):
    def judge(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
        if value not in p.value:
            return None
        floor = _floor(data[f"energy_{value}"].values, run)
        return less(-summary(data, p)[value]["min_increment"], floor,
                    detail=f"minus the smallest step-to-step change over {p.runs} runs (round-off floor {floor:.1e})")
    return judge


def _drifting(value: str, rate: float):
    """Negative control: an integrator that adds ``rate`` energy per unit time to the ``value`` runs
    (rate < 0: a dissipative scheme leaking energy; rate > 0: one pumping energy in)."""
    def control(data: xr.Dataset) -> xr.Dataset:
        return data.assign({f"energy_{value}": data[f"energy_{value}"] + rate * data.t})
    return control


CLAIMS.rule("energy increases along the flow (identity)", Ref("2312.10794", "eq. (3.6), Lemma 3.7"),
            control=_drifting("identity", -1e-3))(_increases("identity"))
CLAIMS.rule("energy increases along the flow (symmetric)", Ref("2312.10794", "§3.4.1"),
            control=_drifting("symmetric", -1e-3))(_increases("symmetric"))


@CLAIMS.rule("energy decreases along the repulsive flow (V = -I)", Ref("2312.10794", "§3.3, §9.1"),
             control=_drifting("minus_identity", 1e-3))
def _decreases(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
    if "minus_identity" not in p.value:
        return None
    floor = _floor(data["energy_minus_identity"].values, run)
    return less(summary(data, p)["minus_identity"]["max_increment"], floor,
                detail=f"largest step-to-step increase over {p.runs} runs (round-off floor {floor:.1e})")


def _underweighted(data: xr.Dataset) -> xr.Dataset:
    """Negative control: an energy whose prefactor 1/(2 beta n^2) is 5% too small, so that it
    dips below the uniform measure's."""
    return data.assign({name: 0.95 * data[name] for name in data.data_vars if name.startswith("energy_")})


@CLAIMS.rule("energy never below the uniform measure's ({value})", Ref("2312.10794", "Prop. 3.4"), control=_underweighted)
def _above_uniform(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    verdicts = []
    for value, entry in summary(data, p).items():
        if value == "symmetric":  # the uniform bound is for the B = I energy
            continue
        uniform = entry["uniform_energy"]
        verdicts.append(less(
            uniform - entry["min_energy"], _floor(data[f"energy_{value}"].values, run),
            detail=f"E_beta[uniform] = {uniform:.12g} (Bessel closed form) minus the smallest energy reached",
            labels={"value": value},
        ))
    return verdicts


def _stalled(data: xr.Dataset, gap: float = 1e-5) -> xr.Dataset:
    """Negative control: a repulsive flow that stops ``gap`` above its limit (stuck at an
    equilibrium that is not the simplex): its energy stays constant from then on."""
    energy = data.energy_simplex_run
    floor = energy.isel(t_simplex=-1) + gap
    return data.assign(energy_simplex_run=energy.where(energy > floor, floor).transpose(*energy.dims))


@CLAIMS.rule("repulsive flow with n = d + 1 = {n} reaches the regular simplex", Ref("2312.10794", "§9.1 (Cohn–Kumar)"),
             control=_stalled)
def _simplex(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
    if not p.simplex_check:
        return None
    simplex = theory.simplex_energy(p.beta, p.d)
    eps = float(np.finfo(run.dtype).eps)
    detail = f"final energy minus the simplex energy {simplex:.12g}, worst of {p.runs} runs at t = {p.simplex_t_max:g}"
    judged = between(_simplex_gap(data, p), -64 * eps * simplex, SIMPLEX_GAP, detail=detail, labels={"n": p.d + 1})
    if judged.passed:
        return judged
    needed = _simplex_time_needed(data, simplex)
    if needed is None:  # the energy has stopped falling away from the simplex: a real failure
        return judged
    return inconclusive(judged.measured, judged.expected,
                        f"not reached by t = {p.simplex_t_max:g}, but the energy is still falling geometrically: "
                        f"at the rate of the last quarter the gap reaches {SIMPLEX_GAP:g} near t = {needed:.3g} "
                        f"(-p simplex_t_max={math.ceil(needed):d} would decide); {detail}",
                        labels={"n": p.d + 1})


#: How close to the simplex energy the final energy must come.
SIMPLEX_GAP = 1e-6


def _simplex_time_needed(data: xr.Dataset, simplex: float) -> float | None:
    """When the worst run's energy gap would fall below :data:`SIMPLEX_GAP`, extrapolating the
    geometric decay of the last quarter of the run; ``None`` when the gap no longer decays."""
    energy = data["energy_simplex_run"].values
    times = data["t_simplex"].values
    worst = int(np.argmax(energy[-1]))
    gap = energy[:, worst] - simplex
    tail = slice(3 * len(times) // 4, None)
    if np.any(gap[tail] <= 0):
        return None
    rate = -np.polyfit(times[tail], np.log(gap[tail]), 1)[0]
    if not rate > 1e-6:
        return None
    return float(times[-1] + math.log(gap[-1] / SIMPLEX_GAP) / rate)


@register(
    "energy",
    title="Interaction energy: monotone along the flow, bounded by the uniform measure",
    summary="E_beta monotone (V = I, V = -I, symmetric V = QᵀK), never below the uniform measure, simplex for n = d + 1",
    reference="2312.10794 §3, eq. (3.6), Lemma 3.7, §3.4.1, §9.1",
    params=Params,
    quick={"t_max": 8.0, "step": 0.02, "runs": 2},
    claims=CLAIMS,
    variants=[{"beta": "4"}, {"d": "8"}, {"model": "usa"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    generator = ctx.generator()
    uniform = theory.uniform_energy(p.beta, p.d)
    curves, data = {}, {}
    for value in p.value:
        energy = energy_path(p, value, p.n, p.d, p.t_max, ctx, generator)
        curves[value] = energy.mean(axis=1)
        data[f"energy_{value}"] = (("t", "run"), energy)

    if p.simplex_check:
        energy = energy_path(p, "minus_identity", p.d + 1, p.d, p.simplex_t_max, ctx, generator)
        data["energy_simplex_run"] = (("t_simplex", "run"), energy)

    times = np.arange(len(next(iter(curves.values())))) * p.step
    figure = line_plot(
        times, curves, xlabel="t", ylabel="E_beta", title=f"Energy, {p.model.upper()}, n = {p.n}, d = {p.d}, beta = {p.beta:g}",
        reference={"uniform measure": (times, np.full_like(times, uniform))},
    )
    coords = {"t": times}
    if p.simplex_check:
        coords["t_simplex"] = np.arange(round(p.simplex_t_max / p.step) + 1) * p.step
    dataset = xr.Dataset(data, coords=coords)

    metrics = summary(dataset, p)
    top = metrics[p.value[0]]
    result_metrics = {key: top[key] for key in ("min_increment", "final_energy", "uniform_energy")}
    result_metrics["by_value"] = metrics
    result_metrics["simplex_gap"] = None
    if p.simplex_check:
        result_metrics["simplex_gap"] = _simplex_gap(dataset, p)
        result_metrics["simplex_energy"] = theory.simplex_energy(p.beta, p.d)
    return Result(metrics=result_metrics, data=dataset, figures={"energy": figure})
