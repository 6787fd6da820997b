"""Sending the consortium secret bundle from a designated member to another.

X25519 between the sender's and the receiver's long-term keys (their public
keys are exchanged and checked out of band, e.g. pinned in the consortium's
membership list), HKDF-SHA256 with a fresh 32-byte salt to a 256-bit key,
AES-256-GCM with a fresh 12-byte nonce. The associated data binds the
purpose, the sender and the receiver, so a sealed bundle opens only for the
intended receiver, from the named sender, for this purpose.

    b"FHKT" | version u8 | salt 32 | nonce 12 | AES-GCM ciphertext + tag 16
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ...exceptions import MalformedMessage

__all__ = ["new_identity", "seal_bundle", "open_bundle", "PURPOSE"]

MAGIC = b"FHKT"
VERSION = 1
PURPOSE = "fedhft-secure/ckks-secret-bundle/v1"
_HEAD = struct.Struct("<4sB32s12s")


def new_identity(*, entropy: Callable[[int], bytes] = os.urandom) -> X25519PrivateKey:
    """A member's long-term X25519 key, from ``entropy`` (os.urandom)."""
    return X25519PrivateKey.from_private_bytes(entropy(32))


def _aad(sender: str, receiver: str, purpose: str) -> bytes:
    parts = [p.encode() for p in (purpose, sender, receiver)]
    return b"".join(struct.pack("<I", len(p)) + p for p in parts)


def _key(own: X25519PrivateKey, peer: X25519PublicKey, salt: bytes, aad: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=aad).derive(own.exchange(peer))


def seal_bundle(bundle: bytes, *, sender: str, receiver: str, sender_key: X25519PrivateKey,
                receiver_public: X25519PublicKey, purpose: str = PURPOSE,
                entropy: Callable[[int], bytes] = os.urandom) -> bytes:
    salt, nonce = entropy(32), entropy(12)
    aad = _aad(sender, receiver, purpose)
    ct = AESGCM(_key(sender_key, receiver_public, salt, aad)).encrypt(nonce, bundle, aad)
    return _HEAD.pack(MAGIC, VERSION, salt, nonce) + ct


def open_bundle(sealed: bytes, *, sender: str, receiver: str, receiver_key: X25519PrivateKey,
                sender_public: X25519PublicKey, purpose: str = PURPOSE) -> bytes:
    """The bundle, or MalformedMessage if it was altered, or not sealed by ``sender`` for ``receiver``."""
    if len(sealed) < _HEAD.size + 16:
        raise MalformedMessage("sealed key bundle is truncated")
    magic, version, salt, nonce = _HEAD.unpack_from(sealed)
    if magic != MAGIC or version != VERSION:
        raise MalformedMessage("not a sealed key bundle of this version")
    aad = _aad(sender, receiver, purpose)
    try:
        return AESGCM(_key(receiver_key, sender_public, salt, aad)).decrypt(nonce, sealed[_HEAD.size:], aad)
    except InvalidTag:
        raise MalformedMessage("sealed key bundle fails authentication (altered, or wrong sender, "
                               "receiver or purpose)") from None
