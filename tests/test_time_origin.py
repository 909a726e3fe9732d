"""Output times mean time since the initial state, everywhere a user gives a time list.

The library's ``integrate`` keeps its convention (``times[0]`` is the time of ``x0``)
unless ``t0`` is given; every experiment parameter that lists output times passes
``t0=0``, so ``t = 10,30`` reports the states at 10 and 30, the same values as the tail of
``t = 0,10,30`` with the same seed. A list that is not strictly increasing is refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokenswarm.experiments import load_all, run_experiment
from tokenswarm.fields import Attention
from tokenswarm.params import ParameterError
from tokenswarm.solve import integrate
from tokenswarm.sphere import sample_uniform

load_all()
pytestmark = pytest.mark.usefixtures("one_thread")


def _x0():
    return sample_uniform(8, 3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


@pytest.mark.parametrize("method", ["rk4", "authors", "euler"])
def test_integrate_from_t0_reports_exactly_the_requested_times(method):
    field = Attention(2.0)
    full = integrate(field, _x0(), [0.0, 1.0, 3.0], method=method, step=0.1)
    tail = integrate(field, _x0(), [1.0, 3.0], t0=0.0, method=method, step=0.1)
    assert tail.times.tolist() == [1.0, 3.0]
    assert torch.equal(tail.states, full.states[1:])
    # without t0 the library convention holds: the first time is the time of x0
    assert torch.equal(integrate(field, _x0(), [1.0, 3.0], method=method, step=0.1).states[0], _x0())


def test_integrate_t0_equal_to_first_time_keeps_the_initial_state():
    traj = integrate(Attention(1.0), _x0(), [0.0, 2.0], t0=0.0, step=0.1)
    assert torch.equal(traj.states[0], _x0())


def test_integrate_refuses_times_before_t0():
    with pytest.raises(ValueError, match="before the start time"):
        integrate(Attention(1.0), _x0(), [0.5, 1.0], t0=1.0, step=0.1)


def _tail_matches(name, key, variable, tmp_path, **overrides):
    """Run ``name`` with ``t = 0,a,b`` and with ``t = a,b``: the second must be the tail of the first."""
    data = {}
    for label, times in (("full", "0,5,10"), ("tail", "5,10")):
        result, _ = run_experiment(
            name, {**overrides, key: times}, quick=True, seed=5, out_dir=tmp_path / label, save=False
        )
        assert result.data["t"].values.tolist() == [float(v) for v in times.split(",")]
        data[label] = result.data[variable]
    full, tail = data["full"].isel(t=slice(1, None)).values, data["tail"].values
    np.testing.assert_array_equal(tail, full)
    return data


def test_phase_diagram_time_list_is_measured_from_zero(tmp_path):
    data = _tail_matches(
        "phase-diagram", "t", "fraction", tmp_path,
        runs=4, beta="1,4", d=8, compare_d="8", scheme="accurate", n=6,
    )
    # the state at t = 5 has clustered pairs; the uniform start at t = 0 has none
    assert float(data["tail"].isel(t=0).max()) > 0
    assert float(data["full"].isel(t=0).max()) == 0


def test_metastability_time_list_is_measured_from_zero(tmp_path):
    _tail_matches(
        "metastability", "t", "median_clusters", tmp_path,
        n=16, runs=3, beta="4", sweep_beta="4", sweep_runs=2, sweep_n=16,
    )


def test_random_weights_time_list_is_measured_from_zero(tmp_path):
    _tail_matches("random-weights", "t", "fraction", tmp_path, n=6, d=8, runs=3, beta="1,4", panels="a")


@pytest.mark.parametrize("experiment", ["phase-diagram", "metastability", "random-weights"])
@pytest.mark.parametrize("times, reason", [("0,30,10", "not sorted"), ("0,10,10", "repeats")])
def test_time_lists_must_increase(experiment, times, reason, tmp_path):
    with pytest.raises(ParameterError, match=reason):
        run_experiment(experiment, {"t": times}, quick=True, out_dir=tmp_path, save=False)
