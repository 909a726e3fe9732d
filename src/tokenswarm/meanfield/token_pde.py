"""The "master PDE" on the token axis (docs/theory/master_pde.md §2-§6; docs/master_pde.md §1).

State ``u(s, t) ∈ R^d`` over token positions ``s = 0..n-1`` (a grid of spacing ``ds = 1``) and
depth ``t`` (one Transformer layer = ``dt`` of depth, default 1). The working template
(docs/theory/master_pde.md §2, **ours, not the papers'**: the equation of 2408.09523 is not available) is::

    ∂_t u = α Attn(u) + R_θ(u) + D ∂_ss u        (+ stabilisers: identity/residual, LayerNorm projection)

    Attn(u)(s) = W_O concat_h Σ_{s'} softmax_{s'}(<W_Q^h u(s) + b_Q^h, W_K^h u(s')> / sqrt(k)) W_V^h u(s') + b_O
    R_θ(u)(s)  = W_2 gelu(W_1 u(s) + b_1) + b_2                     (token-wise MLP; or linear W u + b)
    ∂_ss       = the discrete Neumann Laplacian (reflecting ends, zero flux through the boundary)

``qk="identity"`` replaces the learned logits by the theory's kernel ``β_h <P u(s), P u(s')>/sqrt(d)``
(Q = K = I, one inverse temperature per head, ``P`` the affine-free LayerNorm projection of the
attention input, so tokens have norm ``sqrt(d)`` and the unit-sphere ``β_eff = β sqrt(d)``;
``P`` = identity when ``norm="none"``) and ``value="identity"`` takes ``W_V = W_O = I``
(heads averaged), the form of 2312.10794 §1.1.

Discretisation (explicit, Lie–Trotter; docs/theory/attention_ode.md §1.5): one layer = ``substeps`` steps of size
``h = dt / substeps``, each step the composition of three stages

1. attention   ``u <- N_1(u + h α Attn(n_1(u)))``;
2. reaction    ``u <- u + h R_θ(n_2(u))``;
3. diffusion   ``u <- N_2(E_h u)``, ``E_h`` = explicit Euler steps ``u + τ L u`` of total depth ``h``,
   sub-cycled so that each has ``τ = D h' / ds² <= 1/2`` (see below);

(the stabiliser ``N_2`` closes the reaction–diffusion pair, so a post-norm state stays normalised,
and the attention of a layer is computed on the layer's input, as in a Transformer block)

where the stabilisers are switchable: ``placement="pre"`` uses ``n_i`` = the normalisation and
``N_i`` = identity (pre-LN Transformer), ``placement="post"`` the reverse (post-LN, BERT);
``norm="projection"`` is LayerNorm without affine (mean 0, norm ``sqrt(d)``), ``"affine"``
LayerNorm with a fitted gain and bias, ``"none"`` no normalisation. ``residual=False`` drops the
identity of the attention and reaction stages (``u <- h F(n(u))``; docs/theory/master_pde.md §3 (b)); the
diffusion stage is the PDE's own operator and keeps its identity.

Stability: ``L`` has spectrum in ``[-4, 0]`` (1-D, Neumann; eigenvalues ``-4 sin²(πk/(2n))``), so
``u <- u + τ L u`` is non-expansive (and decreases the Dirichlet energy) for every ``n`` iff
``τ <= 1/2``. ``stability="error"`` raises :class:`StabilityError` when ``D h / ds² > 1/2``;
``"substep"`` (default) sub-cycles the diffusion stage into ``ceil(2 τ)`` equal steps instead
(the other stages are unaffected). ``tests/test_token_pde.py`` measures blow-up for ``τ > 1/2``.

Parameters can be shared by all layers (``depth_dependent=False``: an autonomous PDE, the
"master PDE") or one set per layer (a PDE with depth-dependent coefficients, like a
Transformer's per-layer weights). :func:`fit_token_pde` estimates them from per-layer hidden
states by gradient descent (torch autograd) on the one-layer prediction error.

Shapes: states ``(B, n, d)``, masks ``(B, n)`` bool (``True`` = real token; padded tokens are
excluded from attention keys, from the Laplacian's links and from every loss, and are held at 0),
attention ``(B, H, n, n)``, row-stochastic over the valid keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tokenswarm import checks
from tokenswarm.fields.attention import attention_weights

__all__ = [
    "MAX_STABLE_TAU",
    "StabilityError",
    "TokenPDEConfig",
    "TokenPDE",
    "PDETrajectory",
    "FitReport",
    "neumann_laplacian",
    "laplacian_matrix",
    "dirichlet_energy",
    "diffusion_step",
    "diffusion_substeps",
    "layer_norm_projection",
    "fit_token_pde",
    "one_step_errors",
]

#: Largest stable explicit diffusion step ``τ = D dt / ds²`` for the 1-D Neumann Laplacian.
MAX_STABLE_TAU = 0.5

Norm = Literal["none", "projection", "affine"]
Placement = Literal["pre", "post"]
Stability = Literal["error", "substep"]
QKForm = Literal["identity", "learned"]
ValueForm = Literal["identity", "learned"]
ReactionForm = Literal["none", "linear", "mlp"]


class StabilityError(ValueError):
    """The explicit diffusion step exceeds the stability bound ``τ <= 1/2``."""


# --------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------


def _link_weights(mask: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor | None:
    """``(B, n-1, 1)`` weights of the links ``s -- s+1`` (1 where both ends are real tokens)."""
    if mask is None:
        return None
    links = mask[..., 1:] & mask[..., :-1]
    return links.to(like.dtype).unsqueeze(-1)


def neumann_laplacian(u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Discrete Laplacian along the token axis with reflecting (Neumann) ends, ``ds = 1``.

    ``(L u)_s = (u_{s+1} - u_s) - (u_s - u_{s-1})`` with zero flux through both ends (and
    through any link touching a padded token when ``mask`` is given). It is symmetric
    negative semi-definite with spectrum in ``[-4, 0]`` and ``Σ_s (L u)_s = 0`` exactly (the
    token sum is conserved): the fluxes telescope.

    Args:
        u: ``(*batch, n, d)``.
        mask: ``(*batch, n)`` bool, or ``None`` for all tokens real.
    """
    if u.shape[-2] < 2:
        return torch.zeros_like(u)
    flux = u[..., 1:, :] - u[..., :-1, :]  # (..., n-1, d): flux on link s -- s+1
    weights = _link_weights(mask, u.shape[-2], u)
    if weights is not None:
        flux = flux * weights
    zero = torch.zeros_like(u[..., :1, :])
    return torch.cat([flux, zero], dim=-2) - torch.cat([zero, flux], dim=-2)


def laplacian_matrix(n: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """The ``n × n`` matrix of :func:`neumann_laplacian` (tridiagonal ``1, -2, 1``, corners ``-1``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    eye = torch.eye(n, dtype=dtype, device=device)
    return neumann_laplacian(eye.unsqueeze(-1)).squeeze(-1).T.contiguous()


def dirichlet_energy(u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``½ Σ_s |u_{s+1} - u_s|²`` over real links: ``-½ <u, L u>``. Shape ``(*batch,)``."""
    flux = u[..., 1:, :] - u[..., :-1, :]
    weights = _link_weights(mask, u.shape[-2], u)
    if weights is not None:
        flux = flux * weights
    return 0.5 * (flux**2).sum(dim=(-2, -1))


def diffusion_substeps(tau: float) -> int:
    """Smallest number ``k`` of equal explicit steps with ``τ / k <= 1/2``."""
    tau = checks.number("diffusion step tau", tau)
    return max(1, math.ceil(tau / MAX_STABLE_TAU - 1e-12))


def diffusion_step(
    u: torch.Tensor,
    tau: float | torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    stability: Stability = "error",
) -> torch.Tensor:
    """Explicit Euler step ``u + τ L u`` of ``∂_t u = D ∂_ss u`` with ``τ = D dt / ds²``.

    Args:
        tau: the grid-unit step; a scalar (float or 0-d tensor, differentiable).
        stability: ``"error"`` raises :class:`StabilityError` when ``τ > 1/2``; ``"substep"``
            takes ``ceil(2τ)`` steps of ``τ / k`` instead; ``"none"`` is not offered on
            purpose (tests call ``u + τ * neumann_laplacian(u)`` directly to show blow-up).
    """
    value = float(tau.detach()) if isinstance(tau, torch.Tensor) else float(tau)
    k = diffusion_substeps(value)
    if k > 1 and stability == "error":
        raise StabilityError(
            f"explicit diffusion step tau = D*dt/ds^2 = {value:.4g} exceeds the stability bound "
            f"{MAX_STABLE_TAU} of the Neumann Laplacian (spectrum [-4, 0]); lower D or dt, raise "
            "substeps, or use stability='substep'"
        )
    if stability not in ("error", "substep"):
        raise ValueError(f"stability must be 'error' or 'substep', got {stability!r}")
    for _ in range(k):
        u = u + (tau / k) * neumann_laplacian(u, mask)
    return u


def layer_norm_projection(z: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """LayerNorm without affine: ``sqrt(d) (z - mean z) / |z - mean z|`` per token.

    With ``eps = 0`` every token has mean 0 and norm exactly ``sqrt(d)``; ``eps > 0`` is
    torch's ``layer_norm`` (variance + eps) and keeps padded zero tokens at 0.
    """
    return F.layer_norm(z, z.shape[-1:], eps=eps) if eps > 0 else _exact_projection(z)


def _exact_projection(z: torch.Tensor) -> torch.Tensor:
    d = z.shape[-1]
    centred = z - z.mean(dim=-1, keepdim=True)
    return math.sqrt(d) * centred / centred.norm(dim=-1, keepdim=True)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPDEConfig:
    """Structure of the master PDE (which terms exist, their form and the scheme).

    Attributes:
        dim: ``d``, state dimension.
        layers: number of layers ``L`` (units of depth ``dt``) the solver advances.
        heads: attention heads ``H``.
        head_dim: ``k`` per head for learned ``W_Q, W_K, W_V`` (default ``dim // heads``).
        qk: ``"learned"`` (``W_Q, b_Q, W_K``) or ``"identity"`` (``β_h <u, u'>/sqrt(d)``).
        value: ``"learned"`` (``W_V, W_O, b_O``) or ``"identity"`` (heads averaged, ``V = I``).
        reaction: ``"mlp"`` (``W_2 gelu(W_1 u + b_1) + b_2``), ``"linear"`` or ``"none"``.
        hidden: MLP width (default ``4 dim``).
        attention, diffusion: switch the two non-local terms on or off.
        residual: keep the identity of the attention and reaction stages.
        norm: ``"projection"``, ``"affine"`` (fitted gain and bias) or ``"none"``.
        placement: ``"pre"`` (normalise the stage's input) or ``"post"`` (its output).
        norm_eps: LayerNorm epsilon (variance + eps) inside the model.
        dt: depth per layer; substeps: explicit steps per layer (``h = dt / substeps``).
        stability: ``"substep"`` (sub-cycle diffusion) or ``"error"`` when ``D h > 1/2``.
        depth_dependent: one parameter set per layer (``True``) or shared by all.
        causal: attend only to ``s' <= s``.
        init_diffusion, init_alpha, init_beta: initial ``D``, ``α``, ``β``.
    """

    dim: int
    layers: int = 1
    heads: int = 1
    head_dim: int | None = None
    qk: QKForm = "learned"
    value: ValueForm = "learned"
    reaction: ReactionForm = "mlp"
    hidden: int | None = None
    attention: bool = True
    diffusion: bool = True
    residual: bool = True
    norm: Norm = "projection"
    placement: Placement = "pre"
    norm_eps: float = 1e-5
    dt: float = 1.0
    substeps: int = 1
    stability: Stability = "substep"
    depth_dependent: bool = True
    causal: bool = False
    init_diffusion: float = 0.05
    init_alpha: float = 1.0
    init_beta: float = 1.0

    def __post_init__(self):
        for name, minimum in (("dim", 1), ("layers", 1), ("heads", 1), ("substeps", 1)):
            checks.integer(f"TokenPDEConfig.{name}", getattr(self, name), minimum, strict=True)
        choices = {"qk": ("identity", "learned"), "value": ("identity", "learned"),
                   "reaction": ("none", "linear", "mlp"), "norm": ("none", "projection", "affine"),
                   "placement": ("pre", "post"), "stability": ("error", "substep")}
        for name, allowed in choices.items():
            checks.choice(f"TokenPDEConfig.{name}", getattr(self, name), allowed)
        if self.head_dim is not None and self.head_dim < 1:
            raise ValueError(f"TokenPDEConfig.head_dim must be >= 1, got {self.head_dim}")
        if self.hidden is not None and self.hidden < 1:
            raise ValueError(f"TokenPDEConfig.hidden must be >= 1, got {self.hidden}")
        checks.number("TokenPDEConfig.dt", self.dt, positive=True)
        if self.init_diffusion <= 0:
            raise ValueError(f"TokenPDEConfig.init_diffusion must be > 0 (D = softplus(raw)), got {self.init_diffusion}")

    @property
    def k(self) -> int:
        return self.head_dim if self.head_dim is not None else max(1, self.dim // self.heads)

    @property
    def width(self) -> int:
        return self.hidden if self.hidden is not None else 4 * self.dim

    @property
    def parameter_sets(self) -> int:
        return self.layers if self.depth_dependent else 1


@dataclass
class PDETrajectory:
    """Output of :meth:`TokenPDE.forward`.

    Attributes:
        states: ``layers + 1`` tensors ``(B, n, d)``, the input first.
        attention: ``layers`` tensors ``(B, H, n, n)``: the maps of each layer's first
            (sub)step, i.e. computed on the layer's input (empty if attention is off).
    """

    states: list[torch.Tensor]
    attention: list[torch.Tensor] = field(default_factory=list)

    @property
    def final(self) -> torch.Tensor:
        return self.states[-1]


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class TokenPDE(nn.Module):
    """Explicit Lie–Trotter solver of the master PDE with fittable coefficients (module docs)."""

    def __init__(self, config: TokenPDEConfig, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.config = c = config
        P, d, H, k = c.parameter_sets, c.dim, c.heads, c.k
        options = dict(dtype=dtype, device=device)

        def normal(*shape, std):
            return nn.Parameter(torch.randn(*shape, generator=generator, **options) * std)

        def constant(*shape, value):
            return nn.Parameter(torch.full(shape, float(value), **options))

        self.raw_diffusion = constant(P, value=_inverse_softplus(c.init_diffusion))
        self.alpha = constant(P, value=c.init_alpha)
        if c.qk == "identity":
            self.beta = constant(P, H, value=c.init_beta)
        else:
            self.w_query = normal(P, H, k, d, std=1 / math.sqrt(d))
            self.b_query = constant(P, H, k, value=0.0)
            self.w_key = normal(P, H, k, d, std=1 / math.sqrt(d))
        if c.value == "learned":
            self.w_value = normal(P, H, k, d, std=1 / math.sqrt(d))
            self.w_out = normal(P, d, H * k, std=0.1 / math.sqrt(H * k))
            self.b_out = constant(P, d, value=0.0)
        if c.reaction == "linear":
            self.w_reaction = normal(P, d, d, std=0.01 / math.sqrt(d))
            self.b_reaction = constant(P, d, value=0.0)
        elif c.reaction == "mlp":
            m = c.width
            self.w1 = normal(P, m, d, std=1 / math.sqrt(d))
            self.b1 = constant(P, m, value=0.0)
            self.w2 = normal(P, d, m, std=0.1 / math.sqrt(m))
            self.b2 = constant(P, d, value=0.0)
        if c.norm == "affine":
            self.gain = constant(P, 2, d, value=1.0)
            self.bias = constant(P, 2, d, value=0.0)

    # ---- coefficients ------------------------------------------------------------------
    @property
    def diffusion_coefficient(self) -> torch.Tensor:
        """``D`` per parameter set, ``(P,)``, in grid units (``ds = 1``)."""
        return F.softplus(self.raw_diffusion)

    def _index(self, layer: int) -> int:
        if not 0 <= layer < self.config.layers:
            raise IndexError(f"layer must be in [0, {self.config.layers}), got {layer}")
        return layer if self.config.depth_dependent else 0

    # ---- terms -------------------------------------------------------------------------
    def _normalise(self, u: torch.Tensor, p: int, which: int) -> torch.Tensor:
        c = self.config
        if c.norm == "none":
            return u
        z = F.layer_norm(u, (c.dim,), eps=c.norm_eps)
        if c.norm == "affine":
            z = z * self.gain[p, which] + self.bias[p, which]
        return z

    def attention_maps(self, u: torch.Tensor, layer: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, H, n, n)`` attention of ``layer`` on state ``u`` (pre-norm applied if ``placement="pre"``)."""
        p = self._index(layer)
        z = self._normalise(u, p, 0) if self.config.placement == "pre" else u
        return self._maps(u, z, p, mask)

    def _maps(self, u: torch.Tensor, z: torch.Tensor, p: int, mask: torch.Tensor | None) -> torch.Tensor:
        """Maps from the stage input ``u`` (identity kernel) or its normalised form ``z`` (learned)."""
        c = self.config
        if c.qk == "identity":
            # the theory's kernel on the affine-free projection (tokens of norm sqrt(d), mean 0):
            # logits beta <P u_i, P u_j> / sqrt(d), i.e. unit-sphere beta_eff = beta sqrt(d)
            # (docs/theory/attention_ode.md §1.4)
            y = u if c.norm == "none" else F.layer_norm(u, (c.dim,), eps=c.norm_eps)
            logits = (y @ y.mT).unsqueeze(1) * (self.beta[p][:, None, None] / math.sqrt(c.dim))
        else:
            q = torch.einsum("hkd,bnd->bhnk", self.w_query[p], z) + self.b_query[p][:, None, :]
            key = torch.einsum("hkd,bnd->bhnk", self.w_key[p], z)
            logits = q @ key.mT / math.sqrt(c.k)
        # (B, H, n, n) logits; the mask (B, n) of real tokens broadcasts over heads and queries
        key_mask = None if mask is None else mask[:, None, :]
        return attention_weights(logits, causal=c.causal, key_mask=key_mask)

    def _attend(self, u: torch.Tensor, z: torch.Tensor, p: int, mask: torch.Tensor | None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        weights = self._maps(u, z, p, mask)
        if c.value == "identity":
            out = (weights @ z.unsqueeze(1)).mean(dim=1)
        else:
            v = torch.einsum("hkd,bnd->bhnk", self.w_value[p], z)
            heads = (weights @ v).transpose(1, 2).flatten(-2)  # (B, n, H k)
            out = heads @ self.w_out[p].T + self.b_out[p]
        return self.alpha[p] * out, weights

    def reaction_term(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        """``R_θ(z)`` of ``layer``, token-wise, ``(B, n, d)``."""
        return self._react(z, self._index(layer))

    def _react(self, z: torch.Tensor, p: int) -> torch.Tensor:
        c = self.config
        if c.reaction == "linear":
            return z @ self.w_reaction[p].T + self.b_reaction[p]
        return F.gelu(z @ self.w1[p].T + self.b1[p]) @ self.w2[p].T + self.b2[p]

    # ---- scheme ------------------------------------------------------------------------
    def diffusion_tau(self, layer: int) -> float:
        """Grid-unit diffusion step ``τ = D h / ds²`` of one (sub)step of ``layer``."""
        c = self.config
        return float(self.diffusion_coefficient[self._index(layer)].detach()) * c.dt / c.substeps

    def check_stability(self) -> None:
        """Raise :class:`StabilityError` if ``stability="error"`` and some layer has ``τ > 1/2``."""
        c = self.config
        if not (c.diffusion and c.stability == "error"):
            return
        for layer in range(c.layers):
            tau = self.diffusion_tau(layer)
            if tau > MAX_STABLE_TAU:
                raise StabilityError(
                    f"layer {layer}: diffusion step tau = D*dt/(substeps*ds^2) = {tau:.4g} > "
                    f"{MAX_STABLE_TAU}; raise substeps to >= {diffusion_substeps(tau * c.substeps)} "
                    "or use stability='substep'"
                )

    def step(self, u: torch.Tensor, layer: int, mask: torch.Tensor | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Advance ``u`` by one layer (``substeps`` Lie–Trotter steps); returns (state, first attention)."""
        c = self.config
        p = self._index(layer)
        h = c.dt / c.substeps
        keep = None if mask is None else mask.to(u.dtype).unsqueeze(-1)
        first_maps = None
        for _ in range(c.substeps):
            if c.attention:
                z = self._normalise(u, p, 0) if c.placement == "pre" else u
                update, maps = self._attend(u, z, p, mask)
                first_maps = maps if first_maps is None else first_maps
                u = u + h * update if c.residual else h * update
                if c.placement == "post":
                    u = self._normalise(u, p, 0)
                if keep is not None:
                    u = u * keep
            if c.reaction != "none" or c.diffusion:
                if c.reaction != "none":
                    z = self._normalise(u, p, 1) if c.placement == "pre" else u
                    update = self._react(z, p)
                    u = u + h * update if c.residual else h * update
                if c.diffusion:
                    u = diffusion_step(u, self.diffusion_coefficient[p] * h, mask, stability=c.stability)
                if c.placement == "post":
                    u = self._normalise(u, p, 1)
                if keep is not None:
                    u = u * keep
        if not bool(torch.isfinite(u).all()):
            raise FloatingPointError(f"token PDE: non-finite state after layer {layer}")
        return u, first_maps

    def forward(self, u0: torch.Tensor, mask: torch.Tensor | None = None, *, start: int = 0,
                layers: int | None = None) -> PDETrajectory:
        """Integrate from ``u0`` (the input of layer ``start``) through ``layers`` layers (default: to the end)."""
        c = self.config
        if u0.ndim != 3 or u0.shape[-1] != c.dim:
            raise ValueError(f"u0 must have shape (B, n, {c.dim}), got {tuple(u0.shape)}")
        count = c.layers - start if layers is None else layers
        if count < 0 or start + count > c.layers:
            raise ValueError(f"layers [{start}, {start + count}) outside [0, {c.layers})")
        self.check_stability()
        u = u0 if mask is None else u0 * mask.to(u0.dtype).unsqueeze(-1)
        states, maps = [u], []
        for layer in range(start, start + count):
            u, attention = self.step(u, layer, mask)
            states.append(u)
            if attention is not None:
                maps.append(attention)
        return PDETrajectory(states, maps)

    def describe(self) -> dict:
        """Scalar coefficients per parameter set: ``D``, ``α``, ``β`` (identity qk), norms of the rest."""
        out = {"diffusion": self.diffusion_coefficient.detach().cpu().tolist(),
               "alpha": self.alpha.detach().cpu().tolist()}
        if self.config.qk == "identity":
            out["beta"] = self.beta.detach().cpu().tolist()
        for name in ("w_query", "w_key", "w_value", "w_out", "w_reaction", "w2"):
            if hasattr(self, name):
                out[f"{name}_norm"] = getattr(self, name).detach().flatten(1).norm(dim=1).cpu().tolist()
        return out


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


@dataclass
class FitReport:
    """What :func:`fit_token_pde` did.

    Attributes:
        losses: training loss per optimiser step (mean over layers of the relative error).
        train_relative_error: per layer, ``|pred - u^{l+1}|² / |u^l - u^{l+1}|²`` on the fitting
            data after the fit (< 1: better than "the layer does nothing").
        steps, seconds: optimiser steps and wall time.
        mode: ``"one_step"`` (teacher forcing) or ``"rollout"``.
    """

    losses: list[float]
    train_relative_error: list[float]
    steps: int
    seconds: float
    mode: str


def _as_stack(states: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    stack = list(states)
    if len(stack) < 2:
        raise ValueError(f"need hidden states of at least 2 depths (input and one layer), got {len(stack)}")
    shape = stack[0].shape
    if any(s.shape != shape for s in stack) or len(shape) != 3:
        raise ValueError(f"hidden states must all have shape (B, n, d); got {[tuple(s.shape) for s in stack]}")
    return stack


def _token_sse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    error = ((pred - target) ** 2).sum(-1)
    if weights is not None:
        error = error * weights
    return error.sum()


def one_step_errors(pde: TokenPDE, states: Sequence[torch.Tensor], mask: torch.Tensor | None = None,
                    *, rollout: bool = False) -> dict[str, list[float]]:
    """Per-layer errors of the PDE against hidden states ``u^0..u^L`` (no gradients).

    Returns ``relative`` (``|pred - u^{l+1}|² / |u^l - u^{l+1}|²``: the fraction of the layer's
    update left unexplained), ``normalised`` (``|pred - u^{l+1}|² / |u^{l+1} - mean|²``) and
    ``cosine`` (mean over real tokens of ``cos(pred_s, u^{l+1}_s)``). With ``rollout`` the
    prediction is the free PDE trajectory from ``u^0`` instead of one step from ``u^l``.
    """
    stack = _as_stack(states)
    weights = None if mask is None else mask.to(stack[0].dtype)
    count = weights.sum() if weights is not None else torch.tensor(stack[0].shape[0] * stack[0].shape[1])
    out = {"relative": [], "normalised": [], "cosine": []}
    with torch.no_grad():
        free = pde(stack[0], mask).states if rollout else None
        for layer in range(len(stack) - 1):
            pred = free[layer + 1] if rollout else pde.step(stack[layer], layer, mask)[0]
            target = stack[layer + 1]
            sse = _token_sse(pred, target, weights)
            identity = _token_sse(stack[layer], target, weights)
            centred = target - (target * (weights.unsqueeze(-1) if weights is not None else 1)).sum((0, 1)) / count
            spread = _token_sse(centred, torch.zeros_like(centred), weights)
            cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-12)
            cos = (cos * weights).sum() / count if weights is not None else cos.mean()
            out["relative"].append(float(sse / identity.clamp_min(1e-300)))
            out["normalised"].append(float(sse / spread.clamp_min(1e-300)))
            out["cosine"].append(float(cos))
    return out


def fit_token_pde(
    pde: TokenPDE,
    states: Sequence[torch.Tensor],
    mask: torch.Tensor | None = None,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    optimizer: Literal["adam", "lbfgs"] = "adam",
    mode: Literal["one_step", "rollout"] = "one_step",
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    tolerance: float = 0.0,
) -> FitReport:
    """Fit the PDE's coefficients to hidden states ``u^0..u^L`` (each ``(B, n, d)``) in place.

    Loss: the mean over layers of ``|pred_l - u^{l+1}|² / |u^l - u^{l+1}|²`` (summed over real
    tokens), with ``pred_l = step_l(u^l)`` (``mode="one_step"``, teacher forcing: every layer's
    coefficients see that layer's true input) or ``pred_l`` = the free trajectory from ``u^0``
    (``"rollout"``, backpropagation through depth). Normalising by the identity predictor's
    error gives every layer the same weight whatever the size of its update.

    Args:
        steps: optimiser iterations (Adam steps or L-BFGS outer iterations).
        lr: learning rate; optimizer: ``"adam"`` or ``"lbfgs"`` (full batch, strong Wolfe).
        weight_decay: decoupled (``AdamW``) decay of the weight matrices ``w_*`` only (not ``D``,
            ``α``, ``β``, biases or norm gains), for over-parametrised reactions.
        batch_size: examples per Adam step (default all); ``generator`` draws the batches.
        tolerance: stop early when the loss falls below this.
    """
    import time

    stack = _as_stack(states)
    if len(stack) - 1 > pde.config.layers:
        raise ValueError(f"{len(stack) - 1} layers of hidden states but the PDE has {pde.config.layers} layers")
    if mode not in ("one_step", "rollout"):
        raise ValueError(f"mode must be 'one_step' or 'rollout', got {mode!r}")
    stack = [s.detach() for s in stack]
    total = stack[0].shape[0]
    weights_all = None if mask is None else mask.to(stack[0].dtype)
    identity_all = [
        _token_sse(stack[l], stack[l + 1], weights_all).clamp_min(1e-300) / total for l in range(len(stack) - 1)
    ]

    def loss_of(index: torch.Tensor | None) -> torch.Tensor:
        sub = stack if index is None else [s[index] for s in stack]
        sub_mask = None if mask is None else (mask if index is None else mask[index])
        weights = None if sub_mask is None else sub_mask.to(sub[0].dtype)
        count = sub[0].shape[0]
        terms = []
        if mode == "rollout":
            free = pde(sub[0], sub_mask, layers=len(sub) - 1).states
        for layer in range(len(sub) - 1):
            pred = free[layer + 1] if mode == "rollout" else pde.step(sub[layer], layer, sub_mask)[0]
            terms.append(_token_sse(pred, sub[layer + 1], weights) / count / identity_all[layer])
        return torch.stack(terms).mean()

    params = [p for p in pde.parameters() if p.requires_grad]
    losses: list[float] = []
    start = time.perf_counter()
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-14, tolerance_change=1e-18, history_size=50)

        def closure():
            opt.zero_grad()
            value = loss_of(None)
            value.backward()
            return value

        for _ in range(steps):
            value = float(opt.step(closure).detach())
            losses.append(value)
            if not math.isfinite(value):
                raise FloatingPointError("token PDE fit: non-finite loss (lower lr)")
            if value < tolerance or (len(losses) > 1 and losses[-2] == value):
                break  # converged, or L-BFGS can make no further progress
    elif optimizer == "adam":
        if weight_decay:
            # decay the weight matrices only: not D, alpha, beta, biases or LayerNorm gains, whose
            # natural scale is not 0 (decaying raw D would pull D towards softplus(0) = 0.69)
            decayed = [p for name, p in pde.named_parameters() if p.requires_grad and name.startswith("w")]
            others = [p for name, p in pde.named_parameters() if p.requires_grad and not name.startswith("w")]
            opt = torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                                     {"params": others, "weight_decay": 0.0}], lr=lr)
        else:
            opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            index = None
            if batch_size is not None and batch_size < total:
                index = torch.randperm(total, generator=generator)[:batch_size].to(stack[0].device)
            opt.zero_grad()
            value = loss_of(index)
            value.backward()
            opt.step()
            losses.append(float(value.detach()))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError("token PDE fit: non-finite loss (lower lr)")
            if losses[-1] < tolerance:
                break
    else:
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    seconds = time.perf_counter() - start
    errors = one_step_errors(pde, stack, mask, rollout=(mode == "rollout"))
    return FitReport(losses, errors["relative"], len(losses), seconds, mode)


def with_layers(config: TokenPDEConfig, layers: int) -> TokenPDEConfig:
    """``config`` with another layer count (convenience for experiments)."""
    return replace(config, layers=layers)
