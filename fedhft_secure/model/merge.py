"""Personalized starts: rank-r merges of cluster updates, folded into base weights."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch

from .lora import HEAD, LayerFactors

__all__ = ["truncated", "lowrank_merge", "merge_into_base", "merged_model", "mix_heads"]


def truncated(M: torch.Tensor, r: int) -> LayerFactors:
    """Best rank-r factors of M (exact SVD: deterministic, unlike a randomized one)."""
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return LayerFactors(B=U[:, :r] * S[:r], A=Vh[:r])


def lowrank_merge(adapters: Sequence[Mapping[str, LayerFactors]], probs: Sequence[float],
                  r: int) -> dict[str, LayerFactors]:
    """Rank-r factors of Σ_j p_j ΔW_j per layer; with one cluster the adapter itself."""
    active = [(p, a) for p, a in zip(probs, adapters) if p > 0]
    if len(active) == 1 and abs(active[0][0] - 1.0) < 1e-12:
        return dict(active[0][1])
    out = {}
    for name in adapters[0]:
        total = sum(p * a[name].delta() for p, a in active)
        out[name] = truncated(total, r)
    return out


def mix_heads(heads: Sequence[Mapping[str, torch.Tensor]], probs: Sequence[float]) -> dict[str, torch.Tensor]:
    return {k: sum(p * h[k] for p, h in zip(probs, heads)) for k in heads[0]}


@torch.no_grad()
def merge_into_base(model: torch.nn.Module, deltas: Mapping[str, LayerFactors],
                    head: Mapping[str, torch.Tensor] | None = None) -> None:
    """W += B A for every named Linear; the head replaced. Mutates ``model``."""
    modules = dict(model.named_modules())
    for name, f in deltas.items():
        modules[name].weight += f.delta().to(modules[name].weight.dtype)
    if head is not None:
        getattr(model, HEAD).load_state_dict(dict(head))


def merged_model(base: torch.nn.Module, deltas: Mapping[str, LayerFactors],
                 head: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A copy of ``base`` with ``deltas`` merged into its weights and ``head`` as its classifier."""
    model = copy.deepcopy(base)
    merge_into_base(model, deltas, head)
    return model
