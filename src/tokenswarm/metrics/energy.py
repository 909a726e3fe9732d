"""Interaction energy of 2312.10794 (eq. 3.5, particle form).

``E_beta(X) = (1 / (2 beta n^2)) sum_{i,j} exp(beta x_i^T B x_j)``, ``B = I`` by default
(``B = Q^T K`` in general; with ``B`` replaced by ``V`` this is the energy of §3.4.1). It
increases along the attractive SA and USA flows and lies in ``[e^{-beta}, e^beta] / (2 beta)``
for ``B = I`` on the sphere; the maximum ``e^beta / (2 beta)`` is attained at a single cluster.
"""

from __future__ import annotations

import math

import torch

from tokenswarm import checks

__all__ = ["interaction_energy", "log_interaction_energy"]


def log_interaction_energy(
    x: torch.Tensor,
    beta: float | torch.Tensor,
    B: torch.Tensor | None = None,
) -> torch.Tensor:
    """Natural logarithm of :func:`interaction_energy`, finite for every beta.

    Computed as ``logsumexp_{i,j}(beta x_i^T B x_j) - log(2 beta n^2)``: the largest exponent is
    factored out before exponentiating, so nothing overflows whatever beta is.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        beta: inverse temperature ``> 0``: a float or a tensor broadcastable to ``(*batch,)``.
        B: interaction matrix, shape ``(d, d)`` or broadcastable to ``(*batch, d, d)``;
            ``None`` means the identity.

    Returns:
        shape ``(*batch,)`` (or the broadcast batch shape), dtype of ``x``.
    """
    checks.tokens(x)
    n, d = x.shape[-2:]
    beta_t = checks.tensor_numbers("beta", torch.as_tensor(beta, dtype=x.dtype, device=x.device),
                                   positive=True, note=" (the energy has a factor 1/(2 beta))")
    if B is None:
        logits = x @ x.mT
    else:
        if B.ndim < 2 or B.shape[-2:] != (d, d):
            raise ValueError(f"B must have shape (*batch, d, d) with d = {d}, got {tuple(B.shape)}")
        # Rows are tokens, so x_i^T B x_j is row i of (x B) dotted with row j of x.
        logits = (x @ B.to(x)) @ x.mT
    logits = logits * beta_t[..., None, None]
    log_sum = torch.logsumexp(logits.flatten(-2), dim=-1)
    return log_sum - torch.log(2.0 * beta_t) - 2.0 * math.log(n)


def interaction_energy(
    x: torch.Tensor,
    beta: float | torch.Tensor,
    B: torch.Tensor | None = None,
) -> torch.Tensor:
    """Interaction energy ``E_beta(X) = (1/(2 beta n^2)) sum_{i,j} exp(beta x_i^T B x_j)``.

    The paper's convention (2312.10794 eq. 3.5 with the empirical measure): both sums run over
    all ordered pairs including ``i = j``. The value is ``exp`` of
    :func:`log_interaction_energy`, so intermediate sums never overflow; the result itself is
    finite whenever it is representable (on the sphere with ``B = I`` it is at most
    ``e^beta / (2 beta)``: beta up to about 700 in float64 and 88 in float32). Use
    :func:`log_interaction_energy` beyond that.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        beta: inverse temperature ``> 0``: a float or a tensor broadcastable to ``(*batch,)``.
        B: interaction matrix, shape ``(d, d)`` or broadcastable to ``(*batch, d, d)``;
            ``None`` means the identity.

    Returns:
        shape ``(*batch,)``, dtype of ``x``.

    Raises:
        ValueError: if some beta is not ``> 0`` (the energy is defined with ``1/beta``).
    """
    return torch.exp(log_interaction_energy(x, beta, B))


