"""CKKS operations: clients encrypt and decrypt, the server adds ciphertexts.

``CkksClient.encrypt``: tensors -> packed -> one SEAL ciphertext per full
chunk of N/2 slots, symmetric encryption at the only data level q0, saved
*seeded* (c0 and the 64-byte seed of c1: about 2 coefficients per value).
``CkksServer.weighted_sum``: loads each upload (SEAL expands the seed; this
needs the parameters only) and computes Σ_i k_i · Enc(x_i) with public
integers 0 <= k_i <= 2^weight_bits (double-and-add: additions only, no
rescale); the sum is sent in full (4 coefficients per value).
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tenseal import sealapi

from ...exceptions import LocalProtocolError, MalformedCiphertext, ReplayedMessage, ValueOutOfRange
from .keys import PublicBundle, SecretBundle, public_context, secret_context
from .packing import Layout, layout_for, pack, unpack
from .params import CkksParams
from .seal_io import HEADER, canonical, ciphertext_bytes, load_ciphertext, seeded_bytes
from .wire import Envelope, Kind, decode_envelope, encode_envelope

__all__ = ["CkksClient", "CkksServer", "Upload", "flood_noise", "max_content", "max_chunk_bytes"]


def flood_noise(flood_key: bytes, ciphertext: bytes, count: int, bound: float) -> np.ndarray:
    """``count`` values uniform in [-bound, bound), a function of the key and the ciphertext only."""
    seed = hmac.new(flood_key, b"fedhft-ckks-flood\x00" + hashlib.sha256(ciphertext).digest(),
                    hashlib.sha256).digest()
    raw = np.frombuffer(hashlib.shake_256(seed).digest(8 * count), dtype="<u8")
    unit = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53  # exact, in [0, 1)
    return (2.0 * unit - 1.0) * bound


def max_content(params: CkksParams, kind: Kind) -> int:
    """Largest uncompressed SEAL ciphertext (after its header) a party accepts of this kind.

    SEAL stores 8 bytes per coefficient plus metadata (measured: 8N + 178 bytes for an
    upload -- one polynomial of N coefficients and the seed of the other -- and
    16N + 97 for a sum). A full ciphertext sent as an upload is refused as oversized.
    """
    polys = 1 if kind is Kind.FRESH else 2
    return 8 * polys * params.poly_modulus_degree + 512


def max_chunk_bytes(params: CkksParams, kind: Kind) -> int:
    """Largest chunk on the wire: ``max_content`` plus SEAL's header and zstd's framing."""
    return max_content(params, kind) + 512


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """One sender's loaded ciphertexts for a layout, and the SHA-256 of each one's canonical content."""

    ciphertexts: tuple[sealapi.Ciphertext, ...] = field(repr=False)
    digests: tuple[bytes, ...]


class _Party:
    def __init__(self, params: CkksParams, key_id: bytes, seal: sealapi.SEALContext) -> None:
        self.params = params
        self.key_id = key_id
        self.seal = seal  # parameters only: enough to load and add, never to decrypt
        self._parms_id = seal.first_parms_id()  # the data level [q0]

    def layout(self, shapes: Mapping[str, tuple[int, ...]]) -> Layout:
        return layout_for(shapes, slots=self.params.slots)

    def _parse(self, blob: bytes, layout: Layout, kind: Kind, sender: int | None) -> tuple[Envelope, Upload]:
        env = decode_envelope(blob, fingerprint=self.params.fingerprint, key_id=self.key_id,
                              layout=layout.digest, chunks=layout.num_ciphertexts,
                              max_chunk_bytes=max_chunk_bytes(self.params, kind), kind=kind, sender=sender)
        who = "" if sender is None else f"sender {sender}: "
        cts, digests = [], []
        for i, chunk in enumerate(env.chunks):
            canon = canonical(chunk, max_content=max_content(self.params, kind), sender=sender)
            digests.append(hashlib.sha256(canon[HEADER.size:]).digest())  # framing aside
            ct = load_ciphertext(self.seal, canon, sender=sender)
            if not (ct.size() == 2 and ct.coeff_modulus_size() == 1 and ct.is_ntt_form()
                    and ct.parms_id() == self._parms_id and ct.scale == self.params.scale):
                raise MalformedCiphertext(f"{who}ciphertext {i} has the wrong size, level or scale",
                                          sender=sender)
            cts.append(ct)
        return env, Upload(ciphertexts=tuple(cts), digests=tuple(digests))

    def _envelope(self, kind: Kind, layout: Layout, summands: int, chunks: Sequence[bytes]) -> bytes:
        return encode_envelope(Envelope(kind=kind, fingerprint=self.params.fingerprint,
                                        key_id=self.key_id, layout=layout.digest, summands=summands,
                                        chunks=tuple(chunks)))


class CkksClient(_Party):
    """A consortium member: holds the secret bundle."""

    def __init__(self, secret: SecretBundle) -> None:
        ctx = secret_context(secret)
        super().__init__(secret.params, secret.key_id, ctx.seal_context().data)
        self._ctx = ctx  # owns the SEAL context the objects below were made for
        sk = ctx.secret_key().data
        self._encryptor = sealapi.Encryptor(self.seal, sk)
        self._decryptor = sealapi.Decryptor(self.seal, sk)
        self._encoder = sealapi.CKKSEncoder(self.seal)
        self._flood_key = secret.flood_key

    def __repr__(self) -> str:
        return f"CkksClient(key_id={self.key_id.hex()})"

    def encrypt(self, tensors: Mapping[str, torch.Tensor], *, layout: Layout | None = None) -> bytes:
        """Fresh seeded ciphertexts of ``tensors`` (already multiplied by the client's weight p_ij)."""
        layout = layout or self.layout({n: tuple(t.shape) for n, t in tensors.items()})
        flat = pack(layout, tensors)
        if not np.isfinite(flat).all():
            raise ValueOutOfRange("a value to encrypt is not finite")
        if flat.size and np.abs(flat).max() > self.params.value_bound:
            raise ValueOutOfRange(f"|value| {np.abs(flat).max():.4g} above the bound "
                                  f"{self.params.value_bound} these CKKS parameters were derived for")
        s, chunks = self.params.slots, []
        for i, size in enumerate(layout.chunk_sizes()):
            plain = sealapi.Plaintext()
            self._encoder.encode(flat[i * s:i * s + size].tolist(), self.params.scale, plain)
            chunks.append(seeded_bytes(self._encryptor, plain))
        return self._envelope(Kind.FRESH, layout, 1, chunks)

    def decrypt(self, blob: bytes, *, layout: Layout) -> dict[str, torch.Tensor]:
        """The sum Σ k_i x_i / 2^weight_bits as members release it: flooded, float32, bit-identical on every
        member."""
        return unpack(layout, self.open_values(blob, layout=layout))

    def open_values(self, blob: bytes, *, layout: Layout, flood: bool = True) -> np.ndarray:
        """The flat float64 values of a sum, before the float32 cast of ``decrypt``.

        ``flood=False`` is for tests and measurements only: unflooded values must not leave a client. They
        are float64 because the decryption error (~1e-11 at the run's scales) lies far below float32's
        resolution: measured after the cast, it would be the cast's rounding.
        """
        _, up = self._parse(blob, layout, Kind.SUM, None)
        parts = []
        for ct, size in zip(up.ciphertexts, layout.chunk_sizes(), strict=True):
            plain = sealapi.Plaintext()
            self._decryptor.decrypt(ct, plain)
            parts.append(np.asarray(self._encoder.decode_double(plain)[:size], dtype=np.float64))
        flat = np.concatenate(parts)[:layout.total] / float(2**self.params.weight_bits)
        limit = self.params.max_clients * self.params.value_bound + self.params.precision
        if flat.size and not (np.isfinite(flat).all() and np.abs(flat).max() <= limit):
            raise MalformedCiphertext("a decrypted sum lies outside what max_clients values can add "
                                      "up to: a ciphertext in it was not made under this key")
        if flood:
            flat = flat + flood_noise(self._flood_key, bytes(blob), flat.size, self.params.flood_bound)
        return flat


class CkksServer(_Party):
    """The aggregator: the parameters only (a SEALContext, no key of any kind); adds, never decrypts."""

    def __init__(self, public: PublicBundle) -> None:
        ctx = public_context(public)  # refuses a bundle that carries a secret key
        super().__init__(public.params, public.key_id, ctx.seal_context().data)
        self.ctx = ctx  # keyless; kept so the SEAL context it owns stays alive
        self._evaluator = sealapi.Evaluator(self.seal)

    def load(self, blob: bytes, *, layout: Layout, sender: int | None = None) -> Upload:
        """One sender's upload, checked and loaded; typed RemoteProtocolError naming the sender if bad."""
        return self._parse(blob, layout, Kind.FRESH, sender)[1]

    def weighted_sum(self, blobs: Mapping[int, bytes], weights: Mapping[int, int] | None = None, *,
                     layout: Layout) -> bytes:
        """Σ_i k_i Enc(x_i) over the senders in ``blobs`` (k_i = 1 when ``weights`` is None).

        Raises a RemoteProtocolError naming the first sender whose bytes are bad
        (``ReplayedMessage`` for a chunk another sender already sent); the caller
        drops that sender and sums again.
        """
        loaded: dict[int, Upload] = {}
        seen: set[bytes] = set()
        for sender in sorted(blobs):
            up = self.load(blobs[sender], layout=layout, sender=sender)
            if seen & set(up.digests) or len(set(up.digests)) < len(up.digests):
                raise ReplayedMessage(f"sender {sender}: a ciphertext already sent in this sum", sender=sender)
            seen |= set(up.digests)
            loaded[sender] = up
        return self.add(loaded, weights, layout=layout)

    def add(self, loaded: Mapping[int, Upload], weights: Mapping[int, int] | None = None, *,
            layout: Layout) -> bytes:
        """The sum message of already loaded uploads (consumes them: they are added in place)."""
        if len(loaded) > self.params.max_clients:
            raise LocalProtocolError(f"{len(loaded)} summands, the parameters allow "
                                     f"{self.params.max_clients}")
        top = 2**self.params.weight_bits
        acc: list[sealapi.Ciphertext] | None = None
        used = 0
        for sender in sorted(loaded):
            k = 1 if weights is None else weights[sender]
            if not isinstance(k, int) or not 0 <= k <= top:
                raise LocalProtocolError(f"weight of sender {sender} is {k!r}, allowed integers 0..{top}")
            if k == 0:
                continue
            scaled = [self._times(ct, k) for ct in loaded[sender].ciphertexts]
            if acc is None:
                acc = scaled
            else:
                for a, b in zip(acc, scaled, strict=True):
                    self._evaluator.add_inplace(a, b)
            used += 1
        if acc is None:
            raise LocalProtocolError("a sum over no sender (the cohort threshold should prevent this)")
        return self._envelope(Kind.SUM, layout, used, [ciphertext_bytes(a) for a in acc])

    def _times(self, ct: sealapi.Ciphertext, k: int) -> sealapi.Ciphertext:
        """k · ct by double-and-add (exact in the ciphertext ring; no rescale, no key). May return ``ct``."""
        out: sealapi.Ciphertext | None = None
        base = ct
        while k:
            if k & 1:
                if out is None:
                    out = base
                else:
                    self._evaluator.add_inplace(out, base)
            k >>= 1
            if k:
                doubled = sealapi.Ciphertext()
                self._evaluator.add(base, base, doubled)
                base = doubled
        assert out is not None
        return out
