"""Geometry of the unit sphere S^{d-1} on batched token tensors.

Every function acts on the last axis and broadcasts over leading ones: a state is a
tensor of shape ``(*batch, n, d)`` holding ``n`` tokens of dimension ``d`` for each of
the independent systems indexed by ``batch``.

Conventions (docs/theory/attention_ode.md §1):

* tangent projection ``P⊥_x v = v - <x, v> x``;
* retraction ``N(z) = z / |z|`` (what a post-norm Transformer layer does);
* RMSNorm with unit gain puts tokens on the sphere of radius ``sqrt(d)``; attention
  logits computed there equal unit-sphere logits with ``beta`` multiplied by the radius
  squared (see :func:`effective_beta`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tokenswarm.runtime.budget import check_memory

__all__ = [
    "inner",
    "project",
    "retract",
    "exp_map",
    "geodesic_distance",
    "sample_uniform",
    "sample_equiangular",
    "sample_orthonormal",
    "token_pair",
    "layer_norm_map",
    "rms_norm_map",
    "effective_beta",
    "span_basis",
]


def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Inner product over the last axis, kept as a length-1 axis: ``(..., d) -> (..., 1)``."""
    return (x * y).sum(dim=-1, keepdim=True)


def project(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Tangent projection ``P⊥_x v = v - <x, v> x`` for unit ``x``; shapes ``(..., d)``.

    Off the sphere this is the extension used by the integrators: the sphere is then an
    invariant set of ``dx/dt = P⊥_x F(x)``, since ``d|x|²/dt = 2<x, F>(1 - |x|²)``.
    """
    return v - inner(x, v) * x


def retract(z: torch.Tensor) -> torch.Tensor:
    """Metric projection onto the sphere, ``z / |z|``; shapes ``(..., d)``."""
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)


def exp_map(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Riemannian exponential ``cos|v| x + sin|v| v/|v|`` for unit ``x`` and tangent ``v``."""
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    # sin(θ)/θ written through sinc keeps the θ -> 0 limit exact.
    return torch.cos(norm) * x + torch.sinc(norm / math.pi) * v


def geodesic_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Great-circle distance ``arccos <x, y>`` (computed by atan2 for accuracy); ``(..., d) -> (...)``."""
    cross = torch.linalg.vector_norm(x - inner(x, y) * y, dim=-1)
    return torch.atan2(cross, (x * y).sum(-1))


def _as_batch(batch: int | Sequence[int]) -> tuple[int, ...]:
    return (batch,) if isinstance(batch, int) else tuple(batch)


def _check_size(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_sample_memory(elements: int, dtype: torch.dtype, what: str, device) -> None:
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_memory(elements * itemsize, what, device)


def sample_uniform(
    n: int,
    d: int,
    batch: int | Sequence[int] = (),
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """I.i.d. tokens uniform on S^{d-1} (normalised Gaussians); returns ``(*batch, n, d)``."""
    _check_size("n", n, 1)
    _check_size("d", d, 1)
    systems = math.prod(_as_batch(batch))
    _check_sample_memory(2 * systems * n * d, dtype, f"{systems} x {n} uniform tokens in dimension {d}", device)
    z = torch.randn(*_as_batch(batch), n, d, generator=generator, dtype=dtype, device=device)
    return retract(z)


def _random_rotation(
    batch: tuple[int, ...], d: int, generator, dtype, device
) -> torch.Tensor:
    """Haar-distributed orthogonal ``(*batch, d, d)`` (QR of a Gaussian with sign fix)."""
    _check_sample_memory(3 * math.prod(batch) * d * d, dtype, f"{math.prod(batch)} random rotations of dimension {d}", device)
    g = torch.randn(*batch, d, d, generator=generator, dtype=dtype, device=device)
    q, r = torch.linalg.qr(g)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    return q * signs.unsqueeze(-2)


def sample_equiangular(
    n: int,
    d: int,
    rho0: float,
    batch: int | Sequence[int] = (),
    *,
    rotate: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` unit tokens with ``<x_i, x_j> = rho0`` for all ``i != j``; returns ``(*batch, n, d)``.

    The tokens are the rows of ``G^{1/2}``, ``G = (1 - rho0) I + rho0 11ᵀ``, written in
    closed form ``sqrt(1 - rho0)(I - 11ᵀ/n) + sqrt(1 + (n - 1) rho0) 11ᵀ/n`` and padded with
    zeros to dimension ``d`` (this needs ``d >= n``, or ``rho0 = 1``). ``rotate=True``
    applies an independent Haar rotation to each system.
    """
    _check_size("n", n, 1)
    _check_size("d", d, 1)
    if not 0.0 <= rho0 <= 1.0:
        raise ValueError(f"rho0 must lie in [0, 1], got {rho0!r}")
    if d < n and rho0 < 1.0:
        raise ValueError(f"an equiangular start with rho0={rho0} < 1 needs d >= n, got d={d}, n={n}")
    systems = math.prod(_as_batch(batch))
    _check_sample_memory(
        4 * n * n + (2 * systems + 1) * n * d + (3 * systems * d * d if rotate else 0), dtype,
        f"an equiangular start of {n} tokens in dimension {d} ({systems} systems)", device,
    )
    eye = torch.eye(n, dtype=dtype, device=device)
    mean = torch.full((n, n), 1.0 / n, dtype=dtype, device=device)
    root = math.sqrt(1.0 - rho0) * (eye - mean) + math.sqrt(1.0 + (n - 1) * rho0) * mean
    x = torch.zeros(n, d, dtype=dtype, device=device)
    if d >= n:
        x[:, :n] = root
    else:  # rho0 == 1: every token is the same point
        x[:, 0] = 1.0
    batch = _as_batch(batch)
    x = x.expand(*batch, n, d).clone()
    if rotate:
        x = x @ _random_rotation(batch, d, generator, dtype, device).mT
    return x


def sample_orthonormal(
    n: int,
    d: int,
    batch: int | Sequence[int] = (),
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n <= d`` random orthonormal tokens (Haar frame), ``(*batch, n, d)``: the equiangular start at 0."""
    _check_size("n", n, 1)
    if d < n:
        raise ValueError(f"orthonormal tokens need d >= n, got d={d}, n={n}")
    return _random_rotation(_as_batch(batch), d, generator, dtype, device)[..., :n, :]


def token_pair(
    rho: float,
    d: int,
    batch: int | Sequence[int] = (),
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Two unit tokens ``e_1`` and ``rho e_1 + sqrt(1 - rho²) e_2`` with ``<x_1, x_2> = rho``; ``(*batch, 2, d)``."""
    _check_size("d", d, 2)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [-1, 1], got {rho!r}")
    x = torch.zeros(*_as_batch(batch), 2, d, dtype=dtype, device=device)
    x[..., 0, 0] = 1.0
    x[..., 1, 0], x[..., 1, 1] = rho, math.sqrt(1.0 - rho**2)
    return x


def layer_norm_map(z: torch.Tensor, *, radius: float | None = None, eps: float = 0.0) -> torch.Tensor:
    """LayerNorm without affine parameters: centre, then scale to norm ``radius``.

    With the default ``radius = sqrt(d)`` (and ``eps = 0``) this is exactly
    ``torch.nn.functional.layer_norm`` without weights: the image is the sphere of radius
    ``sqrt(d)`` inside the hyperplane orthogonal to ``1``.
    """
    d = z.shape[-1]
    radius = math.sqrt(d) if radius is None else radius
    centred = z - z.mean(dim=-1, keepdim=True)
    return radius * centred / torch.sqrt((centred**2).sum(-1, keepdim=True) + d * eps)


def rms_norm_map(z: torch.Tensor, *, radius: float | None = None, eps: float = 0.0) -> torch.Tensor:
    """RMSNorm with constant gain: ``radius * z / |z|`` (``radius = sqrt(d)`` is unit gain)."""
    d = z.shape[-1]
    radius = math.sqrt(d) if radius is None else radius
    return radius * z / torch.sqrt((z**2).sum(-1, keepdim=True) + d * eps)


def effective_beta(logit_scale: float, radius: float, qk_scale: float = 1.0) -> float:
    """Unit-sphere inverse temperature of attention computed on tokens of norm ``radius``.

    Logits ``s <W_Q x̃_i, W_K x̃_j>`` on ``x̃ = r x`` with ``W_QᵀW_K = c I`` equal
    ``beta <x_i, x_j>`` with ``beta = s r² c`` (docs/theory/attention_ode.md §1.4). Example: RMSNorm radius
    ``sqrt(d)``, ``s = 1/sqrt(d)``, ``c = 1`` gives ``beta = sqrt(d)``.
    """
    return logit_scale * radius**2 * qk_scale


def span_basis(x: torch.Tensor, gram_schmidt_limit: int = 16) -> torch.Tensor:
    """Orthonormal columns ``(*batch, d, r)`` spanning the tokens ``x`` ``(*batch, n, d)``, ``r = min(n, d)``.

    Few tokens: modified Gram–Schmidt, twice (batched small QR is slow); a direction that
    vanishes (coincident tokens) yields a zero column, harmless here because every ``y_i``
    then has no component along it. Many tokens: Householder QR.
    """
    n, d = x.shape[-2], x.shape[-1]
    if n > gram_schmidt_limit or n > d:
        return torch.linalg.qr(x.mT).Q
    tiny = torch.finfo(x.dtype).tiny ** 0.5
    columns: list[torch.Tensor] = []
    for i in range(n):
        v = x[..., i, :]
        for _ in range(2):
            for u in columns:
                v = v - (v * u).sum(-1, keepdim=True) * u
        columns.append(v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(tiny))
    return torch.stack(columns, dim=-1)
