"""Random-MLP kernel theory of 2604.26898 (docs/theory/random_mlp.md §2-§4), NumPy/SciPy, float64.

One MLP layer ``G^m(y) = m^{-1/2} W σ(d^{-1/2} U y + b_U) + b_W`` (``U: m x d``, ``W: d x m``
with i.i.d. N(0, 1) entries, ``b_U ~ N(0, σ_U² I_m)``, ``b_W ~ N(0, σ_W² I_d)``) is centred with

    E[G^m(x) G^m(y)ᵀ] = (E[σ(V₁)σ(V₂)] + σ_W²) I_d   for every width m,
    (V₁, V₂) centred Gaussian, Var V₁ = |x|²/d + σ_U², Var V₂ = |y|²/d + σ_U², Cov = <x,y>/d + σ_U²

(the W-entries are independent of everything else and of each other, so only the diagonal
``k = l`` of ``m^{-1} Σ_{k,l} W_ak W_bl σ_k σ_l`` survives). On the unit sphere this is
``κ(u) I_d``, ``u = <x, y>``, and

* ``K1 = κ(1) = E[σ(sZ)²] + σ_W²`` with ``s² = 1/d + σ_U²``;
* ``κ'(u) = (1/d) E[σ'(V₁)σ'(V₂)]`` (Price's theorem: ``∂/∂Cov E[f(V₁)g(V₂)] = E[f'(V₁)g'(V₂)]``
  and ``∂Cov/∂u = 1/d``), so ``K1' = κ'(1) = (1/d) E[σ'(sZ)²]``;
* ReLU closed forms (arc-cosine kernel of order 1; ``s = 1/d + σ_U²``, ``r = (u/d + σ_U²)/s``):
  ``κ(u) = (s/2π)(√(1-r²) + r(π - arccos r)) + σ_W²``, ``κ'(u) = (π - arccos r)/(2πd)``,
  ``K1 = 1/(2d) + σ_U²/2 + σ_W²``, ``K1' = 1/(2d)`` (re-derived; agree with docs/theory/random_mlp.md §2.3,
  including the disputed ``1/d`` of ``K1'``).

Two-point motion of the pure-noise flow (Itô, docs/theory/random_mlp.md §3.1)
``dX = -K1 (d-1)/2 X dt + P⊥_X dW(X)``, ``E[dW(x) dW(y)ᵀ] = κ(<x,y>) I_d dt``. For two points
the noise covariances are ``K1 P⊥_x`` (each point) and ``κ(u) P⊥_x P⊥_y`` (cross), so Itô's
formula for ``u = <X, Y>`` gives (derivation in docs/random_mlp.md)

    du = b(u) dt + dM,   b(u) = κ(u)(d - 2 + u²) - K1 (d-1) u,
    d<M>/dt = a(u) = 2 (1 - u²)(K1 - u κ(u)),
    L f(u) = b(u) f'(u) + ½ a(u) f''(u).

With the pair energy ``g(u) = ½(e^β - e^{βu})`` (so that ``E_β(μ) = (1/n²) Σ_{i,j} g(u_ij)``):
``L g(u) = -½ β e^{βu} G(u)``,
``G(u) = κ(u)(d - 2 + u² - βu(1-u²)) + K1 (β(1-u²) - (d-1) u)``, i.e. the pure-noise
identity of docs/theory/random_mlp.md §4.2,
``d/dt E[E_β] = E[(1/n²) Σ_{i,j} -½ β e^{βu_ij} G(u_ij)]`` holds (it is verified here).
Since ``L g = -F g`` with ``F(u) = β e^{βu} G(u) / (e^β - e^{βu})``, ``d/dt E[E_β] <= λ̄' E[E_β]``
with ``λ̄' = -inf_{[-1,1)} F``; ``G(1) = 0`` and ``G'(1) = λ̄`` give ``F(1⁻) = -λ̄``. ``G`` and ``F``
are evaluated in a cancellation-free form near ``u = 1`` (see :meth:`RandomMLPKernel._mean_slope`).
Derivations in full: docs/random_mlp.md.

Exponents: ``λ₁ = ((d-3)/2) K1' - ((d-1)/2) K1`` (top Lyapunov exponent; it is the growth rate
of ``log |X - Y|`` for nearby points: near ``u = 1``, ``v = 1 - u`` has drift ``λ̄ v`` and
quadratic variation ``4 (K1 + K1') v²``, so ``λ₁ = λ̄/2 - K1 - K1'``) and
``λ̄ = (d-1) K1' - (d-3) K1``. For ReLU (Prop. 1.5, re-derived from the closed forms):
``λ₁ = -1/(2d) - (σ_U² + 2σ_W²)(d-1)/4``, ``λ̄ = 1/d - (σ_U² + 2σ_W²)(d-3)/2`` (the bias term of
``λ₁`` enters with a minus sign).

Quadrature. Smooth activations: Gauss-Hermite (probabilists' nodes), 1-D for ``K1, K1'``, 2-D
tensor grid through the Cholesky factor of the 2x2 covariance for ``κ, κ'``; the default node
count grows with the variance and keeps errors <= 1e-12 up to variance ~2 (tanh, whose poles
at ±iπ/2 are the nearest singularities, is the worst case).
Activations smooth except at 0 (ReLU, its derivative; ``Activation(..., kinked=True)``): the
integrals are split where ``V₁ = 0`` or ``V₂ = 0``: half-line generalised Gauss-Laguerre in 1-D,
polar coordinates in 2-D (the kinks are rays, so the angle is split there and integrated by
Gauss-Legendre, the radius ``t = ρ²/2`` by Gauss-Laguerre); exact to rounding for positively
homogeneous activations such as ReLU, which independently checks the closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import InitVar, dataclass
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from tokenswarm import checks
from tokenswarm.checks import FloatOrArray

__all__ = [
    "ActivationName",
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "RandomMLPKernel",
    "DecayBound",
    "KernelConstants",
    "relu_proposition_1_5",
]

ActivationName = Literal["relu", "tanh", "sigmoid", "silu", "gelu"]
Method = Literal["auto", "closed", "quadrature"]
Function = Callable[[NDArray[np.float64]], NDArray[np.float64]]

# Largest number of 2-D integrand evaluations held in memory at once (8 bytes each).
_CHUNK = 2_000_000
# Angular Gauss-Legendre nodes per piece and radial Gauss-Laguerre nodes (kinked activations).
_ANGLE_NODES = 24
_RADIAL_NODES = 48


# --------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Activation:
    """An activation ``σ`` with its derivative.

    Attributes:
        name: label used in messages and tables.
        function: ``σ``, elementwise on float64 arrays.
        derivative: ``σ'``, elementwise.
        kinked: ``σ`` (or ``σ'``) is smooth except at 0: quadrature is split there.
        odd: ``σ(-x) = -σ(x)``; with no bias the field ``G^m`` is then a.s. odd (fails S1).
    """

    name: str
    function: Function
    derivative: Function
    kinked: bool = False
    odd: bool = False


def _relu(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.maximum(x, 0.0)


def _step(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return (x > 0).astype(np.float64)


def _tanh_prime(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / np.cosh(x) ** 2


def _sigmoid_prime(x: NDArray[np.float64]) -> NDArray[np.float64]:
    p = special.expit(x)
    return p * (1.0 - p)


def _silu(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x * special.expit(x)


def _silu_prime(x: NDArray[np.float64]) -> NDArray[np.float64]:
    p = special.expit(x)
    return p * (1.0 + x * (1.0 - p))


def _gelu(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x * special.ndtr(x)  # exact (erf) GELU: x Φ(x)


def _gelu_prime(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", _relu, _step, kinked=True),
    "tanh": Activation("tanh", np.tanh, _tanh_prime, odd=True),
    "sigmoid": Activation("sigmoid", special.expit, _sigmoid_prime),
    "silu": Activation("silu", _silu, _silu_prime),
    "gelu": Activation("gelu", _gelu, _gelu_prime),
}


def _numerical_derivative(function: Function) -> Function:
    """Central difference with step ``eps^{1/3} max(1, |x|)`` (error ~1e-10 relative): a fallback."""

    def derivative(x: NDArray[np.float64]) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64)
        step = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
        return (function(x + step) - function(x - step)) / (2.0 * step)

    return derivative


def get_activation(
    activation: ActivationName | str | Activation | Function,
    derivative: Function | None = None,
) -> Activation:
    """Resolve a name, an :class:`Activation` or a plain callable ``σ``.

    Args:
        activation: ``"relu" | "tanh" | "sigmoid" | "silu" | "gelu"`` (case insensitive), an
            :class:`Activation`, or a callable ``σ`` (assumed smooth and not odd; wrap it in an
            :class:`Activation` to say otherwise).
        derivative: ``σ'`` for a callable; without it a central difference is used (accuracy
            ~1e-10, so ``κ'`` is then no better than that).

    Raises:
        ValueError: unknown name, or a derivative given together with a name.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.lower()
        if key not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}")
        if derivative is not None:
            raise ValueError(f"activation {activation!r} has a built-in derivative; pass derivative only with a callable")
        return ACTIVATIONS[key]
    if callable(activation):
        name = getattr(activation, "__name__", "custom")
        return Activation(name, activation, derivative if derivative is not None else _numerical_derivative(activation))
    raise ValueError(f"activation must be a name, an Activation or a callable, got {activation!r}")


# --------------------------------------------------------------------------- argument checks

_STD = " (a standard deviation)"


def _inner_products(u: ArrayLike) -> NDArray[np.float64]:
    # Computed inner products may leave [-1, 1] by round-off.
    return checks.inner_products("u", u, tolerance=1e-12)


def _positive_beta(beta: float) -> float:
    return checks.number("beta", beta, positive=True, note=" (E_β vanishes identically at beta = 0)")


# --------------------------------------------------------------------------- quadrature


def _default_nodes(variance: float) -> int:
    # Gauss-Hermite error for tanh' = sech² (double poles at ±iπ/2, the worst built-in case)
    # decays like exp(-c sqrt(n)/std): 48 nodes reach rounding at variance 0.2, ~100 at 0.5,
    # ~170 at 1, ~320 at 2 (errors <= 1e-13); capped at 400 (7e-13 at variance 3).
    return int(min(400, math.ceil(48 + 150 * max(0.0, variance - 0.2) - 1e-9)))


def _hermite(nodes: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probabilists' Gauss-Hermite nodes and weights normalised to the N(0, 1) law."""
    x, w = special.roots_hermitenorm(nodes)
    return x, w / math.sqrt(2.0 * math.pi)


def _expect_1d(f: Function, variance: float, kinked: bool, nodes: int | None) -> float:
    """``E[f(V)]``, ``V ~ N(0, variance)``."""
    std = math.sqrt(variance)
    if kinked:
        # E f(V) = ∫_0^∞ [f(sz) + f(-sz)] φ(z) dz; t = z²/2 turns φ(z) dz into
        # t^{-1/2} e^{-t} dt / (2 sqrt(π)): generalised Gauss-Laguerre with alpha = -1/2.
        t, w = special.roots_genlaguerre(nodes or _RADIAL_NODES, -0.5)
        z = std * np.sqrt(2.0 * t)
        return float(np.sum(w * (f(z) + f(-z))) / (2.0 * math.sqrt(math.pi)))
    x, w = _hermite(nodes or _default_nodes(variance))
    return float(np.sum(w * f(std * x)))


def _expect_2d(
    f: Function, l11: float, l21: NDArray[np.float64], l22: NDArray[np.float64], kinked: bool, nodes: int | None
) -> NDArray[np.float64]:
    """``E[f(V₁) f(V₂)]`` with ``(V₁, V₂) = (L11 Z₁, L21 Z₁ + L22 Z₂)``, one value per entry of ``l21``.

    ``L`` is the Cholesky factor of the 2x2 covariance; at ``|correlation| = 1`` it is
    degenerate (``L22 = 0``), which both rules tolerate.
    """
    if kinked:
        return _expect_2d_polar(f, l11, l21, l22, nodes)
    x, w = _hermite(nodes or _default_nodes(max(l11**2, float(np.max(l21**2 + l22**2, initial=0.0)))))
    f1w = w * f(l11 * x)  # V₁ does not depend on the covariance
    out = np.empty_like(l21)
    chunk = max(1, _CHUNK // x.size**2)
    for start in range(0, l21.size, chunk):
        part = slice(start, start + chunk)
        v2 = l21[part, None, None] * x[None, :, None] + l22[part, None, None] * x[None, None, :]
        out[part] = np.einsum("i,pij,j->p", f1w, f(v2), w)
    return out


def _cholesky(variance1: float, variance2: float, covariance: NDArray[np.float64]) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    l11 = math.sqrt(variance1)
    l21 = covariance / l11
    return l11, l21, np.sqrt(np.clip(variance2 - l21**2, 0.0, None))


def _sphere_cholesky(u: NDArray[np.float64], d: int, sigma_u: float) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Cholesky factor for ``Var = s = 1/d + σ_U²``, ``Cov = u/d + σ_U²`` on the sphere.

    ``L22² = (s - Cov)(s + Cov)/s = ((1-u)/d)((1+u)/d + 2σ_U²)/s`` is formed without cancellation,
    so ``L22 = 0`` exactly at ``u = 1``: the ReLU ``κ'`` has an infinite slope in the correlation
    there, and a rounding residue in ``L22`` would show up as a 1e-9 error.
    """
    s = _sphere_variance(d, sigma_u)
    l11 = math.sqrt(s)
    l21 = _sphere_covariance(u, d, sigma_u) / l11
    l22 = np.sqrt(np.clip((1.0 - u) / d * ((1.0 + u) / d + 2.0 * sigma_u**2) / s, 0.0, None))
    return l11, l21, l22


def _expect_2d_polar(
    f: Function, l11: float, l21: NDArray[np.float64], l22: NDArray[np.float64], nodes: int | None
) -> NDArray[np.float64]:
    """Polar-coordinate rule for integrands smooth except where ``V₁ = 0`` or ``V₂ = 0``.

    ``Z = ρ(cos θ, sin θ)``; ``V₁ = 0`` on ``θ = π/2, 3π/2`` and ``V₂ = 0`` on
    ``θ = atan2(-L21, L22)`` (mod π): split ``[0, 2π]`` there, Gauss-Legendre in θ on each
    piece, Gauss-Laguerre in ``t = ρ²/2`` (the density is ``e^{-t} dt dθ / 2π``).
    """
    t, wt = special.roots_laguerre(nodes or _RADIAL_NODES)
    rho = np.sqrt(2.0 * t)
    g, wg = special.roots_legendre(_ANGLE_NODES)
    kink = np.mod(np.arctan2(-l21, l22), math.pi)
    size = l21.size
    edges = np.sort(np.column_stack([
        np.zeros(size), np.full(size, 0.5 * math.pi), np.full(size, 1.5 * math.pi),
        kink, kink + math.pi, np.full(size, 2.0 * math.pi),
    ]), axis=1)
    lower, width = edges[:, :-1], np.diff(edges, axis=1)  # (P, 5)
    theta = (lower[:, :, None] + 0.5 * width[:, :, None] * (g + 1.0)).reshape(size, -1)
    weight_theta = (0.5 * width[:, :, None] * wg).reshape(size, -1)
    cos, sin = np.cos(theta), np.sin(theta)
    v1 = l11 * cos[:, :, None] * rho
    v2 = (l21[:, None] * cos + l22[:, None] * sin)[:, :, None] * rho
    integrand = f(v1) * f(v2)
    return np.einsum("pa,pat,t->p", weight_theta, integrand, wt) / (2.0 * math.pi)


def _sphere_variance(d: int, sigma_u: float) -> float:
    return 1.0 / d + sigma_u**2


def _sphere_covariance(u: NDArray[np.float64], d: int, sigma_u: float) -> NDArray[np.float64]:
    return u / d + sigma_u**2


# --------------------------------------------------------------------------- ReLU closed forms


def _relu_terms(u: NDArray[np.float64], d: int, sigma_u: float) -> tuple[float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``s``, ``r``, ``√(1-r²)`` and ``π - arccos r`` with ``1 ∓ r`` formed without cancellation.

    ``1 - r = (1-u)/(d s)``, ``1 + r = ((1+u)/d + 2σ_U²)/s``; ``π - arccos r`` is
    ``π - 2 arcsin √((1-r)/2)`` for ``r >= 0`` and ``2 arcsin √((1+r)/2)`` for ``r < 0`` (arcsin is
    evaluated away from 1, where it would turn a 1e-16 rounding into a 1e-8 error).
    """
    s = _sphere_variance(d, sigma_u)
    below = np.clip((1.0 - u) / (d * s), 0.0, 2.0)
    above = np.clip(((1.0 + u) / d + 2.0 * sigma_u**2) / s, 0.0, 2.0)
    r = np.clip(_sphere_covariance(u, d, sigma_u) / s, -1.0, 1.0)
    angle = np.where(r >= 0, math.pi - 2.0 * np.arcsin(np.sqrt(0.5 * below)), 2.0 * np.arcsin(np.sqrt(0.5 * above)))
    return s, r, np.sqrt(below * above), angle


def _relu_kappa(u: NDArray[np.float64], d: int, sigma_u: float, sigma_w: float) -> NDArray[np.float64]:
    """ReLU ``κ(u) = (s/2π)(√(1-r²) + r(π - arccos r)) + σ_W²``, ``s = 1/d + σ_U²``, ``r = (u/d + σ_U²)/s``.

    This is ``E[relu(V₁) relu(V₂)]`` for equal variances ``s`` and correlation ``r`` (the
    order-1 arc-cosine kernel), plus the output-bias variance.
    """
    s, r, root, angle = _relu_terms(u, d, sigma_u)
    return s / (2.0 * math.pi) * (root + r * angle) + sigma_w**2


def _relu_kappa_prime(u: NDArray[np.float64], d: int, sigma_u: float) -> NDArray[np.float64]:
    """ReLU ``κ'(u) = (π - arccos r)/(2πd)``: ``(1/d) P(V₁ > 0, V₂ > 0)`` (Sheppard's formula)."""
    return _relu_terms(u, d, sigma_u)[3] / (2.0 * math.pi * d)


def relu_proposition_1_5(d: int, sigma_u: float = 0.0, sigma_w: float = 0.0) -> tuple[float, float]:
    """Prop. 1.5 as printed (docs/theory/random_mlp.md §4.6): ``(λ₁, λ̄)`` for ReLU.

    ``λ₁ = -1/(2d) - (σ_U² + 2σ_W²)(d-1)/4`` and ``λ̄ = 1/d - (σ_U² + 2σ_W²)(d-3)/2``; substituting
    ``K1 = 1/(2d) + (σ_U² + 2σ_W²)/2``, ``K1' = 1/(2d)`` in the definitions gives exactly these
    (``(d-3)/(4d) - (d-1)/(4d) = -1/(2d)``; ``(d-1)/(2d) - (d-3)/(2d) = 1/d``), so the bias term
    of ``λ₁`` has a minus sign. The paper's formula, not the kernel: compare it with
    :attr:`RandomMLPKernel.lambda_1` and :attr:`RandomMLPKernel.lambda_bar`.
    """
    d = checks.integer("d", d, 2)
    sigma_u, sigma_w = checks.number("sigma_u", sigma_u, note=_STD), checks.number("sigma_w", sigma_w, note=_STD)
    bias = sigma_u**2 + 2.0 * sigma_w**2
    return -0.5 / d - bias * (d - 1) / 4.0, 1.0 / d - bias * (d - 3) / 2.0


# --------------------------------------------------------------------------- the kernel


class DecayBound(NamedTuple):
    """``λ̄' = -inf_{[-1,1)} F`` and where the infimum is reached.

    Attributes:
        lambda_bar_prime: guaranteed exponential rate of ``E[E_β]`` (negative = decay).
        u_star: minimiser of ``F`` on the grid of :meth:`RandomMLPKernel.energy_decay_bound`;
            ``1.0`` when the grid minimum is the limit ``F(1⁻) = -λ̄`` (then ``λ̄' = λ̄``: checked
            numerically on that grid, not proved; only ``λ̄' >= λ̄`` is).
        lambda_bar: ``λ̄``; ``lambda_bar_prime >= lambda_bar`` always (``inf F <= F(1⁻)``).
    """

    lambda_bar_prime: float
    u_star: float
    lambda_bar: float


class KernelConstants(NamedTuple):
    """One row of the paper's table (plus ``λ̄'``), for one activation, d and biases."""

    K1: float
    K1_prime: float
    lambda_1: float
    lambda_bar: float
    lambda_bar_prime: float
    u_star: float
    coercive: bool
    S1: bool
    odd_field: bool


@dataclass(frozen=True)
class RandomMLPKernel:
    """The kernel ``κ`` of the random-MLP field on ``S^{d-1}`` and everything derived from it.

    ``E[G^m(x) G^m(y)ᵀ] = κ(<x,y>) I_d`` with ``κ(u) = E[σ(V₁)σ(V₂)] + σ_W²``,
    ``Var V_i = 1/d + σ_U²``, ``Cov = u/d + σ_U²`` (module docstring). The constants (``K1``,
    ``K1'``, ``λ₁``, ``λ̄``) are attributes, computed once; the functions of ``u`` and ``β``
    are methods.

    Attributes:
        activation: a name (``"relu" | "tanh" | "sigmoid" | "silu" | "gelu"``), an
            :class:`Activation` or a callable ``σ`` (see :func:`get_activation`); stored resolved,
            as an :class:`Activation`.
        d: dimension, ``>= 2``.
        sigma_u, sigma_w: standard deviations of the hidden and output biases, ``>= 0``.
        method: ``"auto"`` (ReLU closed forms, quadrature otherwise), ``"closed"`` (ReLU only) or
            ``"quadrature"``: how ``κ, κ', K1, K1'`` are evaluated. (The mean slope behind
            :meth:`energy_G` and :meth:`energy_F` uses ReLU's closed form whatever ``method``.)
        nodes: quadrature nodes per dimension (default: by variance, see module docstring).
        derivative: ``σ'`` for a callable activation (init only; default a central difference).
    """

    activation: ActivationName | str | Activation | Function
    d: int
    sigma_u: float = 0.0
    sigma_w: float = 0.0
    method: Method = "auto"
    nodes: int | None = None
    derivative: InitVar[Function | None] = None

    def __post_init__(self, derivative: Function | None) -> None:
        act = get_activation(self.activation, derivative)
        checks.choice("method", self.method, ("auto", "closed", "quadrature"))
        if self.method == "closed" and act is not ACTIVATIONS["relu"]:
            raise ValueError(f"no closed form for activation {act.name!r}; use method='auto' or 'quadrature'")
        if self.nodes is not None:
            checks.integer("nodes", self.nodes, 1)
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "d", checks.integer("d", self.d, 2))
        object.__setattr__(self, "sigma_u", checks.number("sigma_u", self.sigma_u, note=_STD))
        object.__setattr__(self, "sigma_w", checks.number("sigma_w", self.sigma_w, note=_STD))

    @property
    def _closed(self) -> bool:
        return self.activation is ACTIVATIONS["relu"] and self.method != "quadrature"

    # ------------------------------------------------------------------ kernel and constants

    def kappa(self, u: ArrayLike) -> FloatOrArray:
        """``κ(u)`` for inner product(s) ``u`` in ``[-1, 1]``: a float for scalar ``u``, else an array like ``u``."""
        values = _inner_products(u)
        if self._closed:
            return checks.scalar_or_array(_relu_kappa(values, self.d, self.sigma_u, self.sigma_w))
        factor = _sphere_cholesky(values.ravel(), self.d, self.sigma_u)
        out = _expect_2d(self.activation.function, *factor, self.activation.kinked, self.nodes) + self.sigma_w**2
        return checks.scalar_or_array(out.reshape(values.shape))

    def kappa_prime(self, u: ArrayLike) -> FloatOrArray:
        """``κ'(u) = dκ/du = (1/d) E[σ'(V₁)σ'(V₂)]`` (Price's theorem); shapes as :meth:`kappa`."""
        values = _inner_products(u)
        if self._closed:
            return checks.scalar_or_array(_relu_kappa_prime(values, self.d, self.sigma_u))
        factor = _sphere_cholesky(values.ravel(), self.d, self.sigma_u)
        out = _expect_2d(self.activation.derivative, *factor, self.activation.kinked, self.nodes) / self.d
        return checks.scalar_or_array(out.reshape(values.shape))

    def _expect_square(self, f: Function) -> float:
        """``E[f(V)²]``, ``V ~ N(0, 1/d + σ_U²)`` (1-D quadrature)."""
        return _expect_1d(lambda v: f(v) ** 2, _sphere_variance(self.d, self.sigma_u), self.activation.kinked, self.nodes)

    @cached_property
    def K1(self) -> float:  # noqa: N802 - the paper's symbol
        """``K(1) = κ(1) = E[σ(sZ)²] + σ_W²``, ``s² = 1/d + σ_U²``; ReLU: ``1/(2d) + σ_U²/2 + σ_W²``."""
        if self._closed:
            return 0.5 / self.d + 0.5 * self.sigma_u**2 + self.sigma_w**2
        return self._expect_square(self.activation.function) + self.sigma_w**2

    @cached_property
    def K1_prime(self) -> float:  # noqa: N802 - the paper's symbol
        """``K'(1) = κ'(1) = (1/d) E[σ'(sZ)²]``; ReLU: ``1/(2d)``, independent of the biases."""
        if self._closed:
            return 0.5 / self.d
        return self._expect_square(self.activation.derivative) / self.d

    @property
    def lambda_1(self) -> float:
        """Top Lyapunov exponent of the pure-noise flow, ``λ₁ = ((d-3)/2) K1' - ((d-1)/2) K1``."""
        return 0.5 * (self.d - 3) * self.K1_prime - 0.5 * (self.d - 1) * self.K1

    @property
    def lambda_bar(self) -> float:
        """``λ̄ = (d-1) K1' - (d-3) K1 = G'(1) = -F(1⁻)``; ``λ̄ < 0`` is condition S1 (with a non-odd field)."""
        return (self.d - 1) * self.K1_prime - (self.d - 3) * self.K1

    @property
    def activation_criterion(self) -> bool:
        """docs/theory/random_mlp.md §4.5: ``((d-1)/d) E[σ'(V)²] < (d-3)(E[σ(V)²] + σ_W²)``, ``V ~ N(0, 1/d + σ_U²)``.

        Evaluated directly by 1-D quadrature whatever ``method`` (not through :attr:`lambda_bar`);
        equivalent to ``λ̄ < 0``.
        """
        d = self.d
        slope_square = self._expect_square(self.activation.derivative)
        square = self._expect_square(self.activation.function)
        return bool((d - 1) / d * slope_square < (d - 3) * (square + self.sigma_w**2))

    @property
    def odd_field(self) -> bool:
        """``G^m`` is a.s. odd iff ``σ`` is odd and both biases vanish (then S1 fails whatever λ̄)."""
        return self.activation.odd and self.sigma_u == 0.0 and self.sigma_w == 0.0

    def field_covariance(self, x: ArrayLike, y: ArrayLike) -> float:
        """``c`` with ``E[G^m(x) G^m(y)ᵀ] = c I_d`` for points ``x, y`` of ``R^d`` of any norm.

        ``c = E[σ(V₁)σ(V₂)] + σ_W²``, ``Var V₁ = |x|²/d + σ_U²``, ``Var V₂ = |y|²/d + σ_U²``,
        ``Cov = <x,y>/d + σ_U²``, by quadrature (also for ReLU).
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != (self.d,) or y.shape != (self.d,):
            raise ValueError(f"x and y must be vectors of length d = {self.d}, got shapes {x.shape} and {y.shape}")
        act, d, sigma_u, sigma_w, nodes = self.activation, self.d, self.sigma_u, self.sigma_w, self.nodes
        variance1, variance2 = float(x @ x) / d + sigma_u**2, float(y @ y) / d + sigma_u**2
        covariance = np.array([float(x @ y) / d + sigma_u**2])
        if variance1 == 0.0 or variance2 == 0.0:  # V = 0 a.s. at a zero-variance point
            at_zero = float(act.function(np.zeros(1))[0])
            other = max(variance1, variance2)
            return at_zero * (_expect_1d(act.function, other, act.kinked, nodes) if other > 0 else at_zero) + sigma_w**2
        factor = _cholesky(variance1, variance2, covariance)
        return float(_expect_2d(act.function, *factor, act.kinked, nodes)[0]) + sigma_w**2

    # ------------------------------------------------------------------ two-point motion

    def two_point_drift(self, u: ArrayLike) -> FloatOrArray:
        """Drift of ``u = <X, Y>`` under the pure-noise flow: ``b(u) = κ(u)(d - 2 + u²) - K1 (d-1) u``.

        ``-K1(d-1)u`` is the radial (Itô) drift of both points; ``κ(u) tr(P⊥_x P⊥_y)`` with
        ``tr(P⊥_x P⊥_y) = d - 2 + u²`` is the covariation of the two noises.
        """
        values = _inner_products(u)
        k = np.asarray(self.kappa(values))
        return checks.scalar_or_array(k * (self.d - 2 + values**2) - self.K1 * (self.d - 1) * values)

    def two_point_quadratic_variation(self, u: ArrayLike) -> FloatOrArray:
        """``a(u) = d<u>/dt = 2 (1 - u²)(K1 - u κ(u))``.

        The martingale part is ``<dW(x), P⊥_x y> + <dW(y), P⊥_y x>`` with ``|P⊥_x y|² = 1 - u²`` and
        ``<P⊥_x y, P⊥_y x> = -u(1 - u²)``.
        """
        values = _inner_products(u)
        k = np.asarray(self.kappa(values))
        return checks.scalar_or_array(2.0 * (1.0 - values**2) * (self.K1 - values * k))

    def two_point_generator(self, u: ArrayLike, f_prime: ArrayLike, f_second: ArrayLike) -> FloatOrArray:
        """``L f(u) = b(u) f'(u) + ½ a(u) f''(u)`` given ``f'(u)`` and ``f''(u)`` (arrays like ``u``)."""
        b = np.asarray(self.two_point_drift(u))
        a = np.asarray(self.two_point_quadratic_variation(u))
        return checks.scalar_or_array(b * np.asarray(f_prime, dtype=np.float64) + 0.5 * a * np.asarray(f_second, dtype=np.float64))

    # ------------------------------------------------------------------ energy decay

    def _mean_slope(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """``m(u) = (K1 - κ(u)) / (1 - u)``, the mean of ``κ'`` over ``[u, 1]``, with ``m(1) = K1'``.

        Forming ``K1 - κ(u)`` by subtraction loses ``log10(1/(1-u))`` digits; instead, for
        ``1 - u < 0.05`` the mean of ``κ'`` is taken by 8-point Gauss-Legendre on ``[u, 1]`` (``κ'`` is
        smooth there for smooth σ). ReLU (closed form): with ``w = 1 - r = (1-u)/(d s)``,
        ``m = (π w + r arccos r - √(1-r²)) / (2π d w)``, replaced below ``w = 1e-8`` by its expansion
        ``(π - (2√2/3)√w)/(2π d)``, because the last two terms cancel to ``O(w^{3/2})``.
        """
        d = self.d
        gap = 1.0 - u
        out = np.empty_like(u)
        if self.activation is ACTIVATIONS["relu"]:
            s = _sphere_variance(d, self.sigma_u)
            w = np.clip(gap / (d * s), 0.0, 2.0)
            tiny = w < 1e-8
            safe = np.where(tiny, 1.0, w)
            arccos = 2.0 * np.arcsin(np.sqrt(0.5 * safe))
            direct = (math.pi * safe + (1.0 - safe) * arccos - np.sqrt(safe * (2.0 - safe))) / safe
            series = math.pi - (2.0 * math.sqrt(2.0) / 3.0) * np.sqrt(w)
            return np.where(tiny, series, direct) / (2.0 * math.pi * d)
        near = gap < 0.05
        far = ~near
        if np.any(far):
            out[far] = (self.K1 - np.asarray(self.kappa(u[far]))) / gap[far]
        if np.any(near):
            x, w = special.roots_legendre(8)
            points = 1.0 - gap[near, None] * 0.5 * (x + 1.0)  # Gauss-Legendre nodes on [u, 1]
            slopes = np.asarray(self.kappa_prime(points.ravel())).reshape(points.shape)
            out[near] = 0.5 * slopes @ w
        return out

    def _reduced_G(self, u: NDArray[np.float64], beta: float) -> NDArray[np.float64]:  # noqa: N802
        """``H(u) = G(u) / (1 - u) = K1 (d - 2 - u + β(1-u²)) - A(u) m(u)``, ``A(u) = d - 2 + u² - βu(1-u²)``.

        From ``κ = K1 - (1-u) m`` and ``A + B = (1-u)(d - 2 - u + β(1-u²))`` with
        ``B(u) = β(1-u²) - (d-1)u``; ``H(1) = (d-3)K1 - (d-1)K1' = -λ̄``.
        """
        d, slope = self.d, self._mean_slope(u.ravel()).reshape(u.shape)
        gap = 1.0 - u**2
        return self.K1 * (d - 2 - u + beta * gap) - (d - 2 + u**2 - beta * u * gap) * slope

    def _F(self, u: NDArray[np.float64], beta: float) -> NDArray[np.float64]:  # noqa: N802
        # β e^{βu} / (e^β - e^{βu}) = β / expm1(β(1-u)), so F = [β(1-u) / expm1(β(1-u))] H(u), the factor -> 1.
        scaled = beta * (1.0 - u)
        factor = np.where(scaled > 0, scaled / np.expm1(np.where(scaled > 0, scaled, 1.0)), 1.0)
        return factor * self._reduced_G(u, beta)

    def energy_G(self, u: ArrayLike, beta: float) -> FloatOrArray:  # noqa: N802 - the paper's symbol
        """``G(u) = κ(u)(d - 2 + u² - βu(1-u²)) + K1 (β(1-u²) - (d-1)u)`` (Thm 1.4); ``G(1) = 0``, ``G'(1) = λ̄``.

        Evaluated as ``(1 - u) H(u)`` (see :meth:`_reduced_G`), which keeps full relative accuracy
        as ``u -> 1`` where the two terms of the definition cancel.
        """
        values = _inner_products(u)
        return checks.scalar_or_array((1.0 - values) * self._reduced_G(values, float(beta)))

    def energy_F(self, u: ArrayLike, beta: float) -> FloatOrArray:  # noqa: N802 - the paper's symbol
        """``F(u) = β e^{βu} G(u) / (e^β - e^{βu})`` on ``[-1, 1)``, and its limit ``F(1) = -λ̄``.

        ``L g = -F g`` for the pair energy ``g(u) = ½(e^β - e^{βu})``. Evaluated as
        ``[β(1-u)/expm1(β(1-u))] H(u)`` with ``H = G/(1-u)``: no 0/0 at ``u = 1`` and full accuracy near it.
        """
        beta = _positive_beta(beta)
        return checks.scalar_or_array(self._F(_inner_products(u), beta))

    def energy_rate(self, u: ArrayLike, beta: float) -> FloatOrArray:
        """``L g(u) = -½ β e^{βu} G(u)``: generator of the two-point motion applied to ``g(u) = ½(e^β - e^{βu})``.

        ``g`` is the pair term of ``E_β(μ) = ½∬(e^β - e^{β<x,y>}) dμ dμ = (1/n²) Σ_{i,j} g(<x_i, x_j>)``
        (diagonal terms vanish), so for the pure-noise flow
        ``d/dt E[E_β] = E[(1/n²) Σ_{i,j} energy_rate(u_ij)]``. Computed as
        ``b(u) g'(u) + ½ a(u) g''(u)`` with ``g' = -½βe^{βu}``, ``g'' = -½β²e^{βu}`` (not from ``G``),
        so comparing it with ``-½βe^{βu}G(u)`` checks the algebra. ``beta >= 0``.
        """
        beta = checks.number("beta", beta)
        values = _inner_products(u)
        first = -0.5 * beta * np.exp(beta * values)
        return self.two_point_generator(values, first, beta * first)

    def energy_decay_bound(self, beta: float, grid: int = 1000) -> DecayBound:
        """``λ̄'(β) = -inf_{u ∈ [-1, 1)} F(u)`` (Thm 1.4 with ε = 0).

        ``F`` (continuous on ``[-1, 1]`` with ``F(1) = -λ̄``) is evaluated on ``grid + 1`` uniform
        points of ``[-1, 1]`` plus 31 points with ``1 - u`` from 1e-1 to 1e-9 (geometric); the best
        interior point is refined by bounded Brent minimisation between its neighbours. The endpoint
        ``F(-1) = β e^{-β}(d-1)(κ(-1) + K1)/(e^β - e^{-β}) >= 0`` (``|κ(-1)| <= K1``) is on the grid;
        ``λ̄' >= max(λ̄, -F(-1))``, so an odd field (``κ(-1) = -K1``, ``F(-1) = 0``) has ``λ̄' >= 0``.

        The result is a grid minimum: a dip of ``F`` between grid points would be missed. In
        particular ``λ̄' = λ̄`` (``u_star = 1``, e.g. whenever ``λ̄ > 0`` in the scan of
        docs/random_mlp.md §3) is checked numerically by this quadrature on this grid, not proved.
        """
        beta = _positive_beta(beta)
        grid = checks.integer("grid", grid, 10)
        u = np.unique(np.concatenate([np.linspace(-1.0, 1.0, grid + 1), 1.0 - np.logspace(-1, -9, 31)]))
        lambda_bar_value = self.lambda_bar
        values = self._F(u, beta)
        values[-1] = -lambda_bar_value  # u = 1: the limit from the 1-D constants, so λ̄' = λ̄ exactly there
        best = int(np.argmin(values))
        value, u_star = float(values[best]), float(u[best])
        if 0 < best < u.size - 1:
            refined = optimize.minimize_scalar(
                lambda point: float(self._F(np.array([point]), beta)[0]), bounds=(u[best - 1], u[best + 1]),
                method="bounded", options={"xatol": 1e-12},
            )
            if refined.fun < value:
                value, u_star = float(refined.fun), float(refined.x)
        return DecayBound(-value, u_star, lambda_bar_value)

    def lambda_bar_prime(self, beta: float) -> float:
        """``λ̄'(β) = -inf_{[-1,1)} F``; see :meth:`energy_decay_bound`. ``< 0``: ``E[E_β]`` decays exponentially."""
        return self.energy_decay_bound(beta).lambda_bar_prime

    def constants(self, beta: float = 1.0) -> KernelConstants:
        """``K1, K1', λ₁, λ̄, λ̄'(β)`` and the conditions: coercive ``λ̄' < 0``; S1 ``λ̄ < 0`` and field not odd."""
        bound = self.energy_decay_bound(beta)
        odd = self.odd_field
        return KernelConstants(self.K1, self.K1_prime, self.lambda_1, self.lambda_bar, bound.lambda_bar_prime,
                               bound.u_star, bool(bound.lambda_bar_prime < 0), bool(self.lambda_bar < 0 and not odd), odd)
