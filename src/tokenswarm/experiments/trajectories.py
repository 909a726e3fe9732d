"""Animated token trajectories on the circle or the 2-sphere (2312.10794 Figs. 1, 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import cluster_count, cluster_labels
from tokenswarm.plots import animate_tokens, circle_snapshots, sphere_snapshots
from tokenswarm.solve import RK4, integrate
from tokenswarm.sphere import sample_uniform

VALUES = {"identity": None, "minus_identity": -1.0}


@dataclass
class Params:
    n: int = field(default=48, metadata={"min": 1, "help": "tokens"})
    d: int = field(default=3, metadata={"min": 2, "max": 3, "help": "2 (circle) or 3 (sphere)"})
    beta: float = field(default=4.0, metadata={"min": 0, "help": "inverse temperature"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    value: Literal["identity", "minus_identity"] = field(default="identity", metadata={"help": "V = I or V = -I"})
    t_max: float = field(default=25.0, metadata={"min_exclusive": 0, "help": "final time"})
    frames: int = field(default=100, metadata={"min": 2, "help": "animation frames"})
    step: float = field(default=0.05, metadata={"min_exclusive": 0, "help": "RK4 step"})


def simulate_tokens(n, d, beta, model, value, t_max, frames, step, generator, dtype, device):
    """One trajectory ``(frames, n, d)`` from i.i.d. uniform tokens, RK4 + retraction."""
    x0 = sample_uniform(n, d, generator=generator, dtype=dtype, device=device)
    field_ = Attention(beta, normalization=model, V=VALUES[value])
    times = np.linspace(0.0, t_max, frames)
    return integrate(field_, x0, times, RK4(step=step), progress=True)


def norm_error(data: xr.Dataset) -> float:
    """max | |x_i(t)| - 1 | over the saved trajectory (in its own precision)."""
    return float((torch.as_tensor(data.x.values).norm(dim=-1) - 1).abs().max())


CLAIMS = ClaimSet()


@CLAIMS.rule("tokens stay on the sphere",
             Ref("2312.10794", "numerical check: docs/theory/attention_ode.md §1.2 (retraction)"),
             control=lambda data: data.assign(x=data.x * (1 + 1e-9 * data.t)))  # no retraction: norms drift 1e-9 per unit time
def _on_sphere(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(norm_error(data), 1e-12 if run.dtype == "float64" else 1e-5,
                detail="max | |x_i(t)| - 1 | over the trajectory")


@register(
    "trajectories",
    title="Animation of tokens clustering on the sphere",
    summary="GIF of tokens clustering on S^2",
    reference="2312.10794 §1, Figs. 1 and 4",
    params=Params,
    quick={"n": 32, "frames": 40, "t_max": 20.0, "step": 0.1},
    claims=CLAIMS,
    variants=[{"beta": "9"}, {"model": "usa"}, {"d": "2"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    traj = simulate_tokens(p.n, p.d, p.beta, p.model, p.value, p.t_max, p.frames, p.step,
                           ctx.generator(), ctx.dtype, ctx.device)
    x = traj.states
    gif = animate_tokens(
        x, traj.times, ctx.out_dir / "trajectories.gif",
        title=f"{p.model.upper()}, beta = {p.beta:g}, n = {p.n}",
        rotation=60.0 if p.d == 3 else 0.0,
    )
    picks = np.unique(np.linspace(0, len(traj.times) - 1, 4).round().astype(int))
    labels = cluster_labels(x[picks], 1e-3)
    snapshots = circle_snapshots if p.d == 2 else sphere_snapshots
    figure = (snapshots(x[picks], traj.times[picks], cluster_labels=labels) if p.d == 2
              else snapshots(x[picks], traj.times[picks]))
    counts = cluster_count(x, 1e-3).cpu().numpy()
    data = xr.Dataset(
        {"x": (("t", "token", "dim"), x.cpu().numpy()), "clusters": ("t", counts)},
        coords={"t": traj.times.numpy()},
    )
    return Result(
        metrics={"final_clusters": int(counts[-1]), "clusters": counts.tolist(), "max_norm_error": norm_error(data)},
        data=data, figures={"snapshots": figure}, animations={"trajectories": gif},
    )
