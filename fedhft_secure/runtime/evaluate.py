"""Scores of cluster and global models on the global test split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import PreTrainedModel

from ..model.base import Encoded
from ..model.lora import LayerFactors
from ..model.merge import lowrank_merge, merged_model, mix_heads
from ..model.train import Scores, predict, score

if TYPE_CHECKING:
    from ..fl.server import ServerState

__all__ = ["evaluate_adapter", "global_weights", "global_adapter", "global_model", "same_adapter"]


def evaluate_adapter(base: PreTrainedModel, adapter: Mapping[str, LayerFactors],
                     head: Mapping[str, torch.Tensor], data: Encoded, *, majority_label: int,
                     batch_size: int) -> Scores:
    return score(predict(merged_model(base, adapter, head), data, batch_size), data.labels.numpy(), majority_label)


def global_weights(probs: np.ndarray) -> list[float]:
    """Each cluster's share of the clients: the global model is their mixture."""
    w = probs.mean(axis=0)
    return [float(x) for x in w / w.sum()]


def global_adapter(adapters: Sequence[Mapping[str, LayerFactors]], heads: Sequence[Mapping[str, torch.Tensor]],
                   probs: np.ndarray, r: int) -> tuple[dict[str, LayerFactors], dict[str, torch.Tensor]]:
    w = global_weights(probs)
    if not adapters:
        return {}, mix_heads(heads, w)
    if all(same_adapter(a, adapters[0]) for a in adapters[1:]):
        return dict(adapters[0]), mix_heads(heads, w)  # warm-up: every cluster holds the same adapter
    return lowrank_merge(adapters, w, r), mix_heads(heads, w)


def global_model(state: "ServerState", clusters: int, r: int
                 ) -> tuple[dict[str, LayerFactors], dict[str, torch.Tensor]]:
    """The model scored on the global test split: the one cluster's, or the clusters' mixture."""
    if clusters > 1:
        return global_adapter(state.adapters, state.heads, state.probs, r)
    return dict(state.adapters[0]) if state.adapters else {}, state.heads[0]


def same_adapter(a: Mapping[str, LayerFactors], b: Mapping[str, LayerFactors]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].B, b[k].B) and torch.equal(a[k].A, b[k].A) for k in a)
