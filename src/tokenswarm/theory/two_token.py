"""Two tokens under common noise: exact one-dimensional reductions (docs/theory/common_noise.md §2, 2601.21942).

For ``n = 2`` the whole state, up to a common rotation, is the inner product
``rho = <x_1, x_2>``, and ``rho`` is itself a diffusion on ``[-1, 1]``. This module derives it for
the two models of docs/theory/common_noise.md §1 and §3 and gives exact oracles (NumPy/SciPy, float64)
for it. Derivations are in ``docs/two_token.md``; the short forms are:

**Value-noise limit** (SA, ``QᵀK = beta I``, common Brownian matrix ``W`` with entry variance
``sigma2 t``; ``dx_i = P⊥_{x_i} dW y_i - (sigma2 (d-1)/2)|y_i|² x_i dt``). With
``a = e^beta/(e^beta + e^{beta rho})``, ``b = 1 - a``, ``A = a² + b²``, ``C = 2ab`` (``A + C = 1``,
``C = ½ sech²(beta (1 - rho)/2)``, ``C/A = sech(beta (1 - rho))``)::

    d rho = sigma2 (1 - rho²)[(d-2) C - A rho] dt + sigma sqrt(2A) (1 - rho²) dB
    z = artanh rho:   dz = sigma2 [(d-2) C + A rho] dt + sigma sqrt(2A) dB
    Lyapunov exponents:  log(1 - rho) at +1: -sigma2 (d-1);
                         log(1 + rho) at -1:  sigma2 [(d-1) sech²(beta) - 2]
    antipodal state attracting  <=>  cosh(2 beta) > d - 2  <=>  beta > beta_c(d) = ½ arccosh(d-2)

**Hybrid model** (USA, ``V_k = (h + eps xi_k sqrt(h)) I``, Prop. 1; docs/theory/common_noise.md §3)::

    d rho = e^{beta rho}(1 - rho²)[1 - eps²(e^beta/2 + e^{beta rho} rho)] dt + eps e^{beta rho}(1 - rho²) dB
    dz    = e^{beta rho} (1 - eps² e^beta / 2) dt + eps e^{beta rho} dB
    exponents: at +1: -2 e^beta + eps² e^{2 beta};  at -1: 2 e^{-beta} - eps²
    eps_c(beta) = sqrt(2) e^{-beta/2}; above it rho -> -1 almost surely, below it rho -> +1 a.s.

Contents: coefficient functions, Lyapunov exponents, critical curves, scale-function hitting
probabilities and ``classified_fraction`` (the probability that a run is *classified* antipodal or
collapsed at a finite time ``t``, from the Kolmogorov backward equation of ``z``). The Monte
Carlo simulators of the same diffusions (torch) are in :mod:`tokenswarm.theory.two_token_mc`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, interpolate, sparse, special

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray

__all__ = [
    "drift_diffusion",
    "z_coefficients",
    "lyapunov_exponents",
    "critical_beta",
    "antipodal_probability",
    "classified_fraction",
    "hybrid_drift_diffusion",
    "hybrid_z_coefficients",
    "hybrid_lyapunov_exponents",
    "critical_noise",
    "hybrid_antipodal_probability",
    "hybrid_classified_fraction",
    "uniform_inner_product_cdf",
]

Start = float | ArrayLike | Literal["uniform"]

# Beyond |z| = _CORE every coefficient equals its limit to machine precision: they depend on z
# through tanh z, and 1 - tanh(18) = 2e^{-36}(1 + ...) ~ 5e-16.
_CORE = 18.0
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)


# --------------------------------------------------------------------------- validation


def _threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not (0.0 < threshold < math.tanh(_CORE - 1.0)):
        raise ValueError(f"threshold must lie in (0, tanh(17)) ~ (0, 1 - 3e-15), got {threshold!r}")
    return threshold


def _is_uniform(rho0: object) -> bool:
    return isinstance(rho0, str) and rho0.lower() == "uniform"


def _start(rho0: Start) -> NDArray[np.float64] | None:
    if isinstance(rho0, str):
        if not _is_uniform(rho0):
            raise ValueError(f"rho0 must be a number, an array or 'uniform', got {rho0!r}")
        return None
    return checks.inner_products("rho0", rho0)


# --------------------------------------------------------------------------- small functions


def _sech(x: ArrayLike) -> NDArray[np.float64]:
    """``1/cosh x`` without overflow."""
    e = np.exp(-np.abs(np.asarray(x, dtype=np.float64)))
    return 2.0 * e / (1.0 + e * e)


def _gap(z: ArrayLike) -> NDArray[np.float64]:
    """``1 - tanh z = 2 expit(-2z)``, accurate when ``tanh z`` is close to 1."""
    return 2.0 * special.expit(-2.0 * np.asarray(z, dtype=np.float64))


def _weights(gap: NDArray[np.float64], beta: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """``(A, C)`` with ``a = expit(beta (1 - rho))``: ``C = 2ab = ½ sech²(beta(1-rho)/2)``, ``A = 1 - C``."""
    c = 0.5 * _sech(0.5 * beta * gap) ** 2
    return 1.0 - c, c


def uniform_inner_product_cdf(rho: ArrayLike, d: int) -> FloatOrArray:
    """CDF of ``<u, v>`` for independent uniform ``u, v`` on ``S^{d-1}``.

    The density is ``∝ (1 - r²)^{(d-3)/2}``, i.e. ``(1 + r)/2 ~ Beta((d-1)/2, (d-1)/2)``; the upper
    half uses the symmetric form so both tails keep full relative accuracy.
    """
    d = checks.integer("d", d, 2)
    r = checks.inner_products("rho", rho)
    with np.errstate(divide="ignore"):
        return checks.scalar_or_array(_uniform_cdf_z(np.arctanh(r), d))


def _uniform_cdf_z(z: ArrayLike, d: int) -> NDArray[np.float64]:
    """``P(artanh<u, v> <= z)`` (``(1 + rho)/2 = expit(2z)``)."""
    z = np.asarray(z, dtype=np.float64)
    half = 0.5 * (d - 1)
    lower = special.betainc(half, half, special.expit(2.0 * np.minimum(z, 0.0)))
    upper = 1.0 - special.betainc(half, half, special.expit(-2.0 * np.maximum(z, 0.0)))
    return np.where(z <= 0.0, lower, upper)


# --------------------------------------------------------------------------- value-noise model


def drift_diffusion(rho: ArrayLike, beta: ArrayLike, d: int, sigma2: float = 1.0) -> tuple[FloatOrArray, FloatOrArray]:
    """Itô drift and diffusion coefficient of ``rho = <x_1, x_2>`` (value-noise limit, SA).

    ``d rho = mu dt + s dB`` with ``mu = sigma2 (1 - rho²)[(d-2) C - A rho]``,
    ``s = sqrt(2 sigma2 A)(1 - rho²)``, ``A = a² + b²``, ``C = 2ab``,
    ``a = e^beta/(e^beta + e^{beta rho})``, ``b = 1 - a``. Derivation: Itô's formula on
    ``<x_1, x_2>`` with ``d<(dW y_1)_a, (dW y_2)_b> = sigma2 <y_1, y_2> δ_ab dt``,
    ``tr(P⊥_1 P⊥_2) = d - 2 + rho²``, ``|y_i|² = A + C rho``, ``<y_1, y_2> = C + A rho`` (docs/two_token.md §1).

    Args:
        rho: inner product(s) in ``[-1, 1]``; broadcast against ``beta``.
        beta: inverse temperature(s) ``>= 0``.
        d: dimension ``>= 2``.
        sigma2: entry variance of the value matrices (a pure time scale), ``> 0``.

    Returns:
        ``(mu, s)``, floats for scalar inputs, else arrays of the broadcast shape.
    """
    d = checks.integer("d", d, 2)
    sigma2 = checks.number("sigma2", sigma2, positive=True)
    r = checks.inner_products("rho", rho)
    b = checks.numbers("beta", beta)
    r, b = np.broadcast_arrays(r, b)
    big_a, big_c = _weights(1.0 - r, b)
    squeeze = (1.0 - r) * (1.0 + r)
    mu = sigma2 * squeeze * ((d - 2) * big_c - big_a * r)
    s = np.sqrt(2.0 * sigma2 * big_a) * squeeze
    return checks.scalar_or_array(mu), checks.scalar_or_array(s)


def z_coefficients(z: ArrayLike, beta: ArrayLike, d: int, sigma2: float = 1.0) -> tuple[FloatOrArray, FloatOrArray]:
    """Drift and diffusion of ``z = artanh(rho)`` (value-noise limit): bounded, smooth.

    ``dz = sigma2 [(d-2) C + A rho] dt + sqrt(2 sigma2 A) dB`` with ``rho = tanh z``: Itô's formula
    with ``z'(rho) = 1/(1 - rho²)``, ``z''(rho) = 2 rho/(1 - rho²)²`` adds
    ``½ z'' s² = 2 sigma2 A rho`` to ``mu/(1 - rho²)``. As ``z -> +inf``: ``mu -> sigma2 (d-1)/2``,
    ``s² -> sigma2``; as ``z -> -inf``: ``mu -> sigma2 [(d-2) C_- - A_-]``, ``C_- = ½ sech² beta``.

    Args:
        z: ``artanh(rho)``, any real (``±inf`` allowed); broadcast against ``beta``.
        beta, d, sigma2: as in :func:`drift_diffusion`.

    Returns:
        ``(mu_z, s_z)``.
    """
    d = checks.integer("d", d, 2)
    sigma2 = checks.number("sigma2", sigma2, positive=True)
    zz = np.asarray(z, dtype=np.float64)
    if np.any(np.isnan(zz)):
        raise ValueError("z must not be NaN")
    b = checks.numbers("beta", beta)
    zz, b = np.broadcast_arrays(zz, b)
    big_a, big_c = _weights(_gap(zz), b)
    mu = sigma2 * ((d - 2) * big_c + big_a * np.tanh(zz))
    return checks.scalar_or_array(mu), checks.scalar_or_array(np.sqrt(2.0 * sigma2 * big_a))


def lyapunov_exponents(beta: ArrayLike, d: int, sigma2: float = 1.0) -> tuple[FloatOrArray, FloatOrArray]:
    """Lyapunov exponents of the collapsed (``rho = 1``) and antipodal (``rho = -1``) states.

    They are the almost-sure growth rates ``lim (1/t) log(1 - rho_t)`` on ``{rho_t -> 1}`` and
    ``lim (1/t) log(1 + rho_t)`` on ``{rho_t -> -1}``, equal to ``∓2`` times the limits of the
    ``z`` drift (``1 ∓ rho ~ 2 e^{∓2z}``):

    * at ``+1``: ``a = b = ½``, ``A = C = ½``: ``-2 sigma2 [(d-2)/2 + 1/2] = -sigma2 (d - 1)``
      (always attracting);
    * at ``-1``: ``a_- = 1/(1 + e^{-2 beta})``, ``C_- = 2 a_- b_- = ½ sech² beta``, ``A_- = 1 - C_-``:
      ``2 sigma2 [(d-2) C_- - A_-] = sigma2 [(d - 1) sech² beta - 2]``.

    Args:
        beta: inverse temperature(s) ``>= 0`` (array: both outputs take its shape).
        d: dimension ``>= 2``.
        sigma2: value variance ``> 0``.

    Returns:
        ``(at_plus_one, at_minus_one)``; negative means locally attracting.
    """
    d = checks.integer("d", d, 2)
    sigma2 = checks.number("sigma2", sigma2, positive=True)
    b = checks.numbers("beta", beta)
    at_plus = np.full(b.shape, -sigma2 * (d - 1))
    at_minus = sigma2 * ((d - 1) * _sech(b) ** 2 - 2.0)
    return checks.scalar_or_array(at_plus), checks.scalar_or_array(at_minus)


def critical_beta(d: int | ArrayLike) -> FloatOrArray:
    """Critical inverse temperature ``beta_c(d) = ½ arccosh(d - 2)`` of the antipodal state.

    For ``beta >= 0`` the antipodal exponent ``sigma2 [(d-1) sech² beta - 2]`` is negative iff
    ``cosh² beta > (d-1)/2`` iff ``cosh 2 beta > d - 2`` (with ``r = e^{2 beta}``:
    ``r² - 2(d-2) r + 1 > 0``) iff ``beta > beta_c(d)``. Special cases: ``d = 3``: ``beta_c = 0``
    (the exponent is ``-2 sigma2 tanh² beta``: every ``beta > 0`` is supercritical, ``beta = 0`` is
    neutral); ``d = 2`` (the circle): the exponent ``sigma2 (sech² beta - 2) < 0`` for every beta,
    the antipodal state always attracts, and ``-inf`` is returned so that "attracting iff
    ``beta > critical_beta(d)``" holds for all ``d >= 2``.

    Args:
        d: dimension(s), integers ``>= 2``.

    Returns:
        ``beta_c`` (float or array of the shape of ``d``).
    """
    dims = np.asarray(d)
    if dims.dtype.kind not in "iuf" or np.any(dims != np.round(dims)) or np.any(dims < 2):
        raise ValueError(f"d must be integer(s) >= 2, got {d!r}")
    dims = dims.astype(np.float64)
    with np.errstate(invalid="ignore"):
        values = np.where(dims >= 3, 0.5 * np.arccosh(np.maximum(dims - 2.0, 1.0)), -np.inf)
    return checks.scalar_or_array(values)


# --------------------------------------------------------------------------- scale function


class _ScaleDensity:
    """Integrals of ``S'(z) = exp(-G(z))``, ``G(z) = ∫_0^z g`` (``g = 2 mu / s²`` in ``z``).

    ``g`` must be smooth (analytic in a strip of half-width ~0.5 around the real axis) and equal
    its limits ``g_minus < 0 < g_plus`` beyond ``|z| >= _CORE``; then ``S'`` decays exponentially
    at both ends and the tails are exact exponentials. The core is cut into panels of width 0.25
    with 8-point Gauss–Legendre (the relevant poles lie at distance >= pi/4, so every panel is
    accurate to ~1e-16). All values carry a common factor ``e^{-shift}`` (no overflow).
    """

    def __init__(self, g: Callable[[NDArray], NDArray], g_minus: float, g_plus: float, panel: float = 0.25):
        if not (g_minus < 0.0 < g_plus):
            raise ValueError("both ends must be transient (g_minus < 0 < g_plus)")
        self.g, self.g_minus, self.g_plus = g, g_minus, g_plus
        count = int(round(2 * _CORE / panel))
        self.edges = np.linspace(-_CORE, _CORE, count + 1)
        self.width = self.edges[1] - self.edges[0]
        left = self.edges[:-1]
        cumulative = np.concatenate([[0.0], np.cumsum(self._integral_g(left, self.edges[1:]))])
        self.G_edges = cumulative - cumulative[count // 2]  # edges[count // 2] == 0
        nodes = self._nodes(left, self.edges[1:])  # (P, 8)
        log_nodes = -(self.G_edges[:-1, None] + self._integral_g(left[:, None], nodes))
        self.shift = float(max(log_nodes.max(), (-self.G_edges).max()))
        self.nodes = nodes
        self.node_density = np.exp(log_nodes - self.shift)
        panel_integrals = 0.5 * self.width * self.node_density @ _GL_W
        self.cum = np.concatenate([[0.0], np.cumsum(panel_integrals)])
        self.tail_minus = math.exp(-self.G_edges[0] - self.shift) / (-g_minus)
        self.tail_plus = math.exp(-self.G_edges[-1] - self.shift) / g_plus
        self.total = self.tail_minus + self.cum[-1] + self.tail_plus

    @staticmethod
    def _nodes(a: NDArray, b: NDArray) -> NDArray:
        a, b = np.asarray(a)[..., None], np.asarray(b)[..., None]
        return 0.5 * (a + b) + 0.5 * (b - a) * _GL_X

    def _integral_g(self, a: NDArray, b: NDArray) -> NDArray:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        return 0.5 * (b - a) * (self.g(self._nodes(a, b)) @ _GL_W)

    def _partial(self, a: NDArray, b: NDArray) -> NDArray:
        """``∫_a^b S' e^{-shift}`` for ``a, b`` in the same panel; ``G(a)`` from the panel's left edge."""
        k = np.clip(np.floor((np.minimum(a, b) + _CORE) / self.width).astype(int), 0, len(self.edges) - 2)
        left = self.edges[k]
        nodes = self._nodes(a, b)  # (m, 8)
        log_density = -(self.G_edges[k][:, None] + self._integral_g(left[:, None], nodes)) - self.shift
        return 0.5 * (b - a) * (np.exp(log_density) @ _GL_W)

    def _panel_index(self, z: NDArray) -> NDArray:
        return np.clip(np.floor((z + _CORE) / self.width).astype(int), 0, len(self.edges) - 2)

    def lower(self, z: NDArray) -> NDArray:
        """``∫_{-inf}^z S' e^{-shift}`` for finite ``z <= 0``."""
        out = np.empty_like(z)
        far = z <= -_CORE
        out[far] = np.exp(-(self.G_edges[0] + self.g_minus * (z[far] + _CORE)) - self.shift) / (-self.g_minus)
        inner = ~far
        if np.any(inner):
            zi = z[inner]
            k = self._panel_index(zi)
            out[inner] = self.tail_minus + self.cum[k] + self._partial(self.edges[k], zi)
        return out

    def upper(self, z: NDArray) -> NDArray:
        """``∫_z^{inf} S' e^{-shift}`` for finite ``z >= 0``."""
        out = np.empty_like(z)
        far = z >= _CORE
        out[far] = np.exp(-(self.G_edges[-1] + self.g_plus * (z[far] - _CORE)) - self.shift) / self.g_plus
        inner = ~far
        if np.any(inner):
            zi = z[inner]
            k = self._panel_index(zi)
            out[inner] = self._partial(zi, self.edges[k + 1]) + (self.cum[-1] - self.cum[k + 1]) + self.tail_plus
        return out

    def probability_minus(self, z0: NDArray) -> NDArray:
        """``P(z_t -> -inf | z_0 = z0) = ∫_{z0}^inf S' / ∫ S'`` (``±inf`` allowed)."""
        z0 = np.asarray(z0, dtype=np.float64)
        out = np.empty(z0.shape)
        out[z0 == -np.inf] = 1.0
        out[z0 == np.inf] = 0.0
        neg = np.isfinite(z0) & (z0 < 0)
        pos = np.isfinite(z0) & (z0 >= 0)
        out[neg] = 1.0 - self.lower(z0[neg]) / self.total
        out[pos] = self.upper(z0[pos]) / self.total
        return out

    def weighted(self, cdf: Callable[[NDArray], NDArray], rate: float) -> float:
        """``∫ S'(z) W(z) dz / ∫ S'`` for a CDF ``W`` with ``W ~ e^{rate z}`` and ``1 - W ~ e^{-rate z}``."""
        core = 0.5 * self.width * np.sum((self.node_density * cdf(self.nodes)) @ _GL_W)
        w_minus, w_plus = cdf(np.array([-_CORE, _CORE]))
        minus = self.tail_minus * (-self.g_minus) * w_minus / (rate - self.g_minus)
        plus = self.tail_plus - self.tail_plus * self.g_plus * (1.0 - w_plus) / (self.g_plus + rate)
        return float((minus + core + plus) / self.total)


def _value_noise_scale(beta: float, d: int) -> _ScaleDensity:
    # g = 2 mu_z / s_z² = (d-2) C/A + rho = (d-2) sech(beta (1 - tanh z)) + tanh z.
    def g(z: NDArray) -> NDArray:
        return (d - 2) * _sech(beta * _gap(z)) + np.tanh(z)

    return _ScaleDensity(g, (d - 2) * float(_sech(2.0 * beta)) - 1.0, float(d - 1))


def antipodal_probability(rho0: Start, beta: ArrayLike, d: int) -> FloatOrArray:
    """``P(rho_t -> -1 | rho_0)`` for the value-noise limit (scale function; independent of sigma2).

    In ``z = artanh rho`` the scale density is ``S'(z) = exp(-∫_0^z g)``,
    ``g = 2 mu_z / s_z² = (d-2) sech(beta(1 - tanh z)) + tanh z`` (``C/A = sech(beta (1 - rho))``),
    i.e. ``S'(z) = sech(z) exp(-(d-2) ∫_0^z sech(beta(1 - tanh u)) du)``; in ``rho`` this is the
    lead's ``s'(rho) = exp(-∫_0^rho [(d-2) C/A - u]/(1 - u²) du)`` times ``drho/dz``. ``S'``
    decays like ``e^{-(d-1) z}`` at ``+inf``; at ``-inf`` it behaves like
    ``e^{-(1 - (d-2) sech 2beta)|z|}``, integrable iff ``beta > beta_c(d)``. Then
    ``P = ∫_{z0}^inf S' / ∫_R S'``; otherwise ``P = 0``. Quadrature: panels of 8-point
    Gauss–Legendre on ``|z| <= 18`` and exact exponential tails (relative accuracy ~1e-14).
    ``rho0 = -1`` is a fixed point (returns 1), ``rho0 = 1`` returns 0. For ``d = 2``,
    ``P = arccos(rho0)/pi`` for every beta (``arccos rho`` is a martingale on the circle).

    Args:
        rho0: starting inner product(s) in ``[-1, 1]``, or ``"uniform"``: the average over
            ``rho0 = <u, v>``, ``u, v`` independent uniform on ``S^{d-1}`` (density
            ``∝ (1 - r²)^{(d-3)/2}``), computed as ``∫ S'(z) W(z) dz / ∫ S'`` with ``W`` the CDF of
            ``artanh rho0`` (Fubini).
        beta: inverse temperature(s) ``>= 0``; broadcast against ``rho0``.
        d: dimension ``>= 2``.

    Returns:
        probabilities, float for scalar inputs, else an array of the broadcast shape.
    """
    d = checks.integer("d", d, 2)
    start = _start(rho0)
    betas = checks.numbers("beta", beta)
    if start is None:
        shape = betas.shape
        flat_beta, flat_start = betas.ravel(), None
    else:
        start, betas = np.broadcast_arrays(start, betas)
        shape = start.shape
        flat_beta, flat_start = betas.ravel(), start.ravel()
    out = np.zeros(flat_beta.shape)
    threshold = critical_beta(d)
    for value in np.unique(flat_beta):
        mask = flat_beta == value
        if not value > threshold:
            if flat_start is not None:
                out[mask] = (flat_start[mask] == -1.0).astype(np.float64)
            continue
        scale = _value_noise_scale(float(value), d)
        if flat_start is None:
            out[mask] = scale.weighted(lambda z: _uniform_cdf_z(z, d), float(d - 1))
        else:
            with np.errstate(divide="ignore"):  # rho0 = ±1 -> z0 = ±inf, handled exactly
                out[mask] = scale.probability_minus(np.arctanh(flat_start[mask]))
    return checks.scalar_or_array(out.reshape(shape))


# --------------------------------------------------------------------------- backward equation


def _sg_weight(x: NDArray) -> NDArray:
    """Bernoulli function ``B(x) = x / (e^x - 1)`` (``B(0) = 1``)."""
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - 0.5 * x, safe / np.expm1(safe))


def _grid(
    mu: Callable, var: Callable, lower: float, upper: float, z_star: float, spacing: float, peclet: float
) -> NDArray:
    """Cell faces on ``[lower, upper]`` containing ``±z_star``, with local width
    ``h(z) = min(spacing + 0.05 dist(z, core), 1, peclet D/|c|)`` (``D = s²/2``, ``c = mu - D'``)."""

    def width(z: NDArray) -> NDArray:
        diffusion = 0.5 * var(z)
        step = 1e-4
        velocity = mu(z) - 0.25 * (var(z + step) - var(z - step)) / step
        outside = np.maximum(np.abs(z) - _CORE, 0.0)
        base = np.minimum(spacing + 0.05 * outside, 1.0)
        return np.minimum(base, peclet * diffusion / np.maximum(np.abs(velocity), 1e-300))

    pieces = []
    for a, b in ((lower, -z_star), (-z_star, z_star), (z_star, upper)):
        samples = int(min(max((b - a) / 1e-3, 200), 2_000_000))
        z = np.linspace(a, b, samples + 1)
        density = 1.0 / width(z)
        cells = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(z))])
        n = max(1, int(math.ceil(cells[-1])))
        faces = np.interp(np.linspace(0.0, cells[-1], n + 1), cells, z)
        faces[0], faces[-1] = a, b
        pieces.append(faces if not pieces else faces[1:])
    return np.concatenate(pieces)


def _classify(
    mu: Callable[[NDArray], NDArray],
    var: Callable[[NDArray], NDArray],
    limits: tuple[float, float, float, float],
    times: NDArray,
    starts: NDArray | None,
    start_cdf: Callable[[NDArray], NDArray] | None,
    z_star: float,
    spacing: float,
    peclet: float = 0.25,
) -> tuple[NDArray, NDArray]:
    """Probabilities ``P(z_t < -z_star)``, ``P(z_t > z_star)`` for ``dz = mu dt + sqrt(var) dB``.

    Kolmogorov backward equation ``u_t = mu u_z + ½ var u_zz``, ``u(0, z) = 1{class}``, by a
    finite-volume Scharfetter–Gummel (exponentially fitted) discretisation: the semi-discrete
    system is the generator of a birth–death chain (monotone, positivity preserving, exact for
    constant coefficients in steady state), with ``±z_star`` on cell faces so the initial
    indicator is exact. The domain ``[-Z_-, Z_+]`` is absorbing at both ends (absorbed mass keeps
    its side's class); each end is placed either where the process cannot arrive by ``t_max``
    (``max|z_0| + mu_max t + 10 sqrt(var_max t)``) or, beyond ``|z| = 18`` where coefficients are
    constant, ``40 / |2 mu / var|`` further, so a return or an arrival has probability ``<= e^{-40}``.
    Time: scipy BDF on the sparse linear system (rtol 1e-7, atol 1e-9; time error <~1e-6). Output at ``starts`` by cubic
    interpolation of the cell values; for ``start_cdf`` by integrating against the start law.

    Returns:
        two arrays ``(len(times), len(starts))`` or ``(len(times),)``.
    """
    mu_minus, mu_plus, var_minus, var_plus = limits
    sample = np.linspace(-_CORE, _CORE, 7201)
    mu_max = max(np.abs(mu(sample)).max(), abs(mu_minus), abs(mu_plus))
    var_max = max(var(sample).max(), var_minus, var_plus)
    t_max = float(times[-1])
    extent = _CORE if starts is None or starts.size == 0 else max(_CORE, float(np.abs(starts).max()))
    reach = extent + mu_max * t_max + 10.0 * math.sqrt(var_max * t_max) + 1.0
    ends = []
    for drift, variance in ((mu_minus, var_minus), (mu_plus, var_plus)):
        ratio = abs(2.0 * drift / variance)
        ends.append(min(reach, _CORE + 40.0 / ratio) if ratio > 0 else reach)
    faces = _grid(mu, var, -ends[0], ends[1], z_star, spacing, peclet)
    cells = len(faces) - 1
    if cells > 400_000:
        raise ValueError(f"the grid needs {cells} cells: increase spacing or use a shorter t")
    centres = 0.5 * (faces[1:] + faces[:-1])
    widths = np.diff(faces)
    # Interface nodes: left boundary face, cell centres, right boundary face.
    points = np.concatenate([[faces[0]], centres, [faces[-1]]])
    gaps = np.diff(points)
    mid = 0.5 * (points[1:] + points[:-1])
    diffusion = 0.5 * var(mid)
    step = 1e-4
    velocity = mu(mid) - 0.25 * (var(mid + step) - var(mid - step)) / step
    pe = velocity * gaps / diffusion
    conductance = diffusion / gaps
    up = conductance * _sg_weight(-pe)  # rate factor j-1 -> j (before dividing by the cell width)
    down = conductance * _sg_weight(pe)  # rate factor j -> j-1
    rate_up = up[1:] / widths  # cell i -> i+1 (the last one into the right absorber)
    rate_down = down[:-1] / widths  # cell i -> i-1 (the first one into the left absorber)
    generator = sparse.diags(
        [rate_down[1:], -(rate_up + rate_down), rate_up[:-1]], offsets=[-1, 0, 1], format="csc"
    )
    zero = sparse.csc_matrix((cells, cells))
    system = sparse.bmat([[generator, zero], [zero, generator]], format="csc")
    source = np.zeros(2 * cells)
    source[0] = rate_down[0]  # antipodal problem: left absorber has value 1
    source[-1] = rate_up[-1]  # collapsed problem: right absorber has value 1
    initial = np.concatenate([(centres < -z_star).astype(float), (centres > z_star).astype(float)])

    def rhs(_t: float, y: NDArray) -> NDArray:
        return system @ y + source

    solution = integrate.solve_ivp(
        rhs, (0.0, t_max), initial, method="BDF", t_eval=times, jac=system, rtol=1e-7, atol=1e-9
    )
    if not solution.success:
        raise RuntimeError(f"backward-equation integration failed: {solution.message}")
    values = np.clip(solution.y.T, 0.0, 1.0)  # (len(times), 2 cells)
    results = []
    for which, (left_value, right_value) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        u = values[:, which * cells : (which + 1) * cells]
        if starts is None:
            mass = np.diff(start_cdf(faces))
            below, above = start_cdf(faces[[0, -1]])
            results.append(u @ mass + left_value * below + right_value * (1.0 - above))
            continue
        nodes = np.concatenate([np.full((len(times), 1), left_value), u, np.full((len(times), 1), right_value)], 1)
        spline = interpolate.CubicSpline(points, nodes, axis=1)
        inside = np.clip(starts, faces[0], faces[-1])
        result = np.clip(spline(inside), 0.0, 1.0)
        result[:, starts <= faces[0]] = left_value
        result[:, starts >= faces[-1]] = right_value
        results.append(result)
    return results[0], results[1]


def _fractions(
    t: ArrayLike,
    start: NDArray | None,
    z_star: float,
    run: Callable[[NDArray, NDArray | None], tuple[NDArray, NDArray]],
    limit: Callable[[], tuple[NDArray, NDArray]],
    start_classes: Callable[[], tuple[NDArray, NDArray]],
) -> tuple[FloatOrArray, FloatOrArray]:
    """Dispatch ``t`` (0, finite, inf) and shape the output ``t.shape + rho0.shape``."""
    times = np.asarray(t, dtype=np.float64)
    if np.any(np.isnan(times)) or np.any(times < 0):
        raise ValueError(f"t must be >= 0 (inf allowed), got {t!r}")
    flat = times.ravel()
    width = 1 if start is None else start.size
    antipodal = np.empty((flat.size, width))
    collapsed = np.empty((flat.size, width))
    zero = flat == 0
    if np.any(zero):
        a0, c0 = start_classes()
        antipodal[zero], collapsed[zero] = a0, c0
    infinite = np.isinf(flat)
    if np.any(infinite):
        a_inf, c_inf = limit()
        antipodal[infinite], collapsed[infinite] = a_inf, c_inf
    finite = ~zero & ~infinite
    if np.any(finite):
        unique, inverse = np.unique(flat[finite], return_inverse=True)
        with np.errstate(divide="ignore"):
            zs = None if start is None else np.arctanh(start.ravel())
        if zs is not None:
            # Starts at ±1 are fixed points; the solver sees only finite starts.
            fixed = ~np.isfinite(zs)
            a, c = run(unique, zs[~fixed])
            a_full = np.empty((unique.size, width))
            c_full = np.empty((unique.size, width))
            a_full[:, ~fixed], c_full[:, ~fixed] = a, c
            a_full[:, fixed] = (zs[fixed] < 0).astype(float)
            c_full[:, fixed] = (zs[fixed] > 0).astype(float)
        else:
            a, c = run(unique, None)
            a_full, c_full = a.reshape(-1, 1), c.reshape(-1, 1)
        antipodal[finite], collapsed[finite] = a_full[inverse], c_full[inverse]
    shape = times.shape + (() if start is None else start.shape)
    return checks.scalar_or_array(antipodal.reshape(shape)), checks.scalar_or_array(collapsed.reshape(shape))


def _start_classes(start: NDArray | None, z_star: float, d: int | None) -> tuple[NDArray, NDArray]:
    if start is None:
        if d is None:
            raise ValueError("rho0='uniform' needs the dimension d")
        below, above = _uniform_cdf_z(np.array([-z_star, z_star]), d)
        return np.array([below]), np.array([1.0 - above])
    threshold = math.tanh(z_star)
    flat = start.ravel()
    return (flat < -threshold).astype(float), (flat > threshold).astype(float)


def classified_fraction(
    t: ArrayLike,
    rho0: Start,
    beta: float,
    d: int,
    sigma2: float = 1.0,
    threshold: float = 0.9,
    *,
    spacing: float = 0.02,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Probabilities that a run is classified antipodal (``rho_t < -threshold``) or collapsed
    (``rho_t > threshold``) at time ``t`` (value-noise limit).

    Exact up to discretisation: the Kolmogorov backward equation of ``z = artanh rho`` (bounded
    coefficients, :func:`z_coefficients`) is solved on a finite-volume grid (see ``_classify``;
    default cell width 0.02 in the core, refined where ``|drift|/diffusion`` is large; accuracy
    ~1e-5 or better away from ``t -> 0``), in the time ``tau = sigma2 t``. ``t = 0`` classifies
    ``rho0`` itself; ``t = inf`` returns the scale-function limit ``(P, 1 - P)``,
    ``P = antipodal_probability(rho0, beta, d)`` (every run converges to ``±1``). The two
    fractions need not add to 1 at finite ``t`` (runs in ``[-threshold, threshold]``).

    Args:
        t: time(s) ``>= 0`` (``inf`` allowed), any shape.
        rho0: start(s) in ``[-1, 1]`` or ``"uniform"`` (independent uniform tokens on ``S^{d-1}``).
        beta: inverse temperature ``>= 0`` (scalar).
        d: dimension ``>= 2``.
        sigma2: value variance ``> 0`` (time scale).
        threshold: classification level in ``(0, 1)``.
        spacing: core cell width of the grid (halve it to check convergence).

    Returns:
        ``(antipodal, collapsed)``, each of shape ``t.shape + rho0.shape`` (``t.shape`` for
        ``"uniform"``); floats when that shape is ``()``.
    """
    d = checks.integer("d", d, 2)
    beta = checks.number("beta", beta)
    sigma2 = checks.number("sigma2", sigma2, positive=True)
    spacing = checks.number("spacing", spacing, positive=True)
    z_star = math.atanh(_threshold(threshold))
    start = _start(rho0)

    def mu(z: NDArray) -> NDArray:
        big_a, big_c = _weights(_gap(z), beta)
        return (d - 2) * big_c + big_a * np.tanh(z)

    def var(z: NDArray) -> NDArray:
        return 2.0 * _weights(_gap(z), beta)[0]

    c_minus = 0.5 * float(_sech(beta)) ** 2
    limits = ((d - 2) * c_minus - (1.0 - c_minus), 0.5 * (d - 1), 2.0 * (1.0 - c_minus), 1.0)

    def run(times: NDArray, zs: NDArray | None) -> tuple[NDArray, NDArray]:
        cdf = (lambda z: _uniform_cdf_z(z, d)) if zs is None else None
        return _classify(mu, var, limits, sigma2 * times, zs, cdf, z_star, spacing)

    def limit() -> tuple[NDArray, NDArray]:
        p = np.atleast_1d(antipodal_probability("uniform" if start is None else start.ravel(), beta, d))
        return p, 1.0 - p

    return _fractions(t, start, z_star, run, limit, lambda: _start_classes(start, z_star, d))


# --------------------------------------------------------------------------- hybrid model


def hybrid_drift_diffusion(rho: ArrayLike, beta: ArrayLike, eps: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Itô drift and diffusion of ``rho`` in the hybrid model (USA, ``V = (h + eps xi sqrt h) I``).

    From ``dx_i = p_i (dt + eps dB) - eps²(<x_i, y_i> p_i + ½|p_i|² x_i) dt``,
    ``y_1 = ½(e^beta x_1 + e^{beta rho} x_2)``, ``p_1 = P⊥_{x_1} y_1 = ½ e^{beta rho}(x_2 - rho x_1)``::

        mu = e^{beta rho} (1 - rho²) [1 - eps² (e^beta / 2 + e^{beta rho} rho)]
        s  = eps e^{beta rho} (1 - rho²)

    (docs/two_token.md §5; at ``eps = 0`` this is the USA equiangular ODE (6.10) with ``n = 2``).
    The dimension does not enter: with ``V ∝ I`` the pair stays in its initial plane.

    Args:
        rho: inner product(s) in ``[-1, 1]``; beta ``>= 0``; eps ``>= 0``; all broadcast.

    Returns:
        ``(mu, s)``.
    """
    r = checks.inner_products("rho", rho)
    b = checks.numbers("beta", beta)
    e = checks.numbers("eps", eps)
    r, b, e = np.broadcast_arrays(r, b, e)
    f = np.exp(b * r)
    squeeze = (1.0 - r) * (1.0 + r)
    mu = f * squeeze * (1.0 - e**2 * (0.5 * np.exp(b) + f * r))
    return checks.scalar_or_array(mu), checks.scalar_or_array(e * f * squeeze)


def hybrid_z_coefficients(z: ArrayLike, beta: ArrayLike, eps: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Drift and diffusion of ``z = artanh rho`` in the hybrid model.

    ``dz = e^{beta rho} (1 - eps² e^beta / 2) dt + eps e^{beta rho} dB``: the Itô correction
    ``½ z'' s² = eps² e^{2 beta rho} rho`` cancels the ``rho``-dependent part of the drift, so the
    drift has the sign of ``kappa = 1 - eps² e^beta / 2`` everywhere.
    """
    zz = np.asarray(z, dtype=np.float64)
    if np.any(np.isnan(zz)):
        raise ValueError("z must not be NaN")
    b = checks.numbers("beta", beta)
    e = checks.numbers("eps", eps)
    zz, b, e = np.broadcast_arrays(zz, b, e)
    f = np.exp(b * np.tanh(zz))
    return checks.scalar_or_array(f * (1.0 - 0.5 * e**2 * np.exp(b))), checks.scalar_or_array(e * f)


def hybrid_lyapunov_exponents(beta: ArrayLike, eps: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Lyapunov exponents of ``log(1 - rho)`` at ``+1`` and ``log(1 + rho)`` at ``-1`` (hybrid).

    ``∓2`` times the limits of the ``z`` drift ``e^{±beta} kappa``, ``kappa = 1 - eps² e^beta/2``:
    at ``+1``: ``-2 e^beta + eps² e^{2 beta}``; at ``-1``: ``2 e^{-beta} - eps²``. Both change sign
    at ``eps_c = sqrt(2) e^{-beta/2}`` (``eps = 0``: ``-2 e^beta``, the USA rate of docs/theory/attention_ode.md §2.6).
    """
    b = checks.numbers("beta", beta)
    e = checks.numbers("eps", eps)
    b, e = np.broadcast_arrays(b, e)
    return checks.scalar_or_array(-2.0 * np.exp(b) + e**2 * np.exp(2.0 * b)), checks.scalar_or_array(2.0 * np.exp(-b) - e**2)


def critical_noise(beta: ArrayLike) -> FloatOrArray:
    """Critical noise ``eps_c(beta) = sqrt(2) e^{-beta/2}`` of the hybrid model.

    For ``eps > eps_c`` the antipodal state attracts and the collapsed one repels, and since the
    ``z`` drift has one sign everywhere ``rho_t -> -1`` almost surely (from every
    ``rho0 in (-1, 1)``); for ``eps < eps_c``, ``rho_t -> 1`` a.s.; at ``eps_c``, ``z`` is a driftless,
    recurrent diffusion and ``rho_t`` has no limit.
    """
    b = checks.numbers("beta", beta)
    return checks.scalar_or_array(math.sqrt(2.0) * np.exp(-0.5 * b))


def hybrid_antipodal_probability(rho0: Start, beta: ArrayLike, eps: ArrayLike) -> FloatOrArray:
    """``P(rho_t -> -1 | rho0)`` in the hybrid model: a 0–1 law.

    Scale density ``S'(z) = exp(-(2 kappa / eps²) ∫_0^z e^{-beta tanh u} du)``,
    ``kappa = 1 - eps² e^beta / 2``: for ``kappa > 0`` it diverges at ``-inf`` and is integrable
    at ``+inf`` (``P = 0``); for ``kappa < 0`` the reverse (``P = 1``); at ``kappa = 0`` both ends
    are natural and recurrent (``rho`` does not converge: ``P = 0``). Starts ``rho0 = ∓1`` are
    fixed points (1 and 0). ``"uniform"`` starts give the same value as interior starts.
    ``eps = 0`` is the deterministic USA flow: collapse from every ``rho0 > -1``.
    """
    b = checks.numbers("beta", beta)
    e = checks.numbers("eps", eps)
    start = _start(rho0)
    supercritical = (e > math.sqrt(2.0) * np.exp(-0.5 * b)).astype(np.float64)
    if start is None:
        return checks.scalar_or_array(np.broadcast_to(supercritical, np.broadcast_shapes(b.shape, e.shape)).copy())
    start, value = np.broadcast_arrays(start, supercritical)
    out = np.where(start == -1.0, 1.0, np.where(start == 1.0, 0.0, value))
    return checks.scalar_or_array(out)


def hybrid_classified_fraction(
    t: ArrayLike,
    rho0: Start,
    beta: float,
    eps: float,
    threshold: float = 0.9,
    *,
    d: int | None = None,
    spacing: float = 0.02,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Finite-time classification probabilities of the hybrid model (as :func:`classified_fraction`).

    The backward equation of ``dz = e^{beta tanh z} kappa dt + eps e^{beta tanh z} dB`` is solved
    as in :func:`classified_fraction`; ``t = inf`` gives the 0–1 limit (NaN at exactly
    ``eps = eps_c``, where ``rho_t`` does not converge). Small ``eps`` makes the problem nearly
    deterministic and the grid fine (Péclet control): costs grow like ``1/eps²``.

    Args:
        t: time(s) ``>= 0``; rho0: start(s) or ``"uniform"`` (then ``d`` is required);
        beta: ``>= 0``; eps: ``> 0``; threshold: in ``(0, 1)``; d: dimension for uniform starts.

    Returns:
        ``(antipodal, collapsed)`` of shape ``t.shape + rho0.shape``.
    """
    beta = checks.number("beta", beta)
    eps = checks.number("eps", eps, positive=True)
    spacing = checks.number("spacing", spacing, positive=True)
    z_star = math.atanh(_threshold(threshold))
    start = _start(rho0)
    if start is None:
        if d is None:
            raise ValueError("rho0='uniform' needs the dimension d")
        d = checks.integer("d", d, 2)
    kappa = 1.0 - 0.5 * eps**2 * math.exp(beta)

    def mu(z: NDArray) -> NDArray:
        return np.exp(beta * np.tanh(z)) * kappa

    def var(z: NDArray) -> NDArray:
        return eps**2 * np.exp(2.0 * beta * np.tanh(z))

    low, high = math.exp(-beta), math.exp(beta)
    limits = (low * kappa, high * kappa, (eps * low) ** 2, (eps * high) ** 2)

    def run(times: NDArray, zs: NDArray | None) -> tuple[NDArray, NDArray]:
        cdf = (lambda z: _uniform_cdf_z(z, d)) if zs is None else None
        return _classify(mu, var, limits, times, zs, cdf, z_star, spacing)

    def limit() -> tuple[NDArray, NDArray]:
        if kappa == 0.0:
            nan = np.full(1 if start is None else start.size, np.nan)
            return nan, nan
        p = np.atleast_1d(hybrid_antipodal_probability("uniform" if start is None else start.ravel(), beta, eps))
        return p, 1.0 - p

    return _fractions(t, start, z_star, run, limit, lambda: _start_classes(start, z_star, d))
