"""Critical common-noise level of the hybrid model (2601.21942 Prop. 1; docs/two_token.md).

Two tokens, USA attention, value matrices ``(h + eps xi_k sqrt(h)) I`` with a scalar ``xi_k``
shared by the tokens. In ``z = artanh <x_1, x_2>`` the limit is
``dz = e^{beta rho}(1 - eps² e^beta / 2) dt + eps e^{beta rho} dB``: the drift changes sign at
``eps_c = sqrt(2) e^{-beta/2}``, below which the tokens collapse almost surely and above which
they end antipodal almost surely. We estimate ``eps_c`` from the L-layer network as the root in
``eps`` of the mean displacement ``E[z_T - z_0]`` (zero exactly when the drift vanishes, since
``e^{beta rho} > 0``), and compare the finite-time classification fractions with the exact
Kolmogorov solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm import two_token
from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.nets import HybridTransformer
from tokenswarm.plots import line_plot
from tokenswarm.results import Result, claim_less
from tokenswarm.sphere import token_pair


@dataclass
class Params:
    beta: float = field(default=1.0, metadata={"min": 0, "help": "inverse temperature"})
    eps: list[float] = field(default_factory=lambda: np.round(np.arange(0.5, 1.25, 0.05), 4).tolist(), metadata={"min": 0, "help": "noise levels swept"})
    runs: int = field(default=4000, metadata={"min": 10, "help": "runs per noise level"})
    t_max: float = field(default=2.0, metadata={"min_exclusive": 0, "help": "depth horizon T"})
    layers: int = field(default=1000, metadata={"min": 1, "help": "layers L"})
    rho0: float = field(default=0.0, metadata={"min_exclusive": -1, "max_exclusive": 1, "help": "initial inner product"})
    law: Literal["gaussian", "rademacher"] = field(default="gaussian", metadata={"help": "law of xi_k"})
    threshold: float = field(default=0.9, metadata={"min_exclusive": 0, "max_exclusive": 1, "help": "classification threshold"})


def artanh_inner(x: torch.Tensor) -> torch.Tensor:
    """``artanh <x_1, x_2> = log(|x_1 + x_2| / |x_1 - x_2|)``, accurate near ``rho = ±1``."""
    return torch.log((x[..., 0, :] + x[..., 1, :]).norm(dim=-1) / (x[..., 0, :] - x[..., 1, :]).norm(dim=-1))


@register(
    "hybrid-threshold",
    title="Critical common-noise level of the hybrid USA model",
    reference="2601.21942 Prop. 1 (our derivation, docs/two_token.md)",
    params=Params,
    quick={"runs": 1000, "eps": [0.7, 0.8, 0.9, 1.0], "layers": 1000},
)
def run(p: Params, ctx: RunContext) -> Result:
    eps = torch.as_tensor(p.eps, dtype=ctx.dtype, device=ctx.device).reshape(-1, 1, 1, 1)
    x0 = token_pair(p.rho0, 2, (len(p.eps), p.runs), dtype=ctx.dtype, device=ctx.device)
    network = HybridTransformer(p.layers, beta=p.beta, eps=eps, t_max=p.t_max, law=p.law)
    x = network(x0, ctx.generator())
    z0 = math.atanh(p.rho0)
    displacement = (artanh_inner(x) - z0).double().cpu().numpy()  # (eps, runs)
    mean, se = displacement.mean(1), displacement.std(1, ddof=1) / math.sqrt(p.runs)

    signs = np.nonzero(np.diff(np.sign(mean)) != 0)[0]
    if signs.size:
        k = signs[0]
        weight = mean[k] / (mean[k] - mean[k + 1])
        estimate = float(p.eps[k] + weight * (p.eps[k + 1] - p.eps[k]))
        slope = (mean[k + 1] - mean[k]) / (p.eps[k + 1] - p.eps[k])
        estimate_se = float(max(se[k], se[k + 1]) / abs(slope))
    else:
        estimate, estimate_se = float("nan"), float("nan")
    predicted = float(two_token.critical_noise(p.beta))

    rho = np.tanh(displacement + z0)
    antipodal, collapsed = (rho < -p.threshold).mean(1), (rho > p.threshold).mean(1)
    exact = np.array([two_token.hybrid_classified_fraction(p.t_max, p.rho0, p.beta, e, threshold=p.threshold)
                      for e in p.eps])
    z_scores = np.abs(antipodal - exact[:, 0]) / np.sqrt(np.maximum(exact[:, 0] * (1 - exact[:, 0]), 1 / p.runs) / p.runs)
    claims = [
        claim_less(
            "simulated critical noise equals sqrt(2) e^{-beta/2}", "2601.21942 Prop. 1 (our derivation)",
            abs(estimate - predicted), 4 * estimate_se + 0.02,
            detail=f"root of E[z_T - z_0] over eps: {estimate:.4f} ± {estimate_se:.4f} (s.e., {p.runs} runs per eps, "
                   f"L = {p.layers}, T = {p.t_max:g}); predicted {predicted:.4f}; 0.02 allows for the O(1/L) layer bias",
        ),
        claim_less(
            "finite-depth antipodal fractions match the exact z-diffusion", "2601.21942 Prop. 1 (Kolmogorov equation)",
            float(z_scores.max()), 4.0, detail=f"max over eps of |simulated - exact| / s.e. at T = {p.t_max:g}",
        ),
    ]
    figure = line_plot(
        np.asarray(p.eps), {"E[z_T - z_0]": mean}, xlabel="eps", ylabel="mean displacement of artanh rho",
        reference={"zero": (np.asarray(p.eps), np.zeros(len(p.eps)))},
        title=f"Hybrid model, beta = {p.beta:g}: eps_c = {predicted:.3f} (predicted), {estimate:.3f} (simulated)",
    )
    data = xr.Dataset(
        {"mean_displacement": ("eps", mean), "standard_error": ("eps", se), "antipodal": ("eps", antipodal),
         "collapsed": ("eps", collapsed), "exact_antipodal": ("eps", exact[:, 0])},
        coords={"eps": p.eps},
    )
    return Result(
        experiment="hybrid-threshold", params={},
        metrics={"critical_noise": estimate, "critical_noise_standard_error": estimate_se,
                 "predicted_critical_noise": predicted, "antipodal_fraction": antipodal.tolist(),
                 "exact_antipodal_fraction": exact[:, 0].tolist()},
        claims=claims, data=data, figures={"hybrid_threshold": figure},
    )
