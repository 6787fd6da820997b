"""Datasets (bundled and user-supplied) and their federated partition."""

from .partition import ClientSplit, assign_levels, dirichlet_partition, split_clients
from .sources import TextDataset, load_dataset, train_test_split

__all__ = [
    "TextDataset",
    "load_dataset",
    "train_test_split",
    "ClientSplit",
    "dirichlet_partition",
    "split_clients",
    "assign_levels",
]
