"""Attention on the circle d = 2 (docs/theory/attention_ode.md §2.5; docs/theory/mean_field.md §2.2).

Angle velocities (7.1), linear growth rates of the mean-field equation at the uniform density,
the fastest mode and the sqrt(beta) cluster prediction.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray, Model

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
    name = checks.model(model)
    beta = checks.number("beta", beta)
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
    name = checks.model(model)
    beta = checks.number("beta", beta)
    modes = np.asarray(k, dtype=np.float64)
    if np.any(modes < 1) or np.any(modes != np.round(modes)):
        raise ValueError(f"k must be integer(s) >= 1, got {k!r}")
    if beta == 0.0:
        return checks.scalar_or_array(np.where(modes == 1, 0.5, 0.0))
    scaled = special.ive(modes, beta)  # I_k(beta) e^{-beta}
    if name == "sa":
        rate = modes**2 * scaled / (beta * special.ive(0, beta))
    else:
        with np.errstate(over="ignore"):
            rate = modes**2 * scaled * np.exp(beta) / beta
    return checks.scalar_or_array(np.asarray(rate, dtype=np.float64))


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
    checks.model(model)
    beta = checks.number("beta", beta)
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
    beta = checks.number("beta", beta)
    return MetastablePrediction(beta=beta, fastest_mode=fastest_mode(beta), asymptotic=math.sqrt(2.0 * beta))


