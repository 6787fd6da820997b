"""X25519 key agreement and HKDF-SHA256 key derivation."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..exceptions import MalformedMessage

__all__ = ["KeyPair", "agree", "hkdf"]

_RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class KeyPair:
    secret: X25519PrivateKey
    public: bytes  # 32 raw bytes

    @classmethod
    def generate(cls) -> "KeyPair":
        sk = X25519PrivateKey.generate()  # OS randomness
        return cls(sk, sk.public_key().public_bytes(**_RAW))

    @classmethod
    def from_secret(cls, raw: bytes) -> "KeyPair":
        """For test vectors and for a key reconstructed from Shamir shares."""
        sk = X25519PrivateKey.from_private_bytes(raw)
        return cls(sk, sk.public_key().public_bytes(**_RAW))

    def secret_bytes(self) -> bytes:
        return self.secret.private_bytes(encoding=serialization.Encoding.Raw,
                                         format=serialization.PrivateFormat.Raw,
                                         encryption_algorithm=serialization.NoEncryption())


def agree(secret: X25519PrivateKey, peer_public: bytes) -> bytes:
    """Raw X25519 shared secret; a malformed or low-order peer key is a RemoteProtocolError."""
    try:
        return secret.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:
        raise MalformedMessage(f"bad X25519 public key: {exc}") from None


def hkdf(material: bytes, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(material)
