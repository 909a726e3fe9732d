"""Speed of the circle mean-field solver (issue target: 4096 cells, beta = 9, t_max = 30 in < 30 s).

Run: ``python benchmarks/bench_meanfield.py``. Solves the SA continuity equation from a
uniform density perturbed in modes 3 and 5 (it forms clusters and the CFL step shrinks as
they sharpen), and reports wall time, steps, time per step, and the share of one step spent
in its two FFT convolutions (timed alone in the same process, the plain baseline of a step:
a solver cannot be cheaper than its convolutions). The target is checked here, never in tests.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from tokenswarm.meanfield.circle import CircleGrid, CircleModel, count_clusters, perturbed_uniform, solve_circle


def run(cells: int = 4096, beta: float = 9.0, t_max: float = 30.0, model: str = "sa") -> dict:
    grid = CircleGrid(cells)
    rho0 = perturbed_uniform(grid, {3: 1e-4, 5: 1e-4})
    start = time.perf_counter()
    traj = solve_circle(CircleModel(beta=beta, model=model), grid, rho0, t_max, save_times=np.linspace(0, t_max, 31))
    seconds = time.perf_counter() - start
    # baseline: the two rfft/irfft pairs of one SSP-RK2 step, same size, one thread as the solver
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    kernel = torch.fft.rfft(torch.rand(cells, dtype=torch.float64))
    rho = traj.density[-1]
    repeats = 2000
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.fft.irfft(torch.fft.rfft(rho) * kernel, n=cells)
        torch.fft.irfft(torch.fft.rfft(rho) * kernel, n=cells)
    fft_step = (time.perf_counter() - t0) / repeats
    torch.set_num_threads(previous)
    per_step = seconds / traj.steps
    return {
        "cells": cells, "beta": beta, "t_max": t_max, "model": model, "seconds": seconds, "steps": traj.steps,
        "rejected": traj.rejected, "us_per_step": 1e6 * per_step, "fft_share_of_step": fft_step / per_step,
        "mass_error": float(traj.mass_error), "min_density": float(traj.min_density),
        "clusters": int(count_clusters(traj.density[-1], grid)), "target_30s": seconds < 30.0,
    }


if __name__ == "__main__":
    print(json.dumps(run()), flush=True)
