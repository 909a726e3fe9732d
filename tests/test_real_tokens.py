"""The fitting helpers of the ``real-tokens`` experiment, on data whose answer is known.

The synthetic "model" is the SA flow itself, integrated by an independent scheme (adaptive
Dormand–Prince at tight tolerance) from random tokens, at a beta and layer times that lie
off the fit's grids: the fit (RK4 on a geometric time grid) must recover them to within the
grid resolution.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from tokenswarm.experiments.real_tokens import (
    evaluate_flow,
    fit_flow,
    monotone_assignment,
    pair_cosines,
    time_grid,
    w1_matrix,
    wasserstein1,
)
from tokenswarm.fields import Attention
from tokenswarm.solve import integrate
from tokenswarm.sphere import sample_uniform

TRUE_BETA = 2.7
TRUE_TIMES = [0.35, 0.8, 1.5, 2.6]


pytestmark = pytest.mark.usefixtures("one_thread")


def _synthetic_layers(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    starts = [sample_uniform(n, 8, generator=generator, dtype=torch.float64) for n in (8, 10, 12, 9, 11)]
    layers = []
    for x0 in starts:
        trajectory = integrate(Attention(TRUE_BETA), x0, [0.0, *TRUE_TIMES], method="dopri5", rtol=1e-9, atol=1e-11)
        layers.append(trajectory.states)  # (L + 1, n, d)
    pooled = torch.cat([pair_cosines(states) for states in layers], -1).numpy()
    return starts, layers, pooled


def test_fit_recovers_beta_and_times_of_a_synthetic_flow():
    starts, _, pooled = _synthetic_layers()
    betas = np.arange(1.0, 4.51, 0.5)
    times = time_grid(0.02, 5.0, 61)  # consecutive grid times differ by 9.6 %
    fit = fit_flow(pooled, starts, betas, times, step=0.05, stop_margin=0.2)
    assert abs(fit.beta - TRUE_BETA) <= 0.5  # the grid spacing
    np.testing.assert_allclose(fit.times, TRUE_TIMES, rtol=0.15)
    assert np.all(np.diff(fit.times) >= 0)
    static = np.mean([wasserstein1(pooled[l], pooled[0]) for l in range(1, len(TRUE_TIMES) + 1)])
    assert fit.objective < 0.03 and static > 0.1  # a close fit, and the layers really moved
    # The objective is clearly worse at the ends of the beta grid, far from the truth.
    assert fit.objective_by_beta[0] > 2 * fit.objective and fit.objective_by_beta[-1] > 2 * fit.objective


def test_evaluate_flow_reproduces_the_generating_states():
    starts, layers, _ = _synthetic_layers(seed=1)
    flows = evaluate_flow(starts, TRUE_BETA, TRUE_TIMES, step=0.01)
    for flow, states in zip(flows, layers):
        assert flow.shape == states.shape
        torch.testing.assert_close(flow, states, atol=1e-7, rtol=0)
    # repeated layer times are allowed (a layer that does not move the tokens)
    repeated = evaluate_flow(starts[:1], 1.0, [0.5, 0.5, 1.0], step=0.05)[0]
    torch.testing.assert_close(repeated[1], repeated[2], atol=0, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_monotone_assignment_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    cost = rng.random((3, 6))
    best = min(
        (path for path in itertools.product(range(6), repeat=3) if list(path) == sorted(path)),
        key=lambda path: sum(cost[l, k] for l, k in enumerate(path)),
    )
    assert tuple(monotone_assignment(cost)) == best


def test_wasserstein_helpers_against_scipy():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=200), rng.normal(0.3, 2.0, size=200), rng.normal(size=150)
    assert wasserstein1(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    assert wasserstein1(a, c) == pytest.approx(wasserstein_distance(a, c), rel=1e-12)
    flow = np.sort(np.stack([b, a, np.full(200, np.nan)]), axis=-1)
    matrix = w1_matrix(np.sort(a)[None], flow)
    assert matrix[0, 1] == 0.0 and matrix[0, 0] == pytest.approx(wasserstein_distance(a, b)) and matrix[0, 2] == np.inf


def test_time_grid():
    grid = time_grid(0.01, 10.0, 5)
    assert grid[0] == 0.0 and grid[1] == pytest.approx(0.01) and grid[-1] == pytest.approx(10.0)
    assert np.allclose(grid[2:] / grid[1:-1], grid[2] / grid[1])
    with pytest.raises(ValueError):
        time_grid(1.0, 0.5, 5)
