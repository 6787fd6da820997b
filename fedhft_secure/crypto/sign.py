"""Ed25519 identity keys: advertised keys are signed, so a server cannot substitute them."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..exceptions import MalformedMessage

__all__ = ["IdentityKey", "verify"]


@dataclass(frozen=True, slots=True)
class IdentityKey:
    secret: Ed25519PrivateKey
    public: bytes

    @classmethod
    def generate(cls) -> "IdentityKey":
        sk = Ed25519PrivateKey.generate()
        return cls(sk, sk.public_key().public_bytes(encoding=serialization.Encoding.Raw,
                                                    format=serialization.PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return self.secret.sign(message)


def verify(public: bytes, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise MalformedMessage("signature does not verify: a key was substituted or altered") from None
