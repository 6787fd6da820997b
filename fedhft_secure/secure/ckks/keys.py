"""Consortium key material: a secret bundle for members, a public one for the server.

Every member holds the same ``SecretBundle``: the TenSEAL context with the
CKKS secret key (symmetric encryption, no public key, no relinearization or
Galois keys), a 32-byte flooding key, and a key id naming this key epoch. The
server holds a ``PublicBundle``: the parameters only (a TenSEAL context
without any key; the server uses nothing of it but its SEALContext, which can
load seeded uploads, add ciphertexts and never decrypt). Adding needs no
evaluation key, so none is generated or shipped.

Randomness: the flooding key and key id come from ``entropy`` (``os.urandom``
unless a test injects another source); the CKKS secret key from SEAL's
generator, seeded from the operating system's random device.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import tenseal as ts

from ...exceptions import MalformedMessage, MissingKey
from .params import CkksParams

__all__ = ["SecretBundle", "PublicBundle", "generate_keys", "secret_context", "public_context",
           "SECRET_MAGIC", "PUBLIC_MAGIC"]

SECRET_MAGIC = b"FHCKSK"
PUBLIC_MAGIC = b"FHCKPK"
VERSION = 1
_HEAD = struct.Struct("<6sB8sI")  # magic, version, key id, params json length


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicBundle:
    params: CkksParams
    key_id: bytes  # 8 bytes, the key epoch
    context: bytes = field(repr=False)  # TenSEAL context without any key

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.params.to_dict(), sort_keys=True).encode()
        return _HEAD.pack(PUBLIC_MAGIC, VERSION, self.key_id, len(meta)) + meta + self.context

    @classmethod
    def from_bytes(cls, blob: bytes) -> PublicBundle:
        params, key_id, rest = _read(blob, PUBLIC_MAGIC)
        return cls(params=params, key_id=key_id, context=rest)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretBundle:
    """What every member holds. ``repr`` shows no secret."""

    params: CkksParams
    key_id: bytes
    flood_key: bytes = field(repr=False)  # 32 bytes
    context: bytes = field(repr=False)  # TenSEAL context with the secret key

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.params.to_dict(), sort_keys=True).encode()
        return (_HEAD.pack(SECRET_MAGIC, VERSION, self.key_id, len(meta)) + meta + self.flood_key
                + self.context)

    @classmethod
    def from_bytes(cls, blob: bytes) -> SecretBundle:
        params, key_id, rest = _read(blob, SECRET_MAGIC)
        if len(rest) < 33:
            raise MalformedMessage("secret key bundle is truncated")
        return cls(params=params, key_id=key_id, flood_key=rest[:32], context=rest[32:])

    def public(self) -> PublicBundle:
        ctx = ts.context_from(self.context)
        return PublicBundle(params=self.params, key_id=self.key_id, context=_serialize(ctx, secret=False))


def _read(blob: bytes, magic: bytes) -> tuple[CkksParams, bytes, bytes]:
    if len(blob) < _HEAD.size:
        raise MalformedMessage("key bundle is truncated")
    got, version, key_id, n = _HEAD.unpack_from(blob)
    if got != magic:
        raise MalformedMessage(f"not a {'secret' if magic == SECRET_MAGIC else 'public'} CKKS key bundle")
    if version != VERSION:
        raise MalformedMessage(f"key bundle version {version}, expected {VERSION}")
    if len(blob) < _HEAD.size + n:
        raise MalformedMessage("key bundle is truncated")
    try:
        params = CkksParams.from_dict(json.loads(blob[_HEAD.size:_HEAD.size + n]))
    except (ValueError, AttributeError) as exc:
        raise MalformedMessage(f"key bundle parameters do not parse: {exc}") from None
    return params, key_id, blob[_HEAD.size + n:]


def _serialize(ctx: ts.Context, *, secret: bool) -> bytes:
    return ctx.serialize(save_public_key=False, save_secret_key=secret, save_galois_keys=False,
                         save_relin_keys=False)


def generate_keys(params: CkksParams, *, entropy: Callable[[int], bytes] = os.urandom) -> SecretBundle:
    """A fresh consortium key (a new epoch: every old ciphertext is refused under it)."""
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
                     encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC)
    return SecretBundle(params=params, key_id=entropy(8), flood_key=entropy(32),
                        context=_serialize(ctx, secret=True))


def _load(blob: bytes, params: CkksParams) -> ts.Context:
    try:
        ctx = ts.context_from(blob)
    except Exception as exc:  # noqa: BLE001 - TenSEAL raises assorted C++ errors
        raise MalformedMessage(f"TenSEAL context does not load: {exc}") from None
    ctx.global_scale = params.scale
    ctx.auto_rescale = False
    ctx.auto_relin = False
    ctx.auto_mod_switch = False
    return ctx


def secret_context(bundle: SecretBundle) -> ts.Context:
    ctx = _load(bundle.context, bundle.params)
    if not ctx.has_secret_key():
        raise MissingKey("the secret key bundle holds no secret key")
    return ctx


def public_context(bundle: PublicBundle) -> ts.Context:
    ctx = _load(bundle.context, bundle.params)
    if ctx.has_secret_key():
        raise MalformedMessage("a public CKKS context must not hold a secret key: refusing it")
    return ctx
