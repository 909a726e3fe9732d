"""Critical common-noise level of the hybrid model (2601.21942 Prop. 1; docs/two_token.md).

Two tokens, USA attention, value matrices ``(h + eps xi_k sqrt(h)) I`` with a scalar ``xi_k``
shared by the tokens. In ``z = artanh <x_1, x_2>`` the limit is
``dz = e^{beta rho}(1 - eps² e^beta / 2) dt + eps e^{beta rho} dB``: the drift changes sign at
``eps_c = sqrt(2) e^{-beta/2}``, below which the tokens collapse almost surely and above which
they end antipodal almost surely. We estimate ``eps_c`` from the L-layer network as the root in
``eps`` of the mean displacement ``E[z_T - z_0]`` (zero exactly when the drift vanishes, since
``e^{beta rho} > 0``), and compare the finite-time classification fractions with the exact
Kolmogorov solution.

Finite depth. The layers are an Euler scheme with step ``T/L`` whose bias grows like
``eps e^beta`` (at beta = 2, eps ~ 1, L = 1000 the antipodal fraction is off by 0.1, many
standard errors). We run ``levels`` depths ``L, L/2, L/4, ...`` driven by the same noise (each
coarse ``xi`` is the normalised sum of the fine ones it spans; ``sign`` of it for Rademacher, so
every depth has the exact law) and extrapolate to ``L = inf`` by Richardson in ``L^{-p}``
(:func:`richardson_weights`). ``p = 1`` is the weak order of the Euler scheme (Talay-Tubaro /
Bally-Talay expansion in powers of ``h``) and is what the measured successive differences show
(:func:`bias_exponent`; at beta = 2, L = 1000...8000 the pooled exponent is 0.9-1.0, not 1/2).
Each run's extrapolated value is the same linear combination of its per-depth outcomes, so the
standard error is that of a mean over independent runs and includes the coupling.

Reach in beta (T = 2, 1000 runs per eps, measured on 2 shared CPU cores): the default depths
500/1000/2000 pass both claims at beta = 1 and 2 on the default eps grid (bias at L = 2000 up
to 0.07 at beta = 2, removed by the extrapolation; ~25 s and ~50 s). At beta = 3 the bias at
L = 2000 is still 0.65 at eps = 0.75 and not yet ~1/L: the fractions need depths 4000/8000/16000
(bias 0.32/0.14/0.06, then within 1.1 s.e.; 150 s for 4 eps, most of it in the exact backward
equation, whose cost grows fast with beta); the critical-noise root needs an eps grid a few
hundredths apart around eps_c = 0.32 (the 0.02 allowance is for a grid like the default one).
At beta = 4 both claims fail at the default depths (bias 0.75 at L = 2000, eps = 0.6, growing
with L between 500 and 2000: far from the 1/L regime); deeper runs were not tried (374 s already
for 4 eps, mostly the exact solution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, inconclusive, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.nets import HybridTransformer
from tokenswarm.plots import line_plot
from tokenswarm.runtime.threads import torch_threads
from tokenswarm.sphere import token_pair
from tokenswarm.theory import two_token


@dataclass
class Params:
    beta: float = field(default=1.0, metadata={"min": 0, "max": 20, "help": "inverse temperature (the claims hold to about 2; e^beta scales the exact solver)"})
    eps: list[float] = field(default_factory=lambda: np.round(np.arange(0.5, 1.25, 0.05), 4).tolist(), metadata={"min": 1e-6, "help": "noise levels swept"})
    runs: int = field(default=4000, metadata={"min": 10, "help": "runs per noise level"})
    t_max: float = field(default=2.0, metadata={"min_exclusive": 0, "help": "depth horizon T"})
    layers: int = field(default=2000, metadata={"min": 1, "help": "layers L of the deepest network"})
    levels: int = field(default=3, metadata={"min": 1, "help": "depths L, L/2, ..., L/2^(levels-1) for the extrapolation"})
    bias_power: float = field(default=1.0, metadata={"min": 0.25, "max": 4, "help": "p in the finite-depth bias c L^-p"})
    rho0: float = field(default=0.0, metadata={"min_exclusive": -1, "max_exclusive": 1, "help": "initial inner product"})
    law: Literal["gaussian", "rademacher"] = field(default="gaussian", metadata={"help": "law of xi_k"})
    threshold: float = field(default=0.9, metadata={"min": 0.01, "max": 0.999, "help": "classification threshold"})

    def __post_init__(self):
        if self.layers % 2 ** (self.levels - 1):
            raise ValueError(f"layers must be divisible by 2^(levels - 1) = {2 ** (self.levels - 1)}, got {self.layers}")


def artanh_inner(x: torch.Tensor) -> torch.Tensor:
    """``artanh <x_1, x_2> = log(|x_1 + x_2| / |x_1 - x_2|)``, accurate near ``rho = ±1``.

    Tokens that coincide (or are antipodal) to rounding give ``|z| = log(2 / eps)`` of the dtype,
    not an infinity that would turn means and depth extrapolations into NaN (seen at beta = 3).
    """
    tiny = torch.finfo(x.dtype).eps
    plus = (x[..., 0, :] + x[..., 1, :]).norm(dim=-1).clamp_min(tiny)
    return torch.log(plus / (x[..., 0, :] - x[..., 1, :]).norm(dim=-1).clamp_min(tiny))


def richardson_weights(depths, power: float) -> np.ndarray:
    """Weights ``w`` with ``sum_k w_k f(L_k) = f_inf`` whenever ``f(L) = f_inf + sum_{j < K} c_j L^{-j p}``.

    ``K = len(depths)``: the polynomial in ``L^{-p}`` through all depths, evaluated at ``L^{-p} = 0``
    (one depth: ``w = [1]``, no extrapolation).
    """
    h = np.asarray(depths, dtype=float) ** -float(power)
    vandermonde = np.vander(h, len(h), increasing=True)  # rows (1, h_k, h_k², ...)
    return np.linalg.solve(vandermonde.T, np.eye(len(h))[0])


def bias_exponent(outcomes: np.ndarray, ratio: float = 2.0) -> tuple[float, float]:
    """Exponent ``p`` of ``f(L) - f_inf ~ c L^{-p}`` from the last three depths, with its standard error.

    ``outcomes``: ``(depth, case, runs)`` per-run values at depths growing by ``ratio``. With
    ``D_1 = f(L/4) - f(L/2)``, ``D_2 = f(L/2) - f(L)`` summed over cases (each case signed so its
    differences add up), ``ratio^p = D_1 / D_2``; the error is the delta method over runs.
    """
    if outcomes.shape[0] < 3:
        return math.nan, math.nan
    first, second = outcomes[-3] - outcomes[-2], outcomes[-2] - outcomes[-1]
    signs = np.sign((first + second).mean(-1, keepdims=True))
    a, b = (signs * first).sum(0), (signs * second).sum(0)  # (runs,)
    if not (a.mean() > 0 and b.mean() > 0):
        return math.nan, math.nan
    quotient = a.mean() / b.mean()
    covariance = np.cov(a, b)
    variance = (covariance[0, 0] - 2 * quotient * covariance[0, 1] + quotient**2 * covariance[1, 1]) / (a.size * b.mean() ** 2)
    return float(math.log(quotient) / math.log(ratio)), float(math.sqrt(max(variance, 0.0)) / (quotient * math.log(ratio)))


def coupled_depths(x0: torch.Tensor, depths: list[int], p: Params, eps: torch.Tensor, generator) -> list[torch.Tensor]:
    """Final states of hybrid networks of each depth (dividing ``max(depths)``), driven by one noise path."""
    finest = max(depths)
    networks = [HybridTransformer(depth, beta=p.beta, eps=eps, t_max=p.t_max, law=p.law) for depth in depths]
    states = [x0 for _ in depths]
    # One running sum of the fine draws: a coarse step's xi is the increment since its previous step.
    total = torch.zeros(*x0.shape[:-2], 1, 1, dtype=x0.dtype, device=x0.device)
    previous = [total for _ in depths]
    for k in range(finest):
        total = total + torch.randn(*x0.shape[:-2], 1, 1, generator=generator, dtype=x0.dtype, device=x0.device)
        for i, depth in enumerate(depths):
            span = finest // depth
            if (k + 1) % span == 0:
                xi = (total - previous[i]) / math.sqrt(span)
                states[i] = networks[i].step(states[i], torch.sign(xi) if p.law == "rademacher" else xi)
                previous[i] = total
    return states


def summary(data: xr.Dataset, p: Params) -> dict:
    """The measurements of a run, from its dataset: the critical-noise root, z-scores, bias exponent."""
    mean, se = data.mean_displacement.values, data.standard_error.values
    signs = np.nonzero(np.diff(np.sign(mean)) != 0)[0]
    if signs.size:
        k = signs[0]
        weight = mean[k] / (mean[k] - mean[k + 1])
        estimate = float(p.eps[k] + weight * (p.eps[k + 1] - p.eps[k]))
        slope = (mean[k + 1] - mean[k]) / (p.eps[k + 1] - p.eps[k])
        estimate_se = float(max(se[k], se[k + 1]) / abs(slope))
    else:
        estimate, estimate_se = float("nan"), float("nan")
    antipodal_inf, antipodal_inf_se = data.antipodal.values, data.antipodal_standard_error.values
    exact = data.exact_antipodal.values
    z_scores = np.abs(antipodal_inf - exact) / antipodal_inf_se
    exponent, exponent_se = bias_exponent(data.antipodal_runs.values.astype(float))
    depths = data.depth.values.tolist()
    extrapolation = (f"Richardson in L^-{p.bias_power:g} through L = {', '.join(map(str, depths))}" if p.levels > 1
                     else f"no extrapolation (one depth, L = {p.layers})")
    return {"critical_noise": estimate, "critical_noise_standard_error": estimate_se,
            "predicted_critical_noise": float(two_token.critical_noise(p.beta)),
            "z_scores": z_scores, "worst": int(np.argmax(z_scores)),
            "bias_exponent": exponent, "bias_exponent_standard_error": exponent_se,
            "depths": depths, "extrapolation": extrapolation}


def _out_of_regime(s: dict, p: Params) -> str:
    """Why the depths cannot be extrapolated (Richardson removes a ``c L^-p`` bias only once the
    successive differences decay at that rate), or ``""``."""
    exponent, exponent_se, depths = s["bias_exponent"], s["bias_exponent_standard_error"], s["depths"]
    if len(depths) < 3 or (math.isfinite(exponent) and abs(exponent - p.bias_power) <= 3 * exponent_se):
        return ""
    decay = "do not decay" if not math.isfinite(exponent) else f"decay like L^-{exponent:.2f} ± {exponent_se:.2f}"
    return (f"out of reach at these depths: the successive differences {decay}, not L^-{p.bias_power:g}, so the "
            f"extrapolation through L = {', '.join(map(str, depths))} cannot remove the finite-depth bias; "
            f"-p layers={2 * p.layers} or more would decide")


def _spurious_drift(data: xr.Dataset, shift: float = 0.5) -> xr.Dataset:
    """Negative control: a spurious constant drift in ``z = artanh rho`` that adds ``shift`` to every
    run's ``z_T - z_0`` (toward collapse), moving the root of ``E[z_T - z_0]`` in eps off sqrt(2) e^{-beta/2}."""
    return data.assign(mean_displacement=data.mean_displacement + shift,
                       mean_displacement_by_depth=data.mean_displacement_by_depth + shift)


def _antipodal_leak(data: xr.Dataset, share: float = 0.05) -> xr.Dataset:
    """Negative control: a ``share`` of the runs ends antipodal whatever eps (a spurious repulsion),
    the s.e. widened by that extra Bernoulli share's ``share (1 - share) / runs``."""
    runs = data.sizes["run"]
    return data.assign(antipodal=data.antipodal + share * (1 - data.antipodal),
                       antipodal_standard_error=np.sqrt(data.antipodal_standard_error**2 + share * (1 - share) / runs))


CLAIMS = ClaimSet()


@CLAIMS.rule("simulated critical noise equals sqrt(2) e^{{-beta/2}}", Ref("2601.21942", "Prop. 1 (our derivation)"),
             control=_spurious_drift)
def _critical_noise(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    estimate, estimate_se, predicted = s["critical_noise"], s["critical_noise_standard_error"], s["predicted_critical_noise"]
    unresolved = _out_of_regime(s, p)
    if unresolved and not abs(estimate - predicted) < 4 * estimate_se + 0.02:  # NaN included
        return inconclusive(None if not math.isfinite(estimate) else estimate, f"{predicted:.4f}", unresolved)
    if not math.isfinite(estimate) and not min(p.eps) <= predicted <= max(p.eps):
        return inconclusive(None, f"{predicted:.4f}",
                            f"out of reach: E[z_T - z_0] changes sign nowhere in eps = {min(p.eps):g}..{max(p.eps):g}, "
                            f"a grid that does not contain the prediction {predicted:.4f}; a -p eps grid around it would decide")
    return less(
        abs(estimate - predicted), 4 * estimate_se + 0.02,
        detail=f"root over eps of E[z_T - z_0] extrapolated to L = inf ({s['extrapolation']}): "
               f"{estimate:.4f} ± {estimate_se:.4f} (s.e., {p.runs} runs per eps, T = {p.t_max:g}); "
               f"predicted {predicted:.4f}; 0.02 allows for the linear interpolation between eps grid points"
               + ("" if math.isfinite(estimate) else
                  f"; E[z_T - z_0] changes sign nowhere in eps = {min(p.eps):g}..{max(p.eps):g}, a grid that contains "
                  "the prediction: no threshold where one is predicted"),
    )


@CLAIMS.rule("finite-depth antipodal fractions match the exact z-diffusion", Ref("2601.21942", "Prop. 1 (Kolmogorov equation)"),
             control=_antipodal_leak)
def _fractions(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    worst, depths = s["worst"], s["depths"]
    bias = data.bias_by_depth.values
    unresolved = _out_of_regime(s, p)
    if float(s["z_scores"].max()) >= 4.0 and unresolved:
        return inconclusive(float(s["z_scores"].max()), "< 4",
                            f"{unresolved} (at L = {depths[-1]}: {np.abs(bias[-1]).max():.4f})")
    return less(
        float(s["z_scores"].max()), 4.0,
        detail=f"max over eps of |extrapolated - exact| / s.e. at T = {p.t_max:g} ({s['extrapolation']}; s.e. over runs of "
               f"each run's extrapolated outcome); worst eps = {p.eps[worst]:g}: {float(data.antipodal[worst]):.4f} ± "
               f"{float(data.antipodal_standard_error[worst]):.4f} vs exact {float(data.exact_antipodal[worst]):.4f}; "
               f"bias at L = {depths[-1]} there {bias[-1, worst]:+.4f} (max |bias| over eps: "
               + ", ".join(f"L = {L}: {np.abs(bias[i]).max():.4f}" for i, L in enumerate(depths))
               + f"); fitted bias exponent {s['bias_exponent']:.2f} ± {s['bias_exponent_standard_error']:.2f}",
    )


@register(
    "hybrid-threshold",
    title="Critical common-noise level of the hybrid USA model",
    summary="critical common-noise level of the USA hybrid model vs sqrt(2) e^(-beta/2), and antipodal fractions vs the exact z-diffusion, from networks of L/4, L/2, L layers driven by one noise path and extrapolated in 1/L (finite-depth bias reported)",
    reference="2601.21942 Prop. 1 (our derivation, docs/two_token.md)",
    params=Params,
    quick={"runs": 1000, "eps": [0.7, 0.8, 0.9, 1.0], "layers": 1000},
    claims=CLAIMS,
    variants=[{"beta": "2"}, {"layers": "200"}, {"law": "rademacher"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    eps = torch.as_tensor(p.eps, dtype=ctx.dtype, device=ctx.device).reshape(-1, 1, 1, 1)
    x0 = token_pair(p.rho0, 2, (len(p.eps), p.runs), dtype=ctx.dtype, device=ctx.device)
    depths = [p.layers // 2**j for j in reversed(range(p.levels))]  # increasing
    with torch_threads(1, ctx.device):  # thousands of layers on (eps, runs, 2, 2) tensors: threads only add overhead
        states = coupled_depths(x0, depths, p, eps, ctx.generator())
    z0 = math.atanh(p.rho0)
    displacements = np.stack([(artanh_inner(x) - z0).double().cpu().numpy() for x in states])  # (depth, eps, runs)
    weights = richardson_weights(depths, p.bias_power)
    extrapolated = np.tensordot(weights, displacements, axes=1)  # per run: (eps, runs)
    mean = extrapolated.mean(1)
    se = extrapolated.std(1, ddof=1) / math.sqrt(p.runs)

    rho = np.tanh(displacements + z0)
    antipodal_runs = (rho < -p.threshold).astype(float)  # (depth, eps, runs)
    antipodal_by_depth, collapsed = antipodal_runs.mean(-1), (rho[-1] > p.threshold).mean(-1)
    antipodal_runs_inf = np.tensordot(weights, antipodal_runs, axes=1)
    antipodal_inf = antipodal_runs_inf.mean(-1)
    # A floor of one run's weight keeps z finite where every run agrees (fractions 0 or 1).
    antipodal_inf_se = np.maximum(antipodal_runs_inf.std(-1, ddof=1) / math.sqrt(p.runs), 1.0 / p.runs)
    by_depth_se = np.sqrt(np.maximum(antipodal_by_depth * (1 - antipodal_by_depth), 1.0 / p.runs) / p.runs)
    exact = np.array([two_token.hybrid_classified_fraction(p.t_max, p.rho0, p.beta, e, threshold=p.threshold)
                      for e in p.eps])
    bias = antipodal_by_depth - exact[:, 0]  # (depth, eps)
    data = xr.Dataset(
        {"mean_displacement": ("eps", mean), "standard_error": ("eps", se), "antipodal": ("eps", antipodal_inf),
         "antipodal_standard_error": ("eps", antipodal_inf_se), "collapsed": ("eps", collapsed),
         "exact_antipodal": ("eps", exact[:, 0]),
         "antipodal_by_depth": (("depth", "eps"), antipodal_by_depth),
         "antipodal_by_depth_standard_error": (("depth", "eps"), by_depth_se),
         "bias_by_depth": (("depth", "eps"), bias),
         "mean_displacement_by_depth": (("depth", "eps"), displacements.mean(-1)),
         "antipodal_runs": (("depth", "eps", "run"), antipodal_runs.astype(np.int8))},
        coords={"eps": p.eps, "depth": depths},
        attrs={"antipodal_runs": "1 where a run ends antipodal (rho < -threshold), per depth"},
    )
    s = summary(data, p)
    estimate, predicted = s["critical_noise"], s["predicted_critical_noise"]
    figure = line_plot(
        np.asarray(p.eps), {"E[z_T - z_0]": mean}, xlabel="eps", ylabel="mean displacement of artanh rho",
        reference={"zero": (np.asarray(p.eps), np.zeros(len(p.eps)))},
        title=f"Hybrid model, beta = {p.beta:g}: eps_c = {predicted:.3f} (predicted), {estimate:.3f} (simulated)",
    )
    return Result(
        metrics={"critical_noise": estimate, "critical_noise_standard_error": s["critical_noise_standard_error"],
                 "predicted_critical_noise": predicted, "antipodal_fraction": antipodal_inf.tolist(),
                 "antipodal_fraction_standard_error": antipodal_inf_se.tolist(),
                 "exact_antipodal_fraction": exact[:, 0].tolist(), "depths": depths,
                 "richardson_weights": weights.tolist(),
                 "antipodal_fraction_by_depth": antipodal_by_depth.tolist(),
                 "bias_by_depth": bias.tolist(), "max_abs_bias_by_depth": np.abs(bias).max(1).tolist(),
                 "bias_exponent": s["bias_exponent"], "bias_exponent_standard_error": s["bias_exponent_standard_error"]},
        data=data, figures={"hybrid_threshold": figure},
    )
