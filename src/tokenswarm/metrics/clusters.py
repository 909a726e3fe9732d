"""Clusters of tokens: connected components of the closeness graph ``{<x_i, x_j> > 1 - delta}``.

Two tokens are in the same cluster when a chain of tokens links them with consecutive inner
products above ``1 - delta`` (docs/theory/attention_ode.md §3.4). This is *not* the rank of
the thresholded Gram matrix used in the authors' code, which is right only when the graph is a
disjoint union of cliques: a chain of tokens along a great circle, each within ``delta`` of its
neighbours only, is one cluster, while the thresholded Gram matrix (tridiagonal) has full rank.

Labels are canonical: every token is labelled by the smallest token index of its cluster, so two
labellings of the same partition are equal as tensors, and ``label_i == i`` marks exactly one
token (the representative) per cluster.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from tokenswarm import checks
from tokenswarm.metrics.pairs import gram

__all__ = [
    "OUTCOMES",
    "classify_outcome",
    "ComponentMethod",
    "connected_components",
    "closeness_graph",
    "cluster_labels",
    "cluster_count",
    "cluster_sizes",
]

ComponentMethod = Literal["propagate", "closure"]


def closeness_graph(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Adjacency of the graph ``i ~ j  <=>  <x_i, x_j> > 1 - delta``, self loops included.

    The result is made exactly symmetric: the two triangles of a floating-point Gram matrix may
    differ in the last bit, and an asymmetric threshold would define a directed graph.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        delta: closeness threshold, ``0 < delta <= 2``.

    Returns:
        bool, shape ``(*batch, n, n)``.
    """
    checks.tokens(x)
    checks.delta(delta)
    adjacency = gram(x) > 1.0 - delta
    adjacency = adjacency | adjacency.mT
    adjacency.diagonal(dim1=-2, dim2=-1).fill_(True)
    return adjacency


def connected_components(adjacency: torch.Tensor, method: ComponentMethod = "propagate") -> torch.Tensor:
    """Canonical connected-component labels of a batch of undirected graphs.

    ``label_i = min{ j : j is connected to i }``. Computed without Python loops over batch
    entries or vertices; both methods terminate after a number of iterations bounded in advance.

    * ``"propagate"`` (default): min-label propagation with pointer jumping. One round is
      ``m_i = min{label_j : A_ij}`` followed by ``label_i = m[m_i]``. Labels only decrease and
      always name a vertex of the same component; each round costs O(n^2) per graph, and the
      labels are at least as small as those of plain propagation after the same number of rounds,
      so they are final after at most D rounds (D = the largest component diameter <= n - 1) and
      the loop stops one round later. Pointer jumping makes chains converge in O(log D) rounds in
      practice. One device synchronisation per round (the convergence test).
    * ``"closure"``: transitive closure by repeated squaring, ``R <- (R R > 0)``, exactly
      ``ceil(log2(n - 1))`` batched float32 matmuls (O(n^3 log n) per graph, no data-dependent
      control flow), then ``label_i = min{j : R_ij}``. Useful as an independent cross-check and
      on accelerators for small n.

    Args:
        adjacency: bool, shape ``(*batch, n, n)``; it is symmetrised and self loops are added.
        method: ``"propagate"`` or ``"closure"``.

    Returns:
        int64 labels, shape ``(*batch, n)``.
    """
    if adjacency.ndim < 2 or adjacency.shape[-1] != adjacency.shape[-2]:
        raise ValueError(f"adjacency must have shape (*batch, n, n), got {tuple(adjacency.shape)}")
    n = adjacency.shape[-1]
    adjacency = adjacency.to(torch.bool)
    adjacency = adjacency | adjacency.mT
    adjacency = adjacency | torch.eye(n, dtype=torch.bool, device=adjacency.device)
    index = torch.arange(n, device=adjacency.device)
    if method == "propagate":
        return _propagate(adjacency, index)
    if method == "closure":
        return _closure(adjacency, index)
    raise ValueError(f"method must be 'propagate' or 'closure', got {method!r}")


def _propagate(adjacency: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    n = adjacency.shape[-1]
    labels = index.expand(adjacency.shape[:-1]).contiguous()
    sentinel = torch.tensor(n, dtype=labels.dtype, device=labels.device)
    # D + 1 <= n rounds suffice (see connected_components); the extra round is a safety margin.
    for _ in range(n + 1):
        neighbour_min = torch.where(adjacency, labels.unsqueeze(-2), sentinel).amin(-1)
        updated = neighbour_min.gather(-1, neighbour_min)
        if torch.equal(updated, labels):
            return labels
        labels = updated
    raise RuntimeError("label propagation did not converge within n + 1 rounds (bug)")


def _closure(adjacency: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    n = adjacency.shape[-1]
    # float32 on every device: entries are sums of 0/1 products, and only their positivity matters.
    reach = adjacency.to(torch.float32)
    # After k squarings reach covers paths of length <= 2^k; n - 1 is the longest simple path.
    for _ in range(math.ceil(math.log2(n - 1)) if n > 2 else 1):
        reach = (reach @ reach > 0).to(torch.float32)
    return torch.where(reach > 0, index, n).amin(-1)


def cluster_labels(x: torch.Tensor, delta: float = 1e-3, method: ComponentMethod = "propagate") -> torch.Tensor:
    """Cluster of every token: canonical labels of the components of the closeness graph.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        delta: closeness threshold, ``0 < delta <= 2`` (edge iff ``<x_i, x_j> > 1 - delta``).
        method: see :func:`connected_components`.

    Returns:
        int64, shape ``(*batch, n)``: the smallest token index in each token's cluster.
    """
    return connected_components(closeness_graph(x, delta), method=method)


def cluster_count(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Number of clusters (connected components of the closeness graph).

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        delta: closeness threshold, ``0 < delta <= 2``.

    Returns:
        int64, shape ``(*batch,)``, values in ``[1, n]``.
    """
    labels = cluster_labels(x, delta)
    # A component's representative is the one token labelled by its own index.
    return (labels == torch.arange(labels.shape[-1], device=labels.device)).sum(-1)


def cluster_sizes(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Cluster sizes, sorted in decreasing order and padded with zeros.

    Args:
        x: tokens, shape ``(*batch, n, d)``.
        delta: closeness threshold, ``0 < delta <= 2``.

    Returns:
        int64, shape ``(*batch, n)``; each row sums to ``n`` and has ``cluster_count`` nonzeros.
    """
    labels = cluster_labels(x, delta)
    sizes = torch.zeros_like(labels).scatter_add_(-1, labels, torch.ones_like(labels))
    return sizes.sort(dim=-1, descending=True).values


#: Names of the outcomes of :func:`classify_outcome`, in the order of their codes.
OUTCOMES = ("one_cluster", "antipodal", "other")


def classify_outcome(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """0 = one cluster, 1 = two antipodal clusters, 2 = other; ``(*batch,)``.

    Clusters are connected components of ``{<x_i, x_j> > threshold}``; two clusters are
    antipodal when every cross pair has ``<x_i, x_j> < -threshold``.
    """
    inner = gram(x)
    count = cluster_count(x, delta=1 - threshold)
    close = inner > threshold
    far = inner < -threshold
    two_sided = (close | far).all(dim=(-2, -1))
    outcome = torch.full(count.shape, 2, dtype=torch.long, device=x.device)
    outcome[(count == 2) & two_sided] = 1
    outcome[count == 1] = 0
    return outcome
