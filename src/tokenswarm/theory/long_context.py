"""The long-context single-layer oracle (docs/theory/attention_ode.md §2.8) and its n -> infinity limit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray

# ----------------------------------------------------------- docs/theory/attention_ode.md §2.8 long context


def long_context_cosine(rho: ArrayLike, gamma: ArrayLike, n: ArrayLike) -> FloatOrArray:
    """Cosine ``<theta_i, theta_j>`` between two outputs of one SA layer on equiangular inputs.

    Setting (docs/theory/attention_ode.md §2.8): unit inputs with ``<x_i, x_j> = rho`` (i != j), ``beta = gamma log n``,
    ``y_i = sum_j A_ij x_j = r_i theta_i`` with softmax weights ``A_ii = a = n^gamma / Z``,
    ``A_ij = b = n^{gamma rho} / Z``, ``Z = n^gamma + (n-1) n^{gamma rho}`` (``e^beta = n^gamma``).
    Derivation: for any weights, ``sum_{j,k} A_ij A_lk <x_j, x_k> = (1-rho) sum_j A_ij A_lj
    + rho (sum_j A_ij)(sum_k A_lk)``, and rows sum to 1, so

    * ``|y_i|^2 = rho + (1 - rho)(a^2 + (n-1) b^2)``,
    * ``<y_i, y_l> = rho + (1 - rho)(2ab + (n-2) b^2)``  (i != l),

    and the cosine is their ratio (re-derived; agrees with docs/theory/attention_ode.md §2.8). ``a`` and ``b`` are formed
    in log space (``log Z`` by ``logaddexp``), so astronomically large ``n`` (1e300) and
    ``n^gamma`` are fine; ``n`` may be any real ``>= 2`` for asymptotic studies.

    Args:
        rho: input inner product(s) in ``[-1/(n-1), 1]``.
        gamma: attention scaling(s) ``>= 0``.
        n: number(s) of tokens ``>= 2``. The three arguments broadcast.

    Returns:
        float, or an array of the broadcast shape.
    """
    rho_arr, gamma_arr, n_arr = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (rho, gamma, n)))
    if np.any(n_arr < 2) or not np.all(np.isfinite(n_arr)):
        raise ValueError(f"n must be finite and >= 2, got {n!r}")
    checks.numbers("gamma", gamma)
    if np.any(rho_arr > 1) or np.any(rho_arr < -1.0 / (n_arr - 1)):
        raise ValueError(f"rho must lie in [-1/(n-1), 1] (Gram matrix PSD), got {rho!r}")
    log_n = np.log(n_arr)
    log_n1 = np.log(n_arr - 1.0)
    log_z = np.logaddexp(gamma_arr * log_n, log_n1 + gamma_arr * rho_arr * log_n)
    log_a = gamma_arr * log_n - log_z
    log_b = gamma_arr * rho_arr * log_n - log_z
    a, b = np.exp(log_a), np.exp(log_b)
    self_weight = a * a + np.exp(log_n1 + 2.0 * log_b)  # a^2 + (n-1) b^2
    # (n-2) b^2 written without log(n-2), which is -inf at n = 2.
    cross_weight = 2.0 * a * b + (n_arr - 2.0) * np.exp(2.0 * log_b)
    cosine = (rho_arr + (1.0 - rho_arr) * cross_weight) / (rho_arr + (1.0 - rho_arr) * self_weight)
    return checks.scalar_or_array(cosine)


def long_context_limit(rho: ArrayLike, gamma: ArrayLike, *, rtol: float = 1e-12) -> FloatOrArray:
    """``lim_{n -> inf}`` of :func:`long_context_cosine` (2512 §6.3; 2510.05554).

    With the critical scaling ``gamma_c = 1/(1 - rho)``: 1 if ``gamma < gamma_c`` (the self weight
    ``a ~ n^{gamma(1-rho)-1}`` vanishes: outputs collapse to the mean), ``4 rho/(1 + 3 rho)`` at
    ``gamma = gamma_c`` (``a, (n-1) b -> 1/2``), ``rho`` if ``gamma > gamma_c`` (``a -> 1``: the layer
    is the identity). ``gamma`` counts as critical when within relative ``rtol`` of ``gamma_c``.

    Args:
        rho: input inner product(s) in ``(0, 1)``.
        gamma: scaling(s) ``>= 0``. Broadcast with ``rho``.
    """
    rho_arr, gamma_arr = np.broadcast_arrays(np.asarray(rho, dtype=np.float64), np.asarray(gamma, dtype=np.float64))
    if np.any(rho_arr <= 0) or np.any(rho_arr >= 1):
        raise ValueError(f"rho must lie in (0, 1), got {rho!r}")
    if np.any(gamma_arr < 0):
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    critical = 1.0 / (1.0 - rho_arr)
    at_critical = np.isclose(gamma_arr, critical, rtol=rtol, atol=0.0)
    limit = np.where(gamma_arr < critical, 1.0, rho_arr)
    limit = np.where(at_critical, 4.0 * rho_arr / (1.0 + 3.0 * rho_arr), limit)
    return checks.scalar_or_array(limit)


