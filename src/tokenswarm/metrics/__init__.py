"""Metrics of token configurations ``x`` of shape ``(*batch, n, d)``.

All functions are torch-native, batched over leading dimensions and device/dtype agnostic.
"""

from tokenswarm.metrics.clusters import (
    OUTCOMES,
    ComponentMethod,
    classify_outcome,
    closeness_graph,
    cluster_count,
    cluster_labels,
    cluster_sizes,
    connected_components,
)
from tokenswarm.metrics.energy import interaction_energy, log_interaction_energy
from tokenswarm.metrics.order import angles, kuramoto_order
from tokenswarm.metrics.pairs import (
    Histogram,
    antipodal_fraction,
    gram,
    inner_product_histogram,
    pair_fraction,
    pairwise_inner_products,
)

__all__ = [
    "OUTCOMES",
    "classify_outcome",
    "ComponentMethod",
    "Histogram",
    "angles",
    "antipodal_fraction",
    "closeness_graph",
    "cluster_count",
    "cluster_labels",
    "cluster_sizes",
    "connected_components",
    "gram",
    "inner_product_histogram",
    "interaction_energy",
    "kuramoto_order",
    "log_interaction_energy",
    "pair_fraction",
    "pairwise_inner_products",
]
