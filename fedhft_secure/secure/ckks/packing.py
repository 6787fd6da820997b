"""Dense packing: every tensor of a message, end to end, in full ciphertexts.

Both sides derive the same ``Layout`` from the names and shapes alone:
names sorted (byte order of their UTF-8), each tensor flattened row-major
at the next free offset, no padding between tensors; the concatenation is cut
into chunks of ``slots`` values, one ciphertext each (only the last one is
partly empty). Never one ciphertext per tensor, never ``ckks_tensor``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ...exceptions import LocalProtocolError

__all__ = ["Slot", "Layout", "layout_for", "pack", "unpack"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    entries: tuple[Slot, ...]
    slots: int

    @property
    def total(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def num_ciphertexts(self) -> int:
        return max(1, math.ceil(self.total / self.slots))

    def chunk_sizes(self) -> list[int]:
        n, s = self.total, self.slots
        return [min(s, n - i * s) for i in range(self.num_ciphertexts)] if n else [0]

    def to_dict(self) -> dict[str, object]:
        return {"slots": self.slots,
                "entries": [{"name": e.name, "shape": list(e.shape), "offset": e.offset}
                            for e in self.entries]}

    @property
    def digest(self) -> bytes:
        """8 bytes that name this layout on the wire."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).digest()[:8]


def layout_for(shapes: Mapping[str, tuple[int, ...]], *, slots: int) -> Layout:
    if slots < 1:
        raise LocalProtocolError(f"slots must be positive, got {slots}")
    entries, offset = [], 0
    for name in sorted(shapes, key=lambda n: n.encode()):
        shape = tuple(int(d) for d in shapes[name])
        if any(d < 0 for d in shape):
            raise LocalProtocolError(f"negative dimension in {name!r}: {shape}")
        entries.append(Slot(name=name, shape=shape, offset=offset))
        offset += math.prod(shape)
    return Layout(entries=tuple(entries), slots=slots)


def pack(layout: Layout, tensors: Mapping[str, torch.Tensor]) -> np.ndarray:
    """The flat float64 vector of ``layout.total`` values (to be cut into chunks)."""
    names = {e.name for e in layout.entries}
    if set(tensors) != names:
        raise LocalProtocolError(f"tensors {sorted(set(tensors) ^ names)[:4]} missing or not in the layout")
    flat = np.zeros(layout.total, dtype=np.float64)
    for e in layout.entries:
        t = tensors[e.name]
        if tuple(t.shape) != e.shape:
            raise LocalProtocolError(f"{e.name!r} has shape {tuple(t.shape)}, layout says {e.shape}")
        flat[e.offset:e.offset + e.size] = t.detach().to(torch.float64).reshape(-1).numpy()
    return flat


def unpack(layout: Layout, flat: np.ndarray) -> dict[str, torch.Tensor]:
    """Float32 tensors (as the plaintext backend returns) from the flat vector."""
    if flat.shape != (layout.total,):
        raise LocalProtocolError(f"{flat.shape[0]} values for a layout of {layout.total}")
    return {e.name: torch.from_numpy(flat[e.offset:e.offset + e.size].astype(np.float32)).reshape(e.shape)
            for e in layout.entries}
