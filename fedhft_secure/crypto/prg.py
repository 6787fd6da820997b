"""A PRG from AES-256-CTR, keyed with the full 256-bit seed.

Each seed is used for one stream only (callers derive it with HKDF from a
unique context), so the all-zero counter block is safe.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["prg_uint"]


def prg_uint(seed: bytes, count: int, bits: int = 32) -> np.ndarray:
    """``count`` uniform integers modulo 2^bits, 1 <= bits <= 64.

    The keystream is read as little-endian uint32 words (bits <= 32) or uint64
    words (bits > 32), each reduced to its low ``bits`` bits: uniform, because
    2^bits divides the word's range. So the 32- and 64-bit streams are the raw
    words, and the stream mod 2^b is the 32-bit (or 64-bit) stream mod 2^b.
    Returned in that word dtype (uint32 or uint64).
    """
    if len(seed) != 32:
        raise ValueError("the PRG takes a 32-byte seed")
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be in 1..64, got {bits}")
    dtype = np.uint32 if bits <= 32 else np.uint64
    out = bytearray(count * np.dtype(dtype).itemsize)
    enc = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor()
    enc.update_into(bytes(len(out)), out) if out else None
    words = np.frombuffer(out, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    if bits in (32, 64):
        return words
    return words & dtype((1 << bits) - 1)
