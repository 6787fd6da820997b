"""AES-256-GCM for the encrypted share channel; associated data binds who, to whom, when."""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..exceptions import MalformedMessage

__all__ = ["seal_share", "open_share", "associated_data"]


def associated_data(sender: int, receiver: int, round: int, epoch: int, purpose: bytes) -> bytes:
    return purpose + struct.pack("<IIII", sender, receiver, round, epoch)


def seal_share(key: bytes, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> bytes:
    """nonce (12 random bytes unless given, for vectors) || ciphertext || tag."""
    nonce = os.urandom(12) if nonce is None else nonce
    return nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def open_share(key: bytes, blob: bytes, ad: bytes) -> bytes:
    if len(blob) < 12 + 16:
        raise MalformedMessage("encrypted share too short")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], ad)
    except InvalidTag:
        raise MalformedMessage("encrypted share fails authentication (tampered, or not for us)") from None
