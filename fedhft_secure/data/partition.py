"""Label-skewed partition of training data over clients, and resource levels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError

__all__ = ["ClientSplit", "dirichlet_partition", "split_clients", "assign_levels"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSplit:
    train: np.ndarray  # indices into the training pool
    val: np.ndarray


def dirichlet_partition(labels: np.ndarray, num_clients: int, alpha: float,
                        rng: np.random.Generator, min_size: int = 2) -> list[np.ndarray]:
    """Per class, split its examples over clients by proportions ~ Dir(alpha / #classes).

    Resampled (bounded) until every client holds ``min_size`` examples, as
    the reference partitioner does.
    """
    classes = np.unique(labels)
    conc = alpha / len(classes)
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            props = rng.dirichlet(np.full(num_clients, conc))
            cuts = (np.cumsum(props) * len(idx)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise DataError(f"could not give each of {num_clients} clients {min_size} examples; "
                    f"use more data or fewer clients")


def split_clients(parts: list[np.ndarray], val_fraction: float,
                  rng: np.random.Generator) -> list[ClientSplit]:
    out = []
    for idx in parts:
        idx = rng.permutation(idx)
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0:
            n_val = max(1, min(n_val, len(idx) - 1))
        out.append(ClientSplit(train=np.sort(idx[n_val:]), val=np.sort(idx[:n_val])))
    return out


def assign_levels(num_clients: int, levels: list[float], ratios: list[float],
                  rng: np.random.Generator) -> list[float]:
    """Shuffle clients, then give consecutive groups the levels in proportion to ``ratios``.

    Leftover clients (from rounding down, as the reference code would skip
    them) get the last level so that every client takes part.
    """
    order = rng.permutation(num_clients)
    out = [levels[-1]] * num_clients
    start = 0
    for level, ratio in zip(levels, ratios):
        end = start + int(num_clients * ratio)
        for c in order[start:end]:
            out[int(c)] = level
        start = end
    return out
