"""Attention-field throughput against the same-process GEMM rate and the dense baseline.

Run: ``python benchmarks/bench_field.py`` (about a minute on 2 cores). Prints one JSON line
per configuration; the figures quoted in the README come from this script. The targets
(>= 60% of GEMM at n = 4096, d = 64 float32; >= 3x the dense baseline; n = 131072 under
2 GiB) are checked here, never in the test suite.
"""

from __future__ import annotations

import dataclasses
import json

import torch

from tokenswarm.runtime.perf import bench_field

CONFIGS = [
    dict(n=4096, d=64, dtype=torch.float32, normalization="sa"),
    dict(n=4096, d=64, dtype=torch.float32, normalization="usa"),
    dict(n=4096, d=64, dtype=torch.float64, normalization="sa"),
    dict(n=131072, d=64, dtype=torch.float32, normalization="sa", repeats=1, dense=False),
]


def main() -> None:
    for config in CONFIGS:
        result = dataclasses.asdict(bench_field(**config))
        targets = {}
        if result["n"] == 4096 and result["dtype"] == "float32":
            targets = {"ratio_to_gemm >= 0.6": result["ratio_to_gemm"] >= 0.6,
                       "speedup_vs_dense >= 3": (result["speedup_vs_dense"] or 0) >= 3}
        if result["n"] == 131072:
            targets = {"peak_memory_mb < 2048": result["peak_memory_mb"] < 2048}
        print(json.dumps({**result, "targets": targets}), flush=True)


if __name__ == "__main__":
    main()
