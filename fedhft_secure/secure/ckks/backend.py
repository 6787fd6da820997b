"""CKKS operations: clients encrypt and decrypt, the server adds ciphertexts.

``CkksClient.encrypt``: tensors -> packed -> one TenSEAL CKKSVector per full
chunk of N/2 slots, symmetric encryption at the only data level q0 -> bytes.
``CkksServer.weighted_sum``: Σ_i k_i · Enc(x_i) with public integers
0 <= k_i <= 2^weight_bits (double-and-add: additions only, no rescale).
``CkksClient.decrypt``: Σ_i k_i x_i / 2^weight_bits + flooding noise.

Flooding is deterministic so that every member gets bit-identical values:
the noise is uniform in [-F, F] (F = ``params.flood_bound``), drawn from
SHAKE-256 keyed by HMAC-SHA256(flood key, SHA-256 of the ciphertext bytes).
The server, who lacks the flood key, cannot predict or remove it; the same
ciphertext always gets the same noise, so repeating a decryption reveals
nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import numpy as np
import tenseal as ts
import torch

from ...exceptions import LocalProtocolError, MalformedCiphertext, ValueOutOfRange
from .keys import PublicBundle, SecretBundle, public_context, secret_context
from .packing import Layout, layout_for, pack, unpack
from .params import CkksParams
from .wire import Envelope, Kind, decode_envelope, encode_envelope

__all__ = ["CkksClient", "CkksServer", "flood_noise"]


def flood_noise(flood_key: bytes, ciphertext: bytes, count: int, bound: float) -> np.ndarray:
    """``count`` values uniform in [-bound, bound), a function of the key and the ciphertext only."""
    seed = hmac.new(flood_key, b"fedhft-ckks-flood\x00" + hashlib.sha256(ciphertext).digest(),
                    hashlib.sha256).digest()
    raw = np.frombuffer(hashlib.shake_256(seed).digest(8 * count), dtype="<u8")
    unit = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53  # exact, in [0, 1)
    return (2.0 * unit - 1.0) * bound


class _Party:
    def __init__(self, params: CkksParams, key_id: bytes, ctx: ts.Context) -> None:
        self.params = params
        self.key_id = key_id
        self.ctx = ctx
        self._parms_id = ctx.seal_context().data.first_parms_id()
        # A serialized ciphertext is at most 2 polynomials x N coefficients x 8 bytes plus headers.
        self.max_chunk_bytes = 16 * params.poly_modulus_degree + 4096

    def layout(self, shapes: Mapping[str, tuple[int, ...]]) -> Layout:
        return layout_for(shapes, slots=self.params.slots)

    def _parse(self, blob: bytes, layout: Layout, kind: Kind | None,
               sender: int | None) -> tuple[Envelope, list[ts.CKKSVector]]:
        env = decode_envelope(blob, fingerprint=self.params.fingerprint, key_id=self.key_id,
                              layout=layout.digest, chunks=layout.num_ciphertexts,
                              max_chunk_bytes=self.max_chunk_bytes, kind=kind, sender=sender)
        who = "" if sender is None else f"sender {sender}: "
        vecs = []
        for i, (chunk, size) in enumerate(zip(env.chunks, layout.chunk_sizes(), strict=True)):
            try:
                vec = ts.ckks_vector_from(self.ctx, chunk)
                cts = vec.ciphertext()
                ok = (vec.size() == size and len(cts) == 1 and cts[0].size() == 2
                      and cts[0].coeff_modulus_size() == 1 and cts[0].is_ntt_form()
                      and cts[0].parms_id() == self._parms_id and cts[0].scale == self.params.scale)
            except Exception as exc:  # noqa: BLE001 - TenSEAL/SEAL raise assorted C++ errors
                raise MalformedCiphertext(f"{who}ciphertext {i} does not load: {exc}",
                                          sender=sender) from None
            if not ok:
                raise MalformedCiphertext(f"{who}ciphertext {i} has the wrong size, level or scale",
                                          sender=sender)
            vecs.append(vec)
        return env, vecs

    def _envelope(self, kind: Kind, layout: Layout, summands: int, vecs: list[ts.CKKSVector]) -> bytes:
        return encode_envelope(Envelope(kind=kind, fingerprint=self.params.fingerprint,
                                        key_id=self.key_id, layout=layout.digest, summands=summands,
                                        chunks=tuple(v.serialize() for v in vecs)))


class CkksClient(_Party):
    """A consortium member: holds the secret bundle."""

    def __init__(self, secret: SecretBundle) -> None:
        super().__init__(secret.params, secret.key_id, secret_context(secret))
        self._flood_key = secret.flood_key

    def __repr__(self) -> str:
        return f"CkksClient(key_id={self.key_id.hex()})"

    def encrypt(self, tensors: Mapping[str, torch.Tensor], *, layout: Layout | None = None) -> bytes:
        """Fresh ciphertexts of ``tensors`` (already multiplied by the client's weight p_ij)."""
        layout = layout or self.layout({n: tuple(t.shape) for n, t in tensors.items()})
        flat = pack(layout, tensors)
        if not np.isfinite(flat).all():
            raise ValueOutOfRange("a value to encrypt is not finite")
        if flat.size and np.abs(flat).max() > self.params.value_bound:
            raise ValueOutOfRange(f"|value| {np.abs(flat).max():.4g} above the bound "
                                  f"{self.params.value_bound} these CKKS parameters were derived for")
        s = self.params.slots
        vecs = [ts.ckks_vector(self.ctx, flat[i * s:i * s + size].tolist())
                for i, size in enumerate(layout.chunk_sizes())]
        return self._envelope(Kind.FRESH, layout, 1, vecs)

    def decrypt(self, blob: bytes, *, layout: Layout, flood: bool = True) -> dict[str, torch.Tensor]:
        """The sum Σ k_i x_i / 2^weight_bits, flooded; bit-identical on every member.

        ``flood=False`` is for tests and measurements only: unflooded values must not leave a client.
        """
        _, vecs = self._parse(blob, layout, Kind.SUM, None)
        flat = np.concatenate([np.asarray(v.decrypt(), dtype=np.float64) for v in vecs]) \
            if layout.total else np.zeros(0)
        flat = flat[:layout.total] / float(2**self.params.weight_bits)
        limit = self.params.max_clients * self.params.value_bound + self.params.precision
        if flat.size and not (np.isfinite(flat).all() and np.abs(flat).max() <= limit):
            raise MalformedCiphertext("a decrypted sum lies outside what max_clients values can add "
                                      "up to: a ciphertext in it was not made under this key")
        if flood:
            flat = flat + flood_noise(self._flood_key, bytes(blob), flat.size, self.params.flood_bound)
        return unpack(layout, flat)


class CkksServer(_Party):
    """The aggregator: holds the public bundle only, and can add but never decrypt."""

    def __init__(self, public: PublicBundle) -> None:
        super().__init__(public.params, public.key_id, public_context(public))

    def check(self, blob: bytes, *, layout: Layout, sender: int | None = None) -> None:
        """Raise the typed RemoteProtocolError that ``weighted_sum`` would raise for this blob."""
        self._parse(blob, layout, Kind.FRESH, sender)

    def weighted_sum(self, blobs: Mapping[int, bytes], weights: Mapping[int, int] | None = None, *,
                     layout: Layout) -> bytes:
        """Σ_i k_i Enc(x_i) over the senders in ``blobs`` (k_i = 1 when ``weights`` is None).

        Raises a RemoteProtocolError naming the first sender whose bytes are bad;
        the caller drops that sender and sums again.
        """
        if len(blobs) > self.params.max_clients:
            raise LocalProtocolError(f"{len(blobs)} summands, the parameters allow "
                                     f"{self.params.max_clients}")
        top = 2**self.params.weight_bits
        acc: list[ts.CKKSVector] | None = None
        used = 0
        for sender in sorted(blobs):
            k = 1 if weights is None else weights[sender]
            if not isinstance(k, int) or not 0 <= k <= top:
                raise LocalProtocolError(f"weight of sender {sender} is {k!r}, allowed integers 0..{top}")
            _, vecs = self._parse(blobs[sender], layout, Kind.FRESH, sender)
            if k == 0:
                continue
            scaled = [_times(v, k) for v in vecs]
            acc = scaled if acc is None else [a.add_(b) for a, b in zip(acc, scaled, strict=True)]
            used += 1
        if acc is None:
            raise LocalProtocolError("a sum over no sender (the cohort threshold should prevent this)")
        return self._envelope(Kind.SUM, layout, used, acc)


def _times(v: ts.CKKSVector, k: int) -> ts.CKKSVector:
    """k · v by double-and-add (exact in the ciphertext ring; no rescale, no key). Consumes ``v``."""
    out: ts.CKKSVector | None = None
    base = v
    while k:
        if k & 1:
            out = base if out is None else out.add_(base)
        k >>= 1
        if k:
            base = base + base
    assert out is not None
    return out
