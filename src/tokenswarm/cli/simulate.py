"""``tokenswarm simulate``: integrate one particle system from the command line.

Saves the trajectory (``data.zarr``), a GIF for d = 2 or 3, snapshot figures and a
``result.json`` with a few metrics, through the same :class:`~tokenswarm.io.results.Result`
machinery as the experiments.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time

import numpy as np
import xarray as xr

from tokenswarm.experiments.registry import check_seed, parse_device, parse_dtype
from tokenswarm.experiments.trajectories import VALUES
from tokenswarm.fields import Attention
from tokenswarm.io.results import Result
from tokenswarm.io.rundir import RunDirectory, parse_out
from tokenswarm.metrics import cluster_count, interaction_energy
from tokenswarm.params import UsageError
from tokenswarm.plots import animate_tokens, line_plot
from tokenswarm.solve import SOLVERS, integrate, solver_from_name
from tokenswarm.sphere import sample_uniform

MAX_SAVED_STATES = 401


def _validate(model, n, d, beta, t, solver, step, value) -> None:
    problems = []
    if model not in ("sa", "usa"):
        problems.append(f"--model must be sa or usa, got {model!r}")
    if n < 1:
        problems.append(f"--n must be >= 1, got {n}")
    if d < 2:
        problems.append(f"--d must be >= 2, got {d}")
    if not (math.isfinite(beta) and beta >= 0):
        problems.append(f"--beta must be a finite number >= 0, got {beta}")
    if not (math.isfinite(t) and t > 0):
        problems.append(f"--t must be > 0, got {t}")
    if solver not in SOLVERS:
        problems.append(f"--solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if not (math.isfinite(step) and step > 0):
        problems.append(f"--step must be > 0, got {step}")
    if value not in VALUES:
        problems.append(f"--value must be identity or minus_identity, got {value!r}")
    if problems:
        raise UsageError("; ".join(problems))


def simulate_command(
    *, model: str, n: int, d: int, beta: float, t: float, solver: str, step: float, value: str,
    seed: int, device: str, dtype: str, out: str | pathlib.Path | None, json_output: bool,
) -> int | None:
    """Run one simulation from i.i.d. uniform tokens and save trajectory, figures and metrics.

    The output directory is built in a partial sibling and swapped in whole
    (:class:`tokenswarm.io.rundir.RunDirectory`); a bad ``out`` raises ``UsageError``.
    """
    _validate(model, n, d, beta, t, solver, step, value)
    check_seed(seed)
    torch_device, torch_dtype = parse_device(device), parse_dtype(dtype)
    stage = RunDirectory(parse_out(out, pathlib.Path("runs") / "simulate")).prepare()
    with stage as partial:
        result, outputs = _simulate(model, n, d, beta, t, solver, step, value, seed, torch_device, torch_dtype,
                                    dtype, partial)
        outputs = [stage.final_path(path) for path in outputs]
    out_dir = stage.target
    if json_output:
        sys.stdout.write(json.dumps(result.to_json_dict(outputs)) + "\n")
    else:
        print(f"simulated {n} tokens in d = {d} to t = {t:g} ({result.metrics['steps']} steps, "
              f"{result.seconds:.2f} s): {result.metrics['final_clusters']} clusters; outputs in {out_dir}")
    return 0


def _simulate(model, n, d, beta, t, solver, step, value, seed, torch_device, torch_dtype, dtype,
              out_dir: pathlib.Path) -> tuple[Result, list[str]]:
    import torch

    start = time.perf_counter()
    generator = torch.Generator(device=torch_device).manual_seed(seed)
    x0 = sample_uniform(n, d, generator=generator, dtype=torch_dtype, device=torch_device)
    field = Attention(beta, normalization=model, V=VALUES[value])
    times = np.linspace(0.0, t, min(MAX_SAVED_STATES, max(2, round(t / step) + 1)))
    traj = integrate(field, x0, times, solver_from_name(solver, step), progress=True)
    x = traj.states
    clusters = cluster_count(x, 1e-3).cpu().numpy()
    figures = {"clusters": line_plot(times, {"clusters": clusters}, xlabel="t", ylabel="clusters (delta = 1e-3)")}
    metrics = {"final_clusters": int(clusters[-1]), "steps": traj.steps}
    if beta > 0:
        energy = interaction_energy(x, beta).cpu().numpy()
        metrics["final_energy"] = float(energy[-1])
        figures["energy"] = line_plot(times, {"E_beta": energy}, xlabel="t", ylabel="E_beta")
    animations = {}
    if d in (2, 3):
        animations["trajectory"] = animate_tokens(
            x, times, out_dir / "trajectory.gif", title=f"{model.upper()}, beta = {beta:g}", rotation=60.0 if d == 3 else 0.0
        )
    result = Result(
        experiment="simulate",
        params={"model": model, "n": n, "d": d, "beta": beta, "t": t, "solver": solver, "step": step,
                "value": value, "seed": seed, "device": str(torch_device), "dtype": dtype},
        metrics=metrics, claims=[],
        data=xr.Dataset({"x": (("t", "token", "dim"), x.cpu().numpy())}, coords={"t": times}),
        figures=figures, animations=animations, seconds=time.perf_counter() - start,
    )
    return result, result.save(out_dir)
