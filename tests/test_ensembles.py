"""Library pieces shared by several experiments: ensembles of clustered fractions,
boundary times, outcome classification and the reference mean-field density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm.ensembles import boundary_times, clustered_fraction
from tokenswarm.meanfield import CircleGrid, three_bumps
from tokenswarm.metrics import OUTCOMES, classify_outcome

pytestmark = pytest.mark.usefixtures("one_thread")


def test_boundary_times_interpolates_the_first_crossing():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    fraction = np.array([[0.0, 0.25, 0.75, 1.0], [0.0, 0.1, 0.2, 0.3], [0.6, 0.7, 0.8, 0.9]])
    out = boundary_times(fraction, times)
    assert out[0] == pytest.approx(1.5)
    assert math.isnan(out[1])  # never reaches 0.5
    assert math.isnan(out[2])  # already above at the first time: no crossing observed


def test_clustered_fraction_limits_and_standard_error():
    generator = torch.Generator().manual_seed(0)
    mean, se = clustered_fraction(
        6, 8, np.array([1.0, 2.0]), np.array([0.0, 40.0]), 16, scheme="accurate", step=0.1, model="sa",
        generator=generator, dtype=torch.float64, device=torch.device("cpu"), progress=False,
    )
    assert mean.shape == se.shape == (2, 2)
    assert np.all(mean[:, 0] == 0)  # uniform tokens in d = 8 are never 1e-3 close
    assert np.all(mean[:, 1] == 1.0) and np.all(se[:, 1] == 0.0)  # every run has collapsed by t = 40


def _tokens(*rows):
    x = torch.tensor(rows, dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True)


def test_classify_outcome_on_known_configurations():
    one = _tokens([1, 0, 0], [1, 1e-3, 0], [1, 0, 1e-3])
    antipodal = _tokens([1, 0, 0], [1, 1e-3, 0], [-1, 0, 0])
    other = _tokens([1, 0, 0], [0, 1, 0], [0, 0, 1])
    codes = classify_outcome(torch.stack([one, antipodal, other]), 0.9)
    assert [OUTCOMES[c] for c in codes.tolist()] == ["one_cluster", "antipodal", "other"]


def test_three_bumps_is_a_probability_density():
    grid = CircleGrid(256)
    rho = three_bumps(grid)
    assert float(grid.mass(rho)) == pytest.approx(1.0, abs=1e-13)
    assert float(rho.min()) > 0
