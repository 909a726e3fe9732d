"""Common-noise models: randomness shared by all tokens of a system.

(docs/theory/common_noise.md §1; docs/theory/random_mlp.md §1-§3.)

A noise model turns a Gaussian increment ``dW`` (variance ``dt`` per entry, one per system,
shared by its tokens) into a displacement of every token:

* :class:`ValueNoise` (2601.21942): a ``d x d`` matrix Brownian motion acting on the
  attention output, ``dW y_i``; entry variance ``sigma2 * dt``.
* :class:`ScalarNoise` (the hybrid model of 2601.21942 Prop. 1): one scalar Brownian motion
  per system multiplying the (USA) attention output, ``eps y_i dB``.
* :class:`FieldNoise` (2604.26898): the random-MLP Gaussian field in finite-rank form
  ``W_t(x) = Σ_{r<M} φ_r(x) B^r_t + sigma_w B^0_t`` with ``φ_r(x) = σ(U_r·x/sqrt(d) + b_r)/sqrt(M)``
  and ``U_r, b_r`` drawn once; its kernel tends to ``κ(<x, y>)`` as ``M`` grows, and the
  discrete layer ``x <- N(x + W σ(Ux/sqrt(d) + b)/sqrt(M) sqrt(h) + b_W sqrt(h))`` with
  fresh ``W, b_W`` is exactly an Euler–Maruyama step of it, so the network and the SDE can
  share one realisation.

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tokenswarm.fields.attention import Attention
from tokenswarm.fields.mlp import ACTIVATIONS
from tokenswarm.sphere import span_basis

__all__ = ["CommonNoise", "ValueNoise", "ScalarNoise", "FieldNoise"]


class CommonNoise:
    """Interface: ``shape`` of one increment per system and ``apply(t, x, dW)``."""

    def shape(self, n: int, d: int) -> tuple[int, ...]:
        raise NotImplementedError

    def apply(self, t: float, x: torch.Tensor, dW: torch.Tensor) -> torch.Tensor:
        """Displacement ``(*batch, n, d)`` for state ``x`` and increment ``dW`` of shape
        ``(*batch, *shape(n, d))``."""
        raise NotImplementedError

    def sample(self, batch: Sequence[int], n: int, d: int, dt: float, *, generator=None, dtype=torch.float64,
               device=None) -> torch.Tensor:
        """One Gaussian increment per system, variance ``dt`` per entry."""
        z = torch.randn(*batch, *self.shape(n, d), generator=generator, dtype=dtype, device=device)
        return math.sqrt(dt) * z


@dataclass
class ValueNoise(CommonNoise):
    """``dW_t y_i`` with ``W`` a ``d x d`` Brownian matrix of entry variance ``sigma2 t``.

    ``y_i`` is the attention output (SA, ``QᵀK = beta I`` by default).

    ``low_rank=True`` draws only ``dW U``, ``U`` an orthonormal basis ``(d, r)`` of the span
    of the current tokens (``r = min(n, d)``): every ``y_i`` lies in that span, and ``dW U``
    has i.i.d. N(0, dt) entries whatever ``U`` (rotation invariance), so the scheme has the
    same law at cost ``O(n d r)`` instead of ``O(n d²)`` per step (not the same path as a
    full-matrix draw).
    """

    beta: float = 1.0
    sigma2: float = 1.0
    normalization: str = "sa"
    low_rank: bool = False

    def __post_init__(self):
        if not self.sigma2 > 0:
            raise ValueError(f"sigma2 must be > 0, got {self.sigma2!r}")
        self.attention = Attention(self.beta, normalization=self.normalization)

    def shape(self, n, d):
        return (d, min(n, d)) if self.low_rank else (d, d)

    def apply(self, t, x, dW):
        y = self.attention.output(t, x)
        if self.low_rank:
            y = y @ span_basis(x)  # coordinates of y_i in the span of the tokens
        return math.sqrt(self.sigma2) * (y @ dW.mT)


@dataclass
class ScalarNoise(CommonNoise):
    """``eps y_i dB`` with one scalar Brownian motion per system (hybrid model, USA by default)."""

    beta: float = 1.0
    eps: float = 1.0
    normalization: str = "usa"

    def __post_init__(self):
        self.attention = Attention(self.beta, normalization=self.normalization)

    def shape(self, n, d):
        return (1, 1)

    def apply(self, t, x, dW):
        return self.eps * dW * self.attention.output(t, x)


class FieldNoise(CommonNoise):
    """Finite-rank random-MLP field ``Σ_r φ_r(x) dB^r + sigma_w dB^0``, ``B^r`` in ``R^d``.

    ``U: (*batch, M, d)`` and ``b: (*batch, M)`` are the frozen first-layer weights (one draw
    per system), so ``φ_r(x) = σ(U_r·x/sqrt(d) + b_r)/sqrt(M)``.
    """

    def __init__(self, U: torch.Tensor, b: torch.Tensor | None, *, activation: str = "relu", sigma_w: float = 0.0):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.U, self.b, self.activation, self.sigma_w = U, b, activation, float(sigma_w)
        self.rank = U.shape[-2]

    @classmethod
    def draw(cls, batch: Sequence[int], d: int, rank: int, *, activation="relu", sigma_u=0.0, sigma_w=0.0,
             generator=None, dtype=torch.float64, device=None) -> FieldNoise:
        U = torch.randn(*batch, rank, d, generator=generator, dtype=dtype, device=device)
        b = sigma_u * torch.randn(*batch, rank, generator=generator, dtype=dtype, device=device)
        return cls(U, b, activation=activation, sigma_w=sigma_w)

    def shape(self, n, d):
        return (self.rank + 1, d)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``φ(x)``: ``(*batch, n, M)``."""
        pre = x @ self.U.mT / math.sqrt(x.shape[-1])
        if self.b is not None:
            pre = pre + self.b.unsqueeze(-2)
        return ACTIVATIONS[self.activation](pre) / math.sqrt(self.rank)

    def apply(self, t, x, dW):
        out = self.features(x) @ dW[..., : self.rank, :]
        if self.sigma_w:
            out = out + self.sigma_w * dW[..., self.rank : self.rank + 1, :]
        return out
