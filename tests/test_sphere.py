"""Tests of tokenswarm.sphere against closed forms, explicit formulas and torch's norms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tokenswarm.sphere import (
    effective_beta,
    exp_map,
    geodesic_distance,
    inner,
    layer_norm_map,
    project,
    retract,
    rms_norm_map,
    sample_equiangular,
    sample_orthonormal,
    sample_uniform,
)

DOUBLE = torch.float64


def gaussian(*shape: int, seed: int = 0, dtype: torch.dtype = DOUBLE) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    z = gaussian(*shape, seed=seed)
    return z / z.norm(dim=-1, keepdim=True)


def gram(x: torch.Tensor) -> torch.Tensor:
    return x @ x.mT


# --------------------------------------------------------------------------- projection


def test_inner_keeps_axis_and_matches_sum():
    x, y = gaussian(3, 4, 5, seed=1), gaussian(3, 4, 5, seed=2)
    out = inner(x, y)
    assert out.shape == (3, 4, 1)
    expected = torch.einsum("bnd,bnd->bn", x, y)
    torch.testing.assert_close(out[..., 0], expected, rtol=0, atol=1e-14)


def test_project_is_tangent_idempotent_and_equals_matrix_form():
    x = unit(2, 6, 5, seed=3)
    v = gaussian(2, 6, 5, seed=4)
    p = project(x, v)
    # tangent
    assert (p * x).sum(-1).abs().max() < 1e-15
    # idempotent
    torch.testing.assert_close(project(x, p), p, rtol=0, atol=1e-15)
    # equals (I - x xᵀ) v written as an explicit matrix per token
    eye = torch.eye(5, dtype=DOUBLE)
    expected = torch.einsum("bnij,bnj->bni", eye - x[..., :, None] * x[..., None, :], v)
    torch.testing.assert_close(p, expected, rtol=0, atol=1e-14)
    # the normal part is removed, a tangent vector is untouched
    torch.testing.assert_close(project(x, 3.0 * x), torch.zeros_like(x), rtol=0, atol=1e-15)


def test_retract_gives_unit_norms_and_keeps_direction():
    scales = torch.logspace(-6, 6, 200, dtype=DOUBLE)[:, None]
    z = gaussian(200, 7, seed=5) * scales
    r = retract(z)
    assert (r.norm(dim=-1) - 1).abs().max() <= 1e-15
    # same direction: r is a positive multiple of z
    ratio = z / r
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-13, atol=0)
    assert (ratio[:, 0] > 0).all()
    # a unit vector is a fixed point
    x = unit(10, 4, seed=6)
    torch.testing.assert_close(retract(x), x, rtol=0, atol=2e-16)


# --------------------------------------------------------------------------- exp map / distance


def test_exp_map_zero_is_identity():
    x = unit(3, 5, 4, seed=7)
    assert torch.equal(exp_map(x, torch.zeros_like(x)), x)


def test_exp_map_closed_form_unit_norm_and_geodesic_distance():
    x = unit(400, 5, seed=8)
    direction = retract(project(x, gaussian(400, 5, seed=9)))
    lengths = torch.linspace(1e-6, math.pi - 1e-3, 400, dtype=DOUBLE)[:, None]
    v = lengths * direction
    y = exp_map(x, v)
    assert (y.norm(dim=-1) - 1).abs().max() < 1e-15 * 4
    expected = torch.cos(lengths) * x + torch.sin(lengths) * direction
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-15 * 4)
    torch.testing.assert_close(geodesic_distance(x, y), lengths[:, 0], rtol=1e-12, atol=1e-14)
    # the geodesic starts with velocity v: (exp(x, s v) - x)/s -> v
    s = 1e-7
    torch.testing.assert_close((exp_map(x, s * v) - x) / s, v, rtol=0, atol=1e-6)


def test_exp_map_tiny_vectors_are_first_order():
    x = unit(20, 3, seed=10)
    v = 1e-12 * project(x, gaussian(20, 3, seed=11))
    torch.testing.assert_close(exp_map(x, v), x + v, rtol=0, atol=1e-16)


def test_geodesic_distance_matches_arccos_and_special_points():
    x, y = unit(100, 6, seed=12), unit(100, 6, seed=13)
    d = geodesic_distance(x, y)
    torch.testing.assert_close(d, torch.arccos((x * y).sum(-1)), rtol=1e-12, atol=1e-12)
    assert geodesic_distance(x, x).abs().max() < 1e-15  # atan2 form: accurate at 0
    torch.testing.assert_close(geodesic_distance(x, -x), torch.full((100,), math.pi, dtype=DOUBLE))
    # symmetric
    torch.testing.assert_close(geodesic_distance(y, x), d, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- samplers


def test_sample_uniform_shape_norms_dtype():
    g = torch.Generator().manual_seed(0)
    x = sample_uniform(5, 3, (2, 4), generator=g)
    assert x.shape == (2, 4, 5, 3) and x.dtype == DOUBLE
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-15
    assert sample_uniform(5, 3, 7, generator=g).shape == (7, 5, 3)
    y = sample_uniform(4, 6, generator=g, dtype=torch.float32)
    assert y.dtype == torch.float32 and (y.norm(dim=-1) - 1).abs().max() < 1e-6


def test_sample_uniform_moments_within_five_standard_errors():
    """Mean 0 and E[x xᵀ] = I/d, tolerances 5 standard errors of the exact sampling laws.

    For x uniform on S^{d-1}: Var(x_a) = 1/d, E[x_a^4] = 3/(d(d+2)), E[x_a² x_b²] = 1/(d(d+2)).
    """
    d, count = 4, 40_000
    x = sample_uniform(count, d, generator=torch.Generator().manual_seed(123))
    mean = x.mean(0)
    se_mean = math.sqrt(1 / d / count)
    assert mean.abs().max() < 5 * se_mean
    second = x.mT @ x / count
    var_diag = 3 / (d * (d + 2)) - 1 / d**2
    var_off = 1 / (d * (d + 2))
    se = torch.full((d, d), math.sqrt(var_off / count), dtype=DOUBLE)
    se.diagonal().fill_(math.sqrt(var_diag / count))
    deviation = (second - torch.eye(d, dtype=DOUBLE) / d).abs()
    assert (deviation < 5 * se).all(), (deviation / se).max()


def test_sample_uniform_fourth_moment_matches_sphere_law():
    d, count = 4, 40_000
    x = sample_uniform(count, d, generator=torch.Generator().manual_seed(7))
    fourth = (x**4).mean(0)
    # Var(x_a^4) = E x^8 - (E x^4)^2, E x_a^8 = 105/(d(d+2)(d+4)(d+6))
    e4 = 3 / (d * (d + 2))
    e8 = 105 / (d * (d + 2) * (d + 4) * (d + 6))
    se = math.sqrt((e8 - e4**2) / count)
    assert ((fourth - e4).abs() < 5 * se).all()


def test_sample_uniform_reproducible_and_seed_dependent():
    a = sample_uniform(6, 5, 3, generator=torch.Generator().manual_seed(42))
    b = sample_uniform(6, 5, 3, generator=torch.Generator().manual_seed(42))
    c = sample_uniform(6, 5, 3, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0.1


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("rotate", [False, True])
def test_sample_equiangular_gram(rho, rotate):
    n, d = 5, 8
    x = sample_equiangular(n, d, rho, (2, 3), rotate=rotate, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, n, d)
    expected = (1 - rho) * torch.eye(n, dtype=DOUBLE) + rho * torch.ones(n, n, dtype=DOUBLE)
    torch.testing.assert_close(gram(x), expected.expand(2, 3, n, n), rtol=0, atol=1e-14)
    if rotate and rho < 1:
        # independent Haar rotations: systems differ from each other and from the plain sampler
        plain = sample_equiangular(n, d, rho)
        assert (x[0, 0] - plain).abs().max() > 1e-3
        assert (x[0, 0] - x[1, 2]).abs().max() > 1e-3


def test_sample_equiangular_square_and_rho_one_low_dimension():
    x = sample_equiangular(6, 6, 0.3)
    torch.testing.assert_close(gram(x), 0.7 * torch.eye(6, dtype=DOUBLE) + 0.3, rtol=0, atol=1e-14)
    # rho = 1 needs no room: every token is the same unit vector
    y = sample_equiangular(6, 2, 1.0)
    torch.testing.assert_close(gram(y), torch.ones(6, 6, dtype=DOUBLE), rtol=0, atol=1e-15)
    # rho = 0 is an orthonormal frame
    torch.testing.assert_close(gram(sample_equiangular(4, 9, 0.0)), torch.eye(4, dtype=DOUBLE), rtol=0, atol=1e-15)


def test_sample_equiangular_errors():
    with pytest.raises(ValueError, match="d >= n"):
        sample_equiangular(5, 4, 0.5)
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="rho0"):
            sample_equiangular(3, 3, bad)
    with pytest.raises(ValueError, match="n must"):
        sample_equiangular(0, 3, 0.5)


def test_sample_orthonormal_gram_identity():
    x = sample_orthonormal(4, 7, (3,), generator=torch.Generator().manual_seed(5))
    assert x.shape == (3, 4, 7)
    torch.testing.assert_close(gram(x), torch.eye(4, dtype=DOUBLE).expand(3, 4, 4), rtol=0, atol=1e-14)
    assert (x[0] - x[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="d >= n"):
        sample_orthonormal(5, 4)


# --------------------------------------------------------------------------- norm layers


@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.3])
def test_layer_norm_map_equals_torch_layer_norm(eps):
    """F.layer_norm divides by sqrt(var + eps) with var = |z - mean|²/d; we divide by
    sqrt(|z - mean|² + d eps) and multiply by sqrt(d): identical for the same eps."""
    z = gaussian(3, 5, 9, seed=20) * 3 + 1
    ours = layer_norm_map(z, eps=eps)
    theirs = F.layer_norm(z, (9,), eps=eps)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    if eps == 0.0:
        assert (ours.norm(dim=-1) - 3.0).abs().max() < 1e-13  # radius sqrt(9)
        assert ours.sum(-1).abs().max() < 1e-13


def test_layer_norm_map_custom_radius():
    z = gaussian(10, 6, seed=21)
    out = layer_norm_map(z, radius=2.5)
    torch.testing.assert_close(out.norm(dim=-1), torch.full((10,), 2.5, dtype=DOUBLE), rtol=0, atol=1e-14)
    assert out.mean(-1).abs().max() < 1e-15
    centred = z - z.mean(-1, keepdim=True)
    torch.testing.assert_close(out, 2.5 * centred / centred.norm(dim=-1, keepdim=True), rtol=0, atol=1e-14)


@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_rms_norm_map(eps):
    d = 8
    z = gaussian(4, 5, d, seed=22) * 2
    out = rms_norm_map(z, eps=eps)
    if eps == 0.0:
        torch.testing.assert_close(out, z * math.sqrt(d) / z.norm(dim=-1, keepdim=True), rtol=0, atol=1e-14)
    if hasattr(F, "rms_norm"):
        torch.testing.assert_close(out, F.rms_norm(z, (d,), eps=eps), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        rms_norm_map(z, radius=1.0), z / z.norm(dim=-1, keepdim=True), rtol=0, atol=1e-15
    )


def test_effective_beta_closed_form_and_logits():
    for d in (4, 16, 64):
        assert effective_beta(1 / math.sqrt(d), math.sqrt(d)) == pytest.approx(math.sqrt(d), rel=1e-15)
        # unit-sphere logits (s = 1) on the RMS sphere multiply beta by d
        assert effective_beta(1.0, math.sqrt(d)) == pytest.approx(d, rel=1e-15)
    # check against actual logits: W_Qᵀ W_K = c I with W = sqrt(c) * orthogonal
    d, n, s, c = 6, 5, 0.4, 1.7
    r = math.sqrt(d)
    orth = torch.linalg.qr(gaussian(d, d, seed=23)).Q
    wq = wk = math.sqrt(c) * orth
    x = unit(n, d, seed=24)
    xt = r * x
    logits = s * (xt @ wq.T) @ (xt @ wk.T).T
    beta = effective_beta(s, r, c)
    torch.testing.assert_close(logits, beta * (x @ x.T), rtol=1e-13, atol=1e-13)
