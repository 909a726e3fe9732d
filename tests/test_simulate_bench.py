"""The real `tokenswarm simulate` and `tokenswarm bench` implementations (not the CLI plumbing)."""

from __future__ import annotations

import json

import pytest
import torch

from tokenswarm.cli.bench import bench_command
from tokenswarm.cli.simulate import simulate_command
from tokenswarm.io.results import load_data, load_result
from tokenswarm.params import UsageError
from tokenswarm.runtime.perf import bench_field, field_peak_memory_mb


def test_simulate_saves_a_trajectory_on_the_sphere_and_an_animation(tmp_path, capsys):
    code = simulate_command(model="sa", n=6, d=3, beta=4.0, t=2.0, solver="rk4", step=0.1, value="identity",
                            seed=3, device="cpu", dtype="float64", out=tmp_path, json_output=True)
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["params"]["n"] == 6 and summary["metrics"]["steps"] == 20
    x = torch.as_tensor(load_data(tmp_path)["x"].values)
    assert x.shape == (21, 6, 3)
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-14
    assert (tmp_path / "trajectory.gif").stat().st_size > 0
    assert load_result(tmp_path)["metrics"]["final_clusters"] == summary["metrics"]["final_clusters"]


def test_simulate_rejects_bad_options(tmp_path):
    with pytest.raises(UsageError, match="--solver"):
        simulate_command(model="sa", n=4, d=3, beta=1.0, t=1.0, solver="leapfrog", step=0.1, value="identity",
                         seed=0, device="cpu", dtype="float64", out=tmp_path, json_output=False)


def test_bench_field_measures_against_gemm_and_dense():
    result = bench_field(256, 16, dtype=torch.float32, repeats=2, memory=False)
    assert result.seconds_per_eval > 0 and result.gemm_gflops > 0
    assert result.gflops == pytest.approx(4 * 256**2 * 16 / result.seconds_per_eval / 1e9)
    assert result.ratio_to_gemm == pytest.approx(result.gflops / result.gemm_gflops)
    assert result.speedup_vs_dense == pytest.approx(result.dense_seconds_per_eval / result.seconds_per_eval)


def test_field_memory_is_measured_in_a_child_process():
    peak, evaluation = field_peak_memory_mb(512, 8, torch.float32)
    assert peak > evaluation >= 0
    assert peak < 4096  # a small field must not look like gigabytes


def test_bench_command_json_and_unknown_target(capsys):
    assert bench_command("field", {"n": "128", "d": "8", "repeats": "1", "memory": "false"}, True, "cpu") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["benchmark"] == "field" and summary["metrics"]["n"] == 128
    with pytest.raises(UsageError, match="valid targets"):
        bench_command("attention", {}, True, "cpu")
