"""The equiangular reduction of the attention ODE (docs/theory/attention_ode.md §2.6).

Right-hand side, solution, crossing times and late-time slope of the common inner product
``rho(t)`` of ``n`` tokens that start with equal pairwise angles (SA eq. 6.9, USA eq. 6.10 of
2312.10794).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray, Model

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
    name = checks.model(model)
    n = checks.integer("n", n, 2)
    beta = checks.number("beta", beta)
    rho_arr = np.asarray(rho, dtype=np.float64)
    return checks.scalar_or_array((1.0 - rho_arr) * _log_rate(rho_arr, n, beta, name))


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
    name = checks.model(model)
    n = checks.integer("n", n, 2)
    beta = checks.number("beta", beta)
    rho0 = _check_rho0(rho0, n)
    times = checks.numbers("t", t)
    t_end = float(times.max()) if times.size else 0.0
    if rho0 == 1.0 or t_end == 0.0:
        return checks.scalar_or_array(np.full(times.shape, rho0))
    dense = _solve_log_gap(rho0, n, beta, name, t_end, rtol, atol)
    u = dense(times.ravel())[0].reshape(times.shape)
    return checks.scalar_or_array(-np.expm1(u))


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
    name = checks.model(model)
    n = checks.integer("n", n, 2)
    beta = checks.number("beta", beta)
    rho0 = _check_rho0(rho0, n)
    levels = np.asarray(level, dtype=np.float64)
    if np.any(np.abs(levels) > 1.0) or not np.all(np.isfinite(levels)):
        raise ValueError(f"level must lie in [-1, 1], got {level!r}")
    times = np.where(levels <= rho0, 0.0, np.inf)
    reachable = (levels > rho0) & (levels < 1.0)
    rate0 = float(_log_rate(rho0, n, beta, name))
    if not np.any(reachable) or rate0 <= 0.0:
        return checks.scalar_or_array(times)
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
    return checks.scalar_or_array(times)


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
    name = checks.model(model)
    checks.integer("n", n, 2)
    beta = checks.number("beta", beta)
    return -float(_log_rate(1.0, n, beta, name))


