"""Tests of tokenswarm.theory against independent computations (explicit vectors, quadrature,
closed forms, Monte Carlo)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from tokenswarm import theory
from tokenswarm.metrics import interaction_energy

DOUBLE = torch.float64


def equiangular_vectors(n: int, rho: float, d: int | None = None) -> np.ndarray:
    """Rows of ((1 - rho) I + rho 1 1^T)^{1/2}, padded to d columns: unit vectors, <x_i,x_j> = rho."""
    gram = (1 - rho) * np.eye(n) + rho * np.ones((n, n))
    values, vectors = np.linalg.eigh(gram)
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    d = n if d is None else d
    return np.hstack([root, np.zeros((n, d - n))])


def attention_velocity(x: np.ndarray, beta: float, model: str) -> np.ndarray:
    """Tangent velocities P⊥_{x_i}(sum_j A_ij x_j), Q = K = V = I, by explicit loops."""
    n = x.shape[0]
    out = np.zeros_like(x)
    for i in range(n):
        weights = np.array([math.exp(beta * x[i] @ x[j]) for j in range(n)])
        weights = weights / (weights.sum() if model == "sa" else n)
        v = sum(weights[j] * x[j] for j in range(n))
        out[i] = v - (v @ x[i]) * x[i]
    return out


# ----------------------------------------------------------------------------- equiangular


@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("rho", [-0.1, 0.0, 0.37, 0.9])
@pytest.mark.parametrize("beta", [0.0, 1.3, 6.0])
def test_equiangular_rhs_matches_explicit_vectors(model: str, rho: float, beta: float) -> None:
    n = 7
    x = equiangular_vectors(n, rho)
    v = attention_velocity(x, beta, model)
    # d<x_i, x_j>/dt = <v_i, x_j> + <x_i, v_j>, the same for every pair i != j.
    derivative = v @ x.T + x @ v.T
    off_diagonal = derivative[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, off_diagonal[0], rtol=1e-12, atol=1e-14)
    assert theory.equiangular_rhs(rho, n, beta, model) == pytest.approx(off_diagonal[0], rel=1e-12, abs=1e-14)


def test_equiangular_rhs_printed_forms() -> None:
    n, beta, rho = 32, 4.0, np.linspace(-0.03, 1.0, 9)
    sa = 2 * np.exp(beta * rho) * (1 - rho) * ((n - 1) * rho + 1) / (np.exp(beta) + (n - 1) * np.exp(beta * rho))
    usa = (2 / n) * np.exp(beta * rho) * (1 - rho) * ((n - 1) * rho + 1)
    np.testing.assert_allclose(theory.equiangular_rhs(rho, n, beta, "SA"), sa, rtol=1e-14)
    np.testing.assert_allclose(theory.equiangular_rhs(rho, n, beta, "USA"), usa, rtol=1e-14)


@pytest.mark.parametrize("model, beta", [("sa", 0.5), ("sa", 6.0), ("usa", 0.5), ("usa", 2.0)])
def test_equiangular_solution_inverts_the_time_integral(model: str, beta: float) -> None:
    # t(rho) = int_{rho0}^{rho} ds / f(s): an independent route to the same trajectory.
    n, rho0 = 12, 0.05
    # Scaled by the late rate so that 1 - rho stays above ~1e-5 and the quadrature in rho is sound.
    times = np.array([0.0, 0.3, 1.0, 2.5]) * 2 / abs(theory.equiangular_late_slope(n, beta, model))
    rho = theory.equiangular_solution(times, rho0, n, beta, model)
    assert rho[0] == rho0 and np.all(np.diff(rho) > 0)
    for t, r in zip(times[1:], rho[1:], strict=True):
        elapsed, _ = integrate.quad(
            lambda s: 1 / theory.equiangular_rhs(s, n, beta, model), rho0, r, epsabs=0, epsrel=1e-12, limit=200
        )
        assert elapsed == pytest.approx(t, rel=1e-9)


def test_equiangular_solution_against_rk45_in_rho() -> None:
    n, beta, rho0 = 32, 3.0, 0.0
    times = np.linspace(0, 8, 17)
    reference = integrate.solve_ivp(
        lambda _t, r: [theory.equiangular_rhs(r[0], n, beta, "sa")], (0, 8), [rho0],
        method="RK45", t_eval=times, rtol=1e-12, atol=1e-13,
    ).y[0]
    np.testing.assert_allclose(theory.equiangular_solution(times, rho0, n, beta, "sa"), reference, atol=1e-9)


def test_equiangular_fixed_points_and_shapes() -> None:
    assert np.all(theory.equiangular_solution([0, 5], 1.0, 8, 2.0, "sa") == 1.0)
    lowest = -1 / 7
    np.testing.assert_allclose(theory.equiangular_solution([0, 5], lowest, 8, 2.0, "usa"), lowest, atol=1e-15)
    assert theory.equiangular_solution(np.zeros((2, 3)), 0.2, 8, 1.0, "sa").shape == (2, 3)
    assert isinstance(theory.equiangular_solution(1.0, 0.2, 8, 1.0, "sa"), float)
    with pytest.raises(ValueError, match="rho0"):
        theory.equiangular_solution([1.0], -0.5, 8, 1.0, "sa")
    with pytest.raises(ValueError, match="model"):
        theory.equiangular_solution([1.0], 0.0, 8, 1.0, "softmax")


@pytest.mark.parametrize("model, beta", [("sa", 1.0), ("sa", 9.0), ("usa", 1.0), ("usa", 3.0)])
def test_crossing_time_matches_quadrature(model: str, beta: float) -> None:
    n, rho0 = 32, 0.0
    levels = np.array([0.2, 0.9, 1 - 1e-3, 1 - 1e-9])
    times = theory.equiangular_crossing_time(levels, rho0, n, beta, model)
    for level, t in zip(levels, times, strict=True):
        # t = int_{rho0}^{level} d rho / f(rho); with rho = 1 - e^u this is int du / g(rho),
        # g = f / (1 - rho) written out from (6.9)/(6.10), smooth up to rho = 1.
        def g(u: float) -> float:
            rho = -math.expm1(u)
            numerator = 2 * math.exp(beta * rho) * ((n - 1) * rho + 1)
            return numerator / (math.exp(beta) + (n - 1) * math.exp(beta * rho)) if model == "sa" else numerator / n

        expected, _ = integrate.quad(lambda u: 1 / g(u), math.log1p(-level), math.log1p(-rho0), epsabs=0, epsrel=1e-12)
        assert t == pytest.approx(expected, rel=1e-9)
    # Round trip through the solution.
    assert theory.equiangular_solution(times[1], rho0, n, beta, model) == pytest.approx(0.9, abs=1e-10)


def test_crossing_time_edge_cases() -> None:
    times = theory.equiangular_crossing_time([0.1, 0.3, 1.0], 0.3, 8, 2.0, "sa")
    assert times.tolist() == [0.0, 0.0, math.inf]
    assert theory.equiangular_crossing_time(0.5, -1 / 7, 8, 2.0, "sa") == math.inf
    with pytest.raises(ValueError, match="level"):
        theory.equiangular_crossing_time(1.5, 0.0, 8, 2.0, "sa")


@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_late_slope_is_derivative_of_rhs_at_one_and_matches_solution(model: str, beta: float) -> None:
    n = 10
    slope = theory.equiangular_late_slope(n, beta, model)
    assert slope == pytest.approx(-2.0 if model == "sa" else -2 * math.exp(beta), rel=1e-14)
    # f'(1) by a central difference of the printed right-hand side (f is smooth across rho = 1).
    h = 1e-6
    above, below = (theory.equiangular_rhs(1 + sign * h, n, beta, model) for sign in (1, -1))
    derivative = (above - below) / (2 * h)
    assert slope == pytest.approx(derivative, rel=1e-8)
    # From the trajectory: d/dt log(1 - rho) between times where 1 - rho ~ 1e-7 .. 1e-9.
    t1 = theory.equiangular_crossing_time(1 - 1e-7, 0.0, n, beta, model)
    t2 = theory.equiangular_crossing_time(1 - 1e-9, 0.0, n, beta, model)
    assert (math.log(1e-9) - math.log(1e-7)) / (t2 - t1) == pytest.approx(slope, rel=1e-5)


# ----------------------------------------------------------------------------- energies


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0, 10.0, 100.0, 600.0])
def test_uniform_energy_closed_forms_d2_d3(beta: float) -> None:
    assert theory.uniform_energy(beta, 3) == pytest.approx(math.sinh(beta) / (2 * beta**2), rel=1e-12)
    assert theory.uniform_energy(beta, 2) == pytest.approx(special.i0(beta) / (2 * beta), rel=1e-12)


@pytest.mark.parametrize("d", [2, 3, 4, 7, 20, 64])
@pytest.mark.parametrize("beta", [0.5, 3.0, 15.0])
def test_uniform_energy_against_quadrature_of_inner_product_density(d: int, beta: float) -> None:
    # u = <x, y> has density proportional to (1 - u^2)^{(d-3)/2}: quad's algebraic weight.
    alpha = (d - 3) / 2
    options = dict(weight="alg", wvar=(alpha, alpha), epsabs=0, epsrel=1e-12, limit=200)
    # e^{beta(u - 1)} keeps the integrand O(1); the factor e^beta is restored in the log.
    moment, _ = integrate.quad(lambda u: math.exp(beta * (u - 1)), -1, 1, **options)
    normaliser, _ = integrate.quad(lambda u: 1.0, -1, 1, **options)
    expected = math.exp(beta + math.log(moment / normaliser)) / (2 * beta)
    assert theory.uniform_energy(beta, d) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d, beta", [(1024, 0.1), (1024, 9.0), (513, 2.0), (4096, 30.0)])
def test_uniform_energy_large_dimension_against_hypergeometric_series(d: int, beta: float) -> None:
    # E[e^{beta u}] = 0F1(; d/2; beta^2/4): a different special function, the regime where the
    # scaled Bessel function underflows and the implementation switches to quadrature.
    assert special.ive(d / 2 - 1, beta) < 1e-250 or d == 513
    expected = special.hyp0f1(d / 2, beta**2 / 4) / (2 * beta)
    assert theory.uniform_energy(beta, d) == pytest.approx(expected, rel=1e-10)


def test_uniform_energy_log_form_vectorised_and_validation() -> None:
    betas = np.array([0.5, 2.0, 1e4])
    logs = theory.log_uniform_energy(betas, 3)
    expected = betas + np.log(-np.expm1(-2 * betas) / 2) - np.log(2 * betas**2)  # log(sinh b / (2 b^2))
    np.testing.assert_allclose(logs, expected, rtol=1e-12)
    assert theory.uniform_energy(betas[:2], 3).shape == (2,)
    with pytest.raises(ValueError, match="beta"):
        theory.uniform_energy(0.0, 3)
    with pytest.raises(ValueError, match="d must be"):
        theory.uniform_energy(1.0, 1)


def test_uniform_energy_is_mean_energy_of_iid_tokens() -> None:
    # E[E_beta(X)] = (e^beta / n + (1 - 1/n) E[e^{beta u}]) / (2 beta) for i.i.d. uniform tokens.
    beta, d, n, systems = 2.0, 4, 8, 20_000
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(systems, n, d, generator=generator, dtype=DOUBLE)
    x = x / x.norm(dim=-1, keepdim=True)
    samples = interaction_energy(x, beta).numpy()
    moment = 2 * beta * theory.uniform_energy(beta, d)
    expected = (math.exp(beta) / n + (1 - 1 / n) * moment) / (2 * beta)
    assert abs(samples.mean() - expected) < 4 * samples.std() / math.sqrt(systems)
    # And the uniform measure is the minimiser: the energy of tokens exceeds its value on average.
    assert samples.mean() > theory.uniform_energy(beta, d)


def simplex(d: int) -> torch.Tensor:
    """d + 1 unit vectors in R^{d+1} spanning a d-dimensional subspace, pairwise inner product -1/d."""
    n = d + 1
    centred = torch.eye(n, dtype=DOUBLE) - 1.0 / n
    return centred / centred.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("d", [1, 2, 3, 7, 30])
@pytest.mark.parametrize("beta", [0.2, 3.0, 40.0])
def test_simplex_energy_against_explicit_simplex(d: int, beta: float) -> None:
    x = simplex(d)
    gram = x @ x.T
    assert torch.allclose(gram[~torch.eye(d + 1, dtype=torch.bool)], torch.tensor(-1.0 / d, dtype=DOUBLE))
    assert theory.simplex_energy(beta, d) == pytest.approx(interaction_energy(x, beta).item(), rel=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_cross_polytope_energy_against_explicit_vectors(d: int) -> None:
    eye = torch.eye(d, dtype=DOUBLE)
    x = torch.cat([eye, -eye])
    for beta in (0.5, 4.0):
        assert theory.cross_polytope_energy(beta, d) == pytest.approx(interaction_energy(x, beta).item(), rel=1e-12)


# ----------------------------------------------------------------------------- long context


@pytest.mark.parametrize("rho", [0.2, 0.6])
@pytest.mark.parametrize("gamma_factor", [0.5, 1.0, 3.0])
def test_long_context_oracle_against_one_softmax_layer(rho: float, gamma_factor: float) -> None:
    n = 50
    gamma = gamma_factor / (1 - rho)
    x = torch.from_numpy(equiangular_vectors(n, rho))
    beta = gamma * math.log(n)
    y = torch.softmax(beta * x @ x.T, dim=-1) @ x
    theta = y / y.norm(dim=-1, keepdim=True)
    cosines = (theta @ theta.T)[~torch.eye(n, dtype=torch.bool)]
    assert cosines.std().item() < 1e-12  # the output is equiangular again
    assert theory.long_context_cosine(rho, gamma, n) == pytest.approx(cosines.mean().item(), rel=1e-11)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8])
def test_long_context_oracle_tends_to_the_three_limits(rho: float) -> None:
    critical = 1 / (1 - rho)
    for gamma in (0.5 * critical, critical, 1.5 * critical):
        limit = theory.long_context_limit(rho, gamma)
        errors = [abs(theory.long_context_cosine(rho, gamma, n) - limit) for n in (1e20, 1e80, 1e300)]
        assert errors[-1] < 1e-12 or errors[0] > errors[1] > errors[2]
        assert errors[-1] < 1e-6
    np.testing.assert_allclose(
        theory.long_context_limit(rho, [0.0, critical, 10 * critical]), [1.0, 4 * rho / (1 + 3 * rho), rho]
    )


def test_long_context_small_n_and_validation() -> None:
    # n = 2: Z = n^gamma + n^{gamma rho}, no third token; direct 2-vector check.
    rho, gamma = 0.3, 2.0
    x = torch.from_numpy(equiangular_vectors(2, rho))
    y = torch.softmax(gamma * math.log(2) * x @ x.T, dim=-1) @ x
    cos = (y[0] @ y[1] / (y[0].norm() * y[1].norm())).item()
    assert theory.long_context_cosine(rho, gamma, 2) == pytest.approx(cos, rel=1e-13)
    assert theory.long_context_cosine([0.2, 0.4], 1.0, [[10.0], [100.0]]).shape == (2, 2)
    with pytest.raises(ValueError, match="n must"):
        theory.long_context_cosine(0.5, 1.0, 1.0)


# ----------------------------------------------------------------------------- circle


@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("beta", [0.0, 1.5, 8.0])
def test_angle_velocity_matches_cartesian_velocity(model: str, beta: float) -> None:
    theta = np.random.default_rng(1).uniform(-math.pi, math.pi, size=(3, 6))
    velocity = theory.angle_velocity(theta, beta, model)
    for b in range(3):
        x = np.stack([np.cos(theta[b]), np.sin(theta[b])], axis=-1)
        tangent = np.stack([-np.sin(theta[b]), np.cos(theta[b])], axis=-1)
        cartesian = attention_velocity(x, beta, model)
        np.testing.assert_allclose(velocity[b], (cartesian * tangent).sum(-1), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("beta", [0.5, 2.0, 10.0])
def test_fourier_identity_and_usa_as_kuramoto_with_harmonics(beta: float) -> None:
    s = np.linspace(-math.pi, math.pi, 97)
    k = np.arange(1, 61)
    series = (2 / beta) * (k * special.iv(k, beta) * np.sin(np.outer(s, k))).sum(-1)
    np.testing.assert_allclose(series, np.exp(beta * np.cos(s)) * np.sin(s), rtol=0, atol=1e-11 * math.exp(beta))
    theta = np.random.default_rng(2).uniform(-math.pi, math.pi, size=9)
    difference = theta[None, :] - theta[:, None]  # theta_j - theta_i
    kuramoto = ((2 * k * special.iv(k, beta) / beta) * np.sin(difference[..., None] * k)).sum((-1, -2)) / 9
    np.testing.assert_allclose(theory.angle_velocity(theta, beta, "usa"), kuramoto, rtol=0, atol=1e-11 * math.exp(beta))


def linearised_rate(k: int, beta: float, model: str, points: int = 4096, eps: float = 1e-5) -> tuple[float, float]:
    """Rate of mode cos(k theta) of the discretised continuity equation, by central differences.

    The velocity is built from h(theta) = e^{beta cos theta} on a grid (no Bessel functions):
    circular convolutions by FFT, spectral derivative of the flux. Returns the rate and the
    relative size of the part of the response that is not proportional to cos(k theta).
    """
    theta = 2 * np.pi * np.arange(points) / points
    step = 2 * np.pi / points
    wavenumber = np.fft.fftfreq(points, d=1.0 / points)
    h = np.exp(beta * np.cos(theta))
    h_prime = -beta * np.sin(theta) * h
    fft_h, fft_h_prime = np.fft.fft(h), np.fft.fft(h_prime)

    def transport(rho: np.ndarray) -> np.ndarray:
        fft_rho = np.fft.fft(rho)
        velocity = np.fft.ifft(fft_h_prime * fft_rho).real * step / beta
        if model == "sa":
            velocity = velocity / (np.fft.ifft(fft_h * fft_rho).real * step)
        return -np.fft.ifft(1j * wavenumber * np.fft.fft(rho * velocity)).real

    mode = np.cos(k * theta)
    response = (transport(1 / (2 * np.pi) + eps * mode) - transport(1 / (2 * np.pi) - eps * mode)) / (2 * eps)
    rate = float(response @ mode / (mode @ mode))
    return rate, float(np.abs(response - rate * mode).max() / abs(rate))


@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("beta, modes", [(0.5, (1, 2, 4)), (3.0, (1, 2, 5, 8)), (12.0, (1, 3, 5, 9))])
def test_circle_growth_rate_against_discretised_linearisation(model: str, beta: float, modes: tuple[int, ...]) -> None:
    for k in modes:
        rate, leakage = linearised_rate(k, beta, model)
        assert leakage < 1e-6  # cos(k theta) is an eigenfunction of the linearisation
        assert theory.circle_growth_rate(k, beta, model) == pytest.approx(rate, rel=1e-6)


def test_circle_growth_rate_beta_zero_limit_and_vectorised() -> None:
    for model in ("sa", "usa"):
        np.testing.assert_allclose(theory.circle_growth_rate([1, 2, 3], 1e-7, model), [0.5, 0, 0], atol=1e-7)
        np.testing.assert_array_equal(theory.circle_growth_rate([1, 2, 3], 0.0, model), [0.5, 0, 0])
    with pytest.raises(ValueError, match="k must"):
        theory.circle_growth_rate(0, 1.0, "sa")


@pytest.mark.parametrize("beta", [0.3, 2.0, 9.0, 50.0, 400.0])
def test_fastest_mode_is_the_argmax_and_scales_like_sqrt_beta(beta: float) -> None:
    k = np.arange(1, 2001)
    for model in ("sa", "usa"):
        with np.errstate(over="ignore"):
            rates = theory.circle_growth_rate(k, beta, model)
        assert theory.fastest_mode(beta, model) == int(k[np.argmax(rates)])
    prediction = theory.sqrt_beta_cluster_prediction(beta)
    assert prediction.fastest_mode == theory.fastest_mode(beta)
    assert prediction.asymptotic == pytest.approx(math.sqrt(2 * beta))
    if beta >= 9:
        assert abs(prediction.fastest_mode - prediction.asymptotic) <= 1.0


# ----------------------------------------------------------------------------- Wendel


def test_wendel_special_values() -> None:
    assert theory.wendel_probability(1, 3) == 1.0
    assert theory.wendel_probability(5, 5) == 1.0 and theory.wendel_probability(4, 9) == 1.0
    for n in (2, 5, 40):
        assert theory.wendel_probability(n, 1) == pytest.approx(2.0 ** (1 - n), rel=1e-15)
    for d in (2, 3, 10):
        assert theory.wendel_probability(d + 1, d) == pytest.approx(1 - 2.0**-d, rel=1e-15)
    assert theory.wendel_probability(5, 2) == 5 / 16
    # n = 2d: sum_{k<d} C(2d-1, k) is exactly half of 2^{2d-1}, so p = 1/2 (exact big integers).
    assert theory.wendel_probability(2000, 1000) == 0.5


@pytest.mark.parametrize("n", [3, 5, 8])
def test_wendel_monte_carlo_circle(n: int) -> None:
    # On the circle, points lie in an open half-circle iff the largest angular gap exceeds pi.
    samples = 40_000
    theta = np.sort(np.random.default_rng(n).uniform(0, 2 * math.pi, size=(samples, n)), axis=-1)
    gaps = np.diff(np.concatenate([theta, theta[:, :1] + 2 * math.pi], axis=-1), axis=-1)
    hits = gaps.max(-1) > math.pi
    p = theory.wendel_probability(n, 2)
    assert abs(hits.mean() - p) < 4 * math.sqrt(p * (1 - p) / samples)


def test_wendel_monte_carlo_sphere() -> None:
    # d = 3, general position: the points lie in an open hemisphere iff some plane through two of
    # them (normal x_i × x_j, either sign) has all the others strictly on one side.
    n, samples = 6, 20_000
    x = np.random.default_rng(3).standard_normal((samples, n, 3))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    found = np.zeros(samples, dtype=bool)
    for i, j in itertools.combinations(range(n), 2):
        others = [k for k in range(n) if k not in (i, j)]
        side = np.einsum("sd,skd->sk", np.cross(x[:, i], x[:, j]), x[:, others])
        found |= np.all(side > 0, axis=-1) | np.all(side < 0, axis=-1)
    p = theory.wendel_probability(n, 3)
    assert p == 0.5
    assert abs(found.mean() - p) < 4 * math.sqrt(p * (1 - p) / samples)
