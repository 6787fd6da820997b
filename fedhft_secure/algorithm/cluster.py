"""Soft client clusters from per-client sketches (Gaussian mixture)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.mixture import GaussianMixture

__all__ = ["SketchProjector", "soft_clusters", "align_clusters", "flatten"]


def flatten(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([tensors[k].reshape(-1).to(torch.float32) for k in sorted(tensors)])


class SketchProjector:
    """A public, seeded Johnson–Lindenstrauss projection R^n -> R^d (entries N(0, 1/d))."""

    def __init__(self, *, seed: int, n: int, d: int) -> None:
        self.matrix = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) / d ** 0.5

    def __call__(self, vec: torch.Tensor) -> torch.Tensor:
        return vec.reshape(-1).to(torch.float32) @ self.matrix


def soft_clusters(sketches: np.ndarray, k: int, *, covariance: str, seed: int) -> np.ndarray:
    """Gaussian-mixture posteriors p_ij (rows sum to 1); one client or K = 1 gives all ones."""
    n = sketches.shape[0]
    if k == 1 or n == 1:
        return np.ones((n, k)) / k if n > 1 else np.eye(1, k)
    gm = GaussianMixture(n_components=k, covariance_type=covariance, random_state=seed,
                         reg_covar=1e-6).fit(sketches)
    return gm.predict_proba(sketches)


def align_clusters(previous: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Permute ``new``'s columns to best match ``previous`` (max Σ_i p_old_ij p_new_ij).

    A refitted mixture numbers its components arbitrarily; without this a
    client's weights could point at another group's adapter next round (the
    official code refits without aligning). Cluster j stays cluster j.
    """
    overlap = previous.T @ new  # K x K
    _, cols = linear_sum_assignment(-overlap)
    return new[:, cols]
