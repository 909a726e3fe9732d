"""A trainable deep Transformer in the form analysed by 2601.21942 (docs/theory/common_noise.md §1.1).

Tokens ``(*batch, B, n, p)`` (``B`` examples of ``n`` tokens with ``p`` input features) are
embedded to dimension ``d`` and pushed through ``L`` post-norm residual layers::

    x_0     = RMSNorm(E p_i + P_i)                                 (learned embedding E, positions P)
    x_{k+1} = RMSNorm(x_k + h^a Attn_k(x_k)),      h = 1/L, a = 1/2 (diffusion scaling)
    Attn_k(x)_i = Σ_j softmax_j(<Q_k x_i, K_k x_j> / sqrt(d)) V_k x_j      (one head, k = d)
    logits  = W mean_i(x_L,i) + b

``RMSNorm`` has no learnable gain (unit gain): tokens lie on the sphere of radius ``r = sqrt(d)``.
**beta conversion** (docs/theory/attention_ode.md §1.4, :func:`tokenswarm.sphere.effective_beta`): with ``x = r u``,
``|u| = 1``, the logits are ``(1/sqrt(d)) r² <Q u_i, K u_j> = sqrt(d) <Q u_i, K u_j>``, so a layer
is one step ``u <- N(u + h^a y(u))`` of :class:`tokenswarm.fields.Attention` with
``beta = sqrt(d)``, ``Q = Q_k, K = K_k, V = V_k`` on unit tokens (the post-norm step is scale
invariant, only beta converts). ``tests/test_noise_accuracy.py`` holds the two equal.

An optional token-wise MLP step ``x <- RMSNorm(x + h^a W_2 relu(W_1 x + c_1) + c_2)`` follows each
attention step (Lie–Trotter splitting, docs/theory/attention_ode.md §1.5); it is off by default (``mlp_width = 0``).

Every parameter carries the leading ``batch_shape`` so that many independent models (seeds ×
variants) train in one tensor program: their losses are summed, so each model receives exactly
its own gradient, and Adam (elementwise) then updates each exactly as if it were trained alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tokenswarm import checks
from tokenswarm.fields.attention import attention_weights

__all__ = ["TrainableTransformer", "ValueInit", "VALUE_INITS"]

ValueInit = Literal["random", "zero", "identity", "scaled", "noisy_identity"]
VALUE_INITS: tuple[str, ...] = ("random", "zero", "identity", "scaled", "noisy_identity")


class TrainableTransformer(nn.Module):
    """Deep single-head post-norm Transformer classifier with diffusion-scaled residuals.

    Parameters
    ----------
    in_features:
        ``p``, features per input token.
    tokens:
        ``n``, sequence length (one learned positional embedding per position).
    classes:
        number of output classes.
    d:
        token dimension (``Q, K, V`` are ``d × d``).
    layers:
        ``L``; the residual step is ``h^a`` with ``h = 1/L``.
    residual_exponent:
        ``a``; ``0.5`` is the diffusion scaling of 2601.21942, ``1`` the ODE scaling.
    mlp_width:
        hidden width of the optional token-wise MLP step (``0``: no MLP).
    batch_shape:
        leading shape of every parameter: independent models trained side by side.
    eps:
        RMSNorm epsilon (``RMSNorm(z) = z / sqrt(mean z² + eps)``).

    Call :meth:`initialise` before use; parameters are created uninitialised.
    """

    def __init__(self, in_features: int, tokens: int, classes: int, *, d: int = 32, layers: int = 32,
                 residual_exponent: float = 0.5, mlp_width: int = 0, batch_shape: Sequence[int] = (),
                 eps: float = 1e-10):
        super().__init__()
        for name, value, minimum in (("in_features", in_features, 1), ("tokens", tokens, 1),
                                     ("classes", classes, 2), ("d", d, 1), ("layers", layers, 1),
                                     ("mlp_width", mlp_width, 0)):
            checks.integer(name, value, minimum, strict=True)
        self.in_features, self.tokens, self.classes = in_features, tokens, classes
        self.d, self.layers, self.mlp_width = d, layers, mlp_width
        self.residual_exponent, self.eps = float(residual_exponent), float(eps)
        self.batch_shape = tuple(int(b) for b in batch_shape)

        def empty(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*self.batch_shape, *shape))

        self.embedding = empty(d, in_features)
        self.position = empty(tokens, d)
        self.query = empty(layers, d, d)
        self.key = empty(layers, d, d)
        self.value = empty(layers, d, d)
        if mlp_width:
            self.mlp_in = empty(layers, mlp_width, d)
            self.mlp_in_bias = empty(layers, mlp_width)
            self.mlp_out = empty(layers, d, mlp_width)
            self.mlp_out_bias = empty(layers, d)
        self.readout = empty(classes, d)
        self.readout_bias = empty(classes)

    # -- initialisation --------------------------------------------------------------
    @property
    def step(self) -> float:
        """Residual factor ``h^a`` with ``h = 1/L``."""
        return (1.0 / self.layers) ** self.residual_exponent

    @torch.no_grad()
    def initialise(self, generator: torch.Generator | None = None, *, value: ValueInit = "random",
                   sigma_v2: float | None = None, value_generator: torch.Generator | None = None) -> None:
        """Standard initialisation, with the value matrices set by ``value``.

        Everything except ``V`` is drawn from ``generator`` in a fixed order, so two models
        initialised with equal generators share embedding, positions, ``Q, K``, MLP and readout
        whatever ``value`` is. ``V`` uses ``value_generator`` (default: ``generator``, after
        the other draws):

        * ``"random"``: i.i.d. ``N(0, sigma_v2)``, ``sigma_v2 = 1/d`` by default (2601.21942);
        * ``"zero"``: the mean of that law, ``V = 0`` (noise suppressed: ``V_k -> E V_k``);
        * ``"scaled"``: ``N(0, sigma_v2 / L)``, the value noise that ``1/L`` (ODE) scaling
          leaves: ``h V = h^{1/2} (h^{1/2} V)`` is the diffusion-scaled layer with
          ``h^{1/2} V ~ N(0, h sigma_v2)``;
        * ``"identity"``: ``V = h^{1-a} I`` (``h^{1/2} I`` for ``a = 1/2``), so the layer is
          ``x <- N(x + h Attn_{V=I}(x))``, the Euler step of the deterministic model of
          2312.10794 (ODE scaling, horizon 1);
        * ``"noisy_identity"``: ``V = h^{1-a} I + G``, ``G`` i.i.d. ``N(0, sigma_v2)``: the
          deterministic model plus the value noise of 2601.21942, so the layer is
          ``x <- N(x + h Attn_{V=I}(x) + h^{1/2} Attn_{V=G}(x))`` (the drift of the deterministic
          flow plus the common matrix noise). ``sigma_v2 = 0`` gives ``"identity"`` exactly
          (bit for bit: the draw is made and multiplied by 0, and ``x + 0 = x``).

        Other laws: embedding ``N(0, 1/p)``, positions ``N(0, 1)`` (entries of the sum O(1),
        norm ~ sqrt(d) before the norm), ``Q, K ~ N(0, 1/d)`` (O(1) logits), MLP
        ``W_1 ~ N(0, 2/d)``, ``W_2 ~ N(0, 1/m)``, zero biases, readout ``N(0, 1/d)``.
        """
        if value not in VALUE_INITS:
            raise ValueError(f"value must be one of {VALUE_INITS}, got {value!r}")
        if sigma_v2 is not None:
            sigma_v2 = checks.number("sigma_v2", sigma_v2)
        d, p = self.d, self.in_features

        def normal(parameter: torch.Tensor, variance: float, gen) -> None:
            draw = torch.randn(parameter.shape, generator=gen, dtype=parameter.dtype, device=parameter.device)
            parameter.copy_(draw * math.sqrt(variance))

        normal(self.embedding, 1.0 / p, generator)
        normal(self.position, 1.0, generator)
        normal(self.query, 1.0 / d, generator)
        normal(self.key, 1.0 / d, generator)
        if self.mlp_width:
            normal(self.mlp_in, 2.0 / d, generator)
            normal(self.mlp_out, 1.0 / self.mlp_width, generator)
            self.mlp_in_bias.zero_()
            self.mlp_out_bias.zero_()
        normal(self.readout, 1.0 / d, generator)
        self.readout_bias.zero_()
        self.set_value(value, sigma_v2=sigma_v2,
                       generator=generator if value_generator is None else value_generator)

    @torch.no_grad()
    def set_value(self, value: ValueInit, *, sigma_v2: float | None = None,
                  generator: torch.Generator | None = None, index: tuple = ()) -> None:
        """(Re)initialise the value matrices ``V[index]`` (``index`` into ``batch_shape``)."""
        if value not in VALUE_INITS:
            raise ValueError(f"value must be one of {VALUE_INITS}, got {value!r}")
        target = self.value[index]
        variance = (1.0 / self.d) if sigma_v2 is None else sigma_v2
        if value == "noisy_identity":
            eye = torch.eye(self.d, dtype=target.dtype, device=target.device)
            mean = eye.expand(target.shape) * (1.0 / self.layers) ** (1.0 - self.residual_exponent)
            draw = torch.randn(target.shape, generator=generator, dtype=target.dtype, device=target.device)
            target.copy_(mean + draw * math.sqrt(variance))
        elif value in ("random", "scaled"):
            if value == "scaled":
                variance /= self.layers
            draw = torch.randn(target.shape, generator=generator, dtype=target.dtype, device=target.device)
            target.copy_(draw * math.sqrt(variance))
        elif value == "zero":
            target.zero_()
        else:
            eye = torch.eye(self.d, dtype=target.dtype, device=target.device)
            target.copy_(eye.expand(target.shape) * (1.0 / self.layers) ** (1.0 - self.residual_exponent))

    # -- forward ---------------------------------------------------------------------
    def norm(self, z: torch.Tensor) -> torch.Tensor:
        """RMSNorm without gain: the sphere of radius ``sqrt(d)``."""
        return F.rms_norm(z, (self.d,), eps=self.eps)

    def _project(self, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        """``x @ matrixᵀ`` for ``x (*batch, B, n, a)``, ``matrix (*batch, b, a)``.

        The examples and tokens axes are merged so that this is one batched matmul per model;
        broadcasting the weights over the examples axis instead would materialise a copy of
        every matrix per example (and reduce those copies again in the backward pass).
        """
        batch = torch.broadcast_shapes(x.shape[:-3], matrix.shape[:-2])
        flat = x.expand(*batch, *x.shape[-3:]).flatten(-3, -2)
        out = flat @ matrix.expand(*batch, *matrix.shape[-2:]).mT
        return out.unflatten(-2, x.shape[-3:-1])

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(*batch, B, n, p) -> (*batch, B, n, d)`` tokens on the radius-``sqrt(d)`` sphere."""
        embedded = self._project(inputs, self.embedding) + self.position.unsqueeze(-3)
        return self.norm(embedded)

    def _layer_weights(self) -> list[dict[str, torch.Tensor]]:
        """Per-layer weights, split once per forward pass.

        ``unbind`` has one backward node per parameter; indexing ``parameter[..., k, :, :]``
        per layer would allocate and fill a full-size zero gradient for every layer.
        """
        names = ["query", "key", "value"] + (["mlp_in", "mlp_in_bias", "mlp_out", "mlp_out_bias"]
                                             if self.mlp_width else [])
        axis = {name: (-2 if name.endswith("bias") else -3) for name in names}
        split = {name: getattr(self, name).unbind(axis[name]) for name in names}
        return [{name: split[name][k] for name in names} for k in range(self.layers)]

    def attention(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw attention output of one layer (before the residual factor), like ``x``."""
        # <Q x_i, K x_j> = x_iᵀ (QᵀK) x_j: one d × d product per model instead of projecting the
        # keys too (a quarter of the layer's cost), and (A x) Vᵀ = A (x Vᵀ).
        bilinear = weights["query"].mT @ weights["key"]
        logits = self._project(x, bilinear.mT) @ x.mT / math.sqrt(self.d)
        return self._project(attention_weights(logits) @ x, weights["value"])

    def mlp(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = torch.relu(self._project(x, weights["mlp_in"]) + weights["mlp_in_bias"][..., None, None, :])
        return self._project(hidden, weights["mlp_out"]) + weights["mlp_out_bias"][..., None, None, :]

    def layer(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Layer ``k`` alone (for checks; :meth:`features` splits the weights only once)."""
        return self._step(x, self._layer_weights()[k])

    def _step(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """Attention step, then the optional MLP step, each renormalised."""
        x = self.norm(x + self.step * self.attention(x, weights))
        if self.mlp_width:
            x = self.norm(x + self.step * self.mlp(x, weights))
        return x

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Final tokens ``(*batch, B, n, d)``."""
        x = self.embed(inputs)
        for weights in self._layer_weights():
            x = self._step(x, weights)
        return x

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class logits ``(*batch, B, classes)`` from inputs ``(*batch, B, n, p)``."""
        pooled = self.features(inputs).mean(dim=-2)
        return pooled @ self.readout.mT + self.readout_bias.unsqueeze(-2)
