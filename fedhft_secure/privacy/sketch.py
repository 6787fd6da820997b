"""The protected clustering sketch: clip to norm C, add N(0, (sigma C)^2 I), on the client."""

from __future__ import annotations

import torch

__all__ = ["clip_sketch", "protect_sketch"]


def clip_sketch(v: torch.Tensor, clip: float) -> torch.Tensor:
    norm = float(v.norm())
    return v if norm <= clip or norm == 0.0 else v * (clip / norm)


def protect_sketch(v: torch.Tensor, *, clip: float, noise: float, generator: torch.Generator) -> torch.Tensor:
    """``noise`` = 0 returns the clipped sketch (no privacy); otherwise the Gaussian mechanism."""
    out = clip_sketch(v.to(torch.float32), clip)
    if noise > 0:
        out = out + torch.randn(out.shape, generator=generator) * (noise * clip)
    return out
