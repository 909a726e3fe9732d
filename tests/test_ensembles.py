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


@pytest.mark.parametrize("scheme", ["authors", "accurate"])
@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("n, d", [(6, 16), (5, 3)])
def test_attention_ensemble_matches_integrate(scheme, model, n, d):
    from tokenswarm.ensembles import SCHEMES
    from tokenswarm.fields import Attention
    from tokenswarm.solve import integrate
    from tokenswarm.ensembles.engine import AttentionEnsemble
    from tokenswarm.sphere import sample_uniform, span_basis

    beta = 0.7 if model == "usa" else 3.0
    solver = SCHEMES[scheme](step=0.1)
    x0 = sample_uniform(n, d, 7, generator=torch.Generator().manual_seed(1))
    times = [0.0, 0.15, 0.3, 2.0]
    reference = integrate(Attention(beta, normalization=model), x0, times, solver=solver, span_reduction=False).states
    basis = span_basis(x0) if d > n else None
    ensemble = AttentionEnsemble(x0 @ basis if d > n else x0, beta, normalization=model, solver=solver)
    for k, (t0, t1) in enumerate(zip(times[:-1], times[1:]), start=1):
        ensemble.advance_by(t1 - t0)
        state = ensemble.x @ basis.mT if d > n else ensemble.x
        assert (state - reference[k]).abs().max() < 1e-13


def test_attention_ensemble_shifts_large_logits():
    from tokenswarm.solve import Authors
    from tokenswarm.ensembles.engine import AttentionEnsemble

    x = torch.nn.functional.normalize(torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64), dim=-1)
    ensemble = AttentionEnsemble(x, 500.0, normalization="sa", solver=Authors(step=0.1))
    ensemble.advance_by(1.0)  # exp(500) overflows without the max shift
    assert bool(ensemble.all_finite())


def test_clustered_fraction_does_not_depend_on_pieces_or_workers():
    args = (6, 8, np.array([1.0, 3.0]), np.array([0.0, 1.0, 4.0]), 48)
    options = dict(scheme="authors", step=0.1, model="sa", dtype=torch.float64, device=torch.device("cpu"), progress=False)
    one = clustered_fraction(*args, generator=torch.Generator().manual_seed(3), systems_per_piece=48, workers=1, **options)
    many = clustered_fraction(*args, generator=torch.Generator().manual_seed(3), systems_per_piece=16, workers=2, **options)
    assert np.allclose(one[0], many[0], rtol=0, atol=1e-15) and np.allclose(one[1], many[1], rtol=0, atol=1e-15)
    assert one[0][:, -1].max() > 0  # something clustered: the comparison is not between zeros
