"""Common noise, SDE schemes on the sphere and the random-init networks built on them."""

from __future__ import annotations

import math

import pytest
import torch

from tokenswarm.fields import Attention
from tokenswarm.nets import (
    HybridTransformer,
    RandomMLPTransformer,
    ValueNoiseTransformer,
)
from tokenswarm.noise import BrownianPath, FieldNoise, ScalarNoise, ValueNoise
from tokenswarm.solve import integrate
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import project, sample_uniform, span_basis, token_pair

DOUBLE = torch.float64


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def two_tokens(rho: float, d: int, batch=()):
    return token_pair(rho, d, batch)


@pytest.mark.parametrize("method,split", [("euler", False), ("euler", True), ("heun", False)])
@pytest.mark.parametrize("noise_kind", ["value", "value-low-rank", "field", "scalar"])
def test_every_scheme_stays_on_the_sphere(method, split, noise_kind):
    x0 = sample_uniform(5, 7, 3, generator=generator(1))
    noise = {
        "value": ValueNoise(beta=2.0, sigma2=0.5),
        "value-low-rank": ValueNoise(beta=2.0, sigma2=0.5, low_rank=True),
        "field": FieldNoise.draw((3,), 7, 16, activation="tanh", sigma_u=0.1, sigma_w=0.1, generator=generator(2)),
        "scalar": ScalarNoise(beta=1.0, eps=0.7),
    }[noise_kind]
    traj = integrate_sde(Attention(1.0), noise, x0, 2.0, 50, method=method, split=split, generator=generator(3),
                         save_every=5)
    assert traj.states.shape == (11, 3, 5, 7)
    assert (traj.states.norm(dim=-1) - 1).abs().max() < 1e-14


def test_network_is_euler_maruyama_on_shared_increments():
    x0 = sample_uniform(3, 5, 4, generator=generator(4))
    layers = 32
    path = BrownianPath((4,), (5, 5), 1.5, layers, generator=generator(5))
    network = ValueNoiseTransformer(layers, beta=1.3, sigma2=0.7, t_max=1.5)(x0, increments=path.increments())
    sde = integrate_sde(None, ValueNoise(beta=1.3, sigma2=0.7), x0, 1.5, layers, increments=path.increments()).final
    torch.testing.assert_close(network, sde, rtol=0, atol=1e-14)


def test_brownian_path_nests():
    path = BrownianPath((2000,), (3,), 2.0, 64, generator=generator(6))
    coarse = path.increments(8)
    torch.testing.assert_close(coarse.sum(0), path.fine.sum(0))
    torch.testing.assert_close(coarse[1], path.fine[8:16].sum(0))
    # Coarse increments have variance dt = 2/8 (5 standard errors of a variance estimate).
    variance = coarse.var()
    assert abs(variance - 0.25) < 5 * 0.25 * math.sqrt(2 / coarse.numel())
    with pytest.raises(ValueError, match="divide"):
        path.increments(5)


def test_low_rank_value_noise_is_the_full_noise_on_the_span():
    x = sample_uniform(3, 8, 2, generator=generator(7))
    low = ValueNoise(beta=1.5, sigma2=0.3, low_rank=True)
    full = ValueNoise(beta=1.5, sigma2=0.3)
    dW_low = torch.randn(2, 8, 3, generator=generator(8), dtype=DOUBLE)
    U = span_basis(x)
    dW_full = dW_low @ U.mT  # a full matrix acting on the span exactly like dW_low
    torch.testing.assert_close(low.apply(0.0, x, dW_low), full.apply(0.0, x, dW_full), rtol=0, atol=1e-14)


def test_span_basis_orthonormal_and_spanning():
    x = sample_uniform(4, 9, 5, generator=generator(9))
    U = span_basis(x)
    torch.testing.assert_close(U.mT @ U, torch.eye(4, dtype=DOUBLE).expand(5, 4, 4), rtol=0, atol=1e-14)
    torch.testing.assert_close(x @ U @ U.mT, x, rtol=0, atol=1e-14)


def test_ito_drift_of_one_value_noise_layer():
    """Monte Carlo over one layer: E[x' - x]/h -> -(sigma2 (d-1)/2)|y|² x, no tangential drift."""
    d, h, sigma2, samples = 5, 1e-3, 0.8, 200_000
    x = two_tokens(0.4, d).expand(samples, 2, d)
    noise = ValueNoise(beta=1.0, sigma2=sigma2)
    dW = noise.sample((samples,), 2, d, h, generator=generator(10))
    step = integrate_sde(None, noise, x, h, 1, increments=dW.unsqueeze(0)).final - x
    mean, error = step.mean(0) / h, step.std(0) / h / math.sqrt(samples)
    y = Attention(1.0).output(0.0, x[0])
    expected = -(sigma2 * (d - 1) / 2) * (y * y).sum(-1, keepdim=True) * x[0]
    # The O(h) remainder of the retraction expansion is ~1e-3 here, well under 5 s.e.
    assert ((mean - expected).abs() <= 5 * error + 1e-3).all()


def test_stratonovich_and_ito_agree_for_the_mlp_field():
    """docs/theory/random_mlp.md §3.2: for the random-MLP field the Itô and Stratonovich SDEs coincide."""
    x0 = sample_uniform(3, 4, 200, generator=generator(11))
    noise = FieldNoise.draw((200,), 4, 32, activation="tanh", sigma_u=0.1, sigma_w=0.1, generator=generator(12))
    path = BrownianPath((200,), noise.shape(3, 4), 1.0, 1024, generator=generator(13))
    reference = integrate_sde(Attention(1.0), noise, x0, 1.0, 1024, method="heun", increments=path.increments()).final
    errors = []
    for steps in (16, 64):
        x = integrate_sde(Attention(1.0), noise, x0, 1.0, steps, method="euler", increments=path.increments(steps)).final
        errors.append(float(((x - reference) ** 2).sum(-1).mean()))
    assert errors[1] < errors[0] / 2.5  # mean-square error ~ 1/L: a factor 4 expected


def test_heun_solves_a_different_sde_for_value_noise():
    """docs/theory/common_noise.md §1.4 'Stratonovich trap': Heun on P⊥ ∘ dW y converges elsewhere than Itô."""
    runs, d = 4000, 4
    x0 = two_tokens(0.2, d, (runs,))
    path = BrownianPath((runs,), (d, d), 1.0, 256, generator=generator(14))
    noise = ValueNoise(beta=0.0, sigma2=1.0)

    def mean_rho(method):
        x = integrate_sde(None, noise, x0, 1.0, 256, method=method, increments=path.increments()).final
        return (x[..., 0, :] * x[..., 1, :]).sum(-1).mean()

    assert abs(mean_rho("heun") - mean_rho("euler")) > 0.02


def test_hybrid_and_scalar_noise():
    x = sample_uniform(2, 3, 4, generator=generator(15))
    noise = ScalarNoise(beta=2.0, eps=0.5)
    dW = noise.sample((4,), 2, 3, 0.01, generator=generator(16))
    expected = 0.5 * dW * Attention(2.0, normalization="usa").output(0.0, x)
    torch.testing.assert_close(noise.apply(0.0, x, dW), expected)
    out = HybridTransformer(10, beta=2.0, eps=0.5)(x, generator(17))
    assert (out.norm(dim=-1) - 1).abs().max() < 1e-14


def test_noise_free_networks_reduce_to_the_deterministic_flow():
    x0 = sample_uniform(6, 4, 2, generator=generator(18))
    assert torch.equal(ValueNoiseTransformer(8, deterministic=True)(x0), x0)
    net = RandomMLPTransformer(20, beta=1.5, t_max=2.0, deterministic=True)
    expected = integrate(Attention(1.5), x0, [0.0, 2.0], method="euler", step=0.1).final
    torch.testing.assert_close(net(x0), expected, rtol=0, atol=1e-14)


def test_random_mlp_network_runs_and_is_seeded():
    x0 = sample_uniform(4, 5, 3, generator=generator(19))
    net = RandomMLPTransformer(10, width=32, activation="silu", sigma_u=0.1, sigma_w=0.1, attention_sign=-1)
    a, b = net(x0, generator(20)), net(x0, generator(20))
    assert torch.equal(a, b)
    assert not torch.equal(a, net(x0, generator(21)))
    assert (a.norm(dim=-1) - 1).abs().max() < 1e-14


def test_field_noise_covariance_is_the_feature_kernel():
    noise = FieldNoise.draw((), 6, 50, activation="relu", sigma_u=0.2, sigma_w=0.3, generator=generator(22))
    x = sample_uniform(2, 6, generator=generator(23))
    phi = noise.features(x)  # (2, M)
    kernel = phi @ phi.mT + 0.3**2
    samples = 100_000
    dW = noise.sample((samples,), 2, 6, 1.0, generator=generator(24))
    w = noise.apply(0.0, x.expand(samples, 2, 6), dW)  # (samples, 2, 6)
    empirical = torch.einsum("sia,sja->ij", w, w) / (samples * 6)
    assert (empirical - kernel).abs().max() < 5 * kernel.abs().max() * math.sqrt(2 / (samples * 6)) + 1e-3


def test_sde_argument_errors():
    x0 = sample_uniform(2, 3)
    with pytest.raises(ValueError, match="method"):
        integrate_sde(None, ValueNoise(), x0, 1.0, 10, method="milstein")
    with pytest.raises(ValueError, match="steps"):
        integrate_sde(None, ValueNoise(), x0, 1.0, 0)
    with pytest.raises(ValueError, match="increments"):
        integrate_sde(None, ValueNoise(), x0, 1.0, 10, increments=torch.zeros(5, 3, 3, dtype=DOUBLE))
    with pytest.raises(ValueError, match="sigma2"):
        ValueNoise(sigma2=0.0)
    assert project(x0, x0).abs().max() < 1e-15


def test_token_pair_has_the_requested_inner_product():
    x = token_pair(-0.3, 5, (2, 3))
    assert x.shape == (2, 3, 2, 5)
    torch.testing.assert_close((x[..., 0, :] * x[..., 1, :]).sum(-1), torch.full((2, 3), -0.3, dtype=DOUBLE))
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-15
    with pytest.raises(ValueError, match="rho"):
        token_pair(1.5, 3)


def test_an_absurd_step_count_is_refused_before_any_loop_over_the_steps():
    """10^15 steps used to build a dict of every saved step before the budget check (a hang)."""
    from tokenswarm.runtime.budget import ResourceLimitError

    x0 = torch.nn.functional.normalize(torch.randn(4, 2, 6, dtype=torch.float64), dim=-1)
    with pytest.raises(ResourceLimitError, match="1e\\+15 steps"):
        integrate_sde(None, ValueNoise(beta=1.0, sigma2=1.0), x0, 1.0, 10**15)
