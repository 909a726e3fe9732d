"""Tests of tokenswarm.theory.two_token: the one-dimensional reductions of the two-token models against
one-step and multi-step Monte Carlo of the full d-dimensional discrete models, against
independent quadrature in rho, and against each other (Lyapunov exponents, scale function,
backward equation, reduced simulators)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from tokenswarm import theory
from tokenswarm.theory import two_token as tt
from tokenswarm.theory import two_token_mc as mc

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- full models


def pair(rho: float, d: int) -> tuple[np.ndarray, np.ndarray]:
    x1 = np.zeros(d)
    x1[0] = 1.0
    x2 = np.zeros(d)
    x2[0], x2[1] = rho, math.sqrt(1.0 - rho * rho)
    return x1, x2


def normalise(z: np.ndarray) -> np.ndarray:
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def one_step_value_noise(rho, beta, d, sigma2, h, samples, rng):
    """Antithetic single steps x_i <- N(x_i + sqrt(h) V y_i) of the full discrete SA model, Gaussian V.

    Only V x_1 and V x_2 enter; for V with i.i.d. N(0, sigma2) entries they are jointly Gaussian,
    (V x_1, V x_2) = sqrt(sigma2) G L^T with G (d, 2) standard and L L^T the Gram matrix: exact
    in law, O(d) per sample. Returns (delta rho for +V, delta rho for -V).
    """
    x1, x2 = pair(rho, d)
    a = 1.0 / (1.0 + math.exp(-beta * (1.0 - rho)))  # softmax weight of the token itself
    gram = np.array([[1.0, rho], [rho, 1.0]])
    chol = np.linalg.cholesky(gram)
    g = rng.standard_normal((samples, d, 2)) * math.sqrt(sigma2)
    images = g @ chol.T  # (samples, d, 2): columns V x_1, V x_2
    v_y1 = images @ np.array([a, 1.0 - a])
    v_y2 = images @ np.array([1.0 - a, a])
    out = []
    for sign in (1.0, -1.0):
        z1 = normalise(x1 + sign * math.sqrt(h) * v_y1)
        z2 = normalise(x2 + sign * math.sqrt(h) * v_y2)
        out.append(np.sum(z1 * z2, axis=1) - rho)
    return out


def one_step_hybrid(rho, beta, eps, h, samples, rng):
    """Antithetic single steps x_i <- N(x_i + (h + eps xi sqrt(h)) y_i), USA, Gaussian xi."""
    x1, x2 = pair(rho, 3)
    e, f = math.exp(beta), math.exp(beta * rho)
    y1, y2 = 0.5 * (e * x1 + f * x2), 0.5 * (e * x2 + f * x1)
    xi = rng.standard_normal((samples, 1))
    out = []
    for sign in (1.0, -1.0):
        c = h + sign * eps * xi * math.sqrt(h)
        z1, z2 = normalise(x1 + c * y1), normalise(x2 + c * y2)
        out.append(np.sum(z1 * z2, axis=1) - rho)
    return out


def fractions(rho: torch.Tensor, threshold: float = 0.9) -> tuple[float, float]:
    """Fractions of runs classified antipodal (rho < -threshold) and collapsed (rho > threshold)."""
    return (rho < -threshold).double().mean().item(), (rho > threshold).double().mean().item()


def moments(plus: np.ndarray, minus: np.ndarray, h: float):
    """Drift and variance rate estimates with standard errors from antithetic pairs."""
    mean_pairs = 0.5 * (plus + minus)  # the O(sqrt h) noise cancels: small variance
    square_pairs = 0.5 * (plus**2 + minus**2)
    n = plus.size
    drift = mean_pairs.mean() / h
    drift_se = mean_pairs.std(ddof=1) / math.sqrt(n) / h
    variance = square_pairs.mean() / h - h * drift**2
    variance_se = square_pairs.std(ddof=1) / math.sqrt(n) / h
    return drift, drift_se, variance, variance_se


# --------------------------------------------------------------------------- (1) value-noise SDE


@pytest.mark.parametrize(
    "rho, beta, d, sigma2", [(0.3, 1.0, 3, 1.0), (-0.5, 2.0, 6, 0.5), (0.8, 0.5, 10, 0.1), (-0.9, 1.5, 4, 1.0)]
)
def test_rho_sde_matches_one_step_of_full_discrete_model(rho, beta, d, sigma2):
    h = 1e-4
    rng = np.random.default_rng(12345)
    drift, drift_se, variance, variance_se = moments(*one_step_value_noise(rho, beta, d, sigma2, h, 200_000, rng), h)
    mu, s = tt.drift_diffusion(rho, beta, d, sigma2)
    assert abs(drift - mu) < 5 * drift_se + 1e-3 * abs(mu), (drift, drift_se, mu)
    assert abs(variance - s**2) < 5 * variance_se, (variance, variance_se, s**2)
    # Power: dropping the cross-variation term sigma2 <y_1,y_2> tr(P1 P2) of Itô's formula
    # (i.e. treating the tokens' noises as independent) must be rejected.
    a = 1.0 / (1.0 + math.exp(-beta * (1.0 - rho)))
    big_a, big_c = a * a + (1 - a) ** 2, 2 * a * (1 - a)
    wrong = mu - sigma2 * (big_c + big_a * rho) * (d - 2 + rho * rho)
    assert abs(drift - wrong) > 5 * drift_se


def test_z_coefficients_are_ito_transform_of_rho_sde():
    rho = np.linspace(-0.95, 0.95, 9)
    for beta, d, sigma2 in [(0.7, 3, 1.0), (2.5, 32, 0.3)]:
        mu, s = tt.drift_diffusion(rho, beta, d, sigma2)
        mu_z, s_z = tt.z_coefficients(np.arctanh(rho), beta, d, sigma2)
        # z' = 1/(1 - rho²), z'' = 2 rho/(1 - rho²)².
        expected = mu / (1 - rho**2) + 0.5 * 2 * rho / (1 - rho**2) ** 2 * s**2
        np.testing.assert_allclose(mu_z, expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(s_z, s / (1 - rho**2), rtol=1e-12)


def test_full_discrete_model_classified_fraction_matches_backward_equation():
    """Multi-step L-layer discrete model (d = 4, Gaussian V shared by both tokens) at t = 1."""
    rho0, beta, d, sigma2, t, steps, runs = -0.5, 1.5, 4, 1.0, 1.0, 400, 4000
    h = t / steps
    gen = torch.Generator().manual_seed(2024)
    x = torch.zeros(runs, 2, d, dtype=torch.float64)
    x[:, 0, 0] = 1.0
    x[:, 1, 0], x[:, 1, 1] = rho0, math.sqrt(1 - rho0**2)
    for _ in range(steps):
        # Explicit 2x2 softmax and V y (small batched matmuls are slow on CPU).
        logits = beta * (x[:, :, None, :] * x[:, None, :, :]).sum(-1)  # (runs, 2, 2)
        attention = torch.softmax(logits, dim=-1)
        y = (attention[..., None] * x[:, None, :, :]).sum(2)
        v = math.sqrt(sigma2) * torch.randn(runs, d, d, generator=gen, dtype=torch.float64)
        x = x + math.sqrt(h) * (v[:, None, :, :] * y[:, :, None, :]).sum(-1)
        x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    rho = (x[:, 0] * x[:, 1]).sum(-1)
    antipodal, collapsed = tt.classified_fraction(t, rho0, beta, d, sigma2)
    for fraction, exact in zip(fractions(rho), (antipodal, collapsed)):
        se = math.sqrt(exact * (1 - exact) / runs)
        assert abs(fraction - exact) < 4 * se + 2 * h, (fraction, exact, se)


# --------------------------------------------------------------------------- (2) Lyapunov, critical curve


@pytest.mark.parametrize("d", [4, 6, 10, 32, 128])
def test_antipodal_exponent_changes_sign_at_critical_beta(d):
    beta_c = tt.critical_beta(d)
    assert math.cosh(2 * beta_c) == pytest.approx(d - 2, rel=1e-12)
    _, at_critical = tt.lyapunov_exponents(beta_c, d)
    assert abs(at_critical) < 1e-12
    _, around = tt.lyapunov_exponents(np.array([beta_c - 1e-3, beta_c + 1e-3]), d)
    assert around[0] > 0 > around[1]
    # The scale function agrees: no antipodal mass below beta_c, some above.
    assert tt.antipodal_probability(0.0, beta_c - 1e-3, d) == 0.0
    assert tt.antipodal_probability(0.0, beta_c + 0.05, d) > 0.0


def test_exponents_are_limits_of_z_drift_and_special_dimensions():
    betas = np.array([0.0, 0.3, 1.0, 2.0, 4.0])
    for d, sigma2 in [(2, 1.0), (3, 0.7), (5, 1.3), (64, 1 / 64)]:
        plus, minus = tt.lyapunov_exponents(betas, d, sigma2)
        far_plus, _ = tt.z_coefficients(40.0, betas, d, sigma2)
        far_minus, _ = tt.z_coefficients(-40.0, betas, d, sigma2)
        np.testing.assert_allclose(plus, -2 * far_plus, rtol=1e-13)
        np.testing.assert_allclose(minus, 2 * far_minus, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(plus, -sigma2 * (d - 1), rtol=1e-14)
    # Lead's root form: attracting iff r² - 2(d-2) r + 1 > 0, r = e^{2 beta}.
    for d in range(3, 40):
        r = np.exp(2 * betas)
        _, minus = tt.lyapunov_exponents(betas, d)
        np.testing.assert_array_equal(minus < -1e-12, r**2 - 2 * (d - 2) * r + 1 > 1e-9)
    # d = 3: neutral at beta = 0, attracting for beta > 0; d = 2: always attracting.
    assert tt.critical_beta(3) == 0.0
    assert tt.lyapunov_exponents(0.0, 3)[1] == pytest.approx(0.0, abs=1e-15)
    assert tt.critical_beta(2) == -math.inf
    assert np.all(np.asarray(tt.lyapunov_exponents(betas, 2)[1]) < 0)


def test_pathwise_exponent_from_reduced_simulation():
    """Near -1 every run's log(1 + rho) decreases at the predicted rate lambda_- (no conditioning:
    starting at z0 = -10, a return to z > -3 has probability ~e^{-0.73 * 7} < 1%)."""
    beta, d = 1.0, 3
    _, lam = tt.lyapunov_exponents(beta, d)
    times, z = mc.simulate_rho(
        math.tanh(-10.0), beta, d, 1.0, 10.0, 2000, 1000, generator=5, record_every=2000, output="z"
    )
    log_gap = math.log(2.0) + 2 * z - torch.log1p(torch.exp(2 * z))  # log(1 + tanh z), exact for z << 0
    slope = ((log_gap[-1] - log_gap[0]) / (times[-1] - times[0])).mean().item()
    # Per-run slope noise 2 s B_10 / 10 (sd ~0.8): averaged over 1000 runs, sd ~0.025.
    assert slope == pytest.approx(lam, abs=0.1)


# --------------------------------------------------------------------------- (3) scale function


def brute_force_probability(rho0: float, beta: float, d: int) -> float:
    """Lead's formula in rho: s'(rho) = exp(-∫_0^rho [(d-2) C/A - u]/(1 - u²) du), nested quad."""

    def g(u):
        return ((d - 2) / math.cosh(beta * (1 - u)) - u) / (1 - u * u)

    def density(r):
        return math.exp(-integrate.quad(g, 0.0, r, epsabs=1e-13, epsrel=1e-12, limit=200)[0])

    def piece(a, b):
        return integrate.quad(density, a, b, epsabs=0.0, epsrel=1e-10, limit=400)[0]

    total = piece(-1.0, 0.0) + piece(0.0, 1.0)
    return (piece(rho0, 0.0) + piece(0.0, 1.0)) / total if rho0 < 0 else piece(rho0, 1.0) / total


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("rho0, beta, d", [(0.0, 1.0, 3), (-0.3, 2.0, 6), (0.2, 3.5, 32)])
def test_scale_function_matches_quadrature_in_rho(rho0, beta, d):
    assert tt.antipodal_probability(rho0, beta, d) == pytest.approx(brute_force_probability(rho0, beta, d), rel=1e-7)


def test_scale_function_properties_and_circle():
    rho = np.linspace(-0.999, 0.999, 41)
    for beta, d in [(0.5, 4), (0.65, 4), (1.0, 10)]:  # subcritical: beta_c(4) = 0.658, beta_c(10) = 1.384
        assert np.all(tt.antipodal_probability(rho, beta, d) == 0.0)
    for beta, d in [(0.7, 4), (2.0, 4), (1.5, 10), (3.0, 128), (0.1, 3)]:
        p = tt.antipodal_probability(rho, beta, d)
        assert np.all((p > 0) & (p < 1))
        assert np.all(np.diff(p) < 0)
        assert tt.antipodal_probability(-1.0, beta, d) == 1.0 and tt.antipodal_probability(1.0, beta, d) == 0.0
    # Increasing beta helps the antipodal state.
    assert np.all(np.diff(tt.antipodal_probability(0.0, np.linspace(0.7, 4.0, 12), 4)) > 0)
    # Circle: arccos(rho) is a martingale, so P = arccos(rho0)/pi for every beta; uniform start: 1/2.
    for beta in (0.0, 1.0, 5.0):
        np.testing.assert_allclose(tt.antipodal_probability(rho, beta, 2), np.arccos(rho) / np.pi, atol=1e-13)
        assert tt.antipodal_probability("uniform", beta, 2) == pytest.approx(0.5, abs=1e-13)


def test_uniform_start_is_average_over_inner_product_law():
    for beta, d in [(1.0, 4), (1.2, 3), (2.5, 10)]:
        weight = lambda u: (1 - u * u) ** ((d - 3) / 2)  # noqa: E731
        norm = integrate.quad(weight, -1, 1)[0]
        direct = integrate.quad(lambda u: weight(u) * tt.antipodal_probability(u, beta, d), -1, 1, limit=200)[0] / norm
        assert tt.antipodal_probability("uniform", beta, d) == pytest.approx(direct, rel=1e-8)
    cdf = tt.uniform_inner_product_cdf([-1, -0.5, 0, 0.5, 1], 3)  # d = 3: uniform on [-1, 1]
    np.testing.assert_allclose(cdf, [0, 0.25, 0.5, 0.75, 1], atol=1e-15)


@pytest.mark.parametrize("rho0, beta, d, t_max", [(0.0, 1.0, 3, 40.0), (-0.5, 1.5, 4, 40.0)])
def test_scale_function_against_reduced_monte_carlo(rho0, beta, d, t_max):
    runs = 4000
    rho = mc.simulate_rho(rho0, beta, d, 1.0, t_max, 4000, runs, generator=11)
    assert (rho.abs() > 0.9).double().mean().item() > 0.995  # essentially all runs decided
    fraction = (rho < -0.9).double().mean().item()
    p = tt.antipodal_probability(rho0, beta, d)
    assert abs(tt.classified_fraction(t_max, rho0, beta, d)[0] - p) < 1e-3
    assert abs(fraction - p) < 4 * math.sqrt(p * (1 - p) / runs), (fraction, p)


# --------------------------------------------------------------------------- (4) finite time


def test_classified_fraction_limits_and_refinement():
    rho0 = np.array([-0.6, 0.0, 0.7])
    beta, d = 1.0, 3
    p = tt.antipodal_probability(rho0, beta, d)
    antipodal, collapsed = tt.classified_fraction([0.0, 0.3, 3.0, 100.0, np.inf], rho0, beta, d, sigma2=0.5)
    assert antipodal.shape == (5, 3)
    np.testing.assert_array_equal(antipodal[0], [0, 0, 0])
    # tau = 50; the residual is the O(spacing²) discretisation error (~3e-5 at spacing 0.02).
    np.testing.assert_allclose(antipodal[3], p, atol=1e-4)
    np.testing.assert_allclose(collapsed[3], 1 - p, atol=1e-4)
    np.testing.assert_allclose(antipodal[4], p, rtol=1e-14)
    assert np.all(antipodal[1:3] + collapsed[1:3] <= 1 + 1e-9)
    # Grid convergence (cell width 0.02 -> 0.01).
    fine = tt.classified_fraction([0.3, 3.0], rho0, beta, d, sigma2=0.5, spacing=0.01)
    np.testing.assert_allclose(antipodal[1:3], fine[0], atol=1e-4)
    np.testing.assert_allclose(collapsed[1:3], fine[1], atol=1e-4)
    # sigma2 is a time change.
    fast, slow = tt.classified_fraction(1.5, rho0, beta, d, 2.0), tt.classified_fraction(3.0, rho0, beta, d, 1.0)
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-9)
    # Uniform start: t = 0 is the law of <u, v>; t = inf the averaged scale function.
    uniform = tt.classified_fraction([0.0, np.inf], "uniform", beta, 4)
    assert uniform[0][0] == pytest.approx(tt.uniform_inner_product_cdf(-0.9, 4), rel=1e-12)
    assert uniform[0][1] == pytest.approx(tt.antipodal_probability("uniform", beta, 4), rel=1e-14)


@pytest.mark.parametrize("rho0, beta, d, sigma2, t", [(-0.3, 1.2, 4, 1.0, 0.5), (0.3, 2.0, 6, 0.5, 3.0)])
def test_classified_fraction_against_reduced_monte_carlo(rho0, beta, d, sigma2, t):
    runs = 8000
    rho = mc.simulate_rho(rho0, beta, d, sigma2, t, 1000, runs, generator=17)
    antipodal, collapsed = tt.classified_fraction(t, rho0, beta, d, sigma2)
    for fraction, exact in zip(fractions(rho), (antipodal, collapsed)):
        assert abs(fraction - exact) < 4 * math.sqrt(exact * (1 - exact) / runs), (fraction, exact)


def test_uniform_classified_fraction_against_reduced_monte_carlo():
    runs, t, beta, d = 8000, 1.0, 1.5, 4
    rho = mc.simulate_rho("uniform", beta, d, 1.0, t, 500, runs, generator=23)
    antipodal, collapsed = tt.classified_fraction(t, "uniform", beta, d)
    for fraction, exact in zip(fractions(rho), (antipodal, collapsed)):
        assert abs(fraction - exact) < 4 * math.sqrt(exact * (1 - exact) / runs), (fraction, exact)


def test_simulators_are_seeded_and_validate():
    a = mc.simulate_rho(0.1, 1.0, 3, 1.0, 1.0, 50, 16, generator=3)
    b = mc.simulate_rho(0.1, 1.0, 3, 1.0, 1.0, 50, 16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    times, path = mc.simulate_hybrid_rho(0.1, 1.0, 0.5, 1.0, 50, 16, generator=3, record_every=10)
    assert times.shape == (6,) and path.shape == (6, 16) and path.dtype == torch.float64
    assert torch.all(mc.simulate_rho(-1.0, 0.1, 10, 1.0, 1.0, 10, 4) == -1.0)  # fixed point
    with pytest.raises(ValueError, match="d must be"):
        tt.drift_diffusion(0.0, 1.0, 1)
    with pytest.raises(ValueError, match="rho0"):
        tt.antipodal_probability(1.5, 1.0, 3)
    with pytest.raises(ValueError, match="beta"):
        tt.classified_fraction(1.0, 0.0, -1.0, 3)
    with pytest.raises(ValueError, match="threshold"):
        tt.classified_fraction(1.0, 0.0, 1.0, 3, threshold=1.0)


# --------------------------------------------------------------------------- (5) hybrid model


@pytest.mark.parametrize("rho, beta, eps", [(0.3, 1.0, 0.5), (-0.6, 2.0, 0.7), (0.5, 0.0, 1.6), (-0.95, 1.0, 1.2)])
def test_hybrid_rho_sde_matches_one_step_of_discrete_hybrid(rho, beta, eps):
    h = 1e-4
    rng = np.random.default_rng(777)
    drift, drift_se, variance, variance_se = moments(*one_step_hybrid(rho, beta, eps, h, 200_000, rng), h)
    mu, s = tt.hybrid_drift_diffusion(rho, beta, eps)
    # The pair mean still carries the O(h) discretisation bias; its size is ~h e^{2 beta}.
    bias = 10 * h * math.exp(2 * beta)
    assert abs(drift - mu) < 5 * drift_se + bias, (drift, drift_se, mu)
    assert abs(variance - s**2) < 5 * variance_se + bias, (variance, variance_se, s**2)
    # Power: the drift without the retraction's second-order terms is rejected.
    wrong = math.exp(beta * rho) * (1 - rho * rho)
    assert abs(drift - wrong) > 5 * drift_se + bias


def test_hybrid_reduces_to_usa_equiangular_flow_and_z_form():
    rho = np.linspace(-0.9, 0.9, 7)
    for beta in (0.0, 1.0, 3.0):
        mu, s = tt.hybrid_drift_diffusion(rho, beta, 0.0)
        np.testing.assert_allclose(mu, theory.equiangular_rhs(rho, 2, beta, "usa"), rtol=1e-13)
        assert np.all(s == 0)
        for eps in (0.3, 1.1):
            mu, s = tt.hybrid_drift_diffusion(rho, beta, eps)
            mu_z, s_z = tt.hybrid_z_coefficients(np.arctanh(rho), beta, eps)
            np.testing.assert_allclose(mu_z, mu / (1 - rho**2) + rho / (1 - rho**2) ** 2 * s**2, rtol=1e-11, atol=1e-13)
            np.testing.assert_allclose(s_z, s / (1 - rho**2), rtol=1e-12)


def test_hybrid_critical_noise_and_exponents():
    betas = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 9.0])
    eps_c = tt.critical_noise(betas)
    for factor, sign in ((0.999, 1.0), (1.001, -1.0)):
        plus, minus = tt.hybrid_lyapunov_exponents(betas, factor * eps_c)
        assert np.all(np.sign(plus) == -sign) and np.all(np.sign(minus) == sign)
    plus, minus = tt.hybrid_lyapunov_exponents(betas, eps_c)
    assert np.all(np.abs(plus) < 1e-12 * np.exp(2 * betas))
    np.testing.assert_allclose(minus, 0.0, atol=1e-12)
    eps = 0.4
    plus, minus = tt.hybrid_lyapunov_exponents(betas, eps)
    np.testing.assert_allclose(plus, -2 * tt.hybrid_z_coefficients(40.0, betas, eps)[0], rtol=1e-13)
    np.testing.assert_allclose(minus, 2 * tt.hybrid_z_coefficients(-40.0, betas, eps)[0], rtol=1e-12)
    assert tt.hybrid_lyapunov_exponents(1.0, 0.0)[0] == pytest.approx(theory.equiangular_late_slope(2, 1.0, "usa"))
    # 0-1 law.
    assert tt.hybrid_antipodal_probability(0.9, 1.0, 1.001 * tt.critical_noise(1.0)) == 1.0
    assert tt.hybrid_antipodal_probability(-0.9, 1.0, 0.999 * tt.critical_noise(1.0)) == 0.0


@pytest.mark.parametrize("eps, t", [(1.0, 2.0), (0.7, 1.0)])
def test_hybrid_classified_fraction_against_reduced_monte_carlo(eps, t):
    rho0, beta, runs = 0.5, 1.0, 8000
    rho = mc.simulate_hybrid_rho(rho0, beta, eps, t, 2000, runs, generator=29)
    antipodal, collapsed = tt.hybrid_classified_fraction(t, rho0, beta, eps)
    for fraction, exact in zip(fractions(rho), (antipodal, collapsed)):
        assert abs(fraction - exact) < 4 * math.sqrt(exact * (1 - exact) / runs) + 1e-4, (fraction, exact)


def test_hybrid_full_discrete_model_and_zero_one_law():
    """Discrete hybrid layers (Rademacher xi, common to both tokens) at t = 1 vs the backward equation;
    far above eps_c nearly every run ends antipodal."""
    rho0, beta, eps, t, steps, runs = 0.5, 1.0, 1.2, 1.0, 1000, 4000
    h = t / steps
    gen = torch.Generator().manual_seed(31)
    x = torch.zeros(runs, 2, 3, dtype=torch.float64)
    x[:, 0, 0] = 1.0
    x[:, 1, 0], x[:, 1, 1] = rho0, math.sqrt(1 - rho0**2)
    for _ in range(steps):
        weights = torch.exp(beta * (x[:, :, None, :] * x[:, None, :, :]).sum(-1))  # USA, (runs, 2, 2)
        y = (weights[..., None] * x[:, None, :, :]).sum(2) / 2
        xi = torch.randint(0, 2, (runs, 1, 1), generator=gen, dtype=torch.float64) * 2 - 1
        x = x + (h + eps * xi * math.sqrt(h)) * y
        x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    rho = (x[:, 0] * x[:, 1]).sum(-1)
    antipodal, collapsed = tt.hybrid_classified_fraction(t, rho0, beta, eps)
    for fraction, exact in zip(fractions(rho), (antipodal, collapsed)):
        assert abs(fraction - exact) < 4 * math.sqrt(exact * (1 - exact) / runs) + 5 * h, (fraction, exact)
    late = tt.hybrid_classified_fraction([5.0, 10.0, np.inf], rho0, beta, eps)[0]
    assert late[0] < late[1] and late[1] > 0.98 and late[2] == 1.0
