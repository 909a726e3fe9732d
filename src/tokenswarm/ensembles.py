"""Ensembles of many small systems integrated in one tensor program (Fig. 3 and Fig. 5 of 2312.10794).

A phase diagram needs thousands of independent systems per (beta, d): they are stacked on
leading batch axes, every beta of a chunk integrated at once with a per-system ``beta``,
and only the clustered-pair statistic is recorded (never the states), so memory does not
grow with the number of output times.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tokenswarm.fields import Attention
from tokenswarm.metrics import pair_fraction
from tokenswarm.solve import RK4, Authors, integrate
from tokenswarm.sphere import sample_uniform

__all__ = ["DELTA", "SCHEMES", "STATE_BUDGET", "clustered_fraction", "boundary_times"]

#: Closeness threshold of Fig. 3: a pair is clustered when ``<x_i, x_j> > 1 - DELTA``.
DELTA = 1e-3
#: Tokens x dims simulated at once (64 MiB in float64); beta is chunked to fit.
STATE_BUDGET = 8 << 20
#: Scheme names of the phase-diagram experiments -> integrator methods.
SCHEMES = {"accurate": RK4, "authors": Authors}
"""Solver class for each scheme name a user types (``-p scheme=accurate``); built as ``SCHEMES[name](step=h)``."""


def clustered_fraction(
    n: int,
    d: int,
    betas: np.ndarray,
    times: np.ndarray,
    runs: int,
    *,
    scheme: str,
    step: float,
    model: str,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    make_field: Callable[[torch.Tensor, torch.Generator], Attention] | None = None,
    weight_elements: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over runs of the clustered-pair fraction, each ``(len(betas), len(times))``.

    ``times`` are measured from the uniform initial state at t = 0 (they need not include 0).

    ``make_field(beta_column, generator)`` builds the field for a chunk of systems with
    per-system ``beta`` of shape ``(chunk, 1)``; the default is ``Q = K = V = I``.
    ``weight_elements`` (numbers drawn per system by ``make_field``) enters the memory budget.
    """
    if make_field is None:
        def make_field(beta_column, _generator):
            return Attention(beta_column, normalization=model)

    def observe(x):
        f = pair_fraction(x, DELTA)
        return torch.stack([f.mean(-1), (f * f).mean(-1)], dim=-1)

    width = min(n, d)  # span reduction keeps r = n coordinates when d > n
    chunk = max(1, STATE_BUDGET // (runs * (n * width + weight_elements)))
    mean, square = [], []
    for start in range(0, len(betas), chunk):
        beta_chunk = torch.as_tensor(betas[start:start + chunk], dtype=dtype, device=device)
        x0 = sample_uniform(n, d, (len(beta_chunk), runs), generator=generator, dtype=dtype, device=device)
        field_ = make_field(beta_chunk.unsqueeze(-1), generator)
        traj = integrate(
            field_, x0, times, t0=0.0, solver=SCHEMES[scheme](step=step), observe=observe,
            invariant_observe=True, progress=progress,
        )
        stats = traj.states.double().cpu().numpy()  # (T, chunk, 2)
        mean.append(stats[..., 0].T)
        square.append(stats[..., 1].T)
    mean, square = np.concatenate(mean), np.concatenate(square)
    variance = np.maximum(square - mean**2, 0.0) * runs / max(runs - 1, 1)
    return mean, np.sqrt(variance / runs)


def boundary_times(fraction: np.ndarray, times: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Per beta, the first time the fraction reaches ``level`` (linear interpolation; NaN if never)."""
    out = np.full(fraction.shape[0], np.nan)
    for b, row in enumerate(fraction):
        above = np.nonzero(row >= level)[0]
        if above.size and above[0] > 0:
            k = above[0]
            w = (level - row[k - 1]) / (row[k] - row[k - 1])
            out[b] = times[k - 1] + w * (times[k] - times[k - 1])
    return out
