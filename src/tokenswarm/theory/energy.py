"""Interaction energies of reference configurations (docs/theory/attention_ode.md §2.4).

The uniform measure on the sphere (by its moment generating function), the regular simplex and
the cross-polytope.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, special

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray

_ONE_OVER_BETA = " (energies carry a factor 1/(2 beta))"

# --------------------------------------------------------------- docs/theory/attention_ode.md §2.4 energies


def _log_uniform_mgf_quadrature(beta: float, d: int) -> float:
    """``log E[e^{beta u}]``, ``u = <x, y>`` for independent uniform x, y on S^{d-1}, by quadrature.

    With ``u = cos(phi)`` the density of ``phi`` on ``[0, pi]`` is ``sin^{d-2}(phi) / N_d``,
    ``N_d = sqrt(pi) Gamma((d-1)/2) / Gamma(d/2)``. The log-integrand is shifted by its maximum
    (at ``cos(phi*) = (sqrt((d-2)^2 + 4 beta^2) - (d-2)) / (2 beta)``), so neither the
    exponential nor ``sin^{d-2}`` under- or overflows for any d, beta; quad is told the peak.
    """
    power = d - 2.0
    cos_peak = 1.0 if power == 0.0 else (math.sqrt(power**2 + 4.0 * beta**2) - power) / (2.0 * beta)
    peak = math.acos(min(1.0, cos_peak))

    def log_integrand(phi: float) -> float:
        value = beta * math.cos(phi)
        if power:
            value += power * math.log(math.sin(phi)) if 0.0 < phi < math.pi else -math.inf
        return value

    shift = log_integrand(peak)
    integral, _ = integrate.quad(
        lambda phi: math.exp(log_integrand(phi) - shift),
        0.0,
        math.pi,
        points=[peak] if 0.0 < peak < math.pi else None,
        epsabs=0.0,
        epsrel=1e-13,
        limit=500,
    )
    log_normaliser = 0.5 * math.log(math.pi) + special.gammaln((d - 1) / 2.0) - special.gammaln(d / 2.0)
    return shift + math.log(integral) - log_normaliser


def _log_uniform_mgf(beta: float, d: int) -> float:
    """``log E[e^{beta u}] = log[Gamma(d/2) (2/beta)^{d/2-1} I_{d/2-1}(beta)]`` (uniform measure)."""
    order = d / 2.0 - 1.0
    scaled = float(special.ive(order, beta))  # I_nu(beta) e^{-beta}: no overflow for large beta
    # ive underflows when the order is large against beta (e.g. d = 1024, beta = 9); the
    # quadrature is exact there too and has no such range problem.
    if math.isfinite(scaled) and scaled > 1e-250:
        return beta + math.log(scaled) + special.gammaln(d / 2.0) + order * math.log(2.0 / beta)
    return _log_uniform_mgf_quadrature(beta, d)



def log_uniform_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Natural logarithm of :func:`uniform_energy`, finite for every ``beta > 0`` and ``d >= 2``."""
    betas = checks.numbers("beta", beta, positive=True, note=_ONE_OVER_BETA)
    d = checks.integer("d", d, 2)
    values = np.vectorize(lambda b: _log_uniform_mgf(float(b), d) - math.log(2.0 * b), otypes=[np.float64])(betas)
    return checks.scalar_or_array(np.asarray(values, dtype=np.float64))


def uniform_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Interaction energy of the uniform measure ``sigma_d`` on S^{d-1} (docs/theory/attention_ode.md §2.4).

    ``E_beta[sigma_d] = (1/(2 beta)) E[e^{beta u}]``, ``u = <x, y>`` with density proportional to
    ``(1 - u^2)^{(d-3)/2}`` on ``[-1, 1]``, and
    ``E[e^{beta u}] = Gamma(d/2) (2/beta)^{d/2-1} I_{d/2-1}(beta)`` (= ``0F1(; d/2; beta^2/4)``).
    Special cases: ``I_0(beta)/(2 beta)`` (d = 2), ``sinh(beta)/(2 beta^2)`` (d = 3). It is the
    minimum of ``E_beta`` over probability measures (Prop. 3.4) and the large-n limit of the
    energy of i.i.d. uniform tokens.

    Computed in log space: ``beta + log(ive(nu, beta)) + gammaln(d/2) + nu log(2/beta)`` with the
    exponentially scaled Bessel function, falling back on a max-shifted quadrature when ``ive``
    underflows (large d against beta). The result overflows only when the energy itself exceeds
    the float64 range (beta above about 700); use :func:`log_uniform_energy` there.

    Args:
        beta: inverse temperature(s) ``> 0``, any shape.
        d: ambient dimension, integer ``>= 2``.

    Returns:
        float for scalar ``beta``, else an array of its shape.
    """
    return checks.scalar_or_array(np.exp(np.asarray(log_uniform_energy(beta, d), dtype=np.float64)))


def simplex_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Energy of the regular simplex: ``n = d + 1`` tokens with ``<x_i, x_j> = -1/d`` (i != j).

    ``E_beta = (n e^beta + n(n-1) e^{-beta/d}) / (2 beta n^2)``, evaluated as
    ``e^beta (1 + (n-1) e^{-beta (1 + 1/d)}) / (2 beta n)`` so that only the final factor can
    overflow. The simplex minimises the repulsive energy among (d+1)-point configurations
    (docs/theory/attention_ode.md §2.4).

    Args:
        beta: inverse temperature(s) ``> 0``, any shape.
        d: dimension ``>= 1`` (the simplex spans R^d).
    """
    betas = checks.numbers("beta", beta, positive=True, note=_ONE_OVER_BETA)
    d = checks.integer("d", d, 1)
    n = d + 1
    values = np.exp(betas) * (1.0 + (n - 1) * np.exp(-betas * (1.0 + 1.0 / d))) / (2.0 * betas * n)
    return checks.scalar_or_array(values)


def cross_polytope_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Energy of the cross-polytope ``{+-e_k}``: ``n = 2d`` tokens, each with one antipode
    (inner product -1) and ``2d - 2`` orthogonal partners (inner product 0).

    ``E_beta = (n e^beta + n e^{-beta} + n(n-2)) / (2 beta n^2)``.

    Args:
        beta: inverse temperature(s) ``> 0``, any shape.
        d: dimension ``>= 1``.
    """
    betas = checks.numbers("beta", beta, positive=True, note=_ONE_OVER_BETA)
    d = checks.integer("d", d, 1)
    n = 2 * d
    values = (np.exp(betas) + np.exp(-betas) + (n - 2)) / (2.0 * betas * n)
    return checks.scalar_or_array(values)


