"""Pairwise statistics of token configurations: Gram matrices, histograms, pair fractions.

Every function takes tokens ``x`` of shape ``(*batch, n, d)`` (rows are tokens, normally on the
unit sphere; nothing here renormalises) and reduces over the token axes only, so one call
handles any number of independent systems on any device and dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from tokenswarm import checks
from tokenswarm.runtime.budget import check_memory

__all__ = [
    "Histogram",
    "gram",
    "pairwise_inner_products",
    "inner_product_histogram",
    "pair_fraction",
    "antipodal_fraction",
]


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G_ij = <x_i, x_j>``.

    Args:
        x: tokens, shape ``(*batch, n, d)``.

    Returns:
        shape ``(*batch, n, n)``, same dtype and device as ``x``.
    """
    checks.tokens(x)
    n = x.shape[-2]
    check_memory(3 * (x.numel() // x.shape[-1]) * n * x.element_size(), f"pairwise inner products of {tuple(x.shape)} tokens", x.device)
    return x @ x.mT


def pairwise_inner_products(x: torch.Tensor) -> torch.Tensor:
    """Inner products ``<x_i, x_j>`` of the unordered pairs ``i < j``.

    Args:
        x: tokens, shape ``(*batch, n, d)``.

    Returns:
        shape ``(*batch, n(n-1)/2)``, pairs in row-major upper-triangle order
        ``(0,1), (0,2), ..., (0,n-1), (1,2), ...`` (the order of ``torch.triu_indices``).
    """
    checks.tokens(x)
    n = x.shape[-2]
    i, j = torch.triu_indices(n, n, offset=1, device=x.device)
    # Indexing the Gram matrix costs O(n^2) memory; gathering token pairs first would cost O(n^2 d).
    return gram(x)[..., i, j]


class Histogram(NamedTuple):
    """Histogram counts and bin edges (unpacks like ``torch.histogram``)."""

    counts: torch.Tensor
    """int64 counts, shape ``(*batch, bins)`` or ``(bins,)`` when pooled."""
    edges: torch.Tensor
    """bin edges ``linspace(-1, 1, bins + 1)``, shape ``(bins + 1,)``, dtype of ``x``."""


def inner_product_histogram(x: torch.Tensor, bins: int = 50, *, pooled: bool = False) -> Histogram:
    """Histogram of the pair inner products ``<x_i, x_j>``, ``i < j``, over ``[-1, 1]``.

    The diagonal (always 1 on the sphere) is excluded. Bins are the ``bins`` equal intervals of
    ``[-1, 1]``, closed on the left except the last, which is closed on both sides (as
    ``numpy.histogram``). Values outside ``[-1, 1]``, which only arise from rounding
    (``|<x_i,x_j>| <= 1`` on the sphere), are clamped into the end bins so that every pair is
    counted exactly once.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        bins: number of bins, ``>= 1``.
        pooled: if False, one histogram per system, counts of shape ``(*batch, bins)`` each
            summing to ``n(n-1)/2``; if True, the histograms summed over all batch entries,
            counts of shape ``(bins,)``.

    Returns:
        :class:`Histogram` ``(counts, edges)``.
    """
    checks.tokens(x)
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    bins = int(bins)
    values = pairwise_inner_products(x)
    batch_shape = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])
    index = torch.floor((flat + 1.0) * (bins / 2.0)).to(torch.int64).clamp_(0, bins - 1)
    counts = torch.zeros(flat.shape[0], bins, dtype=torch.int64, device=x.device)
    counts.scatter_add_(1, index, torch.ones_like(index))
    counts = counts.sum(0) if pooled else counts.reshape(*batch_shape, bins)
    edges = torch.linspace(-1.0, 1.0, bins + 1, dtype=x.dtype, device=x.device)
    return Histogram(counts, edges)


def pair_fraction(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Fraction of ordered pairs ``i != j`` with ``<x_i, x_j> > 1 - delta``.

    This is the statistic of Fig. 3 of 2312.10794 (an estimate of
    ``P(<x_1(t), x_2(t)> >= 1 - delta)``); since the Gram matrix is symmetric it equals the
    fraction over unordered pairs.

    Args:
        x: tokens, shape ``(*batch, n, d)`` with ``n >= 2``.
        delta: closeness threshold, ``0 < delta <= 2``.

    Returns:
        shape ``(*batch,)``, values in ``[0, 1]``, dtype of ``x``.
    """
    checks.tokens(x, min_tokens=2)
    checks.delta(delta)
    return _off_diagonal_fraction(gram(x) > 1.0 - delta, x.dtype)


def antipodal_fraction(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Fraction of pairs ``i < j`` with ``<x_i, x_j> < -1 + delta`` (nearly antipodal tokens).

    Args:
        x: tokens, shape ``(*batch, n, d)`` with ``n >= 2``.
        delta: closeness threshold, ``0 < delta <= 2``.

    Returns:
        shape ``(*batch,)``, values in ``[0, 1]``, dtype of ``x``.
    """
    checks.tokens(x, min_tokens=2)
    checks.delta(delta)
    return _off_diagonal_fraction(gram(x) < -1.0 + delta, x.dtype)


def _off_diagonal_fraction(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Fraction of True entries off the diagonal of a ``(*batch, n, n)`` mask, as ``(*batch,)``.

    For a symmetric mask this is also the fraction over unordered pairs ``i < j``.
    """
    n = mask.shape[-1]
    # Subtracting the diagonal count avoids building an n x n "i != j" mask.
    count = mask.sum((-2, -1)) - mask.diagonal(dim1=-2, dim2=-1).sum(-1)
    return count.to(dtype) / (n * (n - 1))
