"""One attention layer at ``beta = gamma log n`` on equiangular tokens (2512.01868 §6.3, 2510.05554).

The cosine between two normalised outputs tends to 1 (collapse) for ``gamma < 1/(1-rho)``,
to ``4 rho/(1 + 3 rho)`` at the critical scaling, and to ``rho`` (identity) above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from tokenswarm import theory
from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import attention_output
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.plots import line_plot


@dataclass
class Params:
    rho: float = field(default=0.5, metadata={"min_exclusive": 0, "max": 0.999, "help": "common inner product"})
    gamma: list[float] = field(
        default_factory=lambda: [1.0, 2.0, 3.0], metadata={"min": 0, "help": "beta = gamma log n; top-level metrics use the first"}
    )
    n: list[int] = field(
        default_factory=lambda: [4, 16, 64, 256, 1024, 4096], metadata={"min": 2, "help": "context lengths"}
    )


def equiangular_tokens(n: int, rho: float, dtype, device) -> torch.Tensor:
    """``x_i = sqrt(1 - rho) e_i + sqrt(rho) e_0`` in R^{n+1}: unit norm, pairwise ``rho``."""
    x = torch.zeros(n, n + 1, dtype=dtype, device=device)
    x[:, 0] = math.sqrt(rho)
    x[:, 1:] = math.sqrt(1 - rho) * torch.eye(n, dtype=dtype, device=device)
    return x


def output_cosine(n: int, rho: float, beta: float, dtype, device) -> float:
    """Cosine between the SA outputs of tokens 0 and 1 (queries restricted to those two)."""
    x = equiangular_tokens(n, rho, dtype, device)
    y = attention_output(x[:2], x, x, beta, normalization="sa")
    y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return float((y[0] * y[1]).sum())


def oracle_error(data: xr.Dataset) -> float:
    """max over gamma and n of |simulated cosine - finite-n oracle|."""
    return float(np.abs(data.cosine.values - data.oracle.values).max())


CLAIMS = ClaimSet()


@CLAIMS.rule("one layer matches the finite-n equiangular formula", Ref("2512.01868", "§6.3 (finite-n oracle, derived)"),
             control=lambda data: data.assign(cosine=data.cosine + 1e-6))  # a layer off by 1e-6
def _oracle(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(oracle_error(data), 1e-12 if run.dtype == "float64" else 1e-5,
                detail="max over gamma and n of |simulated cosine - oracle|")


@CLAIMS.rule("gamma = {gamma}: cosine approaches its n -> infinity limit {limit}", Ref("2512.01868", "§6.3"),
             control=lambda data: data.assign(cosine=data.cosine.copy(data=data.cosine.values[:, ::-1])))  # moving away
def _limits(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    # The limit is approached slowly (powers of n^{-gamma (1 - rho)}); check the trend, not the value.
    critical = 1 / (1 - p.rho)
    verdicts = []
    for gamma, cosines in zip(p.gamma, data.cosine.values):
        limit = theory.long_context_limit(p.rho, gamma)
        gaps = [abs(float(c) - limit) for c in cosines]
        verdicts.append(less(
            gaps[-1] - gaps[0], 0.0,
            detail=f"|cos - limit| at n = {p.n[-1]} minus at n = {p.n[0]} (critical gamma = {critical:.3g})",
            labels={"gamma": f"{gamma:g}", "limit": f"{limit:.4f}"},
        ))
    return verdicts


@register(
    "long-context",
    title="Critical attention scaling beta = gamma log n",
    summary="one layer on equiangular tokens against the finite-n formula and its limits",
    reference="2512.01868 §6.3; 2510.05554",
    params=Params,
    quick={"n": [4, 16, 64, 256, 1024]},
    claims=CLAIMS,
    variants=[{"rho": "0.2"}, {"rho": "0.9"}, {"gamma": "0.5,4"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    critical = 1 / (1 - p.rho)
    cosines, oracle = {}, {}
    for gamma in p.gamma:
        cosines[gamma] = [output_cosine(n, p.rho, gamma * math.log(n), ctx.dtype, ctx.device) for n in p.n]
        oracle[gamma] = [theory.long_context_cosine(p.rho, gamma, n) for n in p.n]
    references = {
        f"limit, gamma = {g:g}": (np.asarray(p.n, float), np.full(len(p.n), theory.long_context_limit(p.rho, g)))
        for g in p.gamma
    }
    figure = line_plot(
        np.asarray(p.n, float), {f"gamma = {g:g}": np.asarray(c) for g, c in cosines.items()},
        xlabel="n", ylabel="cos(y_1, y_2)", logx=True, reference=references,
        title=f"One SA layer at beta = gamma log n, rho = {p.rho:g} (critical gamma = {critical:.3g})",
    )
    data = xr.Dataset(
        {"cosine": (("gamma", "n"), np.asarray([cosines[g] for g in p.gamma])),
         "oracle": (("gamma", "n"), np.asarray([oracle[g] for g in p.gamma]))},
        coords={"gamma": p.gamma, "n": p.n},
    )
    return Result(
        metrics={"cosine": cosines[p.gamma[0]], "cosine_by_gamma": {f"{g:g}": c for g, c in cosines.items()},
                 "oracle_error": oracle_error(data), "critical_gamma": critical},
        data=data, figures={"long_context": figure},
    )
