"""Speed and memory of the two-token value-noise SDE (the ``two-token-sde`` workload).

Run: ``python benchmarks/bench_two_token.py``. Times 4000 runs to t_max = 60 at one
(d, beta) point (3000 Euler–Maruyama steps, low-rank noise) in a fresh process view, and
checks that 10^5 runs fit in memory by running a short horizon and reading the peak
resident memory. Targets (< 20 s; 10^5 runs) are checked here, never in the test suite.
"""

from __future__ import annotations

import json
import time

import torch

from tokenswarm.noise import ValueNoise
from tokenswarm.runtime.perf import _status_kib
from tokenswarm.solve import EulerMaruyama
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_uniform


def run(runs: int, t_max: float, steps: int, d: int = 6, beta: float = 2.0) -> dict:
    generator = torch.Generator().manual_seed(0)
    x0 = sample_uniform(2, d, runs, generator=generator)
    noise = ValueNoise(beta=beta, sigma2=1.0 / d, low_rank=True)
    start = time.perf_counter()
    final = integrate_sde(None, noise, x0, t_max, steps, solver=EulerMaruyama(), generator=generator).final
    seconds = time.perf_counter() - start
    rho = (final[..., 0, :] * final[..., 1, :]).sum(-1)
    return {"runs": runs, "t_max": t_max, "steps": steps, "d": d, "beta": beta, "seconds": seconds,
            "antipodal_fraction": float((rho < -0.9).double().mean()),
            "peak_memory_mb": _status_kib("VmHWM") / 1024}


if __name__ == "__main__":
    result = run(4000, 60.0, 3000)
    print(json.dumps({**result, "target_seconds_20": result["seconds"] < 20}), flush=True)
    result = run(100_000, 1.0, 50)
    print(json.dumps({**result, "fits_in_memory": True}), flush=True)
