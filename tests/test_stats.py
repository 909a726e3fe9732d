"""Shared statistical summaries."""

import math

import numpy as np
import pytest
import torch

from tokenswarm.stats import loglog_slope, mean_se


def test_loglog_slope_of_an_exact_power_law_and_its_standard_error():
    x = np.array([10.0, 100.0, 1000.0, 10000.0])
    slope, se = loglog_slope(x, 3.0 * x**-0.5)
    assert slope == pytest.approx(-0.5, abs=1e-12) and se < 1e-12
    noisy = 3.0 * x**-0.5 * np.exp([0.1, -0.1, 0.1, -0.1])
    slope, se = loglog_slope(x, noisy)
    # against the textbook formula computed independently with numpy's covariance
    cov = np.polyfit(np.log(x), np.log(noisy), 1, cov="unscaled")[1]
    residual = np.log(noisy) - np.polyval(np.polyfit(np.log(x), np.log(noisy), 1), np.log(x))
    assert se == pytest.approx(math.sqrt(cov[0, 0] * (residual**2).sum() / 2), rel=1e-10)
    assert math.isnan(loglog_slope([1.0, 2.0], [1.0, 4.0])[1])
    with pytest.raises(ValueError):
        loglog_slope([1.0], [1.0])


def test_mean_se_on_arrays_and_tensors():
    assert mean_se([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, np.std([1, 2, 3, 4], ddof=1) / 2))
    assert mean_se(torch.tensor([[1.0, 3.0]])) == pytest.approx((2.0, 1.0))
    assert math.isnan(mean_se([5.0])[1])


def test_t_interval_is_wider_than_gaussian_for_few_draws():
    from tokenswarm.stats import t_interval
    low, high = t_interval(0.0, 1.0, dof=2)
    assert high == pytest.approx(4.302652729911275, rel=1e-9)  # t_{2, 0.975}
    low, high = t_interval(0.0, 1.0, dof=10_000)
    assert high == pytest.approx(1.96, abs=1e-3)


def test_slope_over_draws_recovers_the_exponent_and_its_scatter():
    from tokenswarm.stats import slope_over_draws
    rng = np.random.default_rng(0)
    x = np.array([10.0, 20.0, 40.0, 80.0])
    y = x[None, :] ** -0.5 * np.exp(0.05 * rng.standard_normal((200, 4)))
    slope, se, dof = slope_over_draws(x, y)
    assert dof == 199
    assert abs(slope + 0.5) < 4 * se and 0.0 < se < 0.01


@pytest.mark.parametrize("estimate, se, expected", [
    (-0.50, 0.01, "pass"),          # interval well inside [-0.6, -0.4]
    (-0.80, 0.01, "fail"),          # interval well outside
    (-0.58, 0.05, "inconclusive"),  # straddles the edge at -0.6
])
def test_equivalence_decides_three_ways(estimate, se, expected):
    from tokenswarm.stats import equivalence
    decision = equivalence(estimate, se, dof=20, target=-0.5, tolerance=0.1)
    assert decision.status == expected
    assert decision.passed == {"pass": True, "fail": False, "inconclusive": None}[expected]


def test_slope_of_means_propagates_the_monte_carlo_error():
    from tokenswarm.stats import loglog_slope_of_means
    rng = np.random.default_rng(1)
    x = np.array([100.0, 400.0, 1600.0])
    slopes, ses = [], []
    for _ in range(400):  # the propagated s.e. matches the scatter of the slope over repetitions
        draws = x[:, None] ** -0.5 * (1 + 0.2 * rng.standard_normal((3, 50)))
        slope, se, dof = loglog_slope_of_means(x, draws)
        slopes.append(slope)
        ses.append(se)
    assert dof == 3 * 49
    assert abs(np.mean(slopes) + 0.5) < 0.01
    assert np.std(slopes) == pytest.approx(np.mean(ses), rel=0.15)
