"""Closed forms and scalar reference solutions (NumPy/SciPy, float64).

Everything here is an independent oracle for the simulators: nothing imports torch, and every
formula below is either evaluated in closed form or by a high-accuracy scalar ODE/quadrature.
References are to docs/theory/attention_ode.md and docs/theory/mean_field.md (sections cited in
full below), and to 2312.10794 v4 ("2312") and 2512.01868 ("2512").

Contents
  * equiangular reduction (docs/theory/attention_ode.md §2.6, eqs. 6.9 / 6.10): right-hand side, solution,
    crossing times, late-time slope;
  * energies of reference configurations (docs/theory/attention_ode.md §2.4): uniform measure, regular simplex,
    cross-polytope;
  * long-context single-layer oracle (docs/theory/attention_ode.md §2.8) and its n -> infinity limit;
  * the circle d = 2 (docs/theory/attention_ode.md §2.5; docs/theory/mean_field.md §2.2): angle
    velocities (7.1), linear growth rates of the mean-field
    equation at the uniform density, the fastest mode and the sqrt(beta) cluster prediction;
  * Wendel's hemisphere probability (Thm 6.7).

Models are named ``"sa"`` (softmax attention) and ``"usa"`` (unnormalised, ``1/n``), case
insensitive, as in :mod:`tokenswarm.fields.attention`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, special

__all__ = [
    "Model",
    "equiangular_rhs",
    "equiangular_solution",
    "equiangular_crossing_time",
    "equiangular_late_slope",
    "uniform_energy",
    "log_uniform_energy",
    "simplex_energy",
    "cross_polytope_energy",
    "long_context_cosine",
    "long_context_limit",
    "angle_velocity",
    "circle_growth_rate",
    "fastest_mode",
    "MetastablePrediction",
    "sqrt_beta_cluster_prediction",
    "wendel_probability",
]

Model = Literal["sa", "usa"]

FloatOrArray = float | NDArray[np.float64]


# --------------------------------------------------------------------------- validation


def _model(model: str) -> str:
    name = str(model).lower()
    if name not in ("sa", "usa"):
        raise ValueError(f"model must be 'sa' or 'usa' (case insensitive), got {model!r}")
    return name


def _tokens(n: int, minimum: int = 2) -> int:
    if int(n) != n or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _nonnegative_beta(beta: float) -> float:
    beta = float(beta)
    if not (beta >= 0.0 and math.isfinite(beta)):
        raise ValueError(f"beta must be finite and >= 0, got {beta!r}")
    return beta


def _positive_beta_array(beta: ArrayLike) -> NDArray[np.float64]:
    values = np.asarray(beta, dtype=np.float64)
    if not np.all(values > 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"beta must be finite and > 0 (energies carry a factor 1/(2 beta)), got {beta!r}")
    return values


def _scalar_or_array(values: NDArray[np.float64]) -> FloatOrArray:
    return float(values) if values.ndim == 0 else values


# ------------------------------------------------------------ docs/theory/attention_ode.md §2.6 equiangular


def _log_rate(rho: NDArray[np.float64] | float, n: int, beta: float, model: str) -> NDArray[np.float64]:
    """``g(rho) = rho' / (1 - rho)``, so that ``d/dt log(1 - rho) = -g(rho)``.

    SA (6.9), numerator and denominator divided by ``e^{beta rho}`` so that nothing overflows:
    ``g = 2((n-1) rho + 1) / (e^{beta (1 - rho)} + n - 1)``.
    USA (6.10): ``g = (2/n) e^{beta rho} ((n-1) rho + 1)``.
    Both are increasing in ``rho`` on ``[-1/(n-1), 1]``, vanish at ``rho = -1/(n-1)`` and give
    ``g(1) = 2`` (SA) and ``2 e^beta`` (USA).
    """
    rho = np.asarray(rho, dtype=np.float64)
    spread = (n - 1) * rho + 1.0
    if model == "sa":
        return 2.0 * spread / (np.exp(beta * (1.0 - rho)) + (n - 1))
    return (2.0 / n) * np.exp(beta * rho) * spread


def equiangular_rhs(rho: ArrayLike, n: int, beta: float, model: Model | str) -> FloatOrArray:
    """Right-hand side ``rho' = f(rho)`` of the equiangular reduction (docs/theory/attention_ode.md §2.6).

    If ``<x_i, x_j> = rho`` for all ``i != j`` (Q = K = V = I), the configuration stays
    equiangular and, with ``v_i = sum_j A_ij x_j`` and ``A_ii = e^beta / Z``,
    ``A_ij = e^{beta rho} / Z`` (``Z = e^beta + (n-1) e^{beta rho}`` for SA, ``n`` for USA),
    ``d<x_i,x_j>/dt = 2(<v_i, x_j> - <v_i, x_i> rho) = 2 e^{beta rho}(1 - rho)((n-1) rho + 1) / Z``:

    * SA (6.9):  ``rho' = 2 e^{beta rho}(1-rho)((n-1)rho+1) / (e^beta + (n-1) e^{beta rho})``
    * USA (6.10): ``rho' = (2/n) e^{beta rho}(1-rho)((n-1)rho+1)``

    (re-derived; agrees with docs/theory/attention_ode.md §2.6).

    Args:
        rho: common inner product(s), any shape, in ``[-1/(n-1), 1]``.
        n: number of tokens, ``>= 2``.
        beta: inverse temperature, ``>= 0``.
        model: ``"sa"`` or ``"usa"``.

    Returns:
        ``f(rho)``, float for scalar input, else an array of the shape of ``rho``.
    """
    name = _model(model)
    n = _tokens(n)
    beta = _nonnegative_beta(beta)
    rho_arr = np.asarray(rho, dtype=np.float64)
    return _scalar_or_array((1.0 - rho_arr) * _log_rate(rho_arr, n, beta, name))


def _check_rho0(rho0: float, n: int) -> float:
    rho0 = float(rho0)
    lowest = -1.0 / (n - 1)
    # Below -1/(n-1) the Gram matrix (1 - rho) I + rho 1 1^T is not positive semidefinite.
    if not (lowest <= rho0 <= 1.0):
        raise ValueError(f"rho0 must lie in [-1/(n-1), 1] = [{lowest:.6g}, 1] for n = {n}, got {rho0!r}")
    return rho0


def _solve_log_gap(
    rho0: float, n: int, beta: float, model: str, t_end: float, rtol: float, atol: float
) -> integrate.OdeSolution:
    """Dense solution ``t -> [u(t)]`` of ``u' = -g(1 - e^u)``, ``u(0) = log(1 - rho0)``, on ``[0, t_end]``."""
    # Integrating u = log(1 - rho) instead of rho keeps full relative accuracy in 1 - rho at late
    # times (1 - rho ~ e^{-2t} decays below any absolute tolerance in rho) and turns the
    # exponential approach to 1 into linear decay of u, which DOP853 steps through cheaply.
    def rhs(_t: float, u: NDArray[np.float64]) -> NDArray[np.float64]:
        return -_log_rate(-np.expm1(u), n, beta, model)

    sol = integrate.solve_ivp(
        rhs, (0.0, t_end), [math.log1p(-rho0)], method="DOP853", rtol=rtol, atol=atol, dense_output=True
    )
    if not sol.success:
        raise RuntimeError(f"equiangular integration failed: {sol.message}")
    return sol.sol


def equiangular_solution(
    t: ArrayLike,
    rho0: float,
    n: int,
    beta: float,
    model: Model | str,
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> FloatOrArray:
    """Solution ``rho(t)`` of the equiangular ODE (6.9)/(6.10) with ``rho(0) = rho0``.

    Solved with ``scipy.integrate.solve_ivp`` (DOP853, dense output) for ``u = log(1 - rho)``,
    ``u' = -rho'/(1 - rho)``; ``rtol``/``atol`` apply to ``u``, i.e. to the *relative* error of
    ``1 - rho``, so late times (``1 - rho`` far below 1e-14) stay accurate. ``rho0 = 1`` is the
    fixed point (returns ones); ``rho0 = -1/(n-1)`` is the other, unstable, fixed point.

    Args:
        t: times ``>= 0``, any shape and order.
        rho0: initial common inner product in ``[-1/(n-1), 1]``.
        n: number of tokens, ``>= 2``.
        beta: inverse temperature, ``>= 0``.
        model: ``"sa"`` or ``"usa"``.
        rtol, atol: tolerances of the solver (on ``log(1 - rho)``).

    Returns:
        ``rho(t)``: float for scalar ``t``, else an array of the shape of ``t``.
    """
    name = _model(model)
    n = _tokens(n)
    beta = _nonnegative_beta(beta)
    rho0 = _check_rho0(rho0, n)
    times = np.asarray(t, dtype=np.float64)
    if np.any(times < 0) or not np.all(np.isfinite(times)):
        raise ValueError("t must be finite and >= 0")
    t_end = float(times.max()) if times.size else 0.0
    if rho0 == 1.0 or t_end == 0.0:
        return _scalar_or_array(np.full(times.shape, rho0))
    dense = _solve_log_gap(rho0, n, beta, name, t_end, rtol, atol)
    u = dense(times.ravel())[0].reshape(times.shape)
    return _scalar_or_array(-np.expm1(u))


def equiangular_crossing_time(
    level: ArrayLike,
    rho0: float,
    n: int,
    beta: float,
    model: Model | str,
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> FloatOrArray:
    """First time ``t`` with ``rho(t) = level`` on the equiangular solution.

    ``rho`` increases monotonically to 1 (``rho' > 0`` on ``(-1/(n-1), 1)``), so each level has
    at most one crossing: ``0`` if ``level <= rho0``, ``inf`` if ``level >= 1`` (approached, never
    reached) or if ``rho0 = -1/(n-1)`` (fixed point). Otherwise, since ``u = log(1 - rho)``
    obeys ``u' = -g(rho)`` with ``g > 0``, the crossing time is the quadrature
    ``∫_{u_level}^{u0} du / g``.

    Example: Fig. 3's black curve of 2312 is ``equiangular_crossing_time(1 - 1e-3, 0, 32, beta, "sa")``.

    Args:
        level: target inner product(s) in ``[-1, 1]``, any shape.
        rho0, n, beta, model, rtol, atol: as in :func:`equiangular_solution`.

    Returns:
        crossing times: float for scalar ``level``, else an array of the shape of ``level``.
    """
    name = _model(model)
    n = _tokens(n)
    beta = _nonnegative_beta(beta)
    rho0 = _check_rho0(rho0, n)
    levels = np.asarray(level, dtype=np.float64)
    if np.any(np.abs(levels) > 1.0) or not np.all(np.isfinite(levels)):
        raise ValueError(f"level must lie in [-1, 1], got {level!r}")
    times = np.where(levels <= rho0, 0.0, np.inf)
    reachable = (levels > rho0) & (levels < 1.0)
    rate0 = float(_log_rate(rho0, n, beta, name))
    if not np.any(reachable) or rate0 <= 0.0:
        return _scalar_or_array(times)
    u0 = math.log1p(-rho0)

    def inverse_rate(u: float) -> float:
        return 1.0 / float(_log_rate(-math.expm1(u), n, beta, name))

    # t(level) = ∫_{u_level}^{u0} du / g(rho(u)) with u = log(1 - rho): a quadrature, robust even
    # when the crossing is astronomically late (large beta from rho0 = 0 is metastable).
    crossings = [
        integrate.quad(inverse_rate, float(u_level), u0, epsrel=max(rtol, 1e-13), epsabs=0.0, limit=500)[0]
        for u_level in np.log1p(-levels[reachable])
    ]
    times[reachable] = crossings
    return _scalar_or_array(times)


def equiangular_late_slope(n: int, beta: float, model: Model | str) -> float:
    """Exact late-time slope ``lim_{t->inf} d/dt log(1 - rho(t))`` of the equiangular solution.

    Derivation: ``d/dt log(1 - rho) = -rho'/(1 - rho) = -g(rho)`` with (eqs. 6.9/6.10)
    ``g_SA(rho) = 2 e^{beta rho}((n-1) rho + 1) / (e^beta + (n-1) e^{beta rho})`` and
    ``g_USA(rho) = (2/n) e^{beta rho}((n-1) rho + 1)``. As ``rho -> 1``: ``(n-1) rho + 1 -> n``
    and the SA denominator ``-> n e^beta``, so ``g_SA(1) = 2`` and ``g_USA(1) = 2 e^beta``
    (equivalently ``f'(1) = -g(1)`` for ``rho' = f(rho)``). Hence ``1 - rho ~ C e^{-2t}`` (SA, every
    beta and n) and ``~ C e^{-2 e^beta t}`` (USA), confirming docs/theory/attention_ode.md §2.6.

    Returns:
        ``-2`` for SA, ``-2 e^beta`` for USA.
    """
    name = _model(model)
    _tokens(n)
    beta = _nonnegative_beta(beta)
    return -float(_log_rate(1.0, n, beta, name))


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


def _check_dimension(d: int, minimum: int) -> int:
    if int(d) != d or d < minimum:
        raise ValueError(f"d must be an integer >= {minimum}, got {d!r}")
    return int(d)


def log_uniform_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Natural logarithm of :func:`uniform_energy`, finite for every ``beta > 0`` and ``d >= 2``."""
    betas = _positive_beta_array(beta)
    d = _check_dimension(d, 2)
    values = np.vectorize(lambda b: _log_uniform_mgf(float(b), d) - math.log(2.0 * b), otypes=[np.float64])(betas)
    return _scalar_or_array(np.asarray(values, dtype=np.float64))


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
    return _scalar_or_array(np.exp(np.asarray(log_uniform_energy(beta, d), dtype=np.float64)))


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
    betas = _positive_beta_array(beta)
    d = _check_dimension(d, 1)
    n = d + 1
    values = np.exp(betas) * (1.0 + (n - 1) * np.exp(-betas * (1.0 + 1.0 / d))) / (2.0 * betas * n)
    return _scalar_or_array(values)


def cross_polytope_energy(beta: ArrayLike, d: int) -> FloatOrArray:
    """Energy of the cross-polytope ``{+-e_k}``: ``n = 2d`` tokens, each with one antipode
    (inner product -1) and ``2d - 2`` orthogonal partners (inner product 0).

    ``E_beta = (n e^beta + n e^{-beta} + n(n-2)) / (2 beta n^2)``.

    Args:
        beta: inverse temperature(s) ``> 0``, any shape.
        d: dimension ``>= 1``.
    """
    betas = _positive_beta_array(beta)
    d = _check_dimension(d, 1)
    n = 2 * d
    values = (np.exp(betas) + np.exp(-betas) + (n - 2)) / (2.0 * betas * n)
    return _scalar_or_array(values)


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
    if np.any(gamma_arr < 0) or not np.all(np.isfinite(gamma_arr)):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
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
    return _scalar_or_array(cosine)


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
    return _scalar_or_array(limit)


# ----------------------------------------------------------------- docs/theory/attention_ode.md §2.5 circle


def angle_velocity(theta: ArrayLike, beta: float, model: Model | str) -> NDArray[np.float64]:
    """Angular velocities of circle tokens, eq. (7.1) (Q = K = V = I, d = 2).

    * USA: ``dtheta_i/dt = -(1/n) sum_j e^{beta cos(theta_i - theta_j)} sin(theta_i - theta_j)``
    * SA:  the same sum divided by ``sum_k e^{beta cos(theta_i - theta_k)}`` instead of ``n``.

    Weights are evaluated as ``e^{beta (cos - 1)}`` (at most 1), the factor ``e^beta`` cancelling
    in SA and multiplied back in USA, so SA never overflows.

    Args:
        theta: angles, shape ``(*batch, n)``.
        beta: inverse temperature ``>= 0``.
        model: ``"sa"`` or ``"usa"``.

    Returns:
        shape ``(*batch, n)``.
    """
    name = _model(model)
    beta = _nonnegative_beta(beta)
    angles = np.asarray(theta, dtype=np.float64)
    if angles.ndim < 1:
        raise ValueError("theta must have shape (*batch, n)")
    difference = angles[..., :, None] - angles[..., None, :]
    weights = np.exp(beta * (np.cos(difference) - 1.0))
    pull = -(weights * np.sin(difference)).sum(-1)
    if name == "sa":
        return pull / weights.sum(-1)
    return math.exp(beta) * pull / angles.shape[-1]


def circle_growth_rate(k: ArrayLike, beta: float, model: Model | str) -> FloatOrArray:
    """Growth rate of Fourier mode ``k`` of the circle mean-field equation at the uniform density.

    Model (docs/theory/attention_ode.md §2.5; docs/theory/mean_field.md §2):
    ``d_t rho + d_theta(rho v[rho]) = 0`` with ``h(theta) = e^{beta cos theta}``,
    ``(f * rho)(theta) = int f(theta - theta') rho(theta') dtheta'``,
    ``v = beta^{-1} (h' * rho)`` (USA) or ``beta^{-1} (h' * rho) / (h * rho)`` (SA); these are the
    mean-field limits of (7.1), since ``-e^{beta cos s} sin s = h'(s)/beta``.

    Derivation. Write ``h = sum_m I_m(beta) e^{i m theta}``, so ``h' = sum_m i m I_m e^{i m theta}``
    and ``int h'(s) e^{-iks} ds = 2 pi i k I_k(beta)``. Perturb
    ``rho = 1/(2 pi) + eps e^{ik theta}`` (``k >= 1``, mass preserved). Since ``int h' = 0``,
    ``v[1/(2 pi)] = 0`` and ``v = eps (2 pi i k I_k / beta) e^{ik theta} / D`` to first order, with
    ``D = 1`` (USA) or ``D = (h * 1/(2 pi)) = I_0(beta)`` (SA). Then
    ``d_t rho = -(1/(2 pi)) d_theta v + O(eps^2) = eps (k^2 I_k(beta) / (beta D)) e^{ik theta}``:

    * USA: ``lambda_k = k^2 I_k(beta) / beta``
    * SA:  ``lambda_k = k^2 I_k(beta) / (beta I_0(beta))``

    All modes grow (attraction). At ``beta = 0`` (Kuramoto, ``v = -(sin * rho)``) the limits
    ``lambda_1 = 1/2``, ``lambda_{k>=2} = 0`` are returned. The same rates hold if ``rho`` is a
    density with respect to ``dtheta / (2 pi)`` (the linearisation is scale free).

    Args:
        k: mode number(s) ``>= 1``, any shape.
        beta: inverse temperature ``>= 0``.
        model: ``"sa"`` or ``"usa"``.

    Returns:
        float, or an array of the shape of ``k``. USA rates overflow to ``inf`` for beta > ~700.
    """
    name = _model(model)
    beta = _nonnegative_beta(beta)
    modes = np.asarray(k, dtype=np.float64)
    if np.any(modes < 1) or np.any(modes != np.round(modes)):
        raise ValueError(f"k must be integer(s) >= 1, got {k!r}")
    if beta == 0.0:
        return _scalar_or_array(np.where(modes == 1, 0.5, 0.0))
    scaled = special.ive(modes, beta)  # I_k(beta) e^{-beta}
    if name == "sa":
        rate = modes**2 * scaled / (beta * special.ive(0, beta))
    else:
        with np.errstate(over="ignore"):
            rate = modes**2 * scaled * np.exp(beta) / beta
    return _scalar_or_array(np.asarray(rate, dtype=np.float64))


def fastest_mode(beta: float, model: Model | str = "sa") -> int:
    """The most unstable mode ``argmax_{k >= 1} lambda_k`` of :func:`circle_growth_rate`.

    Both models maximise ``k^2 I_k(beta)`` (SA only divides by the k-independent ``I_0``), so the
    answer does not depend on ``model``. For large beta, ``I_k(beta) ~ e^beta e^{-k^2/(2 beta)} /
    sqrt(2 pi beta)``, hence ``k* ~ sqrt(2 beta)``. Ties (none occur generically) go to the
    smaller k.

    Args:
        beta: inverse temperature ``>= 0``.
        model: ``"sa"`` or ``"usa"`` (validated, otherwise irrelevant).
    """
    _model(model)
    beta = _nonnegative_beta(beta)
    if beta == 0.0:
        return 1
    # The maximiser is near sqrt(2 beta) and k^2 I_k decays like e^{-k^2/(2 beta)} beyond it.
    k_max = int(math.ceil(4.0 * math.sqrt(2.0 * beta))) + 10
    modes = np.arange(1, k_max + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_rates = 2.0 * np.log(modes) + np.log(special.ive(modes, beta))
    return int(modes[int(np.argmax(log_rates))])


class MetastablePrediction(NamedTuple):
    """Linear-stability prediction for the number of clusters of the first metastable state."""

    beta: float
    fastest_mode: int
    """most unstable Fourier mode of the circle (d = 2) equation, :func:`fastest_mode`."""
    asymptotic: float
    """its large-beta asymptote ``sqrt(2 beta)``."""


def sqrt_beta_cluster_prediction(beta: float) -> MetastablePrediction:
    """The ``Theta(sqrt(beta))`` prediction of 2512 for the first metastable state.

    2512 (§3; docs/theory/mean_field.md §2.2) linearises the mean-field equation at the uniform measure: starting
    near uniform, the perturbation is dominated by the fastest-growing mode, whose wavelength sets
    the number of clusters that first form, and this number is ``Theta(sqrt(beta))`` as
    ``beta -> inf``. On the circle the growth rates are ``lambda_k ∝ k^2 I_k(beta)``
    (:func:`circle_growth_rate`), maximised at ``k* ~ sqrt(2 beta)``: a mode-k perturbation
    concentrates mass near its k maxima, so about ``k*`` clusters are predicted (d = 2; for d > 2
    the spherical-harmonic analogue has the same ``Theta(sqrt(beta))`` scaling, constant not
    computed here). This is a heuristic for near-uniform starts with many tokens, not a theorem
    about a given finite configuration.

    Args:
        beta: inverse temperature ``>= 0``.
    """
    beta = _nonnegative_beta(beta)
    return MetastablePrediction(beta=beta, fastest_mode=fastest_mode(beta), asymptotic=math.sqrt(2.0 * beta))


# --------------------------------------------------------------------------- Thm 6.7


def wendel_probability(n: int, d: int) -> float:
    """Wendel's theorem: ``P(n i.i.d. uniform points on S^{d-1} lie in an open hemisphere)``.

    ``p = 2^{1-n} sum_{k=0}^{d-1} C(n-1, k)`` (equal to 1 when ``d >= n``), summed exactly in
    rational arithmetic and rounded once. 2312 Thm 6.7 uses it for ``d <= n``.

    Args:
        n: number of points ``>= 1``.
        d: ambient dimension ``>= 1``.
    """
    n = _tokens(n, minimum=1)
    d = _check_dimension(d, 1)
    favourable = sum(math.comb(n - 1, k) for k in range(min(d, n)))
    return float(Fraction(favourable, 2 ** (n - 1)))
