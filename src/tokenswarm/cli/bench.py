"""``tokenswarm bench``: time a component on this machine.

``tokenswarm bench field -p n=4096 -p d=64 -p dtype=float32 --json`` times one evaluation
of the attention velocity with the default (fused, linear-memory) backend against a
same-process GEMM and the dense baseline; ``tokenswarm bench meanfield -p cells=4096 -p beta=9``
times one circle mean-field solve against its FFT convolutions; see :mod:`tokenswarm.runtime.perf`.
``tokenswarm bench all [--json] [-p runs=2048] [-p out=docs/benchmarks.md]`` runs every figure of
docs/benchmarks.md, each against its baseline measured in the same call
(:mod:`tokenswarm.runtime.ensemble_perf`), and writes that page when ``out`` is given.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

from tokenswarm.experiments.registry import parse_device, parse_dtype
from tokenswarm.params import UsageError, parse_overrides
from tokenswarm.runtime.perf import bench_field, bench_meanfield


@dataclass
class FieldParams:
    n: int = field(default=4096, metadata={"min": 2, "help": "tokens"})
    d: int = field(default=64, metadata={"min": 1, "help": "dimension"})
    dtype: Literal["float32", "float64"] = field(default="float32", metadata={"help": "precision"})
    beta: float = field(default=1.0, metadata={"min": 0, "help": "inverse temperature"})
    normalization: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    backend: Literal["fused", "chunked", "dense"] = field(default="fused", metadata={"help": "backend timed"})
    repeats: int = field(default=5, metadata={"min": 1, "help": "timed evaluations (median reported)"})
    dense: bool = field(default=True, metadata={"help": "also time the dense n x n baseline (skipped above 4 GiB)"})
    memory: bool = field(default=True, metadata={"help": "measure peak memory in a child process"})


@dataclass
class MeanFieldParams:
    cells: int = field(default=4096, metadata={"min": 8, "help": "finite-volume cells"})
    beta: float = field(default=9.0, metadata={"min": 0, "max": 300, "help": "inverse temperature"})
    t_max: float = field(default=30.0, metadata={"min_exclusive": 0, "help": "final time"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})


@dataclass
class AllParams:
    runs: int = field(default=2048, metadata={"min": 16, "help": "runs per beta of the Fig. 3 job (the issue's size: 2048)"})
    repeats: int = field(default=1, metadata={"min": 1, "help": "alternated repetitions of the Fig. 3 job"})
    span_runs: int = field(default=512, metadata={"min": 16, "help": "runs per beta of the span-reduction and float32 ratios"})
    sde_runs: int = field(default=4000, metadata={"min": 16, "help": "runs of the two-token SDE ensembles"})
    mlp_runs: int = field(default=12, metadata={"min": 2, "help": "runs of the random-MLP ensembles (a synchronization cell: n = 64, d = 64, width 256, 150 layers)"})
    memory_sde_runs: int = field(default=50000, metadata={"min": 16, "help": "smallest of the 4 run counts (x1, x2, x4, x8) of the two-token memory fit"})
    memory_mlp_runs: int = field(default=16, metadata={"min": 1, "help": "smallest of the 4 run counts (x1, x2, x4, x8) of the random-MLP memory fit"})
    out: str = field(default="", metadata={"help": "write the Markdown page here (e.g. docs/benchmarks.md)"})


TARGETS = {"field": FieldParams, "meanfield": MeanFieldParams, "all": AllParams}


def bench_all(params: AllParams, device) -> dict:
    """Every figure of docs/benchmarks.md (CPU), each against its same-call baseline."""
    from tokenswarm.runtime import ensemble_perf as ep
    from tokenswarm.runtime.perf import gemm_gflops

    results = {"machine": ep.machine()}
    results["gemm_gflops"] = {"float64": gemm_gflops(parse_dtype("float64"), device, size=2048),
                              "float32": gemm_gflops(parse_dtype("float32"), device, size=2048)}
    results["field"] = dataclasses.asdict(bench_field(4096, 64, dtype=parse_dtype("float32"), device=device, repeats=3))
    results["phase_job"] = ep.bench_phase_job(runs=params.runs, repeats=params.repeats)
    results["span_reduction"] = ep.bench_span_reduction(runs=params.span_runs)
    results["float32"] = ep.bench_float32(runs=params.span_runs)
    results["two_token"] = ep.bench_two_token(runs=params.sde_runs)
    results["random_mlp"] = ep.bench_random_mlp(runs=params.mlp_runs)
    results["memory"] = ep.bench_memory_scaling(two_token_runs=params.memory_sde_runs, mlp_runs=params.memory_mlp_runs)
    return results


def bench_command(target: str, overrides: dict[str, str], json_output: bool, device: str) -> int | None:
    if target not in TARGETS:
        raise UsageError(f"unknown benchmark target {target!r}; valid targets: {', '.join(TARGETS)}")
    params = parse_overrides(TARGETS[target], overrides, experiment=f"bench {target}")
    torch_device = parse_device(device)
    start = time.perf_counter()
    if target == "all":
        if torch_device.type != "cpu":
            raise UsageError("bench all measures the CPU against child processes; use bench field --device for an accelerator")
        results = bench_all(params, torch_device)
        if params.out:
            from tokenswarm.runtime.ensemble_perf import markdown

            with open(params.out, "w") as page:
                page.write(markdown(results))
        if json_output:
            sys.stdout.write(json.dumps({"benchmark": "all", "params": dataclasses.asdict(params), "metrics": results,
                                         "seconds": time.perf_counter() - start}) + "\n")
        else:
            from tokenswarm.runtime.ensemble_perf import markdown

            sys.stdout.write(markdown(results))
        return 0
    if target == "meanfield":
        measured = bench_meanfield(params.cells, params.beta, params.t_max, params.model, device=torch_device)
    else:
        measured = bench_field(
            params.n, params.d, dtype=parse_dtype(params.dtype), device=torch_device, beta=params.beta,
            normalization=params.normalization, backend=params.backend, repeats=params.repeats,
            dense=params.dense, memory=params.memory,
        )
    summary = {
        "benchmark": target,
        "params": {**dataclasses.asdict(params), "device": str(torch_device)},
        "metrics": dataclasses.asdict(measured),
        "seconds": time.perf_counter() - start,
    }
    if json_output:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"bench {target}", title_justify="left")
        table.add_column("metric")
        table.add_column("value")
        for key, value in summary["metrics"].items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        Console().print(table)
    return 0
