"""The value-noise variance is a pure time change (docs/theory/common_noise.md §1.3): outcomes depend on sigma2 * t.

For several ``sigma2`` with ``sigma2 * t_max`` fixed, independent runs of the two-token
value-noise SDE (independent seeds per ``sigma2``) should give outcome fractions that agree
within Monte Carlo error: tested by a chi-square test of homogeneity.

The runs use one time step ``step`` in ``t`` for every ``sigma2`` (a network of fixed layer
spacing), so ``sigma2 * dt`` differs between them and the discrete laws agree only as far as the
scheme resolves the time change. With ``step = 0`` the number of steps is ``steps`` for every
``sigma2`` instead; then ``sigma2 * dt`` is the same for all and the discrete scheme is exactly
invariant in law, so the test could not fail: that mode is kept only to compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import stats

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, greater
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import OUTCOMES, classify_outcome
from tokenswarm.noise import ValueNoise
from tokenswarm.plots import line_plot
from tokenswarm.runtime.budget import check_steps
from tokenswarm.solve import EulerMaruyama
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_uniform


@dataclass
class Params:
    n: int = field(default=2, metadata={"min": 2, "help": "tokens"})
    d: int = field(default=6, metadata={"min": 2, "help": "dimension"})
    beta: float = field(default=2.0, metadata={"min": 0, "help": "inverse temperature"})
    sigma2: list[float] = field(default_factory=lambda: [0.05, 0.2, 1.0, 4.0], metadata={"min_exclusive": 0, "help": "value-noise variances"})
    product: float = field(default=10.0, metadata={"min_exclusive": 0, "help": "sigma2 * t_max, held fixed"})
    runs: int = field(default=4000, metadata={"min": 10, "help": "runs per sigma2"})
    step: float = field(default=0.005, metadata={"min": 0, "help": "time step in t, the same for every sigma2 (0: use 'steps' for every sigma2, a scheme exactly invariant under sigma2, whose test cannot fail)"})
    steps: int = field(default=2000, metadata={"min": 1, "help": "steps per run when step = 0"})
    threshold: float = field(default=0.9, metadata={"min_exclusive": 0, "max_exclusive": 1, "help": "classification threshold"})


def homogeneity(data: xr.Dataset) -> tuple[float, float, int]:
    """Chi-square test of homogeneity of the outcome counts over sigma2: (chi2, p-value, dof)."""
    table = data.counts.values
    used = table[:, table.sum(0) > 0]
    chi2, p_value, dof, _ = stats.chi2_contingency(used) if used.shape[1] > 1 else (0.0, 1.0, 0, None)
    return chi2, float(p_value), dof


CLAIMS = ClaimSet()


def _broken_time_change(data: xr.Dataset) -> xr.Dataset:
    """Negative control: a time change that fails for the largest sigma2 (every one of its runs
    collapsed, as if it had run far longer than sigma2 * t allows)."""
    counts = data.counts.values.copy()
    counts[-1] = 0
    counts[-1, 0] = data.counts.values[-1].sum()
    return data.assign(counts=data.counts.copy(data=counts))


@CLAIMS.rule("outcome fractions independent of sigma2 at fixed sigma2 * t",
             Ref("2601.21942", "docs/theory/common_noise.md §1.3 (time change)"), control=_broken_time_change)
def _time_change(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    chi2, p_value, dof = homogeneity(data)
    return greater(p_value, 0.01,
                   detail=f"chi-square homogeneity p-value over sigma2 in {p.sigma2} (chi2 = {chi2:.3g}, dof = {dof}), "
                          f"{p.runs} independent runs each")


@register(
    "noise-level",
    title="Outcomes depend on sigma_v^2 only through sigma_v^2 t",
    summary="outcomes depend on sigma_v^2 only through sigma_v^2 t (chi-square test)",
    reference="2601.21942 (diffusion scaling; docs/theory/common_noise.md §1.3: sigma_v^2 is a time change)",
    params=Params,
    quick={"runs": 600, "steps": 500, "step": 0.02},
    claims=CLAIMS,
    variants=[{"beta": "1"}, {"d": "3"}, {"n": "3"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    table, fractions = [], {}
    for index, sigma2 in enumerate(p.sigma2):
        generator = ctx.generator(index)  # independent runs for each sigma2
        x0 = sample_uniform(p.n, p.d, p.runs, generator=generator, dtype=ctx.dtype, device=ctx.device)
        noise = ValueNoise(beta=p.beta, sigma2=sigma2, low_rank=p.n < p.d)
        t_max = p.product / sigma2
        steps = p.steps if p.step == 0 else max(1, math.ceil(t_max / p.step - 1e-9))
        check_steps(steps, f"sigma2 = {sigma2:g}: t = {t_max:g} in steps of {p.step:g}")
        final = integrate_sde(None, noise, x0, t_max, steps, solver=EulerMaruyama(), generator=generator).final
        outcome = classify_outcome(final, p.threshold).cpu().numpy()
        counts = np.bincount(outcome, minlength=3)
        table.append(counts)
        fractions[sigma2] = (counts / p.runs).tolist()
    table = np.asarray(table)
    figure = line_plot(
        np.asarray(p.sigma2), {"one cluster": table[:, 0] / p.runs, "antipodal": table[:, 1] / p.runs},
        xlabel="sigma_v^2", ylabel="fraction of runs", logx=True,
        title=f"n = {p.n}, d = {p.d}, beta = {p.beta:g}, sigma2 t_max = {p.product:g}",
    )
    data = xr.Dataset({"counts": (("sigma2", "outcome"), table)},
                      coords={"sigma2": p.sigma2, "outcome": list(OUTCOMES)})
    return Result(
        metrics={"fractions": {f"{s:g}": f for s, f in fractions.items()}, "outcomes": list(OUTCOMES),
                 "p_value": homogeneity(data)[1]},
        data=data, figures={"noise_level": figure},
    )
