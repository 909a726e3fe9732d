"""Rate fitting of the synchronization experiment near the rounding floor (d = 128, sigmoid)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm.experiments import load_all, run_experiment
from tokenswarm.experiments.synchronization import fit_decay_rate, resolution_floor

load_all()
pytestmark = pytest.mark.usefixtures("one_thread")


def test_rate_fit_ignores_the_rounding_floor():
    # Exponential decay at rate -40 from E_0 = 0.8 until the float64 floor (~1e-32), where rounding noise
    # takes over: a fit through [T/2, T] sees only the floor and returns a slope near 0.
    times = np.linspace(0.0, 5.0, 151)
    rng = np.random.default_rng(1)
    floor_noise = 1e-32 * (1 + 0.5 * rng.random(times.size))
    energy = np.maximum(0.8 * np.exp(-40.0 * times), floor_noise)
    late = times >= 2.5
    floor_slope = np.polyfit(times[late], np.log(energy[late]), 1)[0]
    assert abs(floor_slope) < 1.0  # what the old fit measured

    fit = fit_decay_rate(times, energy, resolution_floor(torch.float64))
    assert fit.rate == pytest.approx(-40.0, rel=1e-9)
    assert energy[times == fit.t_stop][0] > resolution_floor(torch.float64) * energy[0]
    assert fit.t_stop < 2.5 and fit.t_start == pytest.approx(fit.t_stop / 2, abs=times[1])


def test_rate_fit_keeps_late_half_when_resolved_and_reports_missing_rates():
    times = np.linspace(0.0, 5.0, 151)
    energy = 0.8 * np.exp(-0.3 * times) * (1 + 0.01 * np.sin(7 * times))
    fit = fit_decay_rate(times, energy, resolution_floor(torch.float64))
    late = times >= 2.5
    assert (fit.t_start, fit.t_stop, fit.points) == (2.5, 5.0, int(late.sum()))
    assert fit.rate == np.polyfit(times[late], np.log(energy[late]), 1)[0]
    # Collapse within three layers: too few resolved points for a rate, reported as NaN.
    collapsed = np.where(times < 0.1, 0.8 * np.exp(-300 * times), 0.0)
    short = fit_decay_rate(times, collapsed, resolution_floor(torch.float64))
    assert math.isnan(short.rate) and short.points < 5


def test_ordering_at_d128_measures_the_dynamics_not_the_floor(tmp_path):
    overrides = dict(n=16, runs=2, width=128, layers=90, d=[128], bias=[0.1], activation=["sigmoid", "relu"],
                     odd_layers=40)
    result, _ = run_experiment("synchronization", overrides, quick=True, seed=0, out_dir=tmp_path)
    rows = {(r["activation"], r["attention"]): r for r in result.metrics["table"]}
    # Sigmoid reaches the float64 floor within T; its window must end where the energy is resolved.
    assert all(rows[("sigmoid", s)]["fit_t_stop"] < 5.0 for s in (1.0, 0.0, -1.0))
    # Thm 1.4: d/dt E[E] <= λ̄' E[E] for attention 0 and +1, so no fitted slope can be much above λ̄'
    # (a slope through the floor is near 0, far above λ̄' ≈ -10 for sigmoid).
    for attention in (1.0, 0.0):
        row = rows[("sigmoid", attention)]
        assert row["rate"] < row["lambda_bar_prime"] + 1.0
    ordering = next(c for c in result.claims if c.name.startswith("attractive attention"))
    expected = np.mean([rows[(a, 1.0)]["rate"] <= rows[(a, 0.0)]["rate"] <= rows[(a, -1.0)]["rate"]
                        for a in ("sigmoid", "relu")])
    assert ordering.measured == expected
    assert ordering.passed, ordering.detail


@pytest.mark.parametrize("width", [1.0, 1e-4, 1e-8])
def test_paper_energy_keeps_its_relative_accuracy_near_collapse(width):
    """The centred Gram product gives the squared distances of the (n, n, d) differences to
    round-off relative to the energy itself, however tight the cluster (two antipodal
    clusters included), where 1 - <x_i, x_j> would lose everything below eps."""
    from tokenswarm.experiments.synchronization import paper_energy

    generator = torch.Generator().manual_seed(3)
    centre = torch.nn.functional.normalize(torch.randn(2, 1, 16, generator=generator, dtype=torch.float64), dim=-1)
    x = torch.nn.functional.normalize(centre + width * torch.randn(2, 12, 16, generator=generator, dtype=torch.float64), dim=-1)
    x[1, :6] *= -1  # the second system: two antipodal clusters
    beta = 2.0
    squared = (x.unsqueeze(-2) - x.unsqueeze(-3)).pow(2).sum(-1)
    direct = (-0.5 * math.exp(beta) * torch.expm1(-0.5 * beta * squared)).mean(dim=(-2, -1))
    assert torch.allclose(paper_energy(x, beta), direct, rtol=1e-12, atol=0.0)
