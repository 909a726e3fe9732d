"""Tests of tokenswarm.theory.random_mlp (the RandomMLPKernel of 2604.26898 of 2604.26898, docs/theory/random_mlp.md §2-§4)
against closed forms, adaptive quadrature, Monte Carlo of wide random MLPs and of the exact
one-step two-point motion, and of the activation-table experiment built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from tokenswarm.experiments import load_for, run_experiment
from tokenswarm.theory.random_mlp import (
    ACTIVATIONS,
    RandomMLPKernel,
    relu_proposition_1_5,
)

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
    quadrature = RandomMLPKernel("relu", d, sigma_u, sigma_w, method="quadrature")
    closed = RandomMLPKernel("relu", d, sigma_u, sigma_w, method="closed")
    np.testing.assert_allclose(quadrature.kappa(u), closed.kappa(u), rtol=0, atol=1e-13)
    np.testing.assert_allclose(quadrature.kappa_prime(u), closed.kappa_prime(u), rtol=0, atol=1e-13)
    assert quadrature.K1 == pytest.approx(1 / (2 * d) + sigma_u**2 / 2 + sigma_w**2, rel=1e-13)
    assert quadrature.K1_prime == pytest.approx(1 / (2 * d), rel=1e-13)


def test_relu_closed_form_against_arbitrary_precision() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for d, sigma_u, sigma_w, u in [(128, 1.0, 0.0, 1 - 1e-12), (5, 0.1, 0.1, -0.999999), (3, 0.0, 0.2, 0.3)]:
        s = mpmath.mpf(1) / d + mpmath.mpf(sigma_u) ** 2
        r = (mpmath.mpf(u) / d + mpmath.mpf(sigma_u) ** 2) / s
        exact = s / (2 * mpmath.pi) * (mpmath.sqrt(1 - r**2) + r * (mpmath.pi - mpmath.acos(r))) + mpmath.mpf(sigma_w) ** 2
        slope = (mpmath.pi - mpmath.acos(r)) / (2 * mpmath.pi * d)
        closed = RandomMLPKernel("relu", d, sigma_u, sigma_w, method="closed")
        assert closed.kappa(u) == pytest.approx(float(exact), rel=1e-14)
        assert closed.kappa_prime(u) == pytest.approx(float(slope), rel=1e-14)


def test_unsplit_gauss_hermite_is_only_moderately_accurate_for_relu() -> None:
    """A plain callable ReLU (not flagged kinked) goes through tensor Gauss-Hermite: algebraic convergence."""
    u, d = np.linspace(-0.9, 0.9, 7), 5
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    step = lambda x: (x > 0).astype(float)  # noqa: E731
    value = RandomMLPKernel(relu, d, 0.1, 0.1, nodes=64, derivative=step).kappa(u)
    error = np.abs(value - RandomMLPKernel("relu", d, 0.1, 0.1, method="closed").kappa(u)).max()
    assert 1e-12 < error < 1e-3  # ~4e-4 with 64 nodes: why ReLU gets a split rule


def test_kernel_checks_its_arguments_once() -> None:
    for bad, match in [(dict(d=1), "d must be"), (dict(d=2.5), "d must be"), (dict(sigma_u=-0.1), "sigma_u"),
                       (dict(sigma_w=math.nan), "sigma_w"), (dict(method="exact"), "method"),
                       (dict(activation="tanh", method="closed"), "no closed form"), (dict(nodes=0), "nodes"),
                       (dict(activation="softplus"), "activation")]:
        with pytest.raises(ValueError, match=match):
            RandomMLPKernel(**{"activation": "relu", "d": 5, **bad})
    kernel = RandomMLPKernel("ReLU", 5.0, 0.1, 0)
    assert kernel.activation is ACTIVATIONS["relu"] and kernel.d == 5 and isinstance(kernel.d, int)
    assert kernel == RandomMLPKernel("relu", 5, 0.1, 0.0)
    for bad_u in (1.1, math.nan):
        with pytest.raises(ValueError, match="u must lie in"):
            kernel.kappa(bad_u)
    with pytest.raises(ValueError, match="beta"):
        kernel.energy_F(0.5, 0.0)
    with pytest.raises(ValueError, match="grid"):
        kernel.energy_decay_bound(1.0, grid=5)


# ----------------------------------------------------------------------------- quadrature accuracy


@pytest.mark.parametrize("activation", ALL)
@pytest.mark.parametrize("d", [2, 5, 64])
@pytest.mark.parametrize("sigma_u, sigma_w", BIASES)
def test_kappa_at_one_is_K1(activation: str, d: int, sigma_u: float, sigma_w: float) -> None:
    for method in ("auto", "quadrature"):
        kernel = RandomMLPKernel(activation, d, sigma_u, sigma_w, method=method)
        assert kernel.kappa(1.0) == pytest.approx(kernel.K1, rel=1e-12, abs=1e-15)
        assert kernel.kappa_prime(1.0) == pytest.approx(kernel.K1_prime, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("activation", SMOOTH)
def test_one_dimensional_constants_against_adaptive_quadrature(activation: str) -> None:
    act = ACTIVATIONS[activation]
    for d, sigma_u, sigma_w in [(2, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.5, 0.2)]:
        s = math.sqrt(1 / d + sigma_u**2)
        gauss = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
        square, _ = integrate.quad(lambda z: act.function(np.array(s * z)) ** 2 * gauss(z), -40, 40, epsabs=1e-15, epsrel=1e-13, limit=200)
        slope, _ = integrate.quad(lambda z: act.derivative(np.array(s * z)) ** 2 * gauss(z), -40, 40, epsabs=1e-15, epsrel=1e-13, limit=200)
        kernel = RandomMLPKernel(activation, d, sigma_u, sigma_w)
        assert kernel.K1 == pytest.approx(square + sigma_w**2, rel=1e-11)
        assert kernel.K1_prime == pytest.approx(slope / d, rel=1e-11)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_kappa_against_two_dimensional_adaptive_quadrature(activation: str) -> None:
    act = ACTIVATIONS[activation]
    d, sigma_u, sigma_w, u = 5, 0.1, 0.1, 0.37
    s, c = 1 / d + sigma_u**2, u / d + sigma_u**2
    l11, l21 = math.sqrt(s), c / math.sqrt(s)
    l22 = math.sqrt(s - l21**2)

    def integrand(z2: float, z1: float) -> float:
        weight = math.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2 * math.pi)
        return float(act.function(np.array(l11 * z1)) * act.function(np.array(l21 * z1 + l22 * z2))) * weight

    value, _ = integrate.dblquad(integrand, -12, 12, -12, 12, epsabs=1e-13, epsrel=1e-11)
    assert RandomMLPKernel(activation, d, sigma_u, sigma_w).kappa(u) == pytest.approx(value + sigma_w**2, rel=1e-9)


@pytest.mark.parametrize("activation", SMOOTH)
def test_default_nodes_are_converged(activation: str) -> None:
    """Default node counts against 600 nodes, for variances 1/d + σ_U² = 0.21, 0.99 and 1.94."""
    u = np.linspace(-1, 1, 9)
    for d, sigma_u in [(5, 0.1), (2, 0.7), (2, 1.2)]:
        default = RandomMLPKernel(activation, d, sigma_u, 0.1)
        fine = RandomMLPKernel(activation, d, sigma_u, 0.1, nodes=600)
        np.testing.assert_allclose(default.kappa(u), fine.kappa(u), rtol=0, atol=1e-12)
        np.testing.assert_allclose(default.kappa_prime(u), fine.kappa_prime(u), rtol=0, atol=1e-12)


def test_field_covariance_off_the_sphere() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    unit_x, unit_y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    silu = RandomMLPKernel("silu", 6, 0.2, 0.1)
    assert silu.field_covariance(unit_x, unit_y) == pytest.approx(silu.kappa(unit_x @ unit_y), rel=1e-12)
    # General norms: ReLU of two Gaussians with variances a, b and covariance c (arc-cosine kernel).
    a, b, c = x @ x / 6 + 0.04, y @ y / 6 + 0.04, x @ y / 6 + 0.04
    r = c / math.sqrt(a * b)
    exact = math.sqrt(a * b) / (2 * math.pi) * (math.sqrt(1 - r * r) + r * (math.pi - math.acos(r))) + 0.01
    assert RandomMLPKernel("relu", 6, 0.2, 0.1).field_covariance(x, y) == pytest.approx(exact, rel=1e-13)
    assert RandomMLPKernel("sigmoid", 6, 0.0, 0.1).field_covariance(x, 0 * y) == pytest.approx(0.25 + 0.01, rel=1e-13)
    with pytest.raises(ValueError, match="length d = 5"):
        RandomMLPKernel("relu", 5).field_covariance(x, y)


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
    expected = RandomMLPKernel("tanh", d, sigma_u, sigma_w).kappa(u)
    for estimate in (hidden, output):
        standard_error = estimate.std(ddof=1) / math.sqrt(draws)
        assert abs(estimate.mean() - expected) < 5 * standard_error, (estimate.mean(), expected, standard_error)


# ----------------------------------------------------------------------------- Price, exponents


@pytest.mark.parametrize("activation", ALL)
def test_price_theorem_kappa_prime_is_the_derivative(activation: str) -> None:
    u, h = np.linspace(-0.98, 0.98, 25), 1e-4
    for d, sigma_u, sigma_w in [(3, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.3, 0.2)]:
        kernel = RandomMLPKernel(activation, d, sigma_u, sigma_w)
        numerical = (kernel.kappa(u + h) - kernel.kappa(u - h)) / (2 * h)
        np.testing.assert_allclose(kernel.kappa_prime(u), numerical, rtol=0, atol=1e-6)


def test_callable_activation_with_numerical_derivative() -> None:
    custom = RandomMLPKernel(lambda x: np.tanh(x), 5, 0.1, 0.1).kappa_prime(0.4)
    assert custom == pytest.approx(RandomMLPKernel("tanh", 5, 0.1, 0.1).kappa_prime(0.4), rel=1e-8)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 17, 64, 128])
@pytest.mark.parametrize("sigma_u, sigma_w", BIASES)
def test_proposition_1_5(d: int, sigma_u: float, sigma_w: float) -> None:
    lyapunov, bar = relu_proposition_1_5(d, sigma_u, sigma_w)
    # Against the definitions evaluated with quadrature K1, K1' (not the closed forms).
    quadrature = RandomMLPKernel("relu", d, sigma_u, sigma_w, method="quadrature")
    assert quadrature.lambda_1 == pytest.approx(lyapunov, rel=1e-12, abs=1e-15)
    assert quadrature.lambda_bar == pytest.approx(bar, rel=1e-12, abs=1e-15)
    assert lyapunov < 0  # the bias term enters with a minus sign
    threshold = sigma_u**2 + 2 * sigma_w**2 > 2 / (d * (d - 3)) if d > 3 else False
    assert (bar < 0) == threshold


@pytest.mark.parametrize("activation", ALL)
def test_lambda_1_is_half_lambda_bar_minus_K1_minus_K1_prime(activation: str) -> None:
    for d, sigma_u, sigma_w in [(3, 0.0, 0.0), (5, 0.1, 0.1), (64, 0.3, 0.2)]:
        kernel = RandomMLPKernel(activation, d, sigma_u, sigma_w)
        assert kernel.lambda_1 == pytest.approx(kernel.lambda_bar / 2 - kernel.K1 - kernel.K1_prime, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("activation", ALL)
def test_activation_criterion_is_the_sign_of_lambda_bar(activation: str) -> None:
    signs = []
    for d in [2, 3, 4, 5, 10, 64]:
        for bias in [0.0, 0.05, 0.1, 0.3]:
            kernel = RandomMLPKernel(activation, d, bias, bias)
            criterion = kernel.activation_criterion
            assert criterion == (kernel.lambda_bar < 0)
            signs.append(criterion)
    assert any(signs) and not all(signs)  # both outcomes occur, so the comparison has teeth


# ----------------------------------------------------------------------------- energy decay


def definition_G(u, beta, kernel):
    """G(u) straight from its definition (cancels near u = 1; fine away from it)."""
    k, k1, d = kernel.kappa(u), kernel.K1, kernel.d
    return k * (d - 2 + u**2 - beta * u * (1 - u**2)) + k1 * (beta * (1 - u**2) - (d - 1) * u)


@pytest.mark.parametrize("activation", ALL)
@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
def test_F_tends_to_minus_lambda_bar_at_one(activation: str, beta: float) -> None:
    for d, bias in [(5, 0.0), (64, 0.1)]:
        kernel = RandomMLPKernel(activation, d, bias, bias)
        bar = kernel.lambda_bar
        assert kernel.energy_F(1.0, beta) == pytest.approx(-bar, rel=1e-13, abs=1e-15)
        # The stable evaluation (1-u) H(u) agrees with the definition of G where that is accurate.
        u = np.linspace(-1, 0.9, 20)
        np.testing.assert_allclose(kernel.energy_G(u, beta), definition_G(u, beta, kernel), rtol=1e-11, atol=1e-13)
        direct = beta * np.exp(beta * u) * definition_G(u, beta, kernel) / (np.exp(beta) - np.exp(beta * u))
        np.testing.assert_allclose(kernel.energy_F(u, beta), direct, rtol=1e-11, atol=1e-13)
        # Analytically G(1) = 0 and G'(1) = λ̄: F(1 - h) + λ̄ = O(h) (smooth σ), O(sqrt h) (ReLU:
        # κ has a (1-u)^{3/2} term). The definition itself, at moderate h, shows the same limit.
        gaps = np.array([1e-2, 1e-3, 1e-4])
        definition = beta * definition_G(1 - gaps, beta, kernel) / np.expm1(beta * gaps)
        stable = kernel.energy_F(1 - gaps, beta)
        np.testing.assert_allclose(stable, definition, rtol=1e-8, atol=1e-12)
        # Far closer to 1, where the definition has lost its digits, the stable form shows the order.
        close = np.array([1e-6, 1e-8, 1e-10])
        errors = np.abs(kernel.energy_F(1 - close, beta) + bar)
        order = 0.5 if activation == "relu" else 1.0
        np.testing.assert_allclose(errors[1:] / errors[:-1], 100.0**-order, rtol=0.1)


@pytest.mark.parametrize("activation", ALL)
def test_lambda_bar_prime_is_minus_the_infimum_of_F(activation: str) -> None:
    # An independent, denser grid (its own points, down to 1 - u = 1e-12): the bound must be at
    # least -min (a minimum is a minimum) and at most that plus the grid's quadratic error.
    dense = np.concatenate([np.linspace(-1, 1, 3_001), 1 - np.logspace(-2, -12, 23), -1 + np.logspace(-2, -8, 7)])
    for d, bias, beta in [(5, 0.0, 1.0), (64, 0.1, 1.0), (5, 0.1, 3.0)]:
        kernel = RandomMLPKernel(activation, d, bias, bias)
        bound = kernel.energy_decay_bound(beta)
        brute = kernel.energy_F(dense, beta).min()
        assert -brute - 1e-13 <= bound.lambda_bar_prime <= -brute + 1e-6
        assert bound.lambda_bar_prime >= bound.lambda_bar - 1e-15  # inf F <= F(1⁻) = -λ̄
        if bound.u_star == -1.0:  # F(-1) = β e^{-β}(d-1)(κ(-1) + K1)/(e^β - e^{-β})
            at_minus = beta * math.exp(-beta) * (d - 1) * (kernel.kappa(-1.0) + kernel.K1) / (2 * math.sinh(beta))
            assert bound.lambda_bar_prime == pytest.approx(-at_minus, rel=1e-12)


def test_odd_field_is_never_coercive() -> None:
    # tanh without bias: G^m is odd, κ(-1) = -K1, F(-1) = 0, so λ̄' >= 0 whatever d and beta.
    for d in [5, 64]:
        kernel = RandomMLPKernel("tanh", d)
        assert kernel.kappa(-1.0) == pytest.approx(-kernel.K1, rel=1e-13)
        assert kernel.odd_field and not RandomMLPKernel("tanh", d, 0.1, 0.0).odd_field
        constants = kernel.constants(beta=2.0)
        assert constants.odd_field and not constants.coercive and not constants.S1


@pytest.mark.parametrize("activation", ALL)
def test_energy_rate_is_minus_half_beta_exp_G(activation: str) -> None:
    u = np.linspace(-1, 1, 21)
    for d, bias, beta in [(3, 0.0, 0.7), (64, 0.1, 2.0)]:
        kernel = RandomMLPKernel(activation, d, bias, bias)
        direct = -0.5 * beta * np.exp(beta * u) * kernel.energy_G(u, beta)
        # b(1) = (d-1)(κ(1) - K1) is a difference of O(d K1) numbers: absolute rounding ~1e-13 there.
        np.testing.assert_allclose(kernel.energy_rate(u, beta), direct, rtol=1e-12, atol=1e-11)


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
    kernel = RandomMLPKernel(activation, d, bias, bias)
    k1, k = kernel.K1, kernel.kappa(u)
    plus, minus = one_step_inner_products(u, k1, k, d, h, pairs, np.random.default_rng(17))
    energy = lambda v: 0.5 * (math.exp(beta) - np.exp(beta * v))  # noqa: E731
    estimates = {
        "drift": ((plus + minus) / 2 - u) / h,  # antithetic: the O(√h) martingale term cancels exactly
        "quadratic variation": ((plus - u) ** 2 + (minus - u) ** 2) / (2 * h),
        "energy rate": ((energy(plus) + energy(minus)) / 2 - energy(u)) / h,
    }
    theory = {
        "drift": kernel.two_point_drift(u),
        "quadratic variation": kernel.two_point_quadratic_variation(u),
        "energy rate": kernel.energy_rate(u, beta),
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
    table = result.metrics["table"]
    assert len(table) == 5 * 3 * 2
    row = next(r for r in table if r["activation"] == "relu" and r["d"] == 64 and r["bias"] == 0.1)
    lyapunov, bar = relu_proposition_1_5(64, 0.1, 0.1)
    assert row["lambda_1"] == pytest.approx(lyapunov, rel=1e-12) and row["lambda_bar"] == pytest.approx(bar, rel=1e-12)
    assert row["coercive"] and row["S1"]
    first = table[0]
    assert result.metrics["K1"] == first["K1"] and result.metrics["coercive"] == first["coercive"]
    assert set(result.data.sizes) == {"activation", "d", "bias"}
    assert any(path.endswith(".png") for path in outputs)
