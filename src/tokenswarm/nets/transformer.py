"""A family of ordinary (trainable) Transformers, and their blocks as fields.

(docs/theory/attention_ode.md §1.4; docs/theory/master_pde.md §3-§4.)

:class:`Transformer` is a stack of ``depth`` blocks acting on tokens ``(*batch, n, dim)``. A block
is two sublayers, self-attention then a token-wise MLP, each wrapped by the residual connection
and the normalisation chosen in :class:`TransformerConfig`. With ``F`` a sublayer, ``N`` its
normalisation (``N_out`` a second one with its own gain), ``h = residual_scale`` and
``R(x, y) = x + h y`` (``residual=True``) or ``R(x, y) = h y`` (``residual=False``):

* ``placement="pre"``:  ``x <- R(x, F(N(x)))``                (pre-LN, GPT-2 / ViT);
* ``placement="post"``: ``x <- N(R(x, F(x)))``                (post-LN, the original Transformer);
* ``placement="peri"``: ``x <- R(x, N_out(F(N(x))))``         (peri-LN: the sublayer's input *and*
  output are normalised before the residual add, as in Kim et al. 2025, "Peri-LN"; docs/theory/attention_ode.md §2.7
  "peri-LN also normalises the attention output"). This is our definition; the residual stream
  itself is never normalised inside the stack.

``norm`` is ``"layer"`` (``nn.LayerNorm``), ``"rms"`` (RMSNorm, learned gain, no centring) or
``"none"`` (identity: the three placements then coincide). ``final_norm`` applies one more norm to
the last block's output for ``pre``/``peri`` (the usual final LayerNorm; ``post`` already ends with
one). ``mlp_ratio = 0`` removes the MLP (attention-only blocks).

**Initialisation** (:meth:`Transformer.reset_parameters`) is PyTorch's for
``nn.TransformerEncoderLayer``: the stacked ``(3 dim, dim)`` query/key/value matrix Xavier-uniform
(entries ``U(±sqrt(6 / (4 dim)))``), their biases 0; the attention output projection
``U(±1/sqrt(dim))`` with bias 0; MLP layers ``U(±1/sqrt(fan_in))`` for weights and biases; norm
gains 1, biases 0. Pass a ``torch.Generator`` for a draw that does not touch the global RNG.

**Blocks as fields.** A pre-norm residual block is one explicit Euler step of size ``h`` of the
field ``F(N(x))`` with the attention and MLP parts applied one after the other (Lie–Trotter
splitting, no renormalisation between them, docs/theory/master_pde.md §4 "structural facts"):
``x <- x + h A(N(x))``, then ``x <- x + h M(N(x))``. :func:`block_fields` returns this as a
:class:`tokenswarm.fields.LieTrotter` of :class:`PreNormField` parts built from the core
engine's :class:`~tokenswarm.fields.Attention` (heads ``Q_h, K_h`` = the head's rows of the
query/key projections, ``beta = 1/sqrt(head_dim)``, ``V_h = W_O[:, head] W_V[head, :]``: the
output projection folded into the values) and :class:`~tokenswarm.fields.MLP`, evaluated on
``N(x)`` (``tokenswarm.sphere.layer_norm_map`` / ``rms_norm_map``: tokens of norm ``sqrt(dim)``,
i.e. unit-sphere ``beta_eff = dim / sqrt(head_dim)`` for ``W_QᵀW_K = I``, docs/theory/attention_ode.md §1.4). Biases
and norm affines are folded exactly by lifting tokens to ``(N(x), 1)``.
:func:`lie_trotter_euler_step` takes the step. ``tests/test_transformer_family.py`` holds the
block equal to that step and to ``nn.TransformerEncoderLayer`` loaded with the same weights.

Shapes: ``x`` is ``(*batch, n, dim)``; attention probabilities are ``(*batch, heads, n, n)``,
rows summing to 1 (causal: zero above the diagonal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from tokenswarm import checks
from tokenswarm.fields.attention import Attention, attention_weights
from tokenswarm.fields.base import Field, LieTrotter, SumField
from tokenswarm.fields.mlp import ACTIVATIONS, MLP
from tokenswarm.sphere import layer_norm_map, rms_norm_map

__all__ = [
    "NORMS",
    "PLACEMENTS",
    "TransformerConfig",
    "TransformerOutput",
    "Transformer",
    "TransformerBlock",
    "SelfAttention",
    "FeedForward",
    "RMSNorm",
    "PreNormField",
    "ConstantField",
    "block_fields",
    "lie_trotter_euler_step",
    "to_torch_encoder_layer",
]

Norm = Literal["layer", "rms", "none"]
Placement = Literal["pre", "post", "peri"]
NORMS: tuple[str, ...] = ("layer", "rms", "none")
PLACEMENTS: tuple[str, ...] = ("pre", "post", "peri")


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of a :class:`Transformer` (validated on construction).

    Attributes:
        dim: token dimension ``d``.
        depth: number of blocks ``L`` (>= 1).
        heads: attention heads ``H``; must divide ``dim`` (head size ``dim / H``).
        mlp_ratio: MLP hidden width / ``dim`` (rounded); ``0`` removes the MLP sublayer.
        causal: token ``i`` attends to ``j <= i`` only.
        norm: ``"layer"``, ``"rms"`` or ``"none"``.
        placement: ``"pre"``, ``"post"`` or ``"peri"`` (module docstring).
        residual: add the sublayer output to its input (``False``: replace it).
        residual_scale: ``h``, the factor on every sublayer output (the Euler step size).
        dropout: dropout probability on attention weights, the MLP hidden layer and each sublayer
            output (as ``nn.TransformerEncoderLayer``); 0 by default.
        activation: MLP non-linearity, a key of :data:`tokenswarm.fields.ACTIVATIONS`.
        bias: biases in the linear layers and the LayerNorm.
        final_norm: normalise the last block's output (``pre``/``peri`` with a norm only).
        eps: normalisation epsilon.
    """

    dim: int
    depth: int
    heads: int = 1
    mlp_ratio: float = 4.0
    causal: bool = False
    norm: Norm = "layer"
    placement: Placement = "pre"
    residual: bool = True
    residual_scale: float = 1.0
    dropout: float = 0.0
    activation: str = "gelu"
    bias: bool = True
    final_norm: bool = True
    eps: float = 1e-5

    def __post_init__(self):
        for name in ("dim", "depth", "heads"):
            checks.integer(f"TransformerConfig.{name}", getattr(self, name), 1, strict=True)
        if self.dim % self.heads:
            raise ValueError(f"TransformerConfig.heads must divide dim; got heads={self.heads}, dim={self.dim}")
        if not _finite_number(self.mlp_ratio) or self.mlp_ratio < 0:
            raise ValueError(f"TransformerConfig.mlp_ratio must be a finite number >= 0, got {self.mlp_ratio!r}")
        if self.mlp_ratio > 0 and self.mlp_width < 1:
            raise ValueError(f"TransformerConfig.mlp_ratio={self.mlp_ratio} gives an MLP of width 0 at dim={self.dim}; "
                             "use mlp_ratio=0 for no MLP")
        checks.choice("TransformerConfig.norm", self.norm, NORMS)
        checks.choice("TransformerConfig.placement", self.placement, PLACEMENTS)
        for name in ("causal", "residual", "bias", "final_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TransformerConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if not _finite_number(self.residual_scale):
            raise ValueError(f"TransformerConfig.residual_scale must be a finite number, got {self.residual_scale!r}")
        if not _finite_number(self.dropout) or not 0 <= self.dropout < 1:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}")
        checks.choice("TransformerConfig.activation", self.activation, sorted(ACTIVATIONS))
        if not _finite_number(self.eps) or self.eps <= 0:
            raise ValueError(f"TransformerConfig.eps must be a finite number > 0, got {self.eps!r}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def mlp_width(self) -> int:
        """Hidden width of the MLP (0: no MLP)."""
        return int(round(self.mlp_ratio * self.dim))

    @property
    def has_final_norm(self) -> bool:
        return self.final_norm and self.norm != "none" and self.placement != "post"


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TransformerOutput(NamedTuple):
    """What :meth:`Transformer.forward` returns.

    Attributes:
        output: ``(*batch, n, dim)``, the last block's output (after the final norm, if any).
        hidden: ``None`` unless requested; else ``depth + 1`` tensors ``(*batch, n, dim)``: the
            input, then the residual stream after each block (before the final norm).
        attention: ``None`` unless requested; else ``depth`` tensors ``(*batch, heads, n, n)`` of
            attention probabilities (rows sum to 1).
    """

    output: torch.Tensor
    hidden: list[torch.Tensor] | None = None
    attention: list[torch.Tensor] | None = None


class RMSNorm(nn.Module):
    """``z / sqrt(mean z² + eps) * weight`` (no centring, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _make_norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "layer":
        return nn.LayerNorm(config.dim, eps=config.eps, bias=config.bias)
    if config.norm == "rms":
        return RMSNorm(config.dim, eps=config.eps)
    return nn.Identity()


class SelfAttention(nn.Module):
    """Multi-head softmax self-attention with logits ``<q_i, k_j> / sqrt(head_dim)``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        dim, bias = config.dim, config.bias
        self.heads, self.head_dim, self.causal = config.heads, config.head_dim, config.causal
        self.query = nn.Linear(dim, dim, bias=bias)
        self.key = nn.Linear(dim, dim, bias=bias)
        self.value = nn.Linear(dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)
        self.dropout = nn.Dropout(config.dropout)

    def _split(self, z: torch.Tensor) -> torch.Tensor:
        """``(*batch, n, dim) -> (*batch, heads, n, head_dim)``."""
        return z.unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the output ``(*batch, n, dim)`` and the probabilities ``(*batch, heads, n, n)``."""
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probabilities = attention_weights(logits, causal=self.causal)
        mixed = self.dropout(probabilities) @ v  # (*batch, heads, n, head_dim)
        return self.out(mixed.transpose(-3, -2).flatten(-2)), probabilities


class FeedForward(nn.Module):
    """Token-wise ``W_2 σ(W_1 x + b_1) + b_2``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.inner = nn.Linear(config.dim, config.mlp_width, bias=config.bias)
        self.outer = nn.Linear(config.mlp_width, config.dim, bias=config.bias)
        self.activation = config.activation
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.dropout(ACTIVATIONS[self.activation](self.inner(x))))


class TransformerBlock(nn.Module):
    """Attention sublayer then MLP sublayer, wrapped as :class:`TransformerConfig` says."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.attention = SelfAttention(config)
        self.mlp = FeedForward(config) if config.mlp_width else None
        # pre/peri: the norm on the sublayer input; post: the norm after the residual add
        self.attention_norm = _make_norm(config)
        self.mlp_norm = _make_norm(config) if self.mlp is not None else None
        if config.placement == "peri":
            self.attention_output_norm = _make_norm(config)
            self.mlp_output_norm = _make_norm(config) if self.mlp is not None else None
        else:
            self.attention_output_norm = self.mlp_output_norm = None
        self.dropout = nn.Dropout(config.dropout)

    def _combine(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        update = self.config.residual_scale * self.dropout(branch)
        return x + update if self.config.residual else update

    def _sublayer(self, x, function: Callable, norm: nn.Module, output_norm: nn.Module | None):
        if self.config.placement == "post":
            return norm(self._combine(x, function(x)))
        branch = function(norm(x))
        if output_norm is not None:
            branch = output_norm(branch)
        return self._combine(x, branch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(*batch, n, dim) ->`` (next tokens, attention probabilities ``(*batch, heads, n, n)``)."""
        probabilities = []

        def attend(z):
            out, p = self.attention(z)
            probabilities.append(p)
            return out

        x = self._sublayer(x, attend, self.attention_norm, self.attention_output_norm)
        if self.mlp is not None:
            x = self._sublayer(x, self.mlp, self.mlp_norm, self.mlp_output_norm)
        return x, probabilities[0]


class Transformer(nn.Module):
    """``depth`` :class:`TransformerBlock` s (and an optional final norm) on ``(*batch, n, dim)``.

    Args:
        config: the architecture.
        generator: random stream for :meth:`reset_parameters` (``None``: the global RNG).
    """

    def __init__(self, config: TransformerConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise ValueError(f"config must be a TransformerConfig, got {type(config).__name__}")
        self.config = config
        with torch.random.fork_rng(devices=[]):  # module construction draws; keep the global RNG as it was
            self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.depth))
        self.final_norm = _make_norm(config) if config.has_final_norm else nn.Identity()
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's ``nn.TransformerEncoderLayer`` initialisation (module docstring), block by block."""
        dim = self.config.dim
        for block in self.blocks:
            attention = block.attention
            bound = math.sqrt(6.0 / (dim + 3 * dim))  # Xavier-uniform on the stacked (3 dim, dim) in-projection
            for linear in (attention.query, attention.key, attention.value):
                nn.init.uniform_(linear.weight, -bound, bound, generator=generator)
            nn.init.uniform_(attention.out.weight, -1 / math.sqrt(dim), 1 / math.sqrt(dim), generator=generator)
            for linear in (attention.query, attention.key, attention.value, attention.out):
                if linear.bias is not None:
                    linear.bias.zero_()
            if block.mlp is not None:
                for linear in (block.mlp.inner, block.mlp.outer):
                    fan_in = linear.weight.shape[1]
                    nn.init.uniform_(linear.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
                    if linear.bias is not None:
                        nn.init.uniform_(linear.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
        for module in self.modules():
            if isinstance(module, (nn.LayerNorm, RMSNorm)):
                module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()

    def forward(self, x: torch.Tensor, *, return_hidden: bool = False,
                return_attention: bool = False) -> TransformerOutput:
        """Tokens ``(*batch, n, dim)`` through every block; see :class:`TransformerOutput`."""
        if x.ndim < 2 or x.shape[-1] != self.config.dim:
            raise ValueError(f"x must have shape (*batch, n, {self.config.dim}), got {tuple(x.shape)}")
        hidden = [x] if return_hidden else None
        attention = [] if return_attention else None
        for block in self.blocks:
            x, probabilities = block(x)
            if return_hidden:
                hidden.append(x)
            if return_attention:
                attention.append(probabilities)
        return TransformerOutput(self.final_norm(x), hidden, attention)


# ----------------------------------------------------------------------------------------
# Blocks as fields (continuous view) and as torch's reference layer
# ----------------------------------------------------------------------------------------
class PreNormField(Field):
    """``x -> inner(N(x))``: a field evaluated on normalised tokens (a pre-norm sublayer's branch).

    ``lift`` appends a constant coordinate 1 to ``N(x)`` (``(*batch, n, d + 1)``), so that affine
    maps (biases, norm offsets) become linear maps the core fields can hold.
    """

    def __init__(self, inner: Field, norm: Callable[[torch.Tensor], torch.Tensor], *, lift: bool = False):
        self.inner, self.norm, self.lift = inner, norm, lift

    def output(self, t, x):
        z = self.norm(x)
        if self.lift:
            z = torch.cat([z, torch.ones_like(z[..., :1])], dim=-1)
        return self.inner.output(t, z)

    def __repr__(self) -> str:
        return f"PreNorm({self.inner!r})"


class ConstantField(Field):
    """``output(t, x) = c`` for every token (an output bias); ``c`` has shape ``(e,)``, the output
    ``(*batch, n, e)`` whatever the state's last dimension (it may be lifted)."""

    def __init__(self, constant: torch.Tensor):
        self.constant = constant

    def output(self, t, x):
        return self.constant.expand(*x.shape[:-1], self.constant.shape[-1])

    def __repr__(self) -> str:
        return "Constant"


def _norm_map(norm: nn.Module) -> tuple[Callable, torch.Tensor | None, torch.Tensor | None]:
    """(affine-free map, gain, offset) of a norm module."""
    if isinstance(norm, nn.LayerNorm):
        return (lambda z: layer_norm_map(z, eps=norm.eps)), norm.weight, norm.bias
    if isinstance(norm, RMSNorm):
        return (lambda z: rms_norm_map(z, eps=norm.eps)), norm.weight, None
    return (lambda z: z), None, None


def _lifted(weight: torch.Tensor, bias: torch.Tensor | None, gain, offset) -> torch.Tensor:
    """``[W diag(g) | W c + b]``: the affine map ``z -> W (g ⊙ z + c) + b`` on ``(z, 1)``."""
    matrix = weight if gain is None else weight * gain
    column = torch.zeros_like(weight[:, 0])
    if offset is not None:
        column = column + weight @ offset
    if bias is not None:
        column = column + bias
    return torch.cat([matrix, column[:, None]], dim=1)


@torch.no_grad()
def block_fields(block: TransformerBlock) -> LieTrotter:
    """The pre-norm residual ``block`` as fields: ``LieTrotter([attention, mlp], renormalize=False)``.

    Each part is a :class:`PreNormField` on lifted tokens ``(N(x), 1)``: attention is
    :class:`~tokenswarm.fields.Attention` (SA, ``beta = 1/sqrt(head_dim)``, per head
    ``Q_h = [W_Q,h diag(g) | W_Q,h c + b_Q,h]`` and likewise ``K_h``, and
    ``V_h = W_O[:, h] [W_V,h diag(g) | W_V,h c + b_V,h]``, ``g, c`` the norm's gain and offset) plus
    the constant output bias ``b_O`` (exact because the weights are row-stochastic); the MLP is
    :class:`~tokenswarm.fields.MLP` plus the constant ``b_2``. One
    :func:`lie_trotter_euler_step` with ``h = residual_scale`` is then the block. Weights are
    copied (detached): the fields describe the block as it is now.

    Raises:
        ValueError: the block is not pre-norm with residual connections.
    """
    config = block.config
    if config.placement != "pre" or not config.residual:
        raise ValueError(f"block_fields needs placement='pre' and residual=True, got placement="
                         f"{config.placement!r}, residual={config.residual}")
    attention = block.attention
    norm, gain, offset = _norm_map(block.attention_norm)
    H, k = config.heads, config.head_dim
    Q = _lifted(attention.query.weight, attention.query.bias, gain, offset).reshape(H, k, config.dim + 1)
    K = _lifted(attention.key.weight, attention.key.bias, gain, offset).reshape(H, k, config.dim + 1)
    values = _lifted(attention.value.weight, attention.value.bias, gain, offset).reshape(H, k, config.dim + 1)
    out = attention.out.weight.reshape(config.dim, H, k).permute(1, 0, 2)  # (H, dim, k): W_O[:, head]
    V = out @ values  # (H, dim, dim + 1)
    attention_field: Field = Attention(1.0 / math.sqrt(k), normalization="sa", Q=Q.clone(), K=K.clone(),
                                       V=V.clone(), causal=config.causal, backend="dense")
    if attention.out.bias is not None:
        attention_field = SumField([attention_field, ConstantField(attention.out.bias.detach().clone())])
    parts: list[Field] = [PreNormField(attention_field, norm, lift=True)]
    if block.mlp is not None:
        norm, gain, offset = _norm_map(block.mlp_norm)
        inner = _lifted(block.mlp.inner.weight, block.mlp.inner.bias, gain, offset)
        mlp_field: Field = MLP(block.mlp.outer.weight.detach().clone(), inner.clone(), activation=config.activation)
        if block.mlp.outer.bias is not None:
            mlp_field = SumField([mlp_field, ConstantField(block.mlp.outer.bias.detach().clone())])
        parts.append(PreNormField(mlp_field, norm, lift=True))
    return LieTrotter(parts, renormalize=False)


def lie_trotter_euler_step(field: Field, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
    """One explicit Euler step ``x <- x + h F(x)`` of each part in turn, without retraction.

    (The sphere solvers of :mod:`tokenswarm.solve` step ``P⊥ F`` and retract; a pre-norm block
    acts on the unnormalised residual stream, so it is the raw ``output`` that is stepped.)
    """
    parts = field.parts if isinstance(field, LieTrotter) else [field]
    for part in parts:
        x = x + h * part.output(t, x)
    return x


@torch.no_grad()
def to_torch_encoder_layer(block: TransformerBlock) -> nn.TransformerEncoderLayer:
    """An ``nn.TransformerEncoderLayer(batch_first=True, dropout=0)`` with the block's weights.

    Needs ``norm="layer"``, ``placement`` ``"pre"`` (``norm_first=True``) or ``"post"``, residual
    connections with ``residual_scale = 1``, an MLP and a ``relu`` or ``gelu`` activation. For a
    causal block pass ``is_causal=True`` and a square subsequent mask to the layer.
    """
    config = block.config
    if (config.norm != "layer" or config.placement == "peri" or not config.residual or config.residual_scale != 1
            or block.mlp is None or config.activation not in ("relu", "gelu")):
        raise ValueError("to_torch_encoder_layer needs norm='layer', placement 'pre' or 'post', residual=True, "
                         f"residual_scale=1, mlp_ratio > 0 and activation relu/gelu; got {config}")
    layer = nn.TransformerEncoderLayer(
        config.dim, config.heads, dim_feedforward=config.mlp_width, dropout=0.0, activation=config.activation,
        layer_norm_eps=config.eps, batch_first=True, norm_first=config.placement == "pre", bias=config.bias,
    ).to(dtype=block.attention.query.weight.dtype, device=block.attention.query.weight.device)
    attention = block.attention
    layer.self_attn.in_proj_weight.copy_(torch.cat([attention.query.weight, attention.key.weight,
                                                    attention.value.weight]))
    layer.self_attn.out_proj.weight.copy_(attention.out.weight)
    layer.linear1.weight.copy_(block.mlp.inner.weight)
    layer.linear2.weight.copy_(block.mlp.outer.weight)
    layer.norm1.weight.copy_(block.attention_norm.weight)
    layer.norm2.weight.copy_(block.mlp_norm.weight)
    if config.bias:
        layer.self_attn.in_proj_bias.copy_(torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]))
        layer.self_attn.out_proj.bias.copy_(attention.out.bias)
        layer.linear1.bias.copy_(block.mlp.inner.bias)
        layer.linear2.bias.copy_(block.mlp.outer.bias)
        layer.norm1.bias.copy_(block.attention_norm.bias)
        layer.norm2.bias.copy_(block.mlp_norm.bias)
    return layer
