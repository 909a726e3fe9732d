"""Synchronisation by common noise in random-MLP Transformers (2604.26898 Thm 1.4, Figs. 1-6).

The paper's grid: N = 64 tokens, L = 150 layers, T = 5, beta = 1, d in {5, 64, 128}, bias
sigma_u = sigma_w in {0, 0.1}, activations, attention +1 / 0 / -1 (V = ±I, QᵀK = I).
We track ``E[E_beta(t)]`` with ``E_beta(mu) = ½∬(e^beta - e^{beta<x,y>}) dmu dmu`` (zero exactly
at one cluster), fit its exponential rate, and check Theorem 1.4's bound
``E[E_t] <= e^{λ̄' t} E[E_0]`` (valid for attention 0 and +1, where S2 holds with ε = 0).
Rates are fitted only where the energy is resolved (:func:`fit_decay_rate`): at d = 128 the
sigmoid cells reach the rounding floor (about 1e-32 in float64) before T/2, and a slope fitted
through the floor measures the floor, not the dynamics.
The odd-field exception: without bias, tanh makes the field odd and tokens form antipodal
pairs instead of one cluster (the paper's Fig. 1 setting: d = 4, T = 20, L = 2000).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr
from scipy import stats

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, greater, inconclusive, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.nets import RandomMLPTransformer
from tokenswarm.plots import line_plot
from tokenswarm.sphere import sample_uniform
from tokenswarm.theory.random_mlp import ActivationName, RandomMLPKernel


@dataclass
class Params:
    n: int = field(default=64, metadata={"min": 2, "help": "tokens"})
    layers: int = field(default=150, metadata={"min": 1, "help": "layers L"})
    t_max: float = field(default=5.0, metadata={"min": 1e-3, "max": 1e3, "help": "depth horizon T"})
    beta: float = field(default=1.0, metadata={"min_exclusive": 0, "max": 300, "help": "inverse temperature (e^beta must fit in float64)"})
    d: list[int] = field(default_factory=lambda: [5, 64, 128], metadata={"min": 2, "help": "dimensions"})
    bias: list[float] = field(default_factory=lambda: [0.0, 0.1], metadata={"min": 0, "help": "sigma_u = sigma_w"})
    activation: list[ActivationName] = field(default_factory=lambda: ["relu", "silu", "sigmoid", "tanh"], metadata={"help": "activations"})
    attention: list[float] = field(default_factory=lambda: [1.0, 0.0, -1.0], metadata={"help": "attention sign (V = sign I)"})
    width: int = field(default=256, metadata={"min": 1, "help": "MLP width m"})
    runs: int = field(default=8, metadata={"min": 2, "help": "independent runs per configuration"})
    odd_d: int = field(default=4, metadata={"min": 2, "help": "dimension of the odd-field run"})
    odd_t_max: float = field(default=20.0, metadata={"min": 1e-3, "max": 1e3, "help": "horizon of the odd-field run"})
    odd_layers: int = field(default=2000, metadata={"min": 1, "help": "layers of the odd-field run"})


def paper_energy(x: torch.Tensor, beta: float) -> torch.Tensor:
    """``(1/n²) Σ_ij ½(e^beta - e^{beta <x_i, x_j>})`` per system."""
    # e^beta - e^{beta u} = -e^beta expm1(-beta |x_i - x_j|²/2): accurate near collapse, never negative.
    # |x_i - x_j|² = |y_i|² + |y_j|² - 2 <y_i, y_j> with y = x - mean(x): in a cluster of width w the
    # terms are O(w²), so the Gram product of the centred tokens keeps the distances' relative
    # accuracy (that of 1 - <x_i, x_j> would fall like eps / w²) at 60x less cost than (n, n, d) differences.
    y = x - x.mean(-2, keepdim=True)
    norms = y.square().sum(-1)
    squared = torch.baddbmm(norms.unsqueeze(-1) + norms.unsqueeze(-2), y, y.mT, alpha=-2.0).clamp_(min=0.0)
    return (-0.5 * math.exp(beta) * torch.expm1(-0.5 * beta * squared)).mean(dim=(-2, -1))


def resolution_floor(dtype: torch.dtype) -> float:
    """Smallest mean energy, relative to the initial one, that rates are fitted on: ``eps^{5/4}``.

    Near collapse ``E_beta ~ |x_i - x_j|²`` and positions on the unit sphere are resolved to about
    the machine epsilon ``eps``, so the energy bottoms out near ``eps²`` (1e-32 in float64,
    1e-14 in float32). At ``eps^{5/4}`` (2e-20 in float64, 2e-9 in float32) the floor is at most
    ``eps^{3/4}`` of the fitted energies (2e-12, 6e-6): far below the Monte Carlo error of ``log E``.
    """
    return float(torch.finfo(dtype).eps) ** 1.25


class DecayFit(NamedTuple):
    """Exponential rate of a mean-energy curve; ``rate`` is NaN when the window has < ``min_points``."""

    rate: float
    t_start: float
    t_stop: float
    points: int


def fit_decay_rate(times: np.ndarray, energy: np.ndarray, floor: float, min_points: int = 5) -> DecayFit:
    """Least-squares slope of ``log energy`` over the late half of the resolved part of the curve.

    The resolved part runs from ``t = 0`` up to (excluding) the first time the energy falls to
    ``floor * energy[0]`` or below; the fit uses its second half ``[t_stop/2, t_stop]``. A curve that
    stays resolved to the end gives the window ``[T/2, T]``. Cutting at the first crossing, not at
    each point below the floor, keeps points that rounding noise lifts back above it out of the fit.
    """
    times, energy = np.asarray(times, dtype=float), np.asarray(energy, dtype=float)
    unresolved = np.nonzero(~(energy > floor * energy[0]))[0]
    stop = int(unresolved[0]) if unresolved.size else times.size
    if stop == 0:
        return DecayFit(math.nan, math.nan, math.nan, 0)
    t_stop = float(times[stop - 1])
    window = np.zeros(times.size, dtype=bool)
    window[:stop] = times[:stop] >= t_stop / 2
    points = int(window.sum())
    t_start = float(times[window][0]) if points else math.nan
    if points < max(min_points, 2):
        return DecayFit(math.nan, t_start, t_stop, points)
    return DecayFit(float(np.polyfit(times[window], np.log(energy[window]), 1)[0]), t_start, t_stop, points)


def _jackknife_rate_se(times: np.ndarray, energies: np.ndarray, floor: float) -> float:
    """Jackknife standard error over runs of the decay rate of the mean energy (``energies`` is
    ``(times, runs)``); NaN when a leave-one-out curve has no rate."""
    runs = energies.shape[1]
    if runs < 3:
        return math.nan
    total = energies.sum(axis=1)
    rates = np.array([fit_decay_rate(times, (total - energies[:, r]) / (runs - 1), floor).rate for r in range(runs)])
    if not np.isfinite(rates).all():
        return math.nan
    return float(math.sqrt((runs - 1) / runs * ((rates - rates.mean()) ** 2).sum()))


def energy_curve(p: Params, d, bias, activation, attention, layers, t_max, generator, dtype, device):
    """Energies after each layer ``(layers + 1, runs)`` and the final state."""
    layer = RandomMLPTransformer(1, width=p.width, activation=activation, beta=p.beta, attention_sign=attention,
                                 sigma_u=bias, sigma_w=bias, t_max=t_max / layers)
    x = sample_uniform(p.n, d, p.runs, generator=generator, dtype=dtype, device=device)
    energies = [paper_energy(x, p.beta)]
    for _ in range(layers):
        x = layer(x, generator)
        energies.append(paper_energy(x, p.beta))
    return torch.stack(energies).double().cpu().numpy(), x


def _label(key) -> str:
    return f"d={key[0]},bias={key[1]:g},{key[2]},att={key[3]:+g}"


def _cells(p: Params) -> list[tuple]:
    """The (d, bias, activation, attention) cells, in the order of the dataset's ``cell`` dimension."""
    return list(itertools.product(p.d, p.bias, p.activation, p.attention))


def bound_violations(data: xr.Dataset, p: Params) -> dict[tuple, float]:
    """Per cell with attention >= 0: max over t of log(E_t/E_0) - λ̄' t - 3 s.e. - 0.05 (> 0: Thm 1.4 violated)."""
    times, violations = data.t.values, {}
    for index, key in enumerate(_cells(p)):
        if key[3] >= 0:
            mean = data.energy.values[index]
            standard_error = data.energy_se.values[index] / mean
            bound = float(data.lambda_bar_prime.values[index])
            # Grönwall bound; slack: 3 s.e. of log E[E] (Monte Carlo) + 0.05 (Euler layers).
            alive = mean > 0
            excess = np.log(mean[alive] / mean[0]) - bound * times[alive] - 3 * standard_error[alive]
            violations[key] = float(np.max(excess) - 0.05)
    return violations


def _frozen(data: xr.Dataset) -> xr.Dataset:
    """Negative control: no synchronisation (tokens frozen): E[E_beta] and its s.e. stay at their t = 0 values."""
    return data.assign({name: data[name].copy(data=np.broadcast_to(data[name].values[:, :1], data[name].shape).copy())
                        for name in ("energy", "energy_se")})


def _flipped_attention(data: xr.Dataset) -> xr.Dataset:
    """Negative control: the attention sign applied backwards (V = -I where +I is meant, and vice
    versa): each attention +1 cell holds what its -1 cell measured, and the reverse."""
    labels = [str(label) for label in data.cell.values]

    def partner(label: str) -> str:
        for sign, other in (("att=+1", "att=-1"), ("att=-1", "att=+1")):
            if label.endswith(sign) and label[:-len(sign)] + other in labels:
                return label[:-len(sign)] + other
        return label

    index = [labels.index(partner(label)) for label in labels]
    names = [name for name, variable in data.data_vars.items() if "cell" in variable.dims and name != "lambda_bar_prime"]
    return data.assign({name: data[name].copy(data=data[name].values[index]) for name in names})


def _pairs_break_up(data: xr.Dataset) -> xr.Dataset:
    """Negative control: the odd field (no bias) loses its antipodal pairs like the biased field."""
    share = data.antipodal_share
    return data.assign(antipodal_share=share.copy(data=np.full(share.shape, float(share.sel(odd_bias=0.1)))))


CLAIMS = ClaimSet()


@CLAIMS.rule("E[E_beta(t)] <= exp(lambda_bar' t) E[E_beta(0)]", Ref("2604.26898", "Thm 1.4 (attention 0 and +1)"),
             control=_frozen)
def _energy_bound(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    violations = bound_violations(data, p)
    if not violations:
        return []
    return [less(
        max(violations.values()), 0.0,
        detail=f"max over {len(violations)} configurations and t of log(E_t/E_0) - λ̄' t - 3 s.e. - 0.05 "
               f"({p.runs} runs, N = {p.n}, L = {p.layers}); worst cell "
               f"{max(violations, key=violations.get)}",
    )]


@CLAIMS.rule("attractive attention speeds synchronisation, repulsive resists it", Ref("2604.26898", "§1.6 (numerics)"),
             control=_flipped_attention)
def _attention_ordering(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    cells, times = _cells(p), data.t.values
    rates = dict(zip(cells, (float(rate) for rate in data.rate.values)))
    t_stop = dict(zip(cells, (float(stop) for stop in data.fit_t_stop.values)))
    floor = resolution_floor(getattr(torch, run.dtype))
    triples = [(d, b, a) for d, b, a in itertools.product(p.d, p.bias, p.activation)
               if {1.0, 0.0, -1.0} <= set(p.attention)]
    fitted = [t for t in triples if all(math.isfinite(rates[(*t, s)]) for s in (1.0, 0.0, -1.0))]
    ordered = [rates[(*t, 1.0)] <= rates[(*t, 0.0)] <= rates[(*t, -1.0)] for t in fitted]
    cut = sorted({k for k in cells if t_stop[k] < times[-1]})
    unavailable = [t for t in triples if t not in fitted]
    if not ordered:
        return []
    share = float(np.mean(ordered))
    if share < 0.999 and "rate_se" in data:
        # a reversed pair of rates decides only beyond its Monte Carlo error (jackknife over runs,
        # Student t with runs - 1 dof, Bonferroni over the comparisons)
        errors = dict(zip(cells, (float(e) for e in data.rate_se.values)))
        pairs = [((*t, a), (*t, b)) for t in fitted for a, b in ((1.0, 0.0), (0.0, -1.0))]
        quantile = float(stats.t.ppf(1 - 0.05 / len(pairs), max(p.runs - 1, 1)))
        decided = [rates[u] - rates[v] > quantile * math.hypot(errors[u], errors[v]) for u, v in pairs
                   if rates[u] > rates[v]]
        if not any(decided):
            return [inconclusive(share, "> 0.999",
                                 f"{len(decided)} reversed pairs of rates, none beyond {quantile:.3g} jackknife s.e. "
                                 f"({p.runs} runs, Bonferroni over {len(pairs)} comparisons): within Monte Carlo "
                                 "error; more runs would decide")]
    return [greater(
        share, 0.999,
        detail=f"share of (d, bias, activation) cells with rate(+1) <= rate(0) <= rate(-1) ({len(ordered)} cells); "
               f"rates are least-squares slopes of log E[E_beta] on [t_stop/2, t_stop], t_stop = T unless "
               f"E[E_beta] reaches {floor:.1g} E_0 (eps^(5/4) of {run.dtype}, "
               f"well above its rounding floor ~eps^2) earlier, then the last time above it; cells cut short: "
               + ("; ".join(f"{_label(k)} at t = {t_stop[k]:.3g}" for k in cut) or "none")
               + "; cells without a rate (< 5 resolved points in the window, left out): "
               + ("; ".join(f"d={t[0]},bias={t[1]:g},{t[2]}" for t in unavailable) or "none"),
    )]


@CLAIMS.rule("odd field (tanh, no bias): antipodal pairs persist", Ref("2604.26898", "§1.5 and Fig. 1 (S1 fails for odd fields)"),
             control=_pairs_break_up)
def _antipodal_pairs(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    antipodal = {bias: float(data.antipodal_share.sel(odd_bias=bias)) for bias in (0.0, 0.1)}
    return greater(
        antipodal[0.0] - antipodal[0.1], 0.05,
        detail=f"share of token pairs with <x_i,x_j> < -0.9 at T = {p.odd_t_max:g}: {antipodal[0.0]:.3f} without bias, "
               f"{antipodal[0.1]:.3f} with bias 0.1 (d = {p.odd_d}, L = {p.odd_layers}, {p.runs} runs)",
    )


@register(
    "synchronization",
    title="Synchronisation by common noise: energy decay across activations, biases and attention",
    summary="E[E_beta(t)] over the paper's grid, Thm 1.4's bound, attention ordering (decay rates fitted only above the dtype's rounding floor), the odd-field (tanh) exception",
    reference="2604.26898 Thm 1.4, Prop. 1.5, Figs. 1-6",
    params=Params,
    quick={"d": [5], "runs": 4, "activation": ["relu", "sigmoid", "tanh"], "width": 128, "odd_layers": 800},
    claims=CLAIMS,
    variants=[{"beta": "4"}, {"d": "64"}, {"layers": "60"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    generator = ctx.generator()
    times = np.linspace(0.0, p.t_max, p.layers + 1)
    cells = _cells(p)
    rates, windows, errors, bounds, curves, rate_errors = {}, {}, {}, {}, {}, {}
    floor = resolution_floor(ctx.dtype)
    for d, bias, activation, attention in cells:
        energies, _ = energy_curve(p, d, bias, activation, attention, p.layers, p.t_max, generator, ctx.dtype, ctx.device)
        mean = energies.mean(axis=1)
        key = (d, bias, activation, attention)
        curves[key] = mean
        errors[key] = energies.std(axis=1, ddof=1) / math.sqrt(p.runs)
        windows[key] = fit_decay_rate(times, mean, floor)
        rates[key] = windows[key].rate
        rate_errors[key] = _jackknife_rate_se(times, energies, floor)
        if attention >= 0:
            bound = RandomMLPKernel(activation, d, bias, bias).lambda_bar_prime(p.beta)
            bounds[key] = bound

    # Odd-field exception: tanh, no bias, no attention: antipodal pairs survive.
    antipodal = {}
    for bias in (0.0, 0.1):
        _, x = energy_curve(p, p.odd_d, bias, "tanh", 0.0, p.odd_layers, p.odd_t_max, generator, ctx.dtype, ctx.device)
        antipodal[bias] = float(((x @ x.mT) < -0.9).double().mean())

    show = [k for k in cells if k[0] == p.d[0] and k[1] == p.bias[-1]]
    figure = line_plot(times, {f"{k[2]}, att {k[3]:+g}": curves[k] for k in show}, xlabel="t", ylabel="E[E_beta]",
                       logy=True, title=f"Energy decay, d = {p.d[0]}, bias = {p.bias[-1]:g}, N = {p.n}")
    table = [{"d": d, "bias": b, "activation": a, "attention": s, "rate": rates[(d, b, a, s)],
              "fit_t_start": windows[(d, b, a, s)].t_start, "fit_t_stop": windows[(d, b, a, s)].t_stop,
              "fit_points": windows[(d, b, a, s)].points,
              "lambda_bar_prime": bounds.get((d, b, a, s))} for d, b, a, s in cells]
    data = xr.Dataset(
        {"energy": (("cell", "t"), np.stack([curves[k] for k in cells])), "rate": ("cell", [rates[k] for k in cells]),
         "fit_t_start": ("cell", [windows[k].t_start for k in cells]),
         "fit_t_stop": ("cell", [windows[k].t_stop for k in cells]),
         "energy_se": (("cell", "t"), np.stack([errors[k] for k in cells])),
         "rate_se": ("cell", [rate_errors[k] for k in cells]),
         "lambda_bar_prime": ("cell", [bounds.get(k, math.nan) for k in cells]),
         "antipodal_share": ("odd_bias", [antipodal[0.0], antipodal[0.1]])},
        coords={"t": times, "cell": [_label(k) for k in cells], "odd_bias": [0.0, 0.1]},
    )
    return Result(
        metrics={"table": table, "rate_floor": floor, "antipodal_share_tanh_no_bias": antipodal[0.0],
                 "antipodal_share_tanh_bias": antipodal[0.1]},
        data=data, figures={"energy_decay": figure},
    )
