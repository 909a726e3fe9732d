"""Wall time of the full-size Fig. 3 and Fig. 5 experiments, extrapolated from a measured subset.

Run: ``python benchmarks/full_size.py [betas_measured] [runs_measured]`` (defaults 2 and 2048;
about 10 minutes on 2 idle cores).

* Fig. 3 (``phase-diagram`` at the authors' size: 90 betas, d in {2, 8, 32, 128, 512, 1024},
  2048 runs per beta, output every 0.3 to t = 30, step 0.1): every d is timed on a subset of
  the betas with ``runs_measured`` runs, per scheme, and the time is scaled linearly to 90 betas
  and 2048 runs (the cost of a beta does not depend on its value: the same steps, the same matrix
  sizes; systems are integrated in pieces of 64, so the cost is linear in the runs).
* Fig. 5 (``random-weights`` at its default size: 4 panels, 10 betas, 64 runs, d = 128, RK4
  step 0.05 to t = 30): one chunk of betas of one panel is timed over the first 3 time units
  and scaled linearly to 30 time units, 5 chunks and 4 panels.

Prints one JSON line per measurement and one with the totals, as wall seconds and as CPU
seconds (on a shared machine the CPU seconds, which the other processes do not inflate, over
the cores used are the better estimate of the wall time on idle cores).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from tokenswarm.ensembles import clustered_fraction
from tokenswarm.experiments.random_weights import panel_field_factory
from tokenswarm.runtime.perf import gemm_gflops

DIMS = (2, 8, 32, 128, 512, 1024)
RUNS, BETAS_FULL = 2048, 90


def fig3(betas_measured: int, runs_measured: int) -> dict:
    betas = np.linspace(0.1, 9, betas_measured)
    times = np.round(np.arange(0, 30.0001, 0.3), 6)
    totals, cpu_total = {}, {}
    for scheme in ("authors", "accurate"):
        total = 0.0
        for d in DIMS:
            start, cpu = time.perf_counter(), time.process_time()
            clustered_fraction(32, d, betas, times, runs_measured, scheme=scheme, step=0.1, model="sa",
                               generator=torch.Generator().manual_seed(0), dtype=torch.float64,
                               device=torch.device("cpu"), progress=False)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            scale = BETAS_FULL / betas_measured * RUNS / runs_measured
            total += seconds * scale
            cpu_total[scheme] = cpu_total.get(scheme, 0.0) + cpu * scale
            print(json.dumps({"figure": 3, "scheme": scheme, "d": d, "betas": betas_measured, "runs": runs_measured, "seconds": seconds,
                              "cpu_seconds": cpu}), flush=True)
        totals[scheme] = total
    return {"wall": totals, "cpu": cpu_total}


def fig5() -> float:
    times = np.round(np.arange(0, 3.0001, 0.5), 6)
    norms: list = []
    make_field = panel_field_factory("a", 128, 64, "unit", torch.float64, torch.device("cpu"), norms)
    start, cpu = time.perf_counter(), time.process_time()
    clustered_fraction(32, 128, np.array([1.0, 2.0]), times, 64, scheme="accurate", step=0.05, model="sa",
                       generator=torch.Generator().manual_seed(0), dtype=torch.float64, device=torch.device("cpu"),
                       make_field=make_field, weight_elements=3 * 128 * 128, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"figure": 5, "chunk": "2 betas x 64 runs, t to 3", "seconds": seconds, "cpu_seconds": cpu}), flush=True)
    return {"wall": seconds * 10 * 5 * 4, "cpu": cpu * 10 * 5 * 4}


def main() -> None:
    betas_measured = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    runs_measured = int(sys.argv[2]) if len(sys.argv) > 2 else RUNS
    gemm = gemm_gflops(torch.float64, torch.device("cpu"), size=2048)
    totals = fig3(betas_measured, runs_measured)
    print(json.dumps({"fig3_full_seconds": totals, "fig5_full_seconds": fig5(), "gemm_gflops_float64": gemm,
                      "gemm_gflops_float64_after": gemm_gflops(torch.float64, torch.device("cpu"), size=2048)}), flush=True)


if __name__ == "__main__":
    main()
