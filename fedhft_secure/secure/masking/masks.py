"""Mask derivation, shared by client and server: every stream keyed by its full context."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ...crypto.kex import hkdf
from ...crypto.prg import prg_uint
from ..api import Expected

__all__ = ["pair_seed", "self_seed", "stream", "layout", "flatten", "unflatten", "support"]


def _context(tag: bytes, round: int, epoch: int, slot: int, cluster: int) -> bytes:
    return b"fedhft-secure/masking/" + tag + struct.pack("<IIII", round, epoch, slot, cluster)


def pair_seed(agreed: bytes, round: int, epoch: int, slot: int, cluster: int) -> bytes:
    """Seed of the pairwise mask of one (pair, round, epoch, pass slot, cluster)."""
    return hkdf(agreed, _context(b"pair", round, epoch, slot, cluster))


def self_seed(seed: bytes, round: int, epoch: int, slot: int, cluster: int) -> bytes:
    return hkdf(seed, _context(b"self", round, epoch, slot, cluster))


def stream(seed: bytes, length: int, bits: int) -> np.ndarray:
    return prg_uint(seed, length, bits)


def layout(expected: Expected) -> list[tuple[str, tuple[int, ...]]]:
    """The order vectors are concatenated in: shared then per-cluster names, each sorted."""
    return ([(f"s/{n}", s) for n, s in sorted(expected.shared.items())]
            + [(f"c/{n}", s) for n, s in sorted(expected.per_cluster.items())])


def flatten(shared: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
            order: Sequence[tuple[str, tuple[int, ...]]]) -> np.ndarray:
    parts = []
    for name, shape in order:
        kind, _, key = name.partition("/")
        t = (shared if kind == "s" else own)[key]
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{key}: shape {tuple(t.shape)}, expected {shape}")
        parts.append(t.detach().reshape(-1).to(torch.float64).numpy())
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(vec: np.ndarray, order: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    out, pos = {}, 0
    for name, shape in order:
        size = int(np.prod(shape, dtype=np.int64))
        out[name.partition("/")[2]] = torch.from_numpy(vec[pos:pos + size].reshape(shape).astype(np.float32))
        pos += size
    return out


def support(order: Sequence[tuple[str, tuple[int, ...]]], row_layers: Mapping[str, str],
            rows: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """Positions of the flat vector a client sends: everything, except rows it does not hold
    (or that are withheld) of row-structured vectors. ``rows=None``: dense, every position."""
    parts = []
    for name, shape in order:
        size = int(np.prod(shape, dtype=np.int64))
        layer = row_layers.get(name.partition("/")[2])
        if rows is None or layer is None:
            parts.append(np.ones(size, dtype=bool))
        else:
            per_row = size // shape[0]
            parts.append(np.repeat(np.asarray(rows[layer], dtype=bool), per_row))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
