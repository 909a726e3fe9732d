"""Fixed steps beyond a scheme's stability limit are refused, with the limit (issue 14 §6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokenswarm.fields import Attention
from tokenswarm.solve import RK4, Euler, integrate
from tokenswarm.solve.stability import UnstableStepError, largest_stable_step, spectral_radius
from tokenswarm.sphere import sample_uniform


def _start(n=4, d=3, batch=1, seed=1):
    return sample_uniform(n, d, batch, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("model,beta", [("sa", 1.0), ("usa", 4.0)])
def test_the_spectral_radius_is_that_of_the_exact_jacobian(model, beta):
    field, x = Attention(beta, normalization=model), _start()
    jacobian = torch.autograd.functional.jacobian(lambda y: field.velocity(0.0, y), x).reshape(x.numel(), x.numel())
    tokens, d = x.reshape(-1, x.shape[-1]).numpy(), x.shape[-1]
    projector = np.zeros((x.numel(), x.numel()))  # blockdiag(I - x_i x_iᵀ): motion along the sphere only
    for i, token in enumerate(tokens):
        projector[d * i:d * (i + 1), d * i:d * (i + 1)] = np.eye(d) - np.outer(token, token)
    exact = float(np.abs(np.linalg.eigvals(projector @ jacobian.numpy() @ projector)).max())
    assert spectral_radius(field, 0.0, x, iterations=200) == pytest.approx(exact, rel=0.05)


def test_a_step_beyond_the_limit_is_refused_and_one_below_runs():
    field, x = Attention(4.0, normalization="usa"), _start(n=8, batch=2)
    limit = largest_stable_step(field, 0.0, x, RK4(step=0.01))
    assert 0.01 < limit < 1.0  # USA at beta = 4: a spectral radius of about 14
    with pytest.raises(UnstableStepError, match=f"largest stable step at t = 0 is about {limit:.3g}"):
        integrate(field, x, [0.0, 1.0], RK4(step=2 * limit))
    assert torch.isfinite(integrate(field, x, [0.0, 1.0], RK4(step=limit / 2)).final).all()
    # Euler's region is smaller than RK4's: its limit is 2 / 2.785 of RK4's
    assert largest_stable_step(field, 0.0, x, Euler(step=0.01)) == pytest.approx(limit * 2 / 2.785, rel=1e-12)


def test_the_command_line_names_the_largest_stable_step(tmp_path):
    from typer.testing import CliRunner

    from tokenswarm import cli

    outcome = CliRunner().invoke(cli.app, ["run", "energy", "--quick", "-p", "model=usa", "-p", "beta=4", "-p", "step=0.1",
                                           "--out", str(tmp_path / "run")])
    assert outcome.exit_code == 2
    assert "step 0.1 is unstable for rk4" in outcome.output and "largest stable step" in outcome.output
