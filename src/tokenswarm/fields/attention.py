"""Self-attention as a vector field on the sphere (docs/theory/attention_ode.md §2.1, eqs. 2.3-2.7).

For tokens ``x_1..x_n`` (rows of ``x``), one head ``h`` with matrices ``Q_h, K_h`` of shape
``(k, d)`` and ``V_h`` of shape ``(d, d)`` gives logits ``S_ij = beta <Q_h x_i, K_h x_j>`` and

* SA:  ``y_i = Σ_j softmax_j(S_ij) V_h x_j``          (row-stochastic weights),
* USA: ``y_i = (1/n) Σ_j exp(S_ij) V_h x_j``           (unnormalised, ``1/n`` always the full
  token count, also under a causal mask).

Heads add up, each with its own partition function; the velocity is ``P⊥_{x_i} y_i``.

:func:`attention_weights` is the one place where logits become weights (SA/USA, causal and key
masks); every softmax attention of the package calls it: the ``"dense"`` backend here, the
networks of :mod:`tokenswarm.nets` (learned ``Q, K, V`` and heads, dropout on the weights) and
the master PDE of :mod:`tokenswarm.meanfield.token_pde` (padded keys). They differ in how the
logits are formed and what the weights average, not in the weights.

Backends (all exact up to round-off, held equal by tests):

* ``"dense"``: the readable reference; materialises the ``n x n`` weights
  (:func:`attention_weights`).
* ``"chunked"``: the same maths over blocks of queries; memory linear in ``n``, any
  device and dtype.
* ``"fused"`` (default): PyTorch's flash-attention kernel with its log-sum-exp, so USA is
  recovered exactly as ``exp(lse_i - log n) * SA_i``; falls back to ``"chunked"`` where the
  kernel is unavailable (e.g. USA or float64 on CUDA).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Union

import torch
import torch.nn.functional as F

from tokenswarm import checks
from tokenswarm.fields.base import Field

__all__ = ["Attention", "attention_output", "attention_weights"]

Matrix = Union[None, float, torch.Tensor, Callable[[float], Union[torch.Tensor, float]]]
Normalization = Literal["sa", "usa"]
Backend = Literal["fused", "chunked", "dense"]

_CHUNK_ELEMENTS = 1 << 22  # logits held at once by the chunked backend (32 MiB in float64)


def _as_heads(m: torch.Tensor, name: str) -> torch.Tensor:
    """``(k, d)`` -> ``(1, k, d)``; ``(*batch, H, k, d)`` kept as is."""
    if m.ndim < 2:
        raise ValueError(f"{name} must be a matrix (k, d) or a stack (*batch, H, k, d); got shape {tuple(m.shape)}")
    return m.unsqueeze(0) if m.ndim == 2 else m


def attention_weights(
    logits: torch.Tensor,
    *,
    normalization: Normalization = "sa",
    causal: bool = False,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weights ``A_ij`` from logits ``S_ij`` of shape ``(*batch, n_query, n_key)``, same shape.

    * SA:  ``A_ij = softmax_j(S_ij)`` over the allowed keys (rows sum to 1);
    * USA: ``A_ij = exp(S_ij) / n`` with ``n = n_key`` the full key count, also under masks.

    ``causal`` forbids keys ``j > i``; ``key_mask`` (bool ``(*batch, n_key)``, ``True`` = a real
    key, broadcasting against the batch axes of ``logits``) forbids padded keys. A forbidden
    key gets weight 0.
    """
    n = logits.shape[-1]
    if key_mask is not None:
        logits = logits.masked_fill(~key_mask.unsqueeze(-2), -math.inf)
    if causal:
        logits = logits.masked_fill(_causal_mask(logits.shape[-2], n, logits.device), -math.inf)
    if normalization == "sa":
        return torch.softmax(logits, dim=-1)
    return torch.exp(logits - math.log(n))


def _dense(q, k, v, beta, normalization, causal):
    return attention_weights(beta * (q @ k.mT), normalization=normalization, causal=causal) @ v


def _causal_mask(rows: int, cols: int, device, offset: int = 0) -> torch.Tensor:
    """True where key j is in the future of query ``offset + i``."""
    i = torch.arange(offset, offset + rows, device=device).unsqueeze(-1)
    j = torch.arange(cols, device=device)
    return j > i


def _chunked(q, k, v, beta, normalization, causal):
    n_query, n = q.shape[-2], k.shape[-2]
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * math.prod(batch)))
    out = torch.empty(*batch, n_query, v.shape[-1], dtype=v.dtype, device=v.device)
    for start in range(0, n_query, rows):
        stop = min(start + rows, n_query)
        logits = beta * (q[..., start:stop, :] @ k.mT)
        if causal:
            logits = logits.masked_fill(_causal_mask(stop - start, n, q.device, start), -math.inf)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        block = torch.exp(logits - lse) @ v
        if normalization == "usa":
            block = block * torch.exp(lse - math.log(n))
        out[..., start:stop, :] = block
    return out


def _flash_cpu_available(q: torch.Tensor) -> bool:
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16)
        and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
    )


SMALL_KEYS = 32  # below this many keys the dense path is faster than a fused kernel call


def _fused(q, k, v, beta, normalization, causal):
    if k.shape[-2] <= SMALL_KEYS:
        return _dense(q, k, v, beta, normalization, causal)
    if causal and beta == 0:
        # SDPA kernels apply the scale after the causal mask: 0 * (-inf) = NaN rows.
        return _chunked(q, k, v, beta, normalization, causal)
    if not _flash_cpu_available(q):
        if q.device.type == "cuda" and normalization == "sa" and q.dtype != torch.float64:
            return _sdpa_4d(q, k, v, beta, causal, F.scaled_dot_product_attention)
        return _chunked(q, k, v, beta, normalization, causal)
    out, lse = _sdpa_4d(q, k, v, beta, causal, _flash_cpu, with_lse=True)
    if normalization == "usa":
        out = out * torch.exp(lse - math.log(k.shape[-2])).unsqueeze(-1)
    return out


def _flash_cpu(q, k, v, *, scale, is_causal):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, is_causal, scale=scale)


def _sdpa_4d(q, k, v, beta, causal, kernel, with_lse=False):
    """Run a 4-D SDPA kernel on ``(*batch, H, n, ·)`` inputs of any batch rank and head sizes."""
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    n_query, value_dim = q.shape[-2], v.shape[-1]
    # Kernels want equal head sizes: zero padding changes neither logits nor outputs.
    width = max(q.shape[-1], value_dim)
    q, k, v = (F.pad(a, (0, width - a.shape[-1])) if a.shape[-1] < width else a for a in (q, k, v))
    q, k, v = (a.expand(*batch, a.shape[-2], width).reshape(-1, 1, a.shape[-2], width) for a in (q, k, v))
    result = kernel(q, k, v, scale=float(beta), is_causal=causal)
    if with_lse:
        out, lse = result[0], result[1]
        return out[..., :value_dim].reshape(*batch, n_query, value_dim), lse.reshape(*batch, n_query)
    return result[..., :value_dim].reshape(*batch, n_query, value_dim)


_BACKENDS = {"dense": _dense, "chunked": _chunked, "fused": _fused}


def attention_output(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: float,
    *,
    normalization: Normalization = "sa",
    causal: bool = False,
    backend: Backend = "fused",
) -> torch.Tensor:
    """``Σ_j A_ij v_j`` for queries ``(*b, n, k)``, keys ``(*b, n, k)``, values ``(*b, n, e)``.

    ``A`` is SA (softmax of ``beta q kᵀ``) or USA (``exp(beta q kᵀ)/n``); returns ``(*b, n, e)``.
    """
    return _BACKENDS[backend](q, k, v, beta, normalization, causal)


def usa_step(step: float, beta: float) -> float:
    """The original code's USA step normalisation ``step / max(sqrt(beta) e^{beta - 1/2}, 1)``."""
    return step / max(math.sqrt(beta) * math.exp(beta - 0.5), 1.0)


class Attention(Field):
    """Self-attention field ``x_i -> Σ_h Σ_j A^h_ij V_h x_j``, tangent-projected for the velocity.

    Parameters
    ----------
    beta:
        Inverse temperature, ``>= 0``; a tensor of shape ``(*batch)`` sets one per system.
    normalization:
        ``"sa"`` (softmax) or ``"usa"`` (``exp/n``).
    Q, K:
        ``None`` (identity, the papers' default), a matrix ``(k, d)``, a stack
        ``(*batch, H, k, d)`` (``batch`` broadcasting against the state's batch: one draw per
        system), or a function of ``t`` returning one of these.
    V:
        ``None`` (identity), a number ``λ`` (``λ I``; ``-1`` is the repulsive case), a matrix
        ``(d, d)``, a stack ``(*batch, H, d, d)``, or a function of ``t``.
    causal:
        Token ``i`` attends to ``j <= i`` only.
    backend:
        ``"fused"`` (default), ``"chunked"`` or ``"dense"`` (reference).
    """

    def __init__(
        self,
        beta: float = 1.0,
        *,
        normalization: Normalization = "sa",
        Q: Matrix = None,
        K: Matrix = None,
        V: Matrix = None,
        causal: bool = False,
        backend: Backend = "fused",
    ):
        if isinstance(beta, torch.Tensor):
            checks.tensor_numbers("beta", beta)
        elif isinstance(beta, (int, float)):
            checks.number("beta", beta)
        else:
            raise ValueError(f"beta must be a finite number >= 0 or a tensor of them, got {beta!r}")
        checks.choice("normalization", normalization, ("sa", "usa"))
        checks.choice("backend", backend, tuple(_BACKENDS))
        # A tensor beta of shape (*batch) gives one inverse temperature per system.
        self.beta = beta if isinstance(beta, torch.Tensor) else float(beta)
        self.normalization = normalization
        self.Q, self.K, self.V = Q, K, V
        self.causal = causal
        self.backend = backend

    # -- weights ---------------------------------------------------------------------
    @staticmethod
    def _at(m: Matrix, t: float):
        return m(t) if callable(m) else m

    def value_scale(self, t: float = 0.0) -> float | None:
        """``λ`` if ``V = λ I`` (``None`` counts as 1), else ``None``."""
        v = self._at(self.V, t)
        if v is None:
            return 1.0
        return float(v) if isinstance(v, (int, float)) else None

    def with_backend(self, backend: Backend) -> Attention:
        return Attention(
            self.beta, normalization=self.normalization, Q=self.Q, K=self.K, V=self.V,
            causal=self.causal, backend=backend,
        )

    def authors_step(self, step: float) -> float:
        """The original code's USA step normalisation (:func:`usa_step`); ``step`` itself for SA."""
        if self.normalization != "usa":
            return step
        if isinstance(self.beta, torch.Tensor):
            raise ValueError("the authors' USA step rule needs one scalar beta; run each beta separately")
        return usa_step(step, self.beta)

    # -- evaluation ------------------------------------------------------------------
    def output(self, t: float, x: torch.Tensor) -> torch.Tensor:
        """Raw attention output ``y``, shape ``(*batch, n, d)`` like ``x``."""
        Q, K, V = (self._at(m, t) for m in (self.Q, self.K, self.V))
        heads = x.unsqueeze(-3)  # (*batch, 1, n, d): a head axis to broadcast against
        q = heads if Q is None else heads @ _as_heads(Q, "Q").mT
        k = heads if K is None else heads @ _as_heads(K, "K").mT
        scale = None
        if V is None or isinstance(V, (int, float)):
            v, scale = heads, (None if V is None else float(V))
        else:
            v = heads @ _as_heads(V, "V").mT
        beta = self.beta
        if isinstance(beta, torch.Tensor):
            # Fold per-system temperatures into the queries so every kernel sees a scalar scale.
            q = q * beta.to(q.dtype).reshape(*beta.shape, 1, 1, 1)
            beta = 1.0
        out = attention_output(
            q, k, v, beta, normalization=self.normalization, causal=self.causal, backend=self.backend
        ).sum(dim=-3)
        return out if scale is None else scale * out

    def restrict(self, basis: torch.Tensor) -> Attention | None:
        """Exact span reduction (docs/theory/attention_ode.md §3.3): valid when ``V = λ I``.

        In coordinates ``c = Uᵀx`` the logits are ``beta c_iᵀ (Q U)ᵀ(K U) c_j`` and the output
        stays in the span, so the reduced field is attention with ``Q U, K U``.
        """
        if callable(self.V) or self.value_scale() is None:
            return None
        if self.Q is None and self.K is None:
            Q = K = None
        else:
            eye = torch.eye(basis.shape[-2], dtype=basis.dtype, device=basis.device)
            Q, K = (self._restrict_matrix(m, basis, eye) for m in (self.Q, self.K))
        return Attention(
            self.beta, normalization=self.normalization, Q=Q, K=K, V=self.V,
            causal=self.causal, backend=self.backend,
        )

    @staticmethod
    def _restrict_matrix(m: Matrix, basis: torch.Tensor, eye: torch.Tensor):
        U = basis.unsqueeze(-3)  # (*batch, 1, d, r)
        if m is None:
            return eye @ U
        if callable(m):
            return lambda t: _as_heads(m(t), "Q/K") @ U
        return _as_heads(m, "Q/K") @ U

    def __repr__(self) -> str:
        beta = f"<{tuple(self.beta.shape)} tensor>" if isinstance(self.beta, torch.Tensor) else f"{self.beta:g}"
        parts = [f"beta={beta}", self.normalization]
        for name in ("Q", "K", "V"):
            m = getattr(self, name)
            if m is not None:
                parts.append(f"{name}={m:g}" if isinstance(m, (int, float)) else f"{name}=<{type(m).__name__}>")
        if self.causal:
            parts.append("causal")
        return f"Attention({', '.join(parts)})"
