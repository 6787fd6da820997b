"""A PRG from AES-256-CTR, keyed with the full 256-bit seed.

Each seed is used for one stream only (callers derive it with HKDF from a
unique context), so the all-zero counter block is safe.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["prg_uint"]

_DTYPES = {32: np.uint32, 64: np.uint64}


def prg_uint(seed: bytes, count: int, bits: int = 32) -> np.ndarray:
    """``count`` uniform integers modulo 2^bits (bits 32 or 64; smaller moduli: mask the result)."""
    if len(seed) != 32:
        raise ValueError("the PRG takes a 32-byte seed")
    if bits not in _DTYPES:
        raise ValueError("bits must be 32 or 64")
    width = bits // 8
    out = bytearray(count * width)
    enc = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor()
    enc.update_into(bytes(len(out)), out) if out else None
    return np.frombuffer(out, dtype=np.dtype(_DTYPES[bits]).newbyteorder("<")).astype(_DTYPES[bits])
