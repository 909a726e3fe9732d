"""Bad input, as a new user types it: one ``error:`` line on stderr, exit 2, no traceback.

A property-based test draws, for every parameter of every experiment (and every option
of simulate, probe, bench and reproduce), a value that violates what the parameter
declares (type, range, finiteness, closed set, ordering, emptiness, control characters)
and drives the command line in-process. Nothing may run: the refusal happens at the
boundary. Resource bombs (valid values whose cost is absurd) are refused by the
estimates of :mod:`tokenswarm.runtime.budget`, tested by the named cases below.
"""

from __future__ import annotations

import math
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.experiments import load_all, registry
from tokenswarm.params import Choices, ParamSpec, param_specs
from tokenswarm.runtime import budget

load_all()
EXPERIMENTS = registry.names()
RUNNER = CliRunner()

# Free text a user may type by mistake: never a number, a boolean, "none" or a valid choice.
JUNK = st.sampled_from(["abc", "", " ", "1..2", "0x", "\x1b[31mred", "tab\there", "new\nline", "é", "[1]", "--"])
NON_FINITE = st.sampled_from(["nan", "inf", "-inf", "Infinity", "1e400", "-1e999"])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def bad_scalar(spec: ParamSpec) -> st.SearchStrategy[str]:
    """Text that is not a valid value of one element of ``spec``."""
    options = []
    numeric = int in spec.alternatives or float in spec.alternatives
    if str not in spec.alternatives:
        junk = JUNK.filter(lambda text: _is_number(text) is False or not numeric)
        choices = [value for alt in spec.alternatives if isinstance(alt, Choices) for value in alt.values]
        options.append(junk.filter(lambda text: text.strip() not in {str(c) for c in choices}))
    if float in spec.alternatives:
        options.append(NON_FINITE)
    if int in spec.alternatives and float not in spec.alternatives:
        options.append(st.sampled_from(["1.5", "2.000001", str(2**63), "-" + str(2**64)]))
    if spec.minimum is not None and (int in spec.alternatives or float in spec.alternatives):
        below = spec.minimum if spec.minimum_exclusive else spec.minimum - (1 if float not in spec.alternatives else 1e-6 * max(1, abs(spec.minimum)))
        options.append(st.integers(0, 10**6).map(lambda k: repr(below - k) if isinstance(below, float) else str(int(below) - k)))
    if spec.maximum is not None and (int in spec.alternatives or float in spec.alternatives):
        above = spec.maximum if spec.maximum_exclusive else spec.maximum + (1 if float not in spec.alternatives else 1e-6 * max(1, abs(spec.maximum)))
        options.append(st.integers(0, 10**6).map(lambda k: repr(above + k) if isinstance(above, float) else str(int(above) + k)))
    if bool in spec.alternatives:
        options.append(st.sampled_from(["maybe", "2", "truthy"]))
    return st.one_of(options) if options else st.nothing()


def bad_value(spec: ParamSpec) -> st.SearchStrategy[str]:
    scalar = bad_scalar(spec)
    if not spec.is_sequence:
        lists = st.just("1,2") if (int in spec.alternatives or float in spec.alternatives) else st.nothing()
        return st.one_of(scalar, lists) if str not in spec.alternatives else scalar
    good = spec.default[0] if spec.default else None
    prefix = "" if good is None else f"{good},"
    options = [scalar, scalar.map(lambda bad: prefix + bad), st.sampled_from(["", "1,,2", ","])]
    if getattr(spec, "increasing", False) and len(spec.default) >= 2:
        first, second = spec.default[0], spec.default[1]
        options.append(st.just(f"{second},{first}"))
        options.append(st.just(f"{first},{first}"))
    return st.one_of(options)


def _cases():
    cases = []
    for name in EXPERIMENTS:
        for spec in param_specs(registry.get(name).params):
            if spec.alternatives == (str,):
                continue  # free text: any string is a valid value
            cases.append((name, spec))
    return cases


CASES = _cases()


def _assert_one_line_exit_2(result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    # user input echoed in the message is escaped: no control characters reach the terminal
    assert all(character.isprintable() or character == " " for character in lines[0]), repr(lines[0])


def invoke(*args: str):
    return RUNNER.invoke(cli.app, list(args), prog_name="tokenswarm")


def test_every_experiment_parameter_is_covered():
    assert len({name for name, _ in CASES}) == len(EXPERIMENTS) >= 26


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_bad_experiment_parameters_exit_2(data, tmp_path_factory):
    name, spec = data.draw(st.sampled_from(CASES), label="parameter")
    value = data.draw(bad_value(spec), label="value")
    out = tmp_path_factory.mktemp("bad")
    _assert_one_line_exit_2(invoke("run", name, "--quick", "-p", f"{spec.name}={value}", "--out", str(out / "run")))
    assert not (out / "run").exists()  # refused before anything was written


SIMULATE_BAD = {
    "--model": st.sampled_from(["SA", "gpt", ""]),
    "--n": st.one_of(JUNK, st.integers(-10**6, 0).map(str)),
    "--d": st.one_of(JUNK, st.integers(-10**6, 1).map(str)),
    "--beta": st.one_of(NON_FINITE, st.floats(-1e6, -1e-9).map(repr)),
    "--t": st.one_of(NON_FINITE, st.floats(-1e6, 0).map(repr)),
    "--solver": st.sampled_from(["rk5", "RK4", "", "euler "]),
    "--step": st.one_of(NON_FINITE, st.floats(-1e6, 0).map(repr)),
    "--value": st.sampled_from(["I", "minus", ""]),
    "--seed": st.one_of(st.integers(-(2**70), -1).map(str), st.integers(2**63, 2**80).map(str), JUNK),
    "--device": st.sampled_from(["tpu", "cuda:99", "gpu", ""]),
    "--dtype": st.sampled_from(["float16", "double", ""]),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bad_simulate_options_exit_2(data, tmp_path_factory):
    option = data.draw(st.sampled_from(sorted(SIMULATE_BAD)), label="option")
    value = data.draw(SIMULATE_BAD[option], label="value")
    out = tmp_path_factory.mktemp("sim")
    _assert_one_line_exit_2(invoke("simulate", option, value, "--out", str(out / "run")))


RUN_OPTIONS_BAD = {
    "--seed": st.one_of(st.integers(-(2**70), -1).map(str), st.integers(2**63, 2**80).map(str), JUNK),
    "--device": st.sampled_from(["tpu", "cuda:99", ""]),
    "--dtype": st.sampled_from(["float16", "bf16", ""]),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_bad_run_and_reproduce_options_exit_2(data, tmp_path_factory):
    command = data.draw(st.sampled_from(["run", "reproduce"]), label="command")
    option = data.draw(st.sampled_from(sorted(RUN_OPTIONS_BAD)), label="option")
    value = data.draw(RUN_OPTIONS_BAD[option], label="value")
    out = tmp_path_factory.mktemp("opt")
    target = ["equiangular"] if command == "run" else ["--only", "equiangular"]
    _assert_one_line_exit_2(invoke(command, *target, option, value, "--out", str(out / "run")))


@settings(max_examples=40, deadline=None)
@given(name=st.one_of(JUNK, st.sampled_from(["equi", "Equiangular", "phase_diagram"])))
def test_unknown_experiment_names_exit_2(name):
    _assert_one_line_exit_2(invoke("run", name))
    _assert_one_line_exit_2(invoke("reproduce", "--only", f"equiangular,{name}" if name.strip() else ","))


BENCH_BAD = {
    "n": st.one_of(JUNK, st.sampled_from(["0", "-5", "nan"])),
    "beta": NON_FINITE,
    "dtype": st.sampled_from(["float16", "x"]),
    "cells": st.one_of(JUNK, st.sampled_from(["0", "-1"])),
}


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_bad_bench_parameters_exit_2(data):
    target = data.draw(st.sampled_from(["field", "meanfield", "nothing", ""]), label="target")
    key = data.draw(st.sampled_from(sorted(BENCH_BAD)), label="key")
    value = data.draw(BENCH_BAD[key], label="value")
    if target in ("field", "meanfield"):
        from tokenswarm.cli.bench import TARGETS

        if key not in {spec.name for spec in param_specs(TARGETS[target])}:
            value = "1"  # an unknown key is the mistake then
    _assert_one_line_exit_2(invoke("bench", target, "-p", f"{key}={value}"))


@settings(max_examples=30, deadline=None)
@given(path=st.sampled_from(["/nonexistent/model", "", "/proc/self", "/dev/null", "model\x1b[2J"]))
def test_bad_probe_paths_exit_2(path):
    _assert_one_line_exit_2(invoke("probe", path, "--text", "hello"))


# --------------------------------------------------------------------------------------
# Resource bombs: valid values whose cost is absurd are refused with the estimate
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "equiangular", "-p", "n=100000"], "of memory, more than the limit"),
        (["run", "phase-diagram", "--quick", "-p", "step=1e-300"], "steps, more than the limit"),
        (["run", "phase-diagram", "--quick", "-p", "t=0,1e9"], "steps, more than the limit"),
        (["run", "metastability", "--quick", "-p", "t=0,1e12"], "steps, more than the limit"),
        (["run", "two-token-sde", "--quick", "-p", "layers=1000000000"], "more than the limit of 1e+07 on counts"),
        (["run", "hybrid-threshold", "--quick", "-p", "layers=1000000000"], "more than the limit of 1e+07 on counts"),
        (["run", "information-flow", "--quick", "-p", "fit_steps=100000000"], "more than the limit of 1e+07 on counts"),
        (["run", "energy", "--quick", "-p", "step=1e-7", "-p", "t_max=10"], "steps, more than the limit"),
        (["run", "mean-field", "--quick", "-p", "t_max=1e12"], "steps, more than the limit"),
        (["simulate", "--n", "10000000"], "of memory, more than the limit"),
        (["simulate", "--step", "1e-300"], "steps, more than the limit"),
        (["simulate", "--t", "1e9"], "steps, more than the limit"),
    ],
)
def test_resource_bombs_are_refused_with_the_estimate(args, fragment, tmp_path):
    result = invoke(*args, "--out", str(tmp_path / "run"))
    _assert_one_line_exit_2(result)
    assert fragment in result.stderr and "--force" in result.stderr


def test_force_lifts_the_step_limit_but_the_estimate_is_still_made():
    with budget.forced():
        budget.check_steps(math.inf, "anything")
        budget.check_memory(1e30, "anything")
    with pytest.raises(budget.ResourceLimitError, match="more than the limit of 1e\\+07"):
        budget.check_steps(budget.STEP_LIMIT + 1, "one step too many")
    budget.check_steps(budget.STEP_LIMIT, "exactly the limit")


def test_memory_limit_is_a_fraction_of_what_is_available():
    available = budget.available_memory()
    assert available > 0
    budget.check_memory(0.5 * budget.MEMORY_FRACTION * available, "half the limit")
    with pytest.raises(budget.ResourceLimitError, match="available on cpu"):
        budget.check_memory(1.01 * available, "more than is available")


def test_output_parameter_of_probe_names_missing_tokenizer(tmp_path: pathlib.Path):
    # a folder with only config.json: the first missing piece is named
    (tmp_path / "config.json").write_text("{}")
    result = invoke("probe", str(tmp_path), "--text", "hi")
    _assert_one_line_exit_2(result)
    assert "no weights" in result.stderr


def test_library_loops_estimate_their_steps_before_running():
    import torch

    from tokenswarm.fields import Attention
    from tokenswarm.nets import HybridTransformer, RandomMLPTransformer
    from tokenswarm.solve import integrate
    from tokenswarm.sphere import sample_uniform

    too_many = budget.STEP_LIMIT + 1
    for network in (HybridTransformer, RandomMLPTransformer):
        with pytest.raises(budget.ResourceLimitError, match="a network of"):
            network(too_many)
    x0 = sample_uniform(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(budget.ResourceLimitError, match="steps, more than the limit"):
        integrate(Attention(1.0), x0, [0.0, 1.0], step=1e-8)
    with budget.forced():  # the estimate no longer refuses; one step shows the loop starts
        assert integrate(Attention(1.0), x0, [0.0, 1e-8], step=1e-8).steps == 1


@pytest.mark.parametrize(("name", "spec"), [case for case in CASES if int in case[1].alternatives],
                         ids=lambda value: getattr(value, "name", value))
def test_every_count_parameter_refuses_a_billion_before_running(name, spec, tmp_path):
    result = invoke("run", name, "--quick", "-p", f"{spec.name}=1000000000", "--out", str(tmp_path / "run"))
    _assert_one_line_exit_2(result)
    assert not (tmp_path / "run").exists()


def test_force_also_lifts_the_solvers_own_step_cap(monkeypatch):
    import torch

    from tokenswarm.fields import Attention
    from tokenswarm.solve import RK4, DormandPrince, integrate, ode
    from tokenswarm.sphere import sample_uniform

    monkeypatch.setattr(budget, "STEP_LIMIT", 5)
    monkeypatch.setattr(ode, "STEP_LIMIT", 5)
    x0 = sample_uniform(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(budget.ResourceLimitError):
        integrate(Attention(1.0), x0, [0.0, 1.0], RK4(step=0.1))  # 10 steps, refused up front
    with pytest.raises(budget.ResourceLimitError, match="max_steps = 5"):
        integrate(Attention(1.0), x0, [0.0, 10.0], DormandPrince(rtol=1e-10, atol=1e-12))
    with budget.forced():  # --force: neither the estimate nor the loop's default cap stops it
        assert integrate(Attention(1.0), x0, [0.0, 1.0], RK4(step=0.1)).steps == 10
        assert integrate(Attention(1.0), x0, [0.0, 10.0], DormandPrince(rtol=1e-10, atol=1e-12)).steps > 5
