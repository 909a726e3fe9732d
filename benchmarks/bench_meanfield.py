"""Speed of the circle mean-field solver (issue target: 4096 cells, beta = 9, t_max = 30 in < 30 s).

Run: ``python benchmarks/bench_meanfield.py`` (or ``tokenswarm bench meanfield --json``). Solves
the SA continuity equation from a uniform density perturbed in modes 3 and 5 and reports wall
time, steps, time per step and the share of a step taken by its two FFT convolutions (the
plain baseline, timed alone in the same process); see :func:`tokenswarm.runtime.perf.bench_meanfield`.
The target is checked here, never in tests.
"""

from __future__ import annotations

import dataclasses
import json

from tokenswarm.runtime.perf import bench_meanfield

if __name__ == "__main__":
    result = dataclasses.asdict(bench_meanfield(4096, 9.0, 30.0, "sa"))
    print(json.dumps({**result, "cells": 4096, "beta": 9.0, "t_max": 30.0, "target_30s": result["seconds"] < 30.0}))
