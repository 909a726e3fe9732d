"""Tests of tokenswarm.theory.random_mlp (random-MLP kernel theory of 2604.26898, docs/theory/random_mlp.md §2-§4)
against closed forms, adaptive quadrature, Monte Carlo of wide random MLPs and of the exact
one-step two-point motion, and of the activation-table experiment built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from tokenswarm.experiments import load_for, run_experiment
from tokenswarm.theory import random_mlp as kernels

SMOOTH = ["tanh", "sigmoid", "silu", "gelu"]
ALL = ["relu", *SMOOTH]
BIASES = [(0.0, 0.0), (0.1, 0.1), (0.5, 0.2), (0.0, 0.3)]


def edge_grid() -> np.ndarray:
    """[-1, 1] with points geometrically close to both ends, where ReLU's κ' has infinite slope in r."""
    near = np.logspace(-1, -15, 15)
    return np.concatenate([np.linspace(-1.0, 1.0, 41), 1.0 - near, -1.0 + near])


# ----------------------------------------------------------------------------- ReLU closed forms


@pytest.mark.parametrize("d", [2, 3, 5, 64, 128])
@pytest.mark.parametrize("sigma_u, sigma_w", BIASES)
def test_relu_quadrature_matches_closed_forms(d: int, sigma_u: float, sigma_w: float) -> None:
    u = edge_grid()
    for function, closed in ((kernels.kappa, kernels.relu_kappa), (kernels.kappa_prime, kernels.relu_kappa_prime)):
        quadrature = function(u, "relu", d, sigma_u, sigma_w, method="quadrature")
        np.testing.assert_allclose(quadrature, closed(u, d, sigma_u, sigma_w), rtol=0, atol=1e-13)
    assert kernels.K1("relu", d, sigma_u, sigma_w, method="quadrature") == pytest.approx(
        1 / (2 * d) + sigma_u**2 / 2 + sigma_w**2, rel=1e-13)
    assert kernels.K1_prime("relu", d, sigma_u, sigma_w, method="quadrature") == pytest.approx(1 / (2 * d), rel=1e-13)


def test_relu_closed_form_against_arbitrary_precision() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for d, sigma_u, sigma_w, u in [(128, 1.0, 0.0, 1 - 1e-12), (5, 0.1, 0.1, -0.999999), (3, 0.0, 0.2, 0.3)]:
        s = mpmath.mpf(1) / d + mpmath.mpf(sigma_u) ** 2
        r = (mpmath.mpf(u) / d + mpmath.mpf(sigma_u) ** 2) / s
        exact = s / (2 * mpmath.pi) * (mpmath.sqrt(1 - r**2) + r * (mpmath.pi - mpmath.acos(r))) + mpmath.mpf(sigma_w) ** 2
        slope = (mpmath.pi - mpmath.acos(r)) / (2 * mpmath.pi * d)
        assert kernels.relu_kappa(u, d, sigma_u, sigma_w) == pytest.approx(float(exact), rel=1e-14)
        assert kernels.relu_kappa_prime(u, d, sigma_u, sigma_w) == pytest.approx(float(slope), rel=1e-14)


def test_unsplit_gauss_hermite_is_only_moderately_accurate_for_relu() -> None:
    """A plain callable ReLU (not flagged kinked) goes through tensor Gauss-Hermite: algebraic convergence."""
    u, d = np.linspace(-0.9, 0.9, 7), 5
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    step = lambda x: (x > 0).astype(float)  # noqa: E731
    value = kernels.kappa(u, relu, d, 0.1, 0.1, derivative=step, nodes=64)
    error = np.abs(value - kernels.relu_kappa(u, d, 0.1, 0.1)).max()
    assert 1e-12 < error < 1e-3  # ~4e-4 with 64 nodes: why ReLU gets a split rule


# ----------------------------------------------------------------------------- quadrature accuracy


@pytest.mark.parametrize("activation", ALL)
@pytest.mark.parametrize("d", [2, 5, 64])
@pytest.mark.parametrize("sigma_u, sigma_w", BIASES)
def test_kappa_at_one_is_K1(activation: str, d: int, sigma_u: float, sigma_w: float) -> None:
    for method in ("auto", "quadrature"):
        k1 = kernels.K1(activation, d, sigma_u, sigma_w, method=method)
        k1p = kernels.K1_prime(activation, d, sigma_u, sigma_w, method=method)
        assert kernels.kappa(1.0, activation, d, sigma_u, sigma_w, method=method) == pytest.approx(k1, rel=1e-12, abs=1e-15)
        assert kernels.kappa_prime(1.0, activation, d, sigma_u, sigma_w, method=method) == pytest.approx(k1p, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("activation", SMOOTH)
def test_one_dimensional_constants_against_adaptive_quadrature(activation: str) -> None:
    act = kernels.ACTIVATIONS[activation]
    for d, sigma_u, sigma_w in [(2, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.5, 0.2)]:
        s = math.sqrt(1 / d + sigma_u**2)
        gauss = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
        square, _ = integrate.quad(lambda z: act.function(np.array(s * z)) ** 2 * gauss(z), -40, 40, epsabs=1e-15, epsrel=1e-13, limit=200)
        slope, _ = integrate.quad(lambda z: act.derivative(np.array(s * z)) ** 2 * gauss(z), -40, 40, epsabs=1e-15, epsrel=1e-13, limit=200)
        assert kernels.K1(activation, d, sigma_u, sigma_w) == pytest.approx(square + sigma_w**2, rel=1e-11)
        assert kernels.K1_prime(activation, d, sigma_u, sigma_w) == pytest.approx(slope / d, rel=1e-11)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_kappa_against_two_dimensional_adaptive_quadrature(activation: str) -> None:
    act = kernels.ACTIVATIONS[activation]
    d, sigma_u, sigma_w, u = 5, 0.1, 0.1, 0.37
    s, c = 1 / d + sigma_u**2, u / d + sigma_u**2
    l11, l21 = math.sqrt(s), c / math.sqrt(s)
    l22 = math.sqrt(s - l21**2)

    def integrand(z2: float, z1: float) -> float:
        weight = math.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2 * math.pi)
        return float(act.function(np.array(l11 * z1)) * act.function(np.array(l21 * z1 + l22 * z2))) * weight

    value, _ = integrate.dblquad(integrand, -12, 12, -12, 12, epsabs=1e-13, epsrel=1e-11)
    assert kernels.kappa(u, activation, d, sigma_u, sigma_w) == pytest.approx(value + sigma_w**2, rel=1e-9)


@pytest.mark.parametrize("activation", SMOOTH)
def test_default_nodes_are_converged(activation: str) -> None:
    """Default node counts against 600 nodes, for variances 1/d + σ_U² = 0.21, 0.99 and 1.94."""
    u = np.linspace(-1, 1, 9)
    for d, sigma_u in [(5, 0.1), (2, 0.7), (2, 1.2)]:
        for function in (kernels.kappa, kernels.kappa_prime):
            default = function(u, activation, d, sigma_u, 0.1)
            fine = function(u, activation, d, sigma_u, 0.1, nodes=600)
            np.testing.assert_allclose(default, fine, rtol=0, atol=1e-12)


def test_field_covariance_off_the_sphere() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    unit_x, unit_y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    assert kernels.field_covariance(unit_x, unit_y, "silu", 0.2, 0.1) == pytest.approx(
        kernels.kappa(unit_x @ unit_y, "silu", 6, 0.2, 0.1), rel=1e-12)
    # General norms: ReLU of two Gaussians with variances a, b and covariance c (arc-cosine kernel).
    a, b, c = x @ x / 6 + 0.04, y @ y / 6 + 0.04, x @ y / 6 + 0.04
    r = c / math.sqrt(a * b)
    exact = math.sqrt(a * b) / (2 * math.pi) * (math.sqrt(1 - r * r) + r * (math.pi - math.acos(r))) + 0.01
    assert kernels.field_covariance(x, y, "relu", 0.2, 0.1) == pytest.approx(exact, rel=1e-13)
    assert kernels.field_covariance(x, 0 * y, "sigmoid", 0.0, 0.1) == pytest.approx(0.25 + 0.01, rel=1e-13)


# ----------------------------------------------------------------------------- Monte Carlo of the MLP


def test_kappa_against_wide_random_mlp_monte_carlo() -> None:
    """200 independent MLPs of width m = 20000 (tanh, d = 5, u = 0.3, σ_U = σ_W = 0.1).

    Two estimators, each within 5 standard errors: the hidden-layer average
    ``(1/m) Σ_k σ(U_k·x/√d + b_k) σ(U_k·y/√d + b_k) + σ_W²`` (sharp: 4e6 hidden units) and the
    output covariance ``<G(x), G(y)>/d`` (checks the W, b_W and m^{-1/2} layer).
    """
    d, m, draws, sigma_u, sigma_w, u = 5, 20_000, 200, 0.1, 0.1, 0.3
    x = np.zeros(d)
    x[0] = 1.0
    y = np.zeros(d)
    y[:2] = u, math.sqrt(1 - u * u)
    rng = np.random.default_rng(20_000)
    hidden, output = np.empty(draws), np.empty(draws)
    for draw in range(draws):
        U = rng.standard_normal((m, d))
        b = sigma_u * rng.standard_normal(m)
        hx, hy = np.tanh(U @ x / math.sqrt(d) + b), np.tanh(U @ y / math.sqrt(d) + b)
        W = rng.standard_normal((d, m))
        bias_w = sigma_w * rng.standard_normal(d)
        gx, gy = W @ hx / math.sqrt(m) + bias_w, W @ hy / math.sqrt(m) + bias_w
        hidden[draw] = np.mean(hx * hy) + sigma_w**2
        output[draw] = gx @ gy / d
    expected = kernels.kappa(u, "tanh", d, sigma_u, sigma_w)
    for estimate in (hidden, output):
        standard_error = estimate.std(ddof=1) / math.sqrt(draws)
        assert abs(estimate.mean() - expected) < 5 * standard_error, (estimate.mean(), expected, standard_error)


# ----------------------------------------------------------------------------- Price, exponents


@pytest.mark.parametrize("activation", ALL)
def test_price_theorem_kappa_prime_is_the_derivative(activation: str) -> None:
    u, h = np.linspace(-0.98, 0.98, 25), 1e-4
    for d, sigma_u, sigma_w in [(3, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.3, 0.2)]:
        numerical = (kernels.kappa(u + h, activation, d, sigma_u, sigma_w)
                     - kernels.kappa(u - h, activation, d, sigma_u, sigma_w)) / (2 * h)
        np.testing.assert_allclose(kernels.kappa_prime(u, activation, d, sigma_u, sigma_w), numerical, rtol=0, atol=1e-6)


def test_callable_activation_with_numerical_derivative() -> None:
    custom = kernels.kappa_prime(0.4, lambda x: np.tanh(x), 5, 0.1, 0.1)
    assert custom == pytest.approx(kernels.kappa_prime(0.4, "tanh", 5, 0.1, 0.1), rel=1e-8)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 17, 64, 128])
@pytest.mark.parametrize("sigma_u, sigma_w", BIASES)
def test_proposition_1_5(d: int, sigma_u: float, sigma_w: float) -> None:
    lyapunov, bar = kernels.relu_proposition_1_5(d, sigma_u, sigma_w)
    # Against the definitions evaluated with quadrature K1, K1' (not the closed forms).
    assert kernels.lambda_1("relu", d, sigma_u, sigma_w, method="quadrature") == pytest.approx(lyapunov, rel=1e-12, abs=1e-15)
    assert kernels.lambda_bar("relu", d, sigma_u, sigma_w, method="quadrature") == pytest.approx(bar, rel=1e-12, abs=1e-15)
    assert lyapunov < 0  # the bias term enters with a minus sign
    threshold = sigma_u**2 + 2 * sigma_w**2 > 2 / (d * (d - 3)) if d > 3 else False
    assert (bar < 0) == threshold


@pytest.mark.parametrize("activation", ALL)
def test_lambda_1_is_half_lambda_bar_minus_K1_minus_K1_prime(activation: str) -> None:
    for d, sigma_u, sigma_w in [(3, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.3, 0.2)]:
        k1, k1p = kernels.K1(activation, d, sigma_u, sigma_w), kernels.K1_prime(activation, d, sigma_u, sigma_w)
        assert kernels.lambda_1(activation, d, sigma_u, sigma_w) == pytest.approx(
            kernels.lambda_bar(activation, d, sigma_u, sigma_w) / 2 - k1 - k1p, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("activation", ALL)
def test_activation_criterion_is_the_sign_of_lambda_bar(activation: str) -> None:
    signs = []
    for d in [2, 3, 4, 5, 10, 64]:
        for bias in [0.0, 0.05, 0.1, 0.3]:
            criterion = kernels.activation_criterion(activation, d, bias, bias)
            assert criterion == (kernels.lambda_bar(activation, d, bias, bias) < 0)
            signs.append(criterion)
    assert any(signs) and not all(signs)  # both outcomes occur, so the comparison has teeth


# ----------------------------------------------------------------------------- energy decay


def definition_G(u, beta, activation, d, bias):
    """G(u) straight from its definition (cancels near u = 1; fine away from it)."""
    k, k1 = kernels.kappa(u, activation, d, bias, bias), kernels.K1(activation, d, bias, bias)
    return k * (d - 2 + u**2 - beta * u * (1 - u**2)) + k1 * (beta * (1 - u**2) - (d - 1) * u)


@pytest.mark.parametrize("activation", ALL)
@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
def test_F_tends_to_minus_lambda_bar_at_one(activation: str, beta: float) -> None:
    for d, bias in [(5, 0.0), (64, 0.1)]:
        bar = kernels.lambda_bar(activation, d, bias, bias)
        assert kernels.energy_F(1.0, beta, activation, d, bias, bias) == pytest.approx(-bar, rel=1e-13, abs=1e-15)
        # The stable evaluation (1-u) H(u) agrees with the definition of G where that is accurate.
        u = np.linspace(-1, 0.9, 20)
        np.testing.assert_allclose(kernels.energy_G(u, beta, activation, d, bias, bias),
                                   definition_G(u, beta, activation, d, bias), rtol=1e-11, atol=1e-13)
        direct = beta * np.exp(beta * u) * definition_G(u, beta, activation, d, bias) / (np.exp(beta) - np.exp(beta * u))
        np.testing.assert_allclose(kernels.energy_F(u, beta, activation, d, bias, bias), direct, rtol=1e-11, atol=1e-13)
        # Analytically G(1) = 0 and G'(1) = λ̄: F(1 - h) + λ̄ = O(h) (smooth σ), O(sqrt h) (ReLU:
        # κ has a (1-u)^{3/2} term). The definition itself, at moderate h, shows the same limit.
        gaps = np.array([1e-2, 1e-3, 1e-4])
        definition = beta * definition_G(1 - gaps, beta, activation, d, bias) / np.expm1(beta * gaps)
        stable = kernels.energy_F(1 - gaps, beta, activation, d, bias, bias)
        np.testing.assert_allclose(stable, definition, rtol=1e-8, atol=1e-12)
        # Far closer to 1, where the definition has lost its digits, the stable form shows the order.
        close = np.array([1e-6, 1e-8, 1e-10])
        errors = np.abs(kernels.energy_F(1 - close, beta, activation, d, bias, bias) + bar)
        order = 0.5 if activation == "relu" else 1.0
        np.testing.assert_allclose(errors[1:] / errors[:-1], 100.0**-order, rtol=0.1)


@pytest.mark.parametrize("activation", ALL)
def test_lambda_bar_prime_is_minus_the_infimum_of_F(activation: str) -> None:
    # An independent, denser grid (its own points, down to 1 - u = 1e-12): the bound must be at
    # least -min (a minimum is a minimum) and at most that plus the grid's quadratic error.
    dense = np.concatenate([np.linspace(-1, 1, 3_001), 1 - np.logspace(-2, -12, 23), -1 + np.logspace(-2, -8, 7)])
    for d, bias, beta in [(5, 0.0, 1.0), (64, 0.1, 1.0), (5, 0.1, 3.0)]:
        bound = kernels.energy_decay_bound(beta, activation, d, bias, bias)
        brute = kernels.energy_F(dense, beta, activation, d, bias, bias).min()
        assert -brute - 1e-13 <= bound.lambda_bar_prime <= -brute + 1e-6
        assert bound.lambda_bar_prime >= bound.lambda_bar - 1e-15  # inf F <= F(1⁻) = -λ̄
        if bound.u_star == -1.0:  # F(-1) = β e^{-β}(d-1)(κ(-1) + K1)/(e^β - e^{-β})
            k_minus = kernels.kappa(-1.0, activation, d, bias, bias)
            at_minus = beta * math.exp(-beta) * (d - 1) * (k_minus + kernels.K1(activation, d, bias, bias)) / (2 * math.sinh(beta))
            assert bound.lambda_bar_prime == pytest.approx(-at_minus, rel=1e-12)


def test_odd_field_is_never_coercive() -> None:
    # tanh without bias: G^m is odd, κ(-1) = -K1, F(-1) = 0, so λ̄' >= 0 whatever d and beta.
    for d in [5, 64]:
        assert kernels.kappa(-1.0, "tanh", d) == pytest.approx(-kernels.K1("tanh", d), rel=1e-13)
        assert kernels.is_odd_field("tanh") and not kernels.is_odd_field("tanh", 0.1, 0.0)
        constants = kernels.kernel_constants("tanh", d, 0.0, 0.0, beta=2.0)
        assert not constants.coercive and not constants.S1


@pytest.mark.parametrize("activation", ALL)
def test_energy_rate_is_minus_half_beta_exp_G(activation: str) -> None:
    u = np.linspace(-1, 1, 21)
    for d, bias, beta in [(3, 0.0, 0.7), (64, 0.1, 2.0)]:
        direct = -0.5 * beta * np.exp(beta * u) * kernels.energy_G(u, beta, activation, d, bias, bias)
        # b(1) = (d-1)(κ(1) - K1) is a difference of O(d K1) numbers: absolute rounding ~1e-13 there.
        np.testing.assert_allclose(kernels.energy_rate(u, beta, activation, d, bias, bias), direct, rtol=1e-12, atol=1e-11)


# ----------------------------------------------------------------------------- two-point generator


def one_step_inner_products(u: float, k1: float, k: float, d: int, h: float, pairs: int, rng: np.random.Generator):
    """``<N(x + √h G(x)), N(y + √h G(y))>`` for ``±G`` (antithetic), ``(G(x), G(y))`` exactly Gaussian.

    Covariance ``[[K1, κ], [κ, K1]] ⊗ I_d``: the discrete model with an infinitely wide MLP.
    """
    x = np.zeros(d)
    x[0] = 1.0
    y = np.zeros(d)
    y[:2] = u, math.sqrt(1 - u * u)
    z1, z2 = rng.standard_normal((pairs, d)), rng.standard_normal((pairs, d))
    gx = math.sqrt(k1) * z1
    gy = k / math.sqrt(k1) * z1 + math.sqrt(max(k1 - k * k / k1, 0.0)) * z2
    out = []
    for sign in (1.0, -1.0):
        xs = x + sign * math.sqrt(h) * gx
        ys = y + sign * math.sqrt(h) * gy
        out.append(np.einsum("pi,pi->p", xs, ys) / (np.linalg.norm(xs, axis=1) * np.linalg.norm(ys, axis=1)))
    return out


@pytest.mark.parametrize(
    "activation, d, bias, u, beta",
    [("tanh", 5, 0.1, 0.3, 1.0), ("relu", 4, 0.0, -0.5, 2.0), ("sigmoid", 3, 0.0, 0.8, 0.5), ("gelu", 8, 0.3, 0.95, 3.0)],
)
def test_two_point_generator_against_one_step_monte_carlo(activation, d, bias, u, beta) -> None:
    """Drift b(u), quadratic variation a(u) and L g for the energy g(u) = ½(e^β - e^{βu}), each
    within 5 standard errors of a one-step Monte Carlo with h = 1e-6 (bias O(h))."""
    h, pairs = 1e-6, 200_000
    k1, k = kernels.K1(activation, d, bias, bias), kernels.kappa(u, activation, d, bias, bias)
    plus, minus = one_step_inner_products(u, k1, k, d, h, pairs, np.random.default_rng(17))
    energy = lambda v: 0.5 * (math.exp(beta) - np.exp(beta * v))  # noqa: E731
    estimates = {
        "drift": ((plus + minus) / 2 - u) / h,  # antithetic: the O(√h) martingale term cancels exactly
        "quadratic variation": ((plus - u) ** 2 + (minus - u) ** 2) / (2 * h),
        "energy rate": ((energy(plus) + energy(minus)) / 2 - energy(u)) / h,
    }
    theory = {
        "drift": kernels.two_point_drift(u, activation, d, bias, bias),
        "quadratic variation": kernels.two_point_quadratic_variation(u, activation, d, bias, bias),
        "energy rate": kernels.energy_rate(u, beta, activation, d, bias, bias),
    }
    for name, sample in estimates.items():
        standard_error = sample.std(ddof=1) / math.sqrt(pairs)
        assert abs(sample.mean() - theory[name]) < 5 * standard_error, (name, sample.mean(), theory[name], standard_error)
        # Teeth: the test resolves the quantity to a few per cent of the natural scale K1·d
        # (b, a and L g are sums of O(d) terms of size K1, κ).
        assert standard_error < 0.01 * k1 * d * max(1.0, beta * math.exp(beta))


# ----------------------------------------------------------------------------- experiment


def test_activation_table_experiment(tmp_path) -> None:
    load_for("activation-table")
    result, outputs = run_experiment("activation-table", {}, quick=True, seed=0, out_dir=tmp_path)
    failed = [(claim.name, claim.measured, claim.detail) for claim in result.claims if not claim.passed]
    assert not failed
    assert len(result.claims) >= 5
    assert result.seconds < 10
    table = result.metrics["table"]
    assert len(table) == 5 * 3 * 2
    row = next(r for r in table if r["activation"] == "relu" and r["d"] == 64 and r["bias"] == 0.1)
    lyapunov, bar = kernels.relu_proposition_1_5(64, 0.1, 0.1)
    assert row["lambda_1"] == pytest.approx(lyapunov, rel=1e-12) and row["lambda_bar"] == pytest.approx(bar, rel=1e-12)
    assert row["coercive"] and row["S1"]
    first = table[0]
    assert result.metrics["K1"] == first["K1"] and result.metrics["coercive"] == first["coercive"]
    assert set(result.data.sizes) == {"activation", "d", "bias"}
    assert any(path.endswith(".png") for path in outputs)
