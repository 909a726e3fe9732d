"""Accuracy against cost of the two phase-diagram schemes on the Fig. 3 ensembles.

Run: ``python benchmarks/frontier.py [runs]`` (default 256 runs per beta; about 10 minutes on 2
cores). For SA, n = 32, d = 128, beta in {1, 4}: the *clustering time* is the time at which half
of all token pairs of the ensemble have ``<x_i, x_j> > 0.999`` (the boundary of Fig. 3). Each
pair's crossing time is located within its step by the cubic Hermite interpolant of
``<x_i, x_j>`` (values and slopes from the velocity field), so the output grid does not limit
the accuracy. The error is measured against a converged reference (RK4, step 0.01) from the
same starts, so Monte Carlo noise cancels; the cost is the wall time of the library's job
(``clustered_fraction``, output every 0.6 to t = 30) in the same process. Writes
docs/img/frontier.png and prints one JSON line per configuration.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np
import torch

from tokenswarm.ensembles import DELTA, clustered_fraction
from tokenswarm.fields import Attention
from tokenswarm.solve import RK4, Authors
from tokenswarm.ensembles.engine import AttentionEnsemble
from tokenswarm.sphere import sample_uniform, span_basis

N, D, BETAS = 32, 128, (1.0, 4.0)
LEVEL = 1.0 - DELTA


def _hermite_root(g0, g1, m0, m1, level):
    """s in [0, 1] where the cubic Hermite interpolant of (g0, m0) -> (g1, m1) first reaches level (bisection)."""
    lo, hi = torch.zeros_like(g0), torch.ones_like(g0)
    for _ in range(50):
        s = (lo + hi) / 2
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        above = h00 * g0 + h10 * m0 + h01 * g1 + h11 * m1 >= level
        hi, lo = torch.where(above, s, hi), torch.where(above, lo, s)
    return (lo + hi) / 2


def clustering_time(x: torch.Tensor, beta: float, solver, step: float) -> float:
    """Time at which half of all pairs of the systems ``x`` (reduced coordinates) have clustered."""
    ensemble = AttentionEnsemble(x, beta, normalization="sa", solver=solver)
    field = Attention(beta)
    n = x.shape[-2]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    crossing = torch.full((x.shape[0], n, n), float("inf"), dtype=torch.float64)

    def gram_and_slope(state):
        v = field.velocity(0.0, state)
        return state @ state.mT, v @ state.mT + state @ v.mT

    g, dg = gram_and_slope(ensemble.x)
    t, total = 0.0, upper.sum().item() * x.shape[0]
    while (crossing[:, upper] < np.inf).sum().item() <= total / 2:
        ensemble.advance(step)
        g1, dg1 = gram_and_slope(ensemble.x)
        new = (g1 >= LEVEL) & (g < LEVEL) & torch.isinf(crossing) & upper
        if new.any():
            s = _hermite_root(g[new], g1[new], step * dg[new], step * dg1[new], LEVEL)
            crossing[new] = t + s * step
        g, dg, t = g1, dg1, t + step
        if t > 30:
            return float("nan")
    return float(crossing[:, upper].flatten().median())


def main(runs: int = 256) -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    starts = {}
    for beta in BETAS:
        x0 = sample_uniform(N, D, runs, generator=generator)
        starts[beta] = x0 @ span_basis(x0)
    reference = {beta: clustering_time(starts[beta], beta, RK4(step=0.01), 0.01) for beta in BETAS}
    print(json.dumps({"reference": reference}), flush=True)
    configs = [("authors", eta) for eta in (0.1, 0.05, 0.025, 0.0125, 0.00625)] + [("accurate", h) for h in (0.6, 0.3, 0.2, 0.1)]
    times = np.round(np.arange(0, 30.0001, 0.6), 6)
    rows = []
    for scheme, step in configs:
        solver = Authors(step=step) if scheme == "authors" else RK4(step=step)
        errors = [abs(clustering_time(starts[b], b, solver, step) / reference[b] - 1) for b in BETAS]
        start = time.perf_counter()
        clustered_fraction(N, D, np.asarray(BETAS), times, runs, scheme=scheme, step=step, model="sa",
                           generator=torch.Generator().manual_seed(0), dtype=torch.float64,
                           device=torch.device("cpu"), progress=False)
        seconds = time.perf_counter() - start
        rows.append({"scheme": scheme, "step": step, "error": max(errors), "errors": errors, "seconds": seconds})
        print(json.dumps(rows[-1]), flush=True)

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for scheme, marker in (("authors", "o"), ("accurate", "s")):
        sel = [r for r in rows if r["scheme"] == scheme]
        ax.loglog([r["seconds"] for r in sel], [r["error"] for r in sel], marker=marker, label=f"{scheme} scheme")
        for r in sel:
            ax.annotate(f"{r['step']:g}", (r["seconds"], r["error"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axhline(0.01, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"wall time of the job (s; {runs} runs x {len(BETAS)} betas, t to 30, 1 thread)")
    ax.set_ylabel("relative error of the clustering time")
    ax.set_title("SA, n = 32, d = 128: error vs cost (labels: step)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    out = pathlib.Path(__file__).resolve().parents[1] / "docs" / "img" / "frontier.png"
    fig.savefig(out, dpi=120)
    print(json.dumps({"figure": str(out)}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
