"""How far apart two run folders' models are (Flower vs in-process, same seed)."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_checkpoint

__all__ = ["max_abs_diff"]


def max_abs_diff(a: Path, b: Path) -> float:
    """Largest |difference| of any cluster's adapter update (B @ A, free of SVD sign choices) or
    head value between the checkpoints of two runs."""
    sa, _ = load_checkpoint(Path(a))
    sb, _ = load_checkpoint(Path(b))
    if len(sa.adapters) != len(sb.adapters) or len(sa.heads) != len(sb.heads):
        return float("inf")
    worst = 0.0
    for x, y in zip(sa.adapters, sb.adapters):
        if x.keys() != y.keys():
            return float("inf")
        for n in x:
            worst = max(worst, float((x[n].delta() - y[n].delta()).abs().max()))
    for x, y in zip(sa.heads, sb.heads):
        for k in x:
            worst = max(worst, float((x[k] - y[k]).abs().max()))
    return worst
