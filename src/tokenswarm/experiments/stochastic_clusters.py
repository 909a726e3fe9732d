"""n > 2 tokens under common value noise (2601.21942): collapse is not almost sure.

Runs of the value-noise SDE end in one cluster, in two antipodal clusters, or elsewhere;
the deterministic attention flow (``V = I``, no noise) from the same starts always ends in
one cluster (2312.10794 Thm 6.1, d >= 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, greater, inconclusive
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
    """Negative control: a noise-free flow that comes to rest in several clusters ("other", speed 0)
    from one start in ``every`` (2%), at t_max and at the extended time alike."""
    changes = {}
    for name, value in (("deterministic_outcome", OUTCOMES.index("other")),
                        ("deterministic_outcome_late", OUTCOMES.index("other")), ("deterministic_speed_late", 0.0)):
        if name in data:
            values = data[name].values.copy()
            values[::every] = value
            changes[name] = data[name].copy(data=values)
    return data.assign(changes)


#: The noise-free runs still in several clusters at t_max are continued to this multiple of it.
LATE = 8.0


def _continue_uncollapsed(field_: Attention, x: torch.Tensor, outcome: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Outcome and largest token speed at ``LATE * t_max`` of the noise-free runs not in one cluster
    at t_max (Thm 6.1 bounds no time: a metastable run still moves, a counterexample is at rest);
    runs in one cluster keep their outcome and speed 0."""
    late, speed = outcome.copy(), np.zeros(outcome.shape)
    waiting = np.flatnonzero(outcome != OUTCOMES.index("one_cluster"))
    if waiting.size:
        index = torch.as_tensor(waiting, device=x.device)
        final = integrate(field_, x[index], [p.t_max, LATE * p.t_max], RK4(step=0.05)).final
        late[waiting] = classify_outcome(final, p.threshold).cpu().numpy()
        speed[waiting] = torch.linalg.vector_norm(field_.velocity(LATE * p.t_max, final), dim=-1).amax(-1).double().cpu().numpy()
    return late, speed


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
    fraction = summary(data, p)["deterministic_one_cluster"]
    detail = f"fraction of the {p.runs} starts that end in one cluster without noise by t = {p.t_max:g}"
    if fraction > 0.99 or "deterministic_outcome_late" not in data:
        return greater(fraction, 0.99, detail=detail)
    late = data.deterministic_outcome_late.values != OUTCOMES.index("one_cluster")
    at_rest = late & (data.deterministic_speed_late.values < _REST[run.dtype])
    stamp = f"t = {LATE * p.t_max:g}"
    if 1 - late.mean() > 0.99:
        return greater(float(1 - late.mean()), 0.99, detail=f"{detail}: {fraction:.3g}; by {stamp} (metastable runs continued)")
    if at_rest.mean() > 0.01:
        return greater(float(1 - at_rest.mean()), 0.99,
                       detail=f"{detail}: {fraction:.3g}; {int(at_rest.sum())} starts at rest in several clusters at {stamp} "
                              f"(speed < {_REST[run.dtype]:g}), against Thm 6.1")
    return inconclusive(fraction, "> 0.99",
                        f"{detail}: {fraction:.3g}; {int(late.sum())} starts still in several clusters at {stamp}, "
                        f"all moving (max token speed >= {data.deterministic_speed_late.values[late].min():.2g}): metastable, "
                        f"and Thm 6.1 bounds no collapse time; a longer t_max would decide")


#: Below this largest token speed a configuration is at rest (a few thousand ulps).
_REST = {"float64": 1e-12, "float32": 1e-4}


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

    attention = Attention(p.beta)
    deterministic = integrate(attention, x0, [0.0, p.t_max], RK4(step=0.05)).final
    deterministic_outcome = classify_outcome(deterministic, p.threshold).cpu().numpy()
    late_outcome, late_speed = _continue_uncollapsed(attention, deterministic, deterministic_outcome, p)
    pairs = pairwise_inner_products(final).cpu().numpy().ravel()
    counts, edges = np.histogram(pairs, bins=80, range=(-1, 1))
    centres = 0.5 * (edges[1:] + edges[:-1])
    figure = line_plot(
        centres, {"value noise": counts / counts.sum()}, xlabel="<x_i, x_j> at t_max", ylabel="share of pairs", logy=True,
        title=f"Final pairwise inner products, n = {p.n}, d = {p.d}, beta = {p.beta:g}, {p.runs} runs",
    )
    data = xr.Dataset(
        {"outcome": ("run", outcome), "deterministic_outcome": ("run", deterministic_outcome),
         "deterministic_outcome_late": ("run", late_outcome), "deterministic_speed_late": ("run", late_speed),
         "pair_histogram": ("bin", counts)},
        coords={"run": np.arange(p.runs), "bin": centres},
        attrs={"outcomes": "0 one cluster, 1 antipodal, 2 other", "late_time": LATE * p.t_max},
    )
    return Result(
        params={"sigma2": sigma2}, metrics=summary(data, p), data=data, figures={"pair_histogram": figure},
    )
