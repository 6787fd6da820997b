"""The CKKS message: an envelope around SEAL ciphertexts, one per chunk.

    b"FHCK" | version u8 = 2 | kind u8 | params fingerprint 8 | key id 8 | layout digest 8
    | summands u32 | chunks u32 | chunks x (length u32 | SEAL ciphertext bytes)

``kind`` 1 = a client's fresh ciphertexts (SEAL's seeded serialization: c0
and the seed of c1), 2 = a sum made by the server (a full ciphertext).
Version 1 carried TenSEAL CKKSVector bytes; it is refused.
``summands`` is informative (the server's count); no decision trusts it.
Parsing checks every length before reading; nothing here touches SEAL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ...exceptions import MalformedCiphertext, OversizedMessage, ShapeMismatch, WrongKey

__all__ = ["Kind", "Envelope", "encode_envelope", "decode_envelope", "MAGIC", "VERSION"]

MAGIC = b"FHCK"
VERSION = 2
_HEAD = struct.Struct("<4sBB8s8s8sII")
_LEN = struct.Struct("<I")


class Kind(IntEnum):
    FRESH = 1
    SUM = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    kind: Kind
    fingerprint: bytes
    key_id: bytes
    layout: bytes
    summands: int
    chunks: tuple[bytes, ...] = field(repr=False)


def encode_envelope(env: Envelope) -> bytes:
    parts = [_HEAD.pack(MAGIC, VERSION, int(env.kind), env.fingerprint, env.key_id, env.layout,
                        env.summands, len(env.chunks))]
    for c in env.chunks:
        parts += [_LEN.pack(len(c)), c]
    return b"".join(parts)


def decode_envelope(blob: bytes, *, fingerprint: bytes, key_id: bytes, layout: bytes, chunks: int,
                    max_chunk_bytes: int, kind: Kind | None = None,
                    sender: int | None = None) -> Envelope:
    """Parse and check the envelope against what this party expects."""
    who = "" if sender is None else f"sender {sender}: "
    blob = bytes(blob)
    if len(blob) < _HEAD.size:
        raise MalformedCiphertext(f"{who}ciphertext message truncated ({len(blob)} bytes)", sender=sender)
    magic, version, k, fp, kid, lay, summands, n = _HEAD.unpack_from(blob)
    if magic != MAGIC:
        raise MalformedCiphertext(f"{who}not a CKKS ciphertext message (bad magic)", sender=sender)
    if version != VERSION:
        raise MalformedCiphertext(f"{who}CKKS message version {version}, expected {VERSION}", sender=sender)
    if k not in (1, 2) or (kind is not None and k != kind):
        raise MalformedCiphertext(f"{who}CKKS message kind {k} not expected here", sender=sender)
    if fp != fingerprint or kid != key_id:
        raise WrongKey(f"{who}ciphertext made under another parameter set or key epoch", sender=sender)
    if lay != layout:
        raise ShapeMismatch(f"{who}ciphertext packs another layout than this pass asked for",
                            sender=sender)
    if n != chunks:
        raise ShapeMismatch(f"{who}{n} ciphertexts, the layout needs {chunks}", sender=sender)
    pos, out = _HEAD.size, []
    for _ in range(n):
        if pos + _LEN.size > len(blob):
            raise MalformedCiphertext(f"{who}ciphertext message truncated", sender=sender)
        (size,) = _LEN.unpack_from(blob, pos)
        pos += _LEN.size
        if size > max_chunk_bytes:
            raise OversizedMessage(f"{who}ciphertext of {size} bytes, at most {max_chunk_bytes} here",
                                   sender=sender)
        if pos + size > len(blob):
            raise MalformedCiphertext(f"{who}ciphertext of {size} bytes truncated", sender=sender)
        out.append(blob[pos:pos + size])
        pos += size
    if pos != len(blob):
        raise MalformedCiphertext(f"{who}{len(blob) - pos} trailing bytes", sender=sender)
    return Envelope(kind=Kind(k), fingerprint=fp, key_id=kid, layout=lay, summands=summands,
                    chunks=tuple(out))
