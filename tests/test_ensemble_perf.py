"""The random-MLP and memory-scaling figures of `tokenswarm bench all` (structure and agreement, never timings)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from tokenswarm.experiments.synchronization import Params, energy_curve
from tokenswarm.runtime import ensemble_perf as ep
from tokenswarm.runtime.baselines import plain_random_mlp_loop
from tokenswarm.sphere import sample_uniform


@pytest.mark.parametrize("activation, attention, bias", [("relu", 1.0, 0.1), ("tanh", 0.0, 0.0), ("sigmoid", -1.0, 0.1)])
def test_plain_random_mlp_loop_computes_the_experiment_ensemble(activation, attention, bias):
    """Same tokens, same weights (equal generators): the same energies and states up to rounding."""
    params = Params(n=6, width=8, beta=2.0, runs=3)
    energies, x = energy_curve(params, 5, bias, activation, attention, 7, 1.5, torch.Generator().manual_seed(4),
                               torch.float64, torch.device("cpu"))
    generator = torch.Generator().manual_seed(4)
    x0 = sample_uniform(6, 5, 3, generator=generator)
    plain_energies, plain_x = plain_random_mlp_loop(x0, 7, 8, activation, 2.0, attention, bias, bias, 1.5, generator)
    assert plain_energies.shape == (8, 3) and energies.shape == (8, 3)
    assert np.allclose(plain_energies.numpy(), energies, rtol=1e-10, atol=1e-12 * math.exp(2.0))
    assert torch.allclose(plain_x, x, rtol=0, atol=1e-12)
    assert not torch.allclose(x, x0)


def test_bench_random_mlp_reports_runs_per_second_against_the_plain_loop():
    result = ep.bench_random_mlp(runs=2, n=4, d=3, width=4, layers=3, repeats=2)
    assert result["experiment"] == "synchronization" and result["repeats"] == 2
    for side in ("tokenswarm", "plain"):
        rate = result["runs_per_second"][side]
        assert 0 < rate["min"] <= rate["median"] <= rate["max"]
    ratio = result["ratio"]
    assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
    assert result["max_energy_difference"] < 1e-13


def test_fit_line_slope_intercept_and_deviation():
    exact = ep.fit_line([1, 2, 4, 8], [3 + 2 * r for r in (1, 2, 4, 8)])
    assert exact["slope"] == pytest.approx(2) and exact["intercept"] == pytest.approx(3)
    assert exact["max_relative_deviation"] == pytest.approx(0, abs=1e-12)
    bent = ep.fit_line([1, 2, 4, 8], [5, 7, 13, 19])
    assert 0 < bent["max_relative_deviation"] < 0.2


def test_memory_job_reports_the_state_bytes_per_run():
    assert ep.memory_job("two-token", 10)["state_bytes_per_run"] == 2 * ep.MEMORY_SIZES["two-token"]["d"] * 8
    size = ep.MEMORY_SIZES["random-mlp"]
    assert ep.memory_job("random-mlp", 1)["state_bytes_per_run"] == size["n"] * size["d"] * 8
    assert ep.memory_job("import", 0)["state_bytes_per_run"] == 0
    with pytest.raises(ValueError, match="unknown ensemble"):
        ep.memory_job("three-token", 1)


def test_memory_child_command_prints_one_json_line():
    wall, peak, text = ep.run_child([sys.executable, "-m", "tokenswarm.runtime.ensemble_perf", "memory", "two-token",
                                     "--runs", "64"])
    line = json.loads(text.strip().splitlines()[-1])
    assert line == {**line, "ensemble": "two-token", "runs": 64, "state_bytes_per_run": 96}
    assert wall > 0 and 0 < peak < 4096


def test_bench_memory_scaling_fits_a_line_through_the_children(monkeypatch):
    """The children replaced by peaks that grow 3 MiB per run over 100 MiB of imports: the fit recovers them."""
    seen = []

    def fake_child(argv):
        seen.append(argv)
        runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 0
        state = {"two-token": 96, "random-mlp": 32768}.get(argv[-3] if runs else "", 0)
        peak = 100.0 if not runs else 100.0 + 5.0 + 3.0 * runs
        return 0.1, peak, json.dumps({"state_bytes_per_run": state}) + "\n"

    monkeypatch.setattr(ep, "run_child", fake_child)
    result = ep.bench_memory_scaling(two_token_runs=10, mlp_runs=2)
    assert len(seen) == 9 and seen[0][-1] == "import"
    assert result["baseline_mib"] == 100.0 and result["factors"] == [1, 2, 4, 8]
    for name, smallest, state in (("two-token", 10, 96), ("random-mlp", 2, 32768)):
        entry = result[name]
        assert [p["runs"] for p in entry["points"]] == [smallest * k for k in (1, 2, 4, 8)]
        assert entry["mib_per_1000_runs"] == pytest.approx(3000.0)
        assert entry["intercept_mib"] == pytest.approx(5.0)
        assert entry["max_relative_deviation"] == pytest.approx(0, abs=1e-9)
        assert entry["per_run_over_state"] == pytest.approx(3 * 2**20 / state)


def _summary(value):
    return {"min": value, "median": value, "max": value}


def test_markdown_has_the_random_mlp_and_memory_sections():
    results = {
        "machine": {"cores": 2, "cpu": "test", "torch": "2", "threads": 1, "python": "3"},
        "gemm_gflops": {"float64": 10.0, "float32": 20.0},
        "field": {"seconds_per_eval": 0.01, "gflops": 5.0, "ratio_to_gemm": 0.5, "speedup_vs_dense": 2.0, "peak_memory_mb": 50.0},
        "phase_job": {"job": "job", "repeats": 1, "wall_seconds": {"authors": _summary(2.0), "tokenswarm": _summary(1.0)},
                      "peak_memory_mb": {"authors": _summary(600.0), "tokenswarm": _summary(400.0)},
                      "half_time": {"authors": [1.0], "tokenswarm": [1.0]}, "speedup": _summary(2.0)},
        "span_reduction": {"runs": 16, "betas": [1.0], "t": "0:30:0.3",
                           "schemes": {"authors": {"seconds_d32": _summary(1.0), "seconds_d128": _summary(1.0), "ratio": _summary(1.0)}}},
        "float32": {"speedup_float32": _summary(1.5)},
        "two_token": {"runs": 200, "d": 6, "steps": 500, "runs_per_second": {"tokenswarm": _summary(2.0), "plain": _summary(1.0)},
                      "ratio": _summary(2.0)},
    }
    before = ep.markdown(results)
    results["random_mlp"] = ep.bench_random_mlp(runs=2, n=4, d=3, width=4, layers=2, repeats=1)
    results["memory"] = {"baseline_mib": 300.0, "factors": [1, 2, 4, 8],
                         **{name: {"points": [{"runs": r, "above_baseline_mib": 10.0 + r} for r in (1, 2, 4, 8)],
                                   "mib_per_1000_runs": 1000.0, "intercept_mib": 10.0, "max_relative_deviation": 0.0,
                                   "per_run_over_state": 12.0} for name in ("two-token", "random-mlp")}}
    page = ep.markdown(results)
    assert page.startswith(before)  # the existing sections are unchanged
    assert "## Random-MLP ensembles (synchronization: 2 runs" in page and "## Memory linear in runs" in page
    assert page.count("| random-mlp | 1, 2, 4, 8 |") == 1 and page.count("| two-token |") == 1
