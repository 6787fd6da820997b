"""Bit-packing of integers mod 2^b: a masked vector of d values takes ceil(d·b/8) bytes.

Why: the masked sum is exact mod 2^b, so a coordinate carries b bits of
information and nothing more; sending it in a 32- or 64-bit word wastes
the rest (at b = 20, 37.5% of every upload). The frame is one little-endian
bit stream: value i occupies stream bits i·b .. i·b + b − 1, least
significant bit first, and stream bit k is bit k mod 8 of byte k div 8.
For b = 8, 16, 32, 64 that is exactly the little-endian array of uint8,
uint16, uint32, uint64, so at the default b = 32 the bytes on the wire are
those of the former int32 frames. The last byte's unused high bits are zero:
a frame is canonical (one vector, one frame), which is what lets a decoder
refuse anything else instead of silently ignoring bits a peer chose.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import MalformedMessage, ShapeMismatch

__all__ = ["packed_size", "pack", "unpack", "word_dtype"]

#: byte-aligned widths whose frame is a plain little-endian array (a fast path, same bytes)
_ALIGNED = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 64:
        raise ValueError(f"bit width {bits} outside 1..64")


def word_dtype(bits: int) -> type:
    """The machine word arithmetic mod 2^bits runs in: uint32 up to 32 bits, else uint64 (2^bits divides
    the word's modulus, so wrapping word arithmetic followed by a mask is arithmetic mod 2^bits)."""
    _check_bits(bits)
    return np.uint32 if bits <= 32 else np.uint64


def packed_size(count: int, bits: int) -> int:
    """Bytes of a frame of ``count`` values of ``bits`` bits: ceil(count·bits / 8)."""
    _check_bits(bits)
    if count < 0:
        raise ValueError(f"negative count {count}")
    return (count * bits + 7) // 8


def pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integers < 2^bits (a 1-D array) -> their frame, a uint8 array of ``packed_size`` bytes.

    A value of ``bits`` or more bits is a bug of the caller (the masking client reduces mod 2^bits
    first), so it raises ValueError instead of being truncated silently.
    """
    _check_bits(bits)
    v = np.asarray(values)
    if v.ndim != 1 or v.dtype.kind not in "ui":
        raise ValueError(f"pack takes a 1-D integer array, got {v.dtype} of shape {v.shape}")
    v = v.astype(np.uint64)
    if bits < 64 and v.size and int(v.max()) >> bits:
        raise ValueError(f"a value does not fit in {bits} bits")
    if bits in _ALIGNED:
        return np.frombuffer(v.astype(_ALIGNED[bits]).tobytes(), dtype=np.uint8).copy()
    # each value's word bits, least significant first; keep the low ``bits`` and concatenate
    word = np.dtype(word_dtype(bits)).newbyteorder("<")
    stream = np.unpackbits(v.astype(word).view(np.uint8).reshape(-1, word.itemsize), axis=1, bitorder="little")
    return np.packbits(stream[:, :bits].reshape(-1), bitorder="little")


def unpack(frame: np.ndarray | bytes, count: int, bits: int) -> np.ndarray:
    """A frame -> ``count`` values in ``word_dtype(bits)``, each < 2^bits.

    Raises ShapeMismatch when the frame is not exactly ``packed_size(count, bits)`` bytes and
    MalformedMessage when the padding bits of its last byte are not zero (both peer errors:
    callers that know the sender re-raise them with it).
    """
    _check_bits(bits)
    raw = np.frombuffer(frame, dtype=np.uint8) if isinstance(frame, (bytes, bytearray)) \
        else np.asarray(frame)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ShapeMismatch(f"a packed frame is a 1-D uint8 array, got {raw.dtype} of shape {raw.shape}")
    want = packed_size(count, bits)
    if raw.size != want:
        raise ShapeMismatch(f"a frame of {count} values of {bits} bits is {want} bytes, got {raw.size}")
    spare = want * 8 - count * bits
    if spare and int(raw[-1]) >> (8 - spare):
        raise MalformedMessage(f"the {spare} padding bits of a packed frame are not zero")
    if bits in _ALIGNED:
        return raw.view(_ALIGNED[bits]).astype(word_dtype(bits))
    word = np.dtype(word_dtype(bits)).newbyteorder("<")
    wide = np.zeros((count, 8 * word.itemsize), dtype=np.uint8)
    wide[:, :bits] = np.unpackbits(raw, bitorder="little", count=count * bits).reshape(count, bits)
    return np.packbits(wide, axis=1, bitorder="little").view(word).reshape(count).astype(word_dtype(bits))
