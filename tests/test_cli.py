"""The command line, the registry and the HTML report, driven by fake experiments."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch
from fake_experiments import FakeParams, fake_registry  # noqa: F401 - fixture
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.cli import bench
from tokenswarm.cli import simulate as simulate_cli
from tokenswarm.experiments import registry
from tokenswarm.experiments.registry import (
    RunContext,
    register,
    run_experiment,
    unregister,
)
from tokenswarm.io.report import ReportEntry, write_report
from tokenswarm.io.results import Result
from tokenswarm.params import UsageError

TESTS_DIR = pathlib.Path(__file__).parent
REQUIRED_KEYS = {"experiment", "params", "metrics", "claims", "outputs", "seconds", "versions", "timestamp", "machine"}
CLAIM_KEYS = {"name", "reference", "measured", "expected", "passed", "detail", "status", "paper", "where", "refs"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli.app, list(args), prog_name="tokenswarm")


def assert_usage_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    # SystemExit(2) from the CLI itself, not an escaped exception turned into exit code 1.
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_registry")
def test_run_json_prints_exactly_one_object(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    result = invoke(runner, "run", "fake_ok", "--quick", "--json", "-p", "beta=0.5:2:0.5", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # fails on any extra output, e.g. the experiment's print
    assert set(summary) == REQUIRED_KEYS
    assert all(set(claim) == CLAIM_KEYS for claim in summary["claims"])
    assert "stray print" in result.stderr
    assert summary["experiment"] == "fake_ok"
    assert summary["params"]["n"] == 4  # the quick value
    assert summary["params"]["beta"] == [0.5, 1.0, 1.5, 2.0]
    assert summary["params"]["seed"] == 0 and summary["params"]["dtype"] == "float64"
    assert summary["metrics"]["undefined"] is None
    assert {pathlib.Path(path).name for path in summary["outputs"]} == {
        "tokens.png",
        "spin.gif",
        "data.zarr",
        "result.json",
    }
    assert all(pathlib.Path(path).exists() for path in summary["outputs"])
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["outputs"] == ["tokens.png", "spin.gif", "data.zarr", "result.json"]
    assert on_disk["metrics"] == summary["metrics"]


@pytest.mark.usefixtures("fake_registry")
def test_user_values_win_over_quick_and_seed_changes_numbers(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    def first_token(*args: str) -> list[float]:
        result = invoke(runner, "run", "fake_ok", "--json", "--out", str(tmp_path), *args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        return summary["metrics"]["first_token"], summary["params"]["n"]

    token_a, n = first_token("--quick", "-p", "n=6")
    assert n == 6
    token_b, _ = first_token("--quick", "-p", "n=6")
    token_c, _ = first_token("--quick", "-p", "n=6", "--seed", "1")
    assert token_a == token_b and token_a != token_c


@pytest.mark.usefixtures("fake_registry")
def test_run_without_json_prints_tables(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    result = invoke(runner, "run", "fake_ok", "-p", "fail_claim=true", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output  # a failed claim is reported, not an error
    for text in ("tokens on the sphere", "PASS", "FAIL", "norm_error", "1/2 claims passed"):
        assert text in result.stdout
    assert "stray print" not in result.stdout


@pytest.mark.usefixtures("fake_registry")
def test_unknown_experiment_is_a_usage_error(runner: CliRunner) -> None:
    result = invoke(runner, "run", "fake_nope")
    assert_usage_error(result, "unknown experiment 'fake_nope'", "valid experiments:", "fake_ok", "fake_raise")


@pytest.mark.usefixtures("fake_registry")
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-p", "bta=1"], ["unknown parameter 'bta'", "did you mean 'beta'", "n (int, >=2, default 16)"]),
        (["-p", "n=abc"], ["invalid value 'abc' for parameter 'n'", "not an int"]),
        (["-p", "n=1"], ["'n'", "allowed: >=2"]),
        (["-p", "model=gpt"], ["one of sa|usa"]),
        (["-p", "n=3", "-p", "n=4"], ["given twice"]),
        (["-p", "n"], ["key=value"]),
        (["--device", "tpu"], ["invalid device 'tpu'", "available here: cpu"]),
    ],
)
def test_bad_parameters_are_usage_errors(runner: CliRunner, args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke(runner, "run", "fake_ok", *args), *fragments)


def test_typer_usage_errors_exit_2(runner: CliRunner) -> None:
    assert invoke(runner, "run", "fake_ok", "--dtype", "float16").exit_code == 2
    assert invoke(runner, "run", "fake_ok", "--seed", "x").exit_code == 2
    assert invoke(runner, "frobnicate").exit_code == 2


def test_missing_name_lists_experiments(runner: CliRunner, fake_registry: list[str]) -> None:
    assert_usage_error(invoke(runner, "run"), "missing experiment name", "fake_ok")


@pytest.mark.usefixtures("fake_registry")
def test_experiment_exception_exits_1_with_traceback_on_stderr(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    result = invoke(runner, "run", "fake_raise", "--json", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "boom from fake_raise" in result.stderr and "Traceback" in result.stderr
    assert not (tmp_path / "result.json").exists()


@pytest.mark.usefixtures("fake_registry")
def test_run_help_shows_the_experiment_parameters(runner: CliRunner) -> None:
    result = invoke(runner, "run", "fake_ok", "--help")
    assert result.exit_code == 0
    for text in ("--param", "fail_claim", "float list", "number of tokens"):
        assert text in result.stdout


@pytest.mark.usefixtures("fake_registry")
def test_list_shows_one_line_per_experiment_with_reference(runner: CliRunner) -> None:
    result = invoke(runner, "list")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "0000.00000 fake §1" in lines["fake_ok"] and "Fake experiment that raises" in lines["fake_raise"]
    verbose = invoke(runner, "list", "--verbose").stdout
    assert "n (int, >=2, default 16) (quick: 4) -- number of tokens" in verbose


# --------------------------------------------------------------------------------------
# reproduce and the report
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_registry")
def test_reproduce_survives_an_error_and_exits_1(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    result = invoke(runner, "reproduce", "--quick", "--only", "fake_raise,fake_ok", "--out", str(tmp_path))
    assert result.exit_code == 1, result.output
    index = tmp_path / "index.html"
    assert f"report: {index}" in result.stdout
    assert "claims: 2 passed, 0 failed; experiments: 2 run, 1 errored" in result.stdout
    assert "ERROR fake_raise: RuntimeError: boom from fake_raise" in result.stdout
    assert "min, quick sizes)" in result.stdout
    page = index.read_text()
    assert 'src="fake_ok/tokens.png"' in page and 'src="fake_ok/spin.gif"' in page
    assert "boom from fake_raise" in page and "0000.00000 fake §1" in page
    assert " · quick sizes · " in page and "reproduce --full</code>" in page  # the header says which sizes
    assert (tmp_path / "fake_ok" / "result.json").exists()
    assert "boom" in (tmp_path / "fake_raise" / "error.txt").read_text()


@pytest.mark.usefixtures("fake_registry")
def test_reproduce_failed_claims_do_not_change_exit_code(
    runner: CliRunner, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reproduce takes no -p, so make the fake's default fail its deliberate claim.
    failing = registry.EXPERIMENTS["fake_ok"]
    monkeypatch.setitem(
        registry.EXPERIMENTS,
        "fake_ok",
        registry.Experiment(failing.name, failing.title, failing.reference, FailingParams, {}, failing.run),
    )
    result = invoke(runner, "reproduce", "--full", "--only", "fake_ok", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "claims: 1 passed, 1 failed; experiments: 1 run, 0 errored; wall time " in result.stdout
    assert "min, full sizes)" in result.stdout  # reproduce states its wall time (issue 13)
    assert "FAIL  fake_ok: deliberate" in result.stdout
    assert 'class="badge fail"' in (tmp_path / "index.html").read_text()
    assert " · full sizes · " in (tmp_path / "index.html").read_text()


@dataclass(frozen=True)
class FailingParams(FakeParams):
    fail_claim: bool = True


@pytest.mark.usefixtures("fake_registry")
def test_reproduce_only_validates_names(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    result = invoke(runner, "reproduce", "--only", "fake_ok,nope", "--out", str(tmp_path))
    assert_usage_error(result, "unknown experiment 'nope'", "fake_ok")
    assert not (tmp_path / "index.html").exists()


def test_report_escapes_html(tmp_path: pathlib.Path) -> None:
    entry = ReportEntry(
        name="x",
        title="<script>alert(1)</script>",
        reference="0000.00000 a & b",
        result={
            "params": {"long": list(range(100))},
            "metrics": {"m": 1.23456789},
            "claims": [
                {"name": "<b>", "reference": "r", "measured": None, "expected": "< 1", "passed": False, "detail": ""}
            ],
            "seconds": 1.0,
        },
        outputs=["x/fig one.png"],
    )
    page = write_report([entry], tmp_path).read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert "&lt;b&gt;" in page and "&lt; 1" in page
    assert 'src="x/fig%20one.png"' in page
    assert "(100 values)" in page and "1.235" in page and "1.2346" not in page
    assert "claims: 0 passed, 1 failed; experiments: 1 run, 0 errored" in page


# --------------------------------------------------------------------------------------
# simulate and bench forward their options
# --------------------------------------------------------------------------------------


def test_simulate_forwards_keyword_arguments(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    received: dict[str, object] = {}

    def fake(**kwargs: object) -> int:
        received.update(kwargs)
        return 0

    monkeypatch.setattr(simulate_cli, "simulate_command", fake)
    result = invoke(runner, "simulate", "--model", "usa", "--n", "8", "--beta", "2", "--value", "minus_identity", "--json")
    assert result.exit_code == 0, result.output
    assert received == {
        "model": "usa",
        "n": 8,
        "d": 3,
        "beta": 2.0,
        "t": 10.0,
        "solver": "rk4",
        "step": 0.05,
        "value": "minus_identity",
        "seed": 0,
        "device": "cpu",
        "dtype": "float64",
        "out": None,
        "json_output": True,
    }
    assert invoke(runner, "simulate", "--model", "gpt").exit_code == 2


def test_bench_forwards_and_maps_usage_errors(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def fake(target: str, overrides: dict[str, str], json_output: bool, device: str) -> None:
        calls.append((target, overrides, json_output, device))
        if target == "bad":
            raise UsageError("unknown bench target 'bad'; valid targets: field")

    monkeypatch.setattr(bench, "bench_command", fake)
    result = invoke(runner, "bench", "field", "-p", "n=64", "-p", "beta=1,2")
    assert result.exit_code == 0, result.output
    assert calls == [("field", {"n": "64", "beta": "1,2"}, False, "cpu")]
    assert_usage_error(invoke(runner, "bench", "bad"), "valid targets: field")


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyParams:
    k: int = field(default=1, metadata={"min": 0})


def test_register_rejects_declaration_mistakes() -> None:
    def run(params: TinyParams, context: RunContext) -> Result:
        return Result("tiny", {}, {}, [])

    with pytest.raises(ValueError, match="must match"):
        register("Bad Name", title="t", reference="0000.00000 r", params=TinyParams)
    with pytest.raises(TypeError, match="invalid quick"):
        register("tiny", title="t", reference="0000.00000 r", params=TinyParams, quick={"k": -1})
    with pytest.raises(TypeError, match="invalid quick"):
        register("tiny", title="t", reference="0000.00000 r", params=TinyParams, quick={"nope": 1})

    @dataclass(frozen=True)
    class Reserved:
        seed: int = 0

    with pytest.raises(TypeError, match="reserved"):
        register("tiny", title="t", reference="0000.00000 r", params=Reserved)

    register("tiny", title="t", reference="0000.00000 r", params=TinyParams)(run)
    try:
        register("tiny", title="t", reference="0000.00000 r", params=TinyParams)(run)  # re-import: allowed

        def other(params: TinyParams, context: RunContext) -> Result:
            return Result("tiny", {}, {}, [])

        with pytest.raises(ValueError, match="already registered"):
            register("tiny", title="t", reference="0000.00000 r", params=TinyParams)(other)
    finally:
        unregister("tiny")
    assert "tiny" not in registry.EXPERIMENTS


def test_run_experiment_builds_the_context(tmp_path: pathlib.Path) -> None:
    seen: list[RunContext] = []

    def run(params: TinyParams, context: RunContext) -> Result:
        seen.append(context)
        return Result("ignored", {"derived": params.k * 2}, {}, [])

    register("tiny_context", title="t", reference="0000.00000 r", params=TinyParams, quick={"k": 3})(run)
    try:
        result, outputs = run_experiment(
            "tiny_context", {}, quick=True, seed=5, dtype="float32", out_dir=tmp_path / "out"
        )
    finally:
        unregister("tiny_context")
    context = seen[0]
    assert (context.seed, context.device, context.dtype, context.quick) == (5, torch.device("cpu"), torch.float32, True)
    assert context.out_dir == (tmp_path / "out").resolve() and context.out_dir.is_dir()
    assert result.experiment == "tiny_context"
    assert result.params == {"k": 3, "derived": 6, "seed": 5, "device": "cpu", "dtype": "float32", "quick": True}
    assert outputs == [str((tmp_path / "out" / "result.json").resolve())]
    assert result.seconds >= 0


def test_run_experiment_rejects_a_non_result(tmp_path: pathlib.Path) -> None:
    register("tiny_bad", title="t", reference="0000.00000 r", params=TinyParams)(lambda params, context: {"oops": 1})
    try:
        with pytest.raises(TypeError, match="must return a Result"):
            run_experiment("tiny_bad", {}, out_dir=tmp_path)
    finally:
        unregister("tiny_bad")


def test_generators_are_reproducible_and_streams_differ() -> None:
    def context(seed: int) -> RunContext:
        return RunContext(seed, torch.device("cpu"), torch.float64, pathlib.Path("."), False)

    def draw(ctx: RunContext, offset: int) -> torch.Tensor:
        return torch.rand(4, generator=ctx.generator(offset))

    assert torch.equal(draw(context(0), 0), draw(context(0), 0))
    assert not torch.equal(draw(context(0), 0), draw(context(0), 1))
    # seed + offset must not collide: (0, 1) and (1, 0) are different streams.
    assert not torch.equal(draw(context(0), 1), draw(context(1), 0))
    assert context(0).numpy_generator(2).random() == context(0).numpy_generator(2).random()


# --------------------------------------------------------------------------------------
# a real process: python -m tokenswarm, stdout purity, no traceback on usage errors
# --------------------------------------------------------------------------------------


def test_python_dash_m_json_and_usage_error(tmp_path: pathlib.Path) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
        cli.EXTRA_EXPERIMENTS_ENV: "fake_experiments_autoregister",
    }
    # Both interpreters start concurrently: start-up (torch, experiment imports) dominates.
    command = [sys.executable, "-m", "tokenswarm", "run", "fake_ok", "--quick"]
    good = subprocess.Popen(
        [*command, "--json", "--out", str(tmp_path)], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    bad = subprocess.Popen(
        [*command, "-p", "bta=1"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    good_out, good_err = good.communicate(timeout=120)
    bad_out, bad_err = bad.communicate(timeout=120)
    assert good.returncode == 0, good_err
    summary = json.loads(good_out)
    assert set(summary) == REQUIRED_KEYS and summary["experiment"] == "fake_ok"
    assert bad.returncode == 2 and bad_out == ""
    assert "unknown parameter 'bta' for experiment 'fake_ok'" in bad_err and "valid parameters: n (int" in bad_err
    assert "Traceback" not in bad_err


def test_broken_experiment_module_is_reported_not_fatal(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, fake_registry: list[str]
) -> None:
    from tokenswarm.experiments import ExperimentImportError, load_all

    missing = "tokenswarm_test_no_such_module"
    failures = load_all([missing], strict=False)
    assert [failure.module for failure in failures] == [missing]
    with pytest.raises(ExperimentImportError, match=missing):
        load_all([missing])
    monkeypatch.setenv(cli.EXTRA_EXPERIMENTS_ENV, missing)
    result = invoke(runner, "list")
    assert result.exit_code == 0 and "fake_ok" in result.stdout
    assert f"{missing}: ModuleNotFoundError" in result.stderr


# --------------------------------------------------------------------------------------
# progress bars
# --------------------------------------------------------------------------------------


def test_progress_bars_nest_and_never_touch_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    from tokenswarm.runtime.progress import progress_bar, track

    # rich < 14 allows one live display at a time: an inner bar must join the outer display.
    with progress_bar(2, "outer", enabled=True) as outer:
        with progress_bar(3, "inner", enabled=True) as inner:
            assert inner._display is not None and inner._display is outer._display
        assert list(track(range(3), "inner", enabled=True)) == [0, 1, 2]
        # a bar switched off stays off inside a live display (integrate(progress=False))
        with progress_bar(3, "off", enabled=False) as off:
            assert off._display is None
        assert len(outer._display.tasks) == 1
        outer.advance()
    assert list(track(iter(range(4)), "silent", enabled=False)) == [0, 1, 2, 3]
    assert capsys.readouterr().out == ""
