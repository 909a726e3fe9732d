"""Attention on the circle (d = 2) by Fourier series: exact to round-off in O(n K) per evaluation.

On S^1 write ``x = (cos θ, sin θ)`` and ``z = e^{iθ}``. Since ``<x_i, x_j> = cos(θ_i − θ_j)`` and
``e^{β cos s} = Σ_{k∈Z} I_k(β) e^{iks}`` (docs/theory/attention_ode.md §2.5), the attention sums collapse onto the
moments ``S_m = (1/n) Σ_j e^{imθ_j}``::

    Z_i = (1/n) Σ_j e^{β<x_i,x_j>}        = Σ_k I_|k|(β) e^{ikθ_i} conj(S_k)
    N_i = (1/n) Σ_j e^{β<x_i,x_j>} z_j    = Σ_k I_|k|(β) e^{ikθ_i} conj(S_{k−1})

(``N_i`` is the complex form of ``(1/n) Σ_j e^{β<x_i,x_j>} x_j``). SA outputs ``N_i / Z_i``, USA
``N_i``; the value matrix ``V = ±I`` multiplies both by ``±1``. Truncating at ``|k| <= K`` with
``I_K(β) < 1e-18 I_0(β)`` leaves an error far below float64 round-off, so this *is* the particle
system of :class:`tokenswarm.fields.Attention` (tests hold the two equal to 1e-12), at a cost
that makes 10^5 tokens cheap. Bessel functions are used exponentially scaled (``ive``), so
nothing overflows for SA; USA rescales by ``e^β`` at the end.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from scipy import special

from tokenswarm import checks
from tokenswarm.fields.base import Field

__all__ = ["CircleAttention", "fourier_modes_needed"]

Normalization = Literal["sa", "usa"]


def fourier_modes_needed(beta: float, tol: float = 1e-18, k_max: int = 4096) -> int:
    """Smallest ``K >= 1`` with ``I_K(β) <= tol · I_0(β)`` (``β = 0``: 1)."""
    beta = checks.number("beta", beta)
    if beta == 0:
        return 1
    ks = np.arange(0, k_max + 1)
    ratio = special.ive(ks, beta) / special.ive(0, beta)
    small = np.nonzero(ratio <= tol)[0]
    if small.size == 0:
        raise ValueError(f"beta = {beta} needs more than {k_max} Fourier modes")
    return max(1, int(small[0]))


class CircleAttention(Field):
    """SA or USA self-attention with ``Q = K = I``, ``V = value · I`` for tokens on the circle.

    Args:
        beta: inverse temperature ``>= 0``.
        normalization: ``"sa"`` (softmax) or ``"usa"`` (``e^{S_ij}/n``).
        value: ``+1`` (attractive, ``V = I``) or ``-1`` (repulsive, ``V = −I``).
        modes: Fourier cut-off ``K`` (default: :func:`fourier_modes_needed`).

    States are ``(*batch, n, 2)`` unit vectors; :meth:`angular` works on angles ``(*batch, n)``.
    """

    def __init__(self, beta: float = 1.0, *, normalization: Normalization = "sa", value: float = 1.0,
                 modes: int | None = None):
        checks.choice("normalization", normalization, ("sa", "usa"))
        self.beta = float(beta)
        self.modes = fourier_modes_needed(self.beta) if modes is None else int(modes)
        self.normalization = normalization
        self.value = float(value)
        # Coefficients I_k(β) e^{−β} for k = 0..K (scaled: no overflow).
        self._coefficients = special.ive(np.arange(self.modes + 1), self.beta)
        self._scale = 1.0 if normalization == "sa" else math.exp(self.beta)

    def __repr__(self) -> str:
        return (f"CircleAttention(beta={self.beta}, normalization={self.normalization!r}, "
                f"value={self.value}, modes={self.modes})")

    def _sums(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Z_i, N_i)`` scaled by ``e^{−β}``: real ``(*batch, n)`` and complex ``(*batch, n)``.

        With ``P_ik = z_i^k`` (``k = 1..K+1``, by cumulative products: no transcendental per
        mode), ``S_0 = 1``, ``S_{−m} = conj(S_m)`` and ``c_k = I_k(β)e^{−β}``, the sums over
        ``k = −K..K`` pair ``k`` with ``−k``::

            Z_i = c_0 + 2 Re Σ_{k=1}^{K} c_k z_i^k conj(S_k)
            N_i = c_0 S_1 + Σ_{k=1}^{K} c_k (z_i^k conj(S_{k−1}) + conj(z_i^k) S_{k+1})
        """
        K = self.modes
        z = torch.polar(torch.ones_like(theta), theta)
        powers = z.unsqueeze(-1).expand(*z.shape, K + 1).cumprod(-1)             # z^1 .. z^{K+1}
        S = powers.mean(dim=-2)                                                   # S_1 .. S_{K+1}
        S_all = torch.cat([torch.ones_like(S[..., :1]), S], -1)                    # S_0 .. S_{K+1}
        c = torch.as_tensor(self._coefficients, dtype=theta.dtype, device=theta.device)
        P = powers[..., :K]
        Z = c[0] + 2 * (P @ (c[1:] * S_all[..., 1 : K + 1].conj()).unsqueeze(-1)).squeeze(-1).real
        N = (c[0] * S_all[..., 1:2]
             + (P @ (c[1:] * S_all[..., :K].conj()).unsqueeze(-1)).squeeze(-1)
             + (P.conj() @ (c[1:] * S_all[..., 2 : K + 2]).unsqueeze(-1)).squeeze(-1))
        return Z, N

    def angular(self, theta: torch.Tensor) -> torch.Tensor:
        """Angular velocities ``dθ_i/dt`` (2312 eq. (7.1) with sign ``value``), ``(*batch, n)``.

        See docs/theory/attention_ode.md §2.5.
        """
        Z, N = self._sums(theta)
        # dθ/dt = <y_i, e_θ_i> = Im(conj(z_i) y_i), y = N/Z (SA) or N e^β (USA).
        tangential = (N * torch.polar(torch.ones_like(theta), -theta)).imag
        if self.normalization == "sa":
            return self.value * tangential / Z
        return self.value * self._scale * tangential

    def output(self, t, x):
        theta = torch.atan2(x[..., 1], x[..., 0])
        Z, N = self._sums(theta)
        y = N / Z if self.normalization == "sa" else N * self._scale
        return self.value * torch.stack([y.real, y.imag], dim=-1)

