"""Per-cluster aggregation written out densely: the reference the pass plan must match.

Deliberate corrections to the official code: each cluster has its own
buffers (the official ``[x] * K`` shares one), row counts are weighted by the
soft cluster probabilities (D_j = Σ_i p_ij m_i), and heads are divided by
Σ_i p_ij rather than by the number of clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..model.lora import LayerFactors
from .lowrank import inverse_counts

__all__ = ["ClientFactors", "dense_cluster_sums", "weighted_heads", "explicit_refactor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFactors:
    """What one client's round produced; B rows outside ``masks`` are zero."""

    layers: Mapping[str, LayerFactors]
    masks: Mapping[str, torch.Tensor]
    head: Mapping[str, torch.Tensor]


def dense_cluster_sums(clients: Sequence[ClientFactors], probs: torch.Tensor,
                       G: Sequence[Mapping[str, torch.Tensor] | None]) -> list[dict[str, torch.Tensor]]:
    """S_j = G_j + D_j^{-1} Σ_i p_ij diag(m_i) B_i A_i for every cluster j (explicit out x in)."""
    K = probs.shape[1]
    out: list[dict[str, torch.Tensor]] = []
    for j in range(K):
        sums: dict[str, torch.Tensor] = {}
        for name in clients[0].layers:
            total = torch.zeros_like(clients[0].layers[name].delta())
            counts = torch.zeros(total.shape[0])
            for i, c in enumerate(clients):
                m = c.masks[name].to(total.dtype)
                total += float(probs[i, j]) * (m.unsqueeze(1) * c.layers[name].delta())
                counts += float(probs[i, j]) * m
            S = inverse_counts(counts).unsqueeze(1) * total
            if G[j] is not None:
                S = S + G[j][name]  # type: ignore[index]
            sums[name] = S
        out.append(sums)
    return out


def weighted_heads(clients: Sequence[ClientFactors], probs: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    out = []
    for j in range(probs.shape[1]):
        w = probs[:, j]
        total = float(w.sum())
        out.append({k: sum(float(w[i]) * c.head[k] for i, c in enumerate(clients)) / max(total, 1e-30)
                    for k in clients[0].head})
    return out


def explicit_refactor(S: torch.Tensor, *, r: int, q: int, niter: int, seed: int) -> LayerFactors:
    """torch.svd_lowrank of the explicit S with its Gaussian drawn from ``seed``; rank-r factors."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        U, s, V = torch.svd_lowrank(S, q=min(q, *S.shape), niter=niter)
    return LayerFactors(B=U[:, :r] * s[:r], A=V[:, :r].T)
