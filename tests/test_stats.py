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
