"""Deterministic seeds for public randomness and experiments (never for keys).

Every random draw of a run is keyed by (run seed, round, client, purpose),
so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["derive_seed"]


def derive_seed(seed: int, *parts: int | str) -> int:
    words = [seed & 0xFFFFFFFF] + [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])
