"""Discrete random-init Transformers converge to their SDE limits as depth and width grow.

* Value noise (2601.21942 Thm 1): weak error ``|E[rho_T^L] - E[rho_T]|`` of the L-layer
  network (``V_k = ΔW_k / sqrt(h)``, exactly Gaussian) against a fine reference, estimated from
  paired differences on a shared Brownian path (the pairing only reduces variance: each
  marginal is exact). Expected slope -1 in L.
* Random MLP (2604.26898 Thm 1.1): strong mean-square error ``E|x_T^L - x_T|²`` of the
  network with frozen first-layer features (an attention step then an MLP step per layer)
  against the SDE on a fine grid driven by the same Brownian path. Expected slope -1 in L
  (strong order 1/2).
* Width: at a fixed, small depth (the non-Gaussian part of a layer of width m enters at
  order h/m, and vanishes as L grows at fixed m, by the central limit theorem over layers),
  the weak error ``|E[rho_T^m] - E[rho_T^inf]|`` of ReLU networks of width m (fresh weights
  per layer) against the same depth with the exact Gaussian field (two-point covariance
  ``κ(<x_1, x_2>)`` in closed form), paired through shared output Gaussians. Expected slope -1 in m (the 1/m term of Thm 1.1, read
  as a weak error; a pathwise coupling in width is not built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, between, equivalent, inconclusive
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.noise import BrownianPath, FieldNoise, ValueNoise
from tokenswarm.plots import line_plot
from tokenswarm.solve import EulerMaruyama, StratonovichHeun
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_uniform, token_pair
from tokenswarm.stats import loglog_slope, loglog_slope_from_means
from tokenswarm.theory.random_mlp import ActivationName


@dataclass
class Params:
    d: int = field(default=4, metadata={"min": 2, "help": "dimension"})
    n: int = field(default=4, metadata={"min": 2, "help": "tokens (random-MLP part; the value-noise part uses 2)"})
    beta: float = field(default=1.0, metadata={"min": 0, "help": "inverse temperature"})
    t_max: float = field(default=1.0, metadata={"min_exclusive": 0, "help": "depth horizon T"})
    layers: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64], metadata={"min": 1, "help": "depths L"})
    reference_layers: int = field(default=1024, metadata={"min": 2, "help": "fine reference grid (multiple of every L)"})
    weak_runs: int = field(default=20000, metadata={"min": 10, "help": "runs for the weak error"})
    strong_runs: int = field(default=400, metadata={"min": 10, "help": "runs for the strong error"})
    activation: ActivationName = field(default="tanh", metadata={"help": "MLP activation"})
    width: int = field(default=64, metadata={"min": 1, "help": "MLP width m of the depth study"})
    sigma_u: float = field(default=0.1, metadata={"min": 0, "help": "first-layer bias scale"})
    sigma_w: float = field(default=0.1, metadata={"min": 0, "help": "output bias scale"})
    widths: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32], metadata={"min": 1, "help": "widths m of the width study"})
    width_layers: int = field(default=2, metadata={"min": 1, "help": "depth of the width study"})
    width_runs: int = field(default=200000, metadata={"min": 10, "help": "runs per width"})

    def __post_init__(self):
        if any(self.reference_layers % L for L in self.layers) or self.reference_layers <= max(self.layers):
            raise ValueError(
                f"reference_layers = {self.reference_layers} must be a multiple of, and larger than, "
                f"every L in layers = {self.layers}"
            )


def _slope(x, y) -> float:
    return loglog_slope(x, y)[0]


def value_noise_weak(p: Params, ctx: RunContext):
    generator = ctx.generator(0)
    rho0 = 0.3
    x0 = token_pair(rho0, p.d, p.weak_runs, dtype=ctx.dtype, device=ctx.device)
    noise = ValueNoise(beta=p.beta, sigma2=1.0)
    path = BrownianPath((p.weak_runs,), noise.shape(2, p.d), p.t_max, p.reference_layers, generator=generator,
                        dtype=ctx.dtype, device=ctx.device)

    def final_rho(steps):
        x = integrate_sde(None, noise, x0, p.t_max, steps, solver=EulerMaruyama(), increments=path.increments(steps)).final
        return (x[..., 0, :] * x[..., 1, :]).sum(-1)

    reference = final_rho(p.reference_layers)
    errors, standard_errors = [], []
    for L in p.layers:
        difference = (final_rho(L) - reference).double()
        errors.append(abs(float(difference.mean())))
        standard_errors.append(float(difference.std() / math.sqrt(p.weak_runs)))
    return np.asarray(errors), np.asarray(standard_errors), float(reference.double().mean())


def random_mlp_strong(p: Params, ctx: RunContext):
    generator = ctx.generator(1)
    x0 = sample_uniform(p.n, p.d, p.strong_runs, generator=generator, dtype=ctx.dtype, device=ctx.device)
    attention = Attention(p.beta)
    # Frozen features: the network with these U, b and fresh Gaussian output weights per layer
    # is exactly the split Euler–Maruyama scheme of the finite-rank field SDE.
    noise = FieldNoise.draw((p.strong_runs,), p.d, p.width, activation=p.activation, sigma_u=p.sigma_u,
                            sigma_w=p.sigma_w, generator=generator, dtype=ctx.dtype, device=ctx.device)
    path = BrownianPath((p.strong_runs,), noise.shape(p.n, p.d), p.t_max, p.reference_layers, generator=generator,
                        dtype=ctx.dtype, device=ctx.device)
    reference = integrate_sde(attention, noise, x0, p.t_max, p.reference_layers, solver=StratonovichHeun(),
                              increments=path.increments()).final
    depth_errors, standard_errors = [], []
    for L in p.layers:
        x = integrate_sde(attention, noise, x0, p.t_max, L, solver=EulerMaruyama(split=True), increments=path.increments(L)).final
        squared = ((x - reference) ** 2).sum(-1)  # (runs, n)
        depth_errors.append(float(squared.mean()))
        per_run = squared.double().mean(-1)  # the tokens of a run are not independent
        standard_errors.append(float(per_run.std() / math.sqrt(p.strong_runs)))
    return np.asarray(depth_errors), np.asarray(standard_errors)


def relu_kappa_torch(u: torch.Tensor, d: int, sigma_u: float, sigma_w: float) -> torch.Tensor:
    """ReLU kernel ``κ(u)`` on the sphere (closed form, docs/theory/random_mlp.md §2.3), differentiable torch version."""
    s = 1.0 / d + sigma_u**2
    r = ((u / d + sigma_u**2) / s).clamp(-1.0, 1.0)
    return s / (2 * math.pi) * (torch.sqrt(1 - r * r) + r * (math.pi - torch.arccos(r))) + sigma_w**2


def _two_point_step(x: torch.Tensor, k11, k12, k22, z: torch.Tensor, h: float) -> torch.Tensor:
    """``N(x_i + sqrt(h) G_i)`` with ``(G_1, G_2) = chol([[k11, k12], [k12, k22]]) z`` per output dim."""
    l11 = k11.sqrt()
    l21 = k12 / l11
    l22 = (k22 - l21 * l21).clamp_min(0).sqrt()
    g1 = l11 * z[..., 0, :]
    g2 = l21 * z[..., 0, :] + l22 * z[..., 1, :]
    return torch.nn.functional.normalize(x + math.sqrt(h) * torch.stack([g1, g2], dim=-2), dim=-1)


def width_weak(p: Params, ctx: RunContext):
    """``|E[rho_T^m] - E[rho_T^inf]|`` and its standard error for each width.

    Given its first-layer weights ``U, b``, a width-m layer is a Gaussian field with the random
    empirical kernel ``κ_m = φ φᵀ/m + sigma_w²`` (the output weights are Gaussian), so it is
    simulated exactly as ``chol(κ_m) z``; the infinite-width layer uses ``chol(κ) z`` with the
    *same* ``z``. The pairing only reduces the variance of the difference; each marginal is exact.
    """
    h = p.t_max / p.width_layers
    start = token_pair(0.0, p.d, p.width_runs, dtype=ctx.dtype, device=ctx.device)
    generator = ctx.generator(2)
    options = dict(generator=generator, dtype=ctx.dtype, device=ctx.device)
    errors, standard_errors = [], []
    for m in p.widths:
        x, y = start, start
        for _ in range(p.width_layers):
            U = torch.randn(p.width_runs, m, p.d, **options)
            b = p.sigma_u * torch.randn(p.width_runs, 1, m, **options)
            phi = torch.relu(x @ U.mT / math.sqrt(p.d) + b)  # (runs, 2, m)
            empirical = phi @ phi.mT / m + p.sigma_w**2
            z = torch.randn(*x.shape, **options)
            x = _two_point_step(x, empirical[..., 0, 0:1], empirical[..., 0, 1:2], empirical[..., 1, 1:2], z, h)
            u = (y[..., 0, :] * y[..., 1, :]).sum(-1, keepdim=True)
            k11 = relu_kappa_torch(torch.ones_like(u), p.d, p.sigma_u, p.sigma_w)
            y = _two_point_step(y, k11, relu_kappa_torch(u, p.d, p.sigma_u, p.sigma_w), k11, z, h)
        difference = ((x[..., 0, :] * x[..., 1, :]).sum(-1) - (y[..., 0, :] * y[..., 1, :]).sum(-1)).double()
        errors.append(abs(float(difference.mean())))
        standard_errors.append(float(difference.std() / math.sqrt(p.width_runs)))
    return np.asarray(errors), np.asarray(standard_errors), None


def summary(data: xr.Dataset, p: Params) -> dict[str, float]:
    """Log-log slopes of the three errors against depth / width."""
    return {"weak_slope": _slope(p.layers, data.weak_error.values),
            "strong_slope": _slope(p.layers, data.strong_error.values),
            "width_slope": _slope(p.widths, data.width_error.values)}


def _half_order(name: str):
    """Negative control: errors ``name`` that converge at half the order (slope -1/2, e.g. a weak
    error of order 1/2 or a CLT-like 1/sqrt(m)), from the same first error: ``sqrt(e e_0)``."""
    def control(data: xr.Dataset) -> xr.Dataset:
        return data.assign({name: np.sqrt(data[name] * float(data[name].values[0]))})
    return control


CLAIMS = ClaimSet()


def _order_one(x: list[int], errors: np.ndarray, standard_errors: np.ndarray, runs: int, variable: str,
               detail: str) -> Verdict:
    """Slope -1 ± 0.3 as an equivalence test on the log-log slope, whose standard error propagates
    the errors' Monte Carlo standard errors. The fit runs over the levels before the first error
    within 2 s.e. of 0 (there the logarithm of the error is noise, not the error); with fewer than
    3 such levels the claim is inconclusive, with the number of runs that would resolve one more."""
    unresolved = errors < 2 * standard_errors
    kept = int(np.argmax(unresolved)) if unresolved.any() else len(x)
    if kept < 3:
        k = min(kept, len(x) - 1)
        factor = (2 * standard_errors[k] / max(errors[k], 1e-300)) ** 2
        return inconclusive(loglog_slope(x, errors)[0], "-1 ± 0.3",
                            f"{detail}; the error at {variable} = {x[k]} ({errors[k]:.3g}) is within 2 s.e. "
                            f"({standard_errors[k]:.3g}) of 0, leaving {kept} resolved levels (3 needed); "
                            f"about {factor:.2g}x the runs would resolve it")
    slope, se, dof = loglog_slope_from_means(x[:kept], errors[:kept], standard_errors[:kept], runs)
    if kept < len(x):
        detail += f"; fitted over {variable} = {list(x[:kept])}: from {variable} = {x[kept]} on, errors within 2 s.e. of 0"
    return equivalent(slope, se, dof, -1.0, 0.3, detail=detail)


CLAIMS = ClaimSet()


@CLAIMS.rule("weak error of the value-noise network ~ 1/L", Ref("2601.21942", "Thm 1 (weak order 1 expected)"),
             control=_half_order("weak_error"))
def _weak(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    weak, weak_se = data.weak_error.values, data.weak_standard_error.values
    return _order_one(p.layers, weak, weak_se, p.weak_runs, "L",
                      f"log-log slope over L = {p.layers}; errors {np.round(weak, 6).tolist()}, "
                      f"s.e. {np.round(weak_se, 6).tolist()} ({p.weak_runs} paired runs)")


@CLAIMS.rule("mean-square strong error of the random-MLP network ~ 1/L", Ref("2604.26898", "Thm 1.1 (c(1/L + 1/m))"),
             control=_half_order("strong_error"))
def _strong(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    detail = (f"log-log slope over L = {p.layers}; E|x^L - x|² = {np.round(data.strong_error.values, 8).tolist()} "
              f"({p.strong_runs} runs, width {p.width}, {p.activation})")
    if "strong_standard_error" not in data:  # runs saved before the standard errors were
        return between(summary(data, p)["strong_slope"], -1.3, -0.7, detail=detail)
    return _order_one(p.layers, data.strong_error.values, data.strong_standard_error.values, p.strong_runs, "L", detail)


@CLAIMS.rule("weak width error ~ 1/m (fixed depth)", Ref("2604.26898", "Thm 1.1 (1/m term)"),
             control=_half_order("width_error"))
def _width(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    width, width_se = data.width_error.values, data.width_standard_error.values
    return _order_one(p.widths, width, width_se, p.width_runs, "m",
                      f"log-log slope over m = {p.widths} at L = {p.width_layers}, T = {p.t_max:g} (ReLU, d = {p.d}); "
                      f"|E rho^m - E rho^inf| = {np.round(width, 5).tolist()}, s.e. {np.round(width_se, 5).tolist()} "
                      f"({p.width_runs} runs each)")


@register(
    "depth-limit",
    title="Deep random Transformers converge to their SDE limits in depth and width",
    summary="weak error in depth (value noise), mean-square strong error in depth (random MLP, shared Brownian path), weak error in width; fitted slopes",
    reference="2601.21942 Thm 1; 2604.26898 Thm 1.1",
    params=Params,
    quick={"weak_runs": 4000, "strong_runs": 100, "reference_layers": 512, "width_runs": 50000},
    claims=CLAIMS,
    variants=[{"beta": "4"}, {"d": "8"}, {"activation": "relu"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    weak, weak_se, mean_rho = value_noise_weak(p, ctx)
    strong, strong_se = random_mlp_strong(p, ctx)
    width, width_se, _ = width_weak(p, ctx)
    figure = line_plot(
        np.asarray(p.layers, float), {"weak |E rho^L - E rho|": weak, "strong E|x^L - x|^2": strong},
        xlabel="layers L", ylabel="error", logx=True, logy=True,
        reference={"1/L": (np.asarray(p.layers, float), strong[0] * p.layers[0] / np.asarray(p.layers, float))},
        title=f"Depth limit (d = {p.d}, beta = {p.beta:g}, T = {p.t_max:g})",
    )
    data = xr.Dataset(
        {"weak_error": ("L", weak), "weak_standard_error": ("L", weak_se), "strong_error": ("L", strong),
         "strong_standard_error": ("L", strong_se), "width_error": ("m", width), "width_standard_error": ("m", width_se)},
        coords={"L": p.layers, "m": p.widths},
    )
    return Result(
        metrics={**summary(data, p), "width_errors": width.tolist(), "width_standard_errors": width_se.tolist(),
                 "weak_errors": weak.tolist(), "strong_errors": strong.tolist(), "mean_rho_T": mean_rho},
        data=data, figures={"depth_limit": figure},
    )
