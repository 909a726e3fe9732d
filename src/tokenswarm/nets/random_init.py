"""Deep Transformers at random initialisation, with randomness shared by the tokens.

Each module maps tokens ``(*batch, n, d)`` on the sphere through ``layers`` residual layers
with post-normalisation; the weights of a layer are drawn fresh for every layer and every
system of the batch (independent across runs and layers, shared across tokens), from the
``generator`` passed to :meth:`forward`.

* :class:`ValueNoiseTransformer` (2601.21942): ``x <- N(x + sqrt(T/L) V_k y(x))``, ``V_k``
  i.i.d. entries N(0, sigma2); ``y`` = SA attention output with ``QᵀK = beta I``.
* :class:`HybridTransformer` (2601.21942 Prop. 1): ``x <- N(x + (h + eps xi_k sqrt(h)) y(x))``
  with USA attention and a scalar ``xi_k`` per layer (Gaussian or Rademacher).
* :class:`RandomMLPTransformer` (2604.26898): attention step ``T/L`` then MLP step
  ``sqrt(T/L) G_k(x)``, ``G(y) = m^{-1/2} W σ(d^{-1/2} U y + b_U) + b_W`` with fresh Gaussian
  ``U, W, b_U, b_W`` per layer, each sub-step renormalised.

``deterministic=True`` replaces the random weights by their mean (zero value noise / zero
MLP), the noise-suppressed variant.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from tokenswarm import checks
from tokenswarm.fields.attention import Attention
from tokenswarm.fields.mlp import ACTIVATIONS
from tokenswarm.runtime.budget import check_steps
from tokenswarm.sphere import retract

__all__ = ["ValueNoiseTransformer", "HybridTransformer", "RandomMLPTransformer"]


class ValueNoiseTransformer(nn.Module):
    def __init__(self, layers: int, *, beta: float = 1.0, sigma2: float | None = None, t_max: float = 1.0,
                 residual_exponent: float = 0.5, deterministic: bool = False):
        super().__init__()
        check_steps(layers, f"a network of {layers} layers")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.layers, self.sigma2, self.t_max = layers, sigma2, t_max
        self.residual_exponent, self.deterministic = residual_exponent, deterministic
        self.attention = Attention(beta)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                increments: torch.Tensor | None = None) -> torch.Tensor:
        """``increments``: optional ``(layers, *batch, d, d)`` standard-normal draws times
        ``sqrt(h)`` (Brownian increments of unit variance) to couple with an SDE run."""
        d = x.shape[-1]
        sigma = math.sqrt(self.sigma2 if self.sigma2 is not None else 1.0 / d)
        h = self.t_max / self.layers
        scale = h ** self.residual_exponent
        if self.deterministic:
            return x  # E[V_k] = 0: the residual branch vanishes
        for k in range(self.layers):
            if increments is not None:
                V = increments[k] / math.sqrt(h)
            else:
                V = torch.randn(*x.shape[:-2], d, d, generator=generator, dtype=x.dtype, device=x.device)
            x = retract(x + scale * sigma * (self.attention.output(0.0, x) @ V.mT))
        return x


class HybridTransformer(nn.Module):
    def __init__(self, layers: int, *, beta: float = 1.0, eps: float = 1.0, t_max: float = 1.0,
                 law: Literal["gaussian", "rademacher"] = "gaussian"):
        super().__init__()
        check_steps(layers, f"a network of {layers} layers")
        self.layers, self.eps, self.t_max, self.law = layers, eps, t_max, law
        self.attention = Attention(beta, normalization="usa")

    def step(self, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """One layer with the given ``xi`` ``(*batch, 1, 1)``: lets callers couple networks of different depths."""
        h = self.t_max / self.layers
        return retract(x + (h + self.eps * xi * math.sqrt(h)) * self.attention.output(0.0, x))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for _ in range(self.layers):
            xi = torch.randn(*x.shape[:-2], 1, 1, generator=generator, dtype=x.dtype, device=x.device)
            if self.law == "rademacher":
                xi = torch.sign(xi)
            x = self.step(x, xi)
        return x


class RandomMLPTransformer(nn.Module):
    def __init__(self, layers: int, *, width: int = 256, activation: str = "relu", beta: float = 1.0,
                 attention_sign: float = 1.0, sigma_u: float = 0.0, sigma_w: float = 0.0, t_max: float = 1.0,
                 deterministic: bool = False):
        super().__init__()
        check_steps(layers, f"a network of {layers} layers")
        checks.choice("activation", activation, sorted(ACTIVATIONS))
        self.layers, self.width, self.activation = layers, width, activation
        self.attention_sign, self.sigma_u, self.sigma_w = attention_sign, sigma_u, sigma_w
        self.t_max, self.deterministic = t_max, deterministic
        self.attention = Attention(beta, V=float(attention_sign)) if attention_sign else None

    def mlp(self, x: torch.Tensor, generator) -> torch.Tensor:
        batch, d, m = x.shape[:-2], x.shape[-1], self.width
        options = dict(generator=generator, dtype=x.dtype, device=x.device)
        U = torch.randn(*batch, m, d, **options)
        W = torch.randn(*batch, d, m, **options)
        b_u = self.sigma_u * torch.randn(*batch, 1, m, **options)
        b_w = self.sigma_w * torch.randn(*batch, 1, d, **options)
        hidden = ACTIVATIONS[self.activation](x @ U.mT / math.sqrt(d) + b_u)
        return hidden @ W.mT / math.sqrt(m) + b_w

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = self.t_max / self.layers
        for _ in range(self.layers):
            if self.attention is not None:
                x = retract(x + h * self.attention.velocity(0.0, x))
            if not self.deterministic:
                x = retract(x + math.sqrt(h) * self.mlp(x, generator))
        return x
