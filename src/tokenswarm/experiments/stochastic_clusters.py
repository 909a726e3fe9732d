"""n > 2 tokens under common value noise (2601.21942): collapse is not almost sure.

Runs of the value-noise SDE end in one cluster, in two antipodal clusters, or elsewhere;
the deterministic attention flow (``V = I``, no noise) from the same starts always ends in
one cluster (2312.10794 Thm 6.1, d >= 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, greater
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import OUTCOMES, classify_outcome, pairwise_inner_products
from tokenswarm.noise import ValueNoise
from tokenswarm.plots import line_plot
from tokenswarm.solve import RK4, EulerMaruyama, integrate
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_uniform


@dataclass
class Params:
    n: int = field(default=8, metadata={"min": 3, "help": "tokens"})
    d: int = field(default=6, metadata={"min": 3, "help": "dimension"})
    beta: float = field(default=3.0, metadata={"min": 0, "help": "inverse temperature (QᵀK = beta I)"})
    runs: int = field(default=2000, metadata={"min": 10, "help": "independent runs"})
    t_max: float = field(default=300.0, metadata={"min_exclusive": 0, "help": "final time (units of sigma2 t)"})
    steps: int = field(default=6000, metadata={"min": 1, "help": "Euler–Maruyama steps"})
    threshold: float = field(default=0.9, metadata={"min_exclusive": 0, "max_exclusive": 1, "help": "|<x_i,x_j>| above this counts as merged/antipodal"})


def summary(data: xr.Dataset, p: Params) -> dict[str, float]:
    """Outcome fractions with their standard errors, and the noise-free flow's one-cluster fraction."""
    outcome = data.outcome.values
    fractions = {name: float((outcome == k).mean()) for k, name in enumerate(OUTCOMES)}
    errors = {name: math.sqrt(max(f * (1 - f), 1.0 / p.runs) / p.runs) for name, f in fractions.items()}
    return {**{f"fraction_{k}": v for k, v in fractions.items()},
            **{f"standard_error_{k}": v for k, v in errors.items()},
            "deterministic_one_cluster": float((data.deterministic_outcome.values == 0).mean())}


def _noise_without_effect(data: xr.Dataset) -> xr.Dataset:
    """Negative control: noise with no lasting effect: every noisy run ends where the noise-free flow does (one cluster)."""
    return data.assign(outcome=data.outcome.copy(data=data.deterministic_outcome.values))


def _antipodes_merge(data: xr.Dataset) -> xr.Dataset:
    """Negative control: antipodal formations are transient: the runs that ended antipodal merge into one cluster."""
    outcome = data.outcome.values
    return data.assign(outcome=data.outcome.copy(data=np.where(outcome == OUTCOMES.index("antipodal"), OUTCOMES.index("one_cluster"), outcome)))


def _flow_stalls(data: xr.Dataset, every: int = 50) -> xr.Dataset:
    """Negative control: a noise-free flow that stalls in a metastable state ("other") from one start in ``every`` (2%)."""
    outcome = data.deterministic_outcome.values.copy()
    outcome[::every] = OUTCOMES.index("other")
    return data.assign(deterministic_outcome=data.deterministic_outcome.copy(data=outcome))


CLAIMS = ClaimSet()


@CLAIMS.rule("runs that do not collapse to one cluster", Ref("2601.21942", "abstract (noise prevents single-cluster collapse)"),
             control=_noise_without_effect)
def _not_collapsed(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    error = s["standard_error_one_cluster"]
    return greater(1 - s["fraction_one_cluster"], 3 * error,
                   detail=f"fraction of {p.runs} runs not in one cluster at t = {p.t_max:g} (3 s.e. = {3 * error:.3g})")


@CLAIMS.rule("antipodal formations persist for n > 2", Ref("2601.21942", "abstract (numerics)"), control=_antipodes_merge)
def _antipodal(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data, p)
    return greater(s["fraction_antipodal"], 3 * s["standard_error_antipodal"],
                   detail=f"fraction of runs ending in two antipodal clusters (n = {p.n}, d = {p.d}, beta = {p.beta:g}); "
                          f"s.e. {s['standard_error_antipodal']:.3g}")


@CLAIMS.rule("deterministic flow from the same starts: one cluster", Ref("2312.10794", "Thm 6.1"), control=_flow_stalls)
def _deterministic(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return greater(summary(data, p)["deterministic_one_cluster"], 0.99,
                   detail=f"fraction of the {p.runs} starts that end in one cluster without noise")


@register(
    "stochastic-clusters",
    title="Common value noise prevents collapse: antipodal clusters for n > 2",
    summary="one cluster / two antipodal clusters / other under value noise; the noise-free flow always collapses",
    reference="2601.21942 abstract (numerics for n > 2 tokens)",
    params=Params,
    quick={"runs": 200, "t_max": 150.0, "steps": 1500},
    claims=CLAIMS,
    variants=[{"beta": "1.5"}, {"d": "4"}, {"n": "4"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    generator = ctx.generator()
    sigma2 = 1.0  # a pure time change (docs/theory/common_noise.md §1.3): outcomes depend on sigma2 * t only
    x0 = sample_uniform(p.n, p.d, p.runs, generator=generator, dtype=ctx.dtype, device=ctx.device)
    noise = ValueNoise(beta=p.beta, sigma2=sigma2, low_rank=p.n < p.d)
    traj = integrate_sde(None, noise, x0, p.t_max, p.steps, solver=EulerMaruyama(), generator=ctx.generator(1), progress=True)
    final = traj.final
    outcome = classify_outcome(final, p.threshold).cpu().numpy()

    deterministic = integrate(Attention(p.beta), x0, [0.0, p.t_max], RK4(step=0.05)).final
    deterministic_outcome = classify_outcome(deterministic, p.threshold).cpu().numpy()
    pairs = pairwise_inner_products(final).cpu().numpy().ravel()
    counts, edges = np.histogram(pairs, bins=80, range=(-1, 1))
    centres = 0.5 * (edges[1:] + edges[:-1])
    figure = line_plot(
        centres, {"value noise": counts / counts.sum()}, xlabel="<x_i, x_j> at t_max", ylabel="share of pairs", logy=True,
        title=f"Final pairwise inner products, n = {p.n}, d = {p.d}, beta = {p.beta:g}, {p.runs} runs",
    )
    data = xr.Dataset(
        {"outcome": ("run", outcome), "deterministic_outcome": ("run", deterministic_outcome),
         "pair_histogram": ("bin", counts)},
        coords={"run": np.arange(p.runs), "bin": centres},
        attrs={"outcomes": "0 one cluster, 1 antipodal, 2 other"},
    )
    return Result(
        params={"sigma2": sigma2}, metrics=summary(data, p), data=data, figures={"pair_histogram": figure},
    )
