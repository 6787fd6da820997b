"""FedHFT's server algorithm as pure functions: pass plan, aggregation, clustering."""

from .aggregate import ClientFactors, dense_cluster_sums, explicit_refactor, weighted_heads
from .cluster import SketchProjector, soft_clusters
from .lowrank import LayerPlan, Op, client_product, plan_layer, omega

__all__ = [
    "ClientFactors",
    "dense_cluster_sums",
    "explicit_refactor",
    "weighted_heads",
    "SketchProjector",
    "soft_clusters",
    "LayerPlan",
    "Op",
    "client_product",
    "plan_layer",
    "omega",
]
