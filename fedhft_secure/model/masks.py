"""Row masks: which output rows of a LoRA update a client keeps.

Both policies pick the top fraction of rows by a score with the reference
rule: threshold = the score at sorted position int(n * (1 - ratio)), keep
rows whose score is >= threshold (ties may keep a few more rows).
"""

from __future__ import annotations

import torch

__all__ = ["top_fraction", "post_norm_mask"]


def top_fraction(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    if ratio >= 1.0:
        return torch.ones_like(scores, dtype=torch.bool)
    thr = scores.sort().values[int(len(scores) * (1 - ratio))]
    return scores >= thr


def post_norm_mask(B: torch.Tensor, A: torch.Tensor, ratio: float) -> torch.Tensor:
    """`post-norm`, the official code's rule: rows of ΔW = B A by squared norm."""
    dw = B @ A
    return top_fraction((dw * dw).sum(dim=1), ratio)
