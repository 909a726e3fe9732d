"""Tests of tokenswarm.metrics against explicit loops, NumPy and SciPy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csgraph

from tokenswarm.metrics import (
    angles,
    antipodal_fraction,
    closeness_graph,
    cluster_count,
    cluster_labels,
    cluster_sizes,
    connected_components,
    gram,
    inner_product_histogram,
    interaction_energy,
    kuramoto_order,
    log_interaction_energy,
    pair_fraction,
    pairwise_inner_products,
)

DOUBLE = torch.float64


def sphere_points(*shape: int, seed: int = 0, dtype: torch.dtype = DOUBLE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator, dtype=dtype)
    return x / x.norm(dim=-1, keepdim=True)


def clustered_points(batch: int, n: int, d: int, centres: int, spread: float, seed: int) -> torch.Tensor:
    """Tokens scattered around a few random centres: graphs with several nontrivial components."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.randn(batch, centres, d, generator=generator, dtype=DOUBLE)
    choice = torch.randint(centres, (batch, n), generator=generator)
    x = centre.gather(1, choice[..., None].expand(batch, n, d))
    x = x / x.norm(dim=-1, keepdim=True) + spread * torch.randn(batch, n, d, generator=generator, dtype=DOUBLE)
    return x / x.norm(dim=-1, keepdim=True)


def circle(theta: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)


def canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel a partition by the smallest index of each block."""
    out = np.empty_like(labels)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        out[members] = members.min()
    return out


# ----------------------------------------------------------------------------- pairs


def test_gram_and_pairwise_match_loops() -> None:
    x = sphere_points(3, 5, 4)
    g = gram(x)
    pairs = pairwise_inner_products(x)
    assert g.shape == (3, 5, 5) and pairs.shape == (3, 10)
    for b in range(3):
        expected = [float(x[b, i] @ x[b, j]) for i, j in itertools.combinations(range(5), 2)]
        np.testing.assert_allclose(pairs[b].numpy(), expected, rtol=0, atol=1e-15)
        np.testing.assert_allclose(g[b].numpy(), x[b].numpy() @ x[b].numpy().T, rtol=0, atol=1e-15)


def test_histogram_matches_numpy_per_system_and_pooled() -> None:
    x = sphere_points(2, 3, 40, 3, seed=1)
    hist = inner_product_histogram(x, bins=17)
    assert hist.counts.shape == (2, 3, 17) and hist.counts.dtype == torch.int64
    np.testing.assert_allclose(hist.edges.numpy(), np.linspace(-1, 1, 18))
    values = pairwise_inner_products(x).numpy()
    for a, b in itertools.product(range(2), range(3)):
        expected, _ = np.histogram(values[a, b], bins=17, range=(-1, 1))
        np.testing.assert_array_equal(hist.counts[a, b].numpy(), expected)
    pooled = inner_product_histogram(x, bins=17, pooled=True)
    expected, _ = np.histogram(values.ravel(), bins=17, range=(-1, 1))
    np.testing.assert_array_equal(pooled.counts.numpy(), expected)


def test_histogram_counts_rounded_extremes_once() -> None:
    # Coincident and antipodal tokens: inner products +-1 up to rounding, possibly outside [-1, 1].
    v = sphere_points(1, 3, seed=2)[0] * (1 + 1e-15)
    x = torch.stack([v, v, -v, v])
    counts = inner_product_histogram(x, bins=4).counts
    assert counts.tolist() == [3, 0, 0, 3]


def test_pair_fraction_matches_ordered_pair_loop() -> None:
    x = clustered_points(4, 12, 3, centres=3, spread=0.02, seed=3)
    delta = 1e-2
    fractions = pair_fraction(x, delta)
    assert fractions.dtype == DOUBLE
    for b in range(4):
        ordered = [
            float(x[b, i] @ x[b, j]) > 1 - delta for i in range(12) for j in range(12) if i != j
        ]
        unordered = [float(x[b, i] @ x[b, j]) > 1 - delta for i, j in itertools.combinations(range(12), 2)]
        assert fractions[b].item() == pytest.approx(np.mean(ordered), abs=1e-15)
        assert fractions[b].item() == pytest.approx(np.mean(unordered), abs=1e-15)
    assert 0 < fractions.min() and fractions.max() < 1


def test_antipodal_fraction_matches_loop() -> None:
    v = sphere_points(4, 3, seed=4)
    x = torch.cat([v, -v[:2]])  # two antipodal pairs among 15
    assert antipodal_fraction(x, 1e-6).item() == pytest.approx(2 / 15, abs=1e-15)
    x = clustered_points(3, 10, 2, centres=2, spread=0.05, seed=5)
    for b in range(3):
        loop = [float(x[b, i] @ x[b, j]) < -1 + 0.1 for i, j in itertools.combinations(range(10), 2)]
        assert antipodal_fraction(x, 0.1)[b].item() == pytest.approx(np.mean(loop), abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 12),
    d=st.integers(2, 5),
    seed=st.integers(0, 10_000),
    delta=st.floats(1e-4, 2.0),
)
def test_pair_fraction_in_unit_interval_and_permutation_invariant(n: int, d: int, seed: int, delta: float) -> None:
    x = sphere_points(n, d, seed=seed)
    value = pair_fraction(x, delta).item()
    assert 0.0 <= value <= 1.0
    # Fractions are multiples of 1/(n(n-1)): compare counts, robust to a last-bit Gram change.
    permuted = pair_fraction(x[torch.randperm(n, generator=torch.Generator().manual_seed(seed))], delta).item()
    assert abs(value - permuted) * n * (n - 1) <= 2 + 1e-9


def test_pair_fraction_single_cluster_and_validation() -> None:
    x = sphere_points(1, 4, seed=6).expand(7, 4)
    assert pair_fraction(x).item() == 1.0
    with pytest.raises(ValueError, match="delta"):
        pair_fraction(x, delta=0.0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        pair_fraction(x[:1])


# ----------------------------------------------------------------------------- clusters


def chain(n: int, spacing: float) -> torch.Tensor:
    return circle(spacing * torch.arange(n, dtype=DOUBLE))


def test_chain_is_one_cluster_although_thresholded_gram_has_full_rank() -> None:
    # Consecutive angle 0.04: cos = 0.9992 > 1 - 1e-3; next-nearest 0.08: cos = 0.9968 < 1 - 1e-3.
    n = 22
    x = chain(n, 0.04)
    adjacency = closeness_graph(x, 1e-3)
    index = torch.arange(n)
    assert torch.equal(adjacency, (index[:, None] - index[None, :]).abs() <= 1)
    for method in ("propagate", "closure"):
        assert cluster_labels(x, 1e-3, method=method).tolist() == [0] * n
    assert cluster_count(x, 1e-3).item() == 1
    assert cluster_sizes(x, 1e-3).tolist() == [n] + [0] * (n - 1)
    # The authors' statistic, the rank of the thresholded Gram matrix (tridiagonal of ones, which
    # is invertible unless 3 divides n + 1), would report n clusters.
    assert torch.linalg.matrix_rank(adjacency.to(DOUBLE)).item() == n


def test_chain_in_scrambled_order() -> None:
    # Pointer jumping must cope with labels that are far from their own index.
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(7))
    x = torch.cat([chain(40, 0.04), chain(24, 0.04) @ torch.tensor([[-1.0, 0.0], [0.0, -1.0]], dtype=DOUBLE)])[perm]
    labels = cluster_labels(x)
    expected = canonical(np.where(perm.numpy() < 40, 0, 1))
    np.testing.assert_array_equal(labels.numpy(), expected)
    assert cluster_sizes(x).tolist()[:3] == [40, 24, 0]


@pytest.mark.parametrize("method", ["propagate", "closure"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_labels_match_scipy_connected_components(method: str, seed: int) -> None:
    batch, n, delta = 6, 40, 0.02
    x = clustered_points(batch, n, 3, centres=5, spread=0.08, seed=seed)
    labels = cluster_labels(x, delta, method=method)
    assert labels.shape == (batch, n) and labels.dtype == torch.int64
    counts = cluster_count(x, delta)
    sizes = cluster_sizes(x, delta)
    nontrivial = 0
    for b in range(batch):
        adjacency = (x[b] @ x[b].T).numpy() > 1 - delta
        count, scipy_labels = csgraph.connected_components(adjacency, directed=False)
        np.testing.assert_array_equal(labels[b].numpy(), canonical(scipy_labels))
        assert counts[b].item() == count
        expected_sizes = np.sort(np.bincount(scipy_labels, minlength=n))[::-1]
        np.testing.assert_array_equal(sizes[b].numpy(), expected_sizes)
        # The configuration is not just a union of cliques (the case where rank would be right).
        nontrivial += int(any(not adjacency[np.ix_(m, m)].all() for m in (scipy_labels == c for c in range(count))))
    assert nontrivial > 0


def test_connected_components_random_sparse_graphs_vs_scipy() -> None:
    generator = torch.Generator().manual_seed(11)
    adjacency = torch.rand(20, 30, 30, generator=generator) < 0.05
    expected = np.stack(
        [canonical(csgraph.connected_components(a.numpy(), directed=False)[1]) for a in adjacency]
    )
    for method in ("propagate", "closure"):
        np.testing.assert_array_equal(connected_components(adjacency, method=method).numpy(), expected)


def test_cluster_labels_batched_equals_one_by_one_and_float32() -> None:
    x = clustered_points(8, 16, 4, centres=4, spread=0.03, seed=12)
    together = cluster_labels(x, 0.01)
    for b in range(8):
        assert torch.equal(together[b], cluster_labels(x[b], 0.01))
    labels32 = cluster_labels(x.to(torch.float32).reshape(2, 4, 16, 4), 0.01)
    assert labels32.shape == (2, 4, 16)


@settings(max_examples=60, deadline=None)
@given(
    grid=st.lists(st.integers(0, 299), min_size=2, max_size=25),
    perm_seed=st.integers(0, 2**31 - 1),
)
def test_cluster_partition_is_permutation_equivariant(grid: list[int], perm_seed: int) -> None:
    # Tokens on a lattice of 300 angles; the threshold lies between 2 and 3 lattice steps, far
    # from every attainable inner product, so the graph is exact (chains of arbitrary length).
    theta = 2 * math.pi * torch.tensor(grid, dtype=DOUBLE) / 300
    delta = 1 - math.cos(2 * math.pi * 2.5 / 300)
    x = circle(theta)
    n = len(grid)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(perm_seed))
    labels = cluster_labels(x, delta)
    permuted = cluster_labels(x[perm], delta)
    same = labels[:, None] == labels[None, :]
    assert torch.equal(permuted[:, None] == permuted[None, :], same[perm][:, perm])
    assert torch.equal(labels, cluster_labels(x, delta, method="closure"))
    # Canonical: every label is the smallest member of its cluster.
    index = torch.arange(n)
    assert torch.all(labels <= index) and torch.all(labels[labels] == labels)
    assert cluster_sizes(x, delta).sum().item() == n
    assert cluster_count(x, delta).item() == torch.unique(labels).numel()


# ----------------------------------------------------------------------------- energy


def energy_loop(x: np.ndarray, beta: float, B: np.ndarray | None = None) -> float:
    n = x.shape[0]
    B = np.eye(x.shape[1]) if B is None else B
    total = sum(math.exp(beta * x[i] @ B @ x[j]) for i in range(n) for j in range(n))
    return total / (2 * beta * n * n)


def test_interaction_energy_matches_double_loop_with_and_without_interaction_matrix() -> None:
    x = sphere_points(3, 6, 4, seed=13)
    B = torch.randn(4, 4, generator=torch.Generator().manual_seed(14), dtype=DOUBLE)
    for beta in (0.3, 2.0, 7.5):
        plain = interaction_energy(x, beta)
        general = interaction_energy(x, beta, B)
        for b in range(3):
            assert plain[b].item() == pytest.approx(energy_loop(x[b].numpy(), beta), rel=1e-13)
            assert general[b].item() == pytest.approx(energy_loop(x[b].numpy(), beta, B.numpy()), rel=1e-13)


def test_interaction_energy_per_system_beta_and_batched_interaction_matrix() -> None:
    x = sphere_points(3, 5, 3, seed=15)
    betas = torch.tensor([0.5, 1.0, 4.0], dtype=DOUBLE)
    Bs = torch.randn(3, 3, 3, generator=torch.Generator().manual_seed(16), dtype=DOUBLE)
    values = interaction_energy(x, betas, Bs)
    for b in range(3):
        assert values[b].item() == pytest.approx(energy_loop(x[b].numpy(), betas[b].item(), Bs[b].numpy()), rel=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_interaction_energy_large_beta_is_finite_and_exact_at_a_cluster(dtype: torch.dtype) -> None:
    beta = 50.0
    cluster = sphere_points(1, 5, seed=17, dtype=dtype).expand(64, 5)
    value = interaction_energy(cluster, beta)
    assert torch.isfinite(value).all()
    # The maximiser of E_beta: a single cluster, E = e^beta / (2 beta).
    assert value.item() == pytest.approx(math.exp(beta) / (2 * beta), rel=1e-5 if dtype == torch.float32 else 1e-13)
    # float32 overflows e^beta beyond beta ~ 88; the log form does not.
    assert log_interaction_energy(cluster, 500.0).item() == pytest.approx(500 - math.log(1000), rel=1e-6)


def test_interaction_energy_rejects_nonpositive_beta() -> None:
    x = sphere_points(4, 3, seed=18)
    for beta in (0.0, -1.0):
        with pytest.raises(ValueError, match="beta must be finite and > 0"):
            interaction_energy(x, beta)
    with pytest.raises(ValueError, match="B must have shape"):
        interaction_energy(x, 1.0, torch.eye(2, dtype=DOUBLE))


# ----------------------------------------------------------------------------- order


def test_kuramoto_order_matches_complex_mean_on_circle() -> None:
    theta = torch.rand(4, 9, generator=torch.Generator().manual_seed(19), dtype=DOUBLE) * 2 * math.pi
    expected = np.abs(np.exp(1j * theta.numpy()).mean(-1))
    np.testing.assert_allclose(kuramoto_order(circle(theta)).numpy(), expected, rtol=1e-13)
    v = sphere_points(3, 5, seed=20)
    assert kuramoto_order(torch.cat([v, -v])).item() == pytest.approx(0.0, abs=1e-15)
    assert kuramoto_order(v[:1].expand(6, 5)).item() == pytest.approx(1.0, abs=1e-15)


def test_angles_roundtrip_and_half_open_range() -> None:
    theta = torch.linspace(-math.pi + 1e-9, math.pi, 101, dtype=DOUBLE)
    np.testing.assert_allclose(angles(circle(theta)).numpy(), theta.numpy(), atol=1e-12)
    negative_zero = torch.tensor([[[-1.0, -0.0], [-1.0, 0.0]]], dtype=DOUBLE)
    assert angles(negative_zero).tolist() == [[math.pi, math.pi]]
    with pytest.raises(ValueError, match="d = 2"):
        angles(sphere_points(3, 3))


# ----------------------------------------------------------------------------- devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_cuda_match_cpu() -> None:
    x = clustered_points(5, 24, 3, centres=3, spread=0.05, seed=21)
    y = x.cuda()
    for method in ("propagate", "closure"):
        assert torch.equal(cluster_labels(y, 0.02, method=method).cpu(), cluster_labels(x, 0.02))
    assert torch.equal(cluster_sizes(y, 0.02).cpu(), cluster_sizes(x, 0.02))
    torch.testing.assert_close(pair_fraction(y, 0.02).cpu(), pair_fraction(x, 0.02))
    torch.testing.assert_close(interaction_energy(y, 3.0).cpu(), interaction_energy(x, 3.0))
    assert torch.equal(inner_product_histogram(y, 9).counts.cpu(), inner_product_histogram(x, 9).counts)
    torch.testing.assert_close(kuramoto_order(y).cpu(), kuramoto_order(x))
