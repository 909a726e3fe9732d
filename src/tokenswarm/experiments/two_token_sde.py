"""Two tokens under common value noise: antipodal phase transition (2601.21942 Thm 2).

Simulate two tokens under the value-noise SDE (``method = "sde"``, Euler–Maruyama with
low-rank noise, exact in law) or the L-layer random-init network (``method = "discrete"``,
full Gaussian value matrices, ``T = t_max``, residual factor ``sqrt(t_max/L)``), classify
each run at ``t_max`` (``rho < -0.9`` antipodal, ``> 0.9`` collapsed), and compare with the
one-dimensional diffusion of ``rho = <x_1, x_2>`` (``tokenswarm.theory.two_token``): its finite-time
classification probabilities, the hitting probability of -1 from the scale function, and
the critical curve ``beta_c(d)``. Time is measured so that the Brownian matrix has entry
variance ``sigma2 t``.
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
from tokenswarm.nets import ValueNoiseTransformer
from tokenswarm.noise import ValueNoise
from tokenswarm.plots._common import new_figure, style
from tokenswarm.solve import EulerMaruyama
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_uniform, token_pair
from tokenswarm.theory import two_token


@dataclass
class Params:
    d: int = field(default=6, metadata={"min": 3, "help": "dimension"})
    beta: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0], metadata={"min": 0, "help": "inverse temperatures"})
    runs: int = field(default=4000, metadata={"min": 10, "help": "runs per beta"})
    t_max: float = field(default=60.0, metadata={"min_exclusive": 0, "help": "final time"})
    rho0: float | str = field(default="uniform", metadata={"help": "initial <x_1, x_2> in (-1, 1), or 'uniform' (independent uniform tokens)"})
    sigma2: float | None = field(default=None, metadata={"min_exclusive": 0, "help": "entry variance of the value noise (default 1/d)"})
    method: Literal["sde", "discrete"] = field(default="sde", metadata={"help": "SDE (low-rank Euler–Maruyama) or the L-layer network"})
    layers: int = field(default=3000, metadata={"min": 1, "help": "steps of the SDE scheme / layers of the network"})
    threshold: float = field(default=0.9, metadata={"min": 0.01, "max": 0.999, "help": "classification threshold"})
    phase_d: list[int] = field(default_factory=lambda: [3, 4, 5, 6, 8, 10, 16, 32], metadata={"min": 3, "help": "dimensions of the (beta, d) diagram"})

    def __post_init__(self):
        if isinstance(self.rho0, str) and self.rho0 != "uniform":
            raise ValueError(f"rho0 must be a number in (-1, 1) or 'uniform', got {self.rho0!r}")
        if not isinstance(self.rho0, str) and not -1 < self.rho0 < 1:
            raise ValueError(f"rho0 must lie in (-1, 1), got {self.rho0!r}")


def initial_tokens(rho0, d, batch, generator, dtype, device) -> torch.Tensor:
    if rho0 == "uniform":
        return sample_uniform(2, d, batch, generator=generator, dtype=dtype, device=device)
    return token_pair(rho0, d, batch, dtype=dtype, device=device)


def final_inner_products(p: Params, sigma2: float, ctx: RunContext, layers: int | None = None, stream: int = 1) -> np.ndarray:
    """``rho(t_max)`` for every (beta, run): ``(len(beta), runs)``, with ``layers`` steps or layers
    (default ``p.layers``) and the noise of the run's stream ``stream``."""
    betas = torch.as_tensor(p.beta, dtype=ctx.dtype, device=ctx.device).unsqueeze(-1)
    batch = (len(p.beta), p.runs)
    x0 = initial_tokens(p.rho0, p.d, batch, ctx.generator(0), ctx.dtype, ctx.device)
    layers = p.layers if layers is None else layers
    if p.method == "sde":
        noise = ValueNoise(beta=betas, sigma2=sigma2, low_rank=True)
        x = integrate_sde(None, noise, x0, p.t_max, layers, solver=EulerMaruyama(), generator=ctx.generator(stream), progress=True).final
    else:
        network = ValueNoiseTransformer(layers, beta=betas, sigma2=sigma2, t_max=p.t_max)
        x = network(x0, ctx.generator(stream))
    return (x[..., 0, :] * x[..., 1, :]).sum(-1).double().cpu().numpy()


def _phase_figure(p: Params, critical: dict[int, float], simulated: np.ndarray):
    betas = np.linspace(0.0, max(4.0, max(p.beta)), 81)
    dims = sorted(set(p.phase_d) | {p.d})
    grid = np.array([[two_token.antipodal_probability(p.rho0, float(b), d) if b > 0 else 0.0 for b in betas] for d in dims])
    with style():
        figure = new_figure((10.5, 4.0))
        left, right = figure.subplots(1, 2)
        image = left.pcolormesh(betas, np.arange(len(dims)), grid, shading="nearest", cmap="viridis", vmin=0, vmax=grid.max() or 1)
        left.plot([critical[d] for d in dims], np.arange(len(dims)), "w-", lw=2, label="beta_c(d)")
        left.set_yticks(np.arange(len(dims)), [str(d) for d in dims])
        left.set(xlabel="beta", ylabel="d", title="P(antipodal), scale function")
        left.legend(loc="lower right")
        figure.colorbar(image, ax=left)
        fine = np.linspace(min(p.beta), max(p.beta), 120)
        right.plot(fine, [two_token.antipodal_probability(p.rho0, float(b), p.d) if b > 0 else 0.0 for b in fine],
                   "k--", label="t = inf (scale function)")
        right.errorbar(p.beta, simulated[:, 0], yerr=simulated[:, 1], fmt="o", color="C3", capsize=3,
                       label=f"simulated ({p.method}), t = {p.t_max:g}")
        right.plot(p.beta, simulated[:, 2], "s", mfc="none", color="C0", label="predicted at t = t_max")
        right.axvline(critical[p.d], color="grey", lw=1)
        right.set(xlabel="beta", ylabel="antipodal fraction", title=f"d = {p.d}, rho0 = {p.rho0}")
        right.legend(fontsize=8)
    return figure


def _sigma2(p: Params) -> float:
    return p.sigma2 if p.sigma2 is not None else 1.0 / p.d


def summary(data: xr.Dataset, p: Params) -> dict:
    """The measurements of a run, from its dataset: simulated vs predicted antipodal fractions."""
    antipodal = data.antipodal.values
    predicted_t = data.predicted_antipodal_t.values
    expected_se = np.sqrt(np.maximum(predicted_t * (1 - predicted_t), 1.0 / p.runs) / p.runs)
    inflation = 1.0
    if "antipodal_half_depth" in data:
        # the network's weak error is O(1/L): Richardson from L and L/2 (independent noise) removes it,
        # at sqrt(2² + 1) times the standard error of one fraction
        antipodal, inflation = 2 * antipodal - data.antipodal_half_depth.values, math.sqrt(5.0)
    z = np.abs(antipodal - predicted_t) / (inflation * expected_se)
    critical = float(data.critical_beta.sel(d=p.d))
    subcritical = np.asarray(p.beta) < critical
    return {"antipodal": antipodal, "predicted_t": predicted_t, "max_z": float(z.max()),
            "critical_beta": critical, "subcritical": subcritical, "se_inflation": inflation}


def _depth_note(data: xr.Dataset, p: Params) -> str:
    if "antipodal_half_depth" not in data:
        return ""
    bias = data.antipodal.values - data.antipodal_half_depth.values
    return (f"; network fractions extrapolated to L = inf from L = {p.layers} and {p.layers // 2} (weak order 1), "
            f"estimated bias at L = {p.layers}: {np.round(bias, 4).tolist()}")


def _antipodal_attracts(data: xr.Dataset, share: float = 0.25) -> xr.Dataset:
    """Negative control: -1 attracts at every beta: a ``share`` of the runs that collapsed end
    antipodal instead (a model whose phase transition sits below the smallest beta)."""
    moved = share * data.collapsed
    changes = {"antipodal": data.antipodal + moved, "collapsed": data.collapsed - moved}
    if "antipodal_half_depth" in data:
        changes["antipodal_half_depth"] = data.antipodal_half_depth + moved
    return data.assign(changes)


CLAIMS = ClaimSet()


@CLAIMS.rule("antipodal fraction matches the rho-diffusion prediction", Ref("2601.21942", "Thm 2 (our derivation, docs/two_token.md)"),
             control=lambda data: _antipodal_attracts(data, share=0.05))
def _matches_diffusion(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return less(
        s["max_z"], 4.0,
        detail=f"max over beta of |simulated - predicted| / s.e. at t = {p.t_max:g} ({p.method}, {p.runs} runs per beta, "
               f"d = {p.d}, sigma2 = {_sigma2(p):.3g}); simulated {np.round(s['antipodal'], 4).tolist()}, "
               f"predicted {np.round(s['predicted_t'], 4).tolist()}" + _depth_note(data, p),
    )


@CLAIMS.rule("no antipodal attraction below beta_c(d)", Ref("2601.21942", "Thm 2 (phase transition)"),
             control=_antipodal_attracts)
def _no_attraction_below(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict | None:
    s = summary(data, p)
    subcritical = s["subcritical"]
    if not subcritical.any():
        return None
    # Below beta_c the state -1 repels: only runs still passing near it at t_max count.
    bound = float(s["predicted_t"][subcritical].max() + 4.0 * s["se_inflation"] / math.sqrt(p.runs))
    return less(
        float(s["antipodal"][subcritical].max()), bound,
        detail=f"largest antipodal fraction for beta < beta_c({p.d}) = {s['critical_beta']:.4f}; bound = finite-t "
               f"prediction + {4 * s['se_inflation']:.3g}/sqrt(runs); scale-function limit there is 0" + _depth_note(data, p),
    )


@register(
    "two-token-sde",
    title="Two tokens under value noise: antipodal states attract above beta_c(d)",
    summary="antipodal/collapse fractions of two tokens under common value noise (SDE or L-layer network) vs the rho-diffusion's exact prediction; beta_c(d) = ½ arccosh(d - 2); (beta, d) diagram",
    reference="2601.21942 Thm 2 (two-token phase transition)",
    params=Params,
    quick={"runs": 600, "beta": [0.5, 1.5, 3.0], "t_max": 40.0, "layers": 1000},
    claims=CLAIMS,
    variants=[{"d": "3"}, {"method": "discrete", "layers": "200"}, {"method": "discrete", "layers": "50"}, {"beta": "6"},
              {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    sigma2 = _sigma2(p)
    rho = final_inner_products(p, sigma2, ctx)
    extra = {}
    if p.method == "discrete" and p.layers >= 2:  # the same starts, independent noise, half the layers
        half = final_inner_products(p, sigma2, ctx, layers=p.layers // 2, stream=2)
        extra["antipodal_half_depth"] = ("beta", (half < -p.threshold).mean(axis=1))
    antipodal = (rho < -p.threshold).mean(axis=1)
    collapsed = (rho > p.threshold).mean(axis=1)
    predicted_t = np.array([two_token.classified_fraction(p.t_max, p.rho0, b, p.d, sigma2, threshold=p.threshold)
                            for b in p.beta])
    predicted_inf = np.array([two_token.antipodal_probability(p.rho0, b, p.d) for b in p.beta])
    critical = {d: float(two_token.critical_beta(d)) for d in sorted(set(p.phase_d) | {p.d})}
    simulated = np.stack([antipodal, np.sqrt(np.maximum(antipodal * (1 - antipodal), 1 / p.runs) / p.runs), predicted_t[:, 0]], 1)
    figure = _phase_figure(p, critical, simulated)
    data = xr.Dataset(
        {"rho_final": (("beta", "run"), rho), "antipodal": ("beta", antipodal), "collapsed": ("beta", collapsed),
         "predicted_antipodal_t": ("beta", predicted_t[:, 0]), "predicted_antipodal": ("beta", predicted_inf),
         "critical_beta": ("d", list(critical.values())), **extra},
        coords={"beta": p.beta, "run": np.arange(p.runs), "d": list(critical)},
    )
    return Result(
        params={"sigma2_used": sigma2},
        metrics={
            "antipodal_fraction": antipodal.tolist(), "collapse_fraction": collapsed.tolist(),
            "standard_error": np.sqrt(antipodal * (1 - antipodal) / p.runs).tolist(),
            "predicted_antipodal": predicted_inf.tolist(), "predicted_antipodal_at_t_max": predicted_t[:, 0].tolist(),
            "predicted_collapse_at_t_max": predicted_t[:, 1].tolist(), "critical_beta": critical[p.d],
            "critical_beta_by_d": {str(d): v for d, v in critical.items()},
        },
        data=data, figures={"two_token": figure},
    )
