"""Finite-depth extrapolation of the hybrid-threshold experiment."""

from __future__ import annotations

import numpy as np
import pytest

from tokenswarm.experiments import load_all, run_experiment
from tokenswarm.experiments.hybrid_threshold import bias_exponent, richardson_weights

load_all()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("power", "scale"), [(0.5, 1.0), (1.0, 30.0)])
def test_richardson_weights_recover_the_limit(power, scale):
    depths = [250, 500, 1000]
    # scale keeps both bias terms O(0.1) at L = 250 whatever the power.
    f = lambda L: 0.37 + 0.8 * scale * L**-power - 5.0 * scale**2 * L ** (-2 * power)  # noqa: E731
    weights = richardson_weights(depths, power)
    assert weights @ [f(L) for L in depths] == pytest.approx(0.37, abs=1e-12)
    assert weights.sum() == pytest.approx(1.0)
    # With the wrong power the same data do not extrapolate to the limit.
    wrong = richardson_weights(depths, 1.5 - power)
    assert abs(wrong @ [f(L) for L in depths] - 0.37) > 1e-3
    assert richardson_weights([1000], power).tolist() == [1.0]


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_bias_exponent_recovers_the_power(power):
    rng = np.random.default_rng(3)
    depths = np.array([250, 500, 1000])
    cases, runs = 4, 20_000
    shift = np.array([40.0, -25.0, 60.0, 10.0])[:, None]  # per-case c in f(L) = f_inf + c L^-p, both signs
    noise = rng.normal(size=(cases, runs))  # common to all depths, as with coupled noise
    outcomes = np.stack([0.3 + shift * L**-power / 1000**-power * 0.01 + 0.05 * noise
                         + 0.002 * rng.normal(size=(cases, runs)) for L in depths])
    exponent, se = bias_exponent(outcomes)
    assert 0 < se < 0.1
    assert abs(exponent - power) < 4 * se


@pytest.mark.slow
def test_beta_two_claims_hold_with_depth_extrapolation(tmp_path):
    # At beta = 2 a single depth L = 1000 misses the exact antipodal fractions by ~0.1 at eps ~ 0.9.
    overrides = dict(beta=2.0, eps=[0.45, 0.6, 0.9, 1.1], runs=500)
    result, _ = run_experiment("hybrid-threshold", overrides, quick=False, seed=0, out_dir=tmp_path)
    failed = [(c.name, c.measured, c.detail) for c in result.claims if not c.passed]
    assert not failed
    exact = np.asarray(result.metrics["exact_antipodal_fraction"])
    by_depth = np.asarray(result.metrics["antipodal_fraction_by_depth"])
    assert np.allclose(np.asarray(result.metrics["bias_by_depth"]), by_depth - exact)
    # The shallowest depth is visibly biased at eps = 0.9: the extrapolation has something to remove.
    assert by_depth[0, 2] - exact[2] > 0.1


def test_artanh_inner_is_finite_at_exact_collapse():
    import torch

    from tokenswarm.experiments.hybrid_threshold import artanh_inner
    from tokenswarm.sphere import token_pair

    x = torch.stack([token_pair(1.0, 2), token_pair(-1.0, 2), token_pair(0.5, 2)])
    z = artanh_inner(x)
    assert torch.isfinite(z).all()
    assert z[0] > 30 and z[1] < -30 and z[2].item() == pytest.approx(np.arctanh(0.5), rel=1e-12)
