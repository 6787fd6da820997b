"""Attacks on the ``ckks`` consortium sum (threat model ``consortium-ckks``).

The server holds the public bundle (parameters, a TenSEAL context without any
key) and every client's ciphertext. Each attack returns what the adversary
got, as in ``attacks.py``: the cosine similarity between a victim's true
vector (uniform in [-1, 1], d values) and the adversary's best estimate, or a
count of failed checks. The attacks that *succeed* back the threat model's
``not_claimed`` list: they show what it says the scheme does not protect.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts
from tenseal import sealapi
import torch

from ..exceptions import ConfigError, FedHFTError
from ..runtime.keyfiles import PUBLIC_NAME, SECRET_NAME, keygen, read_public, read_secret
from ..secure.api import Contribution, Expected, SessionInfo
from ..secure.ckks import derive_params, generate_keys
from ..secure.ckks.keys import public_context
from ..secure.ckks.sum import SUM_KEY, CkksSum, payload_key
from ..secure.ckks.backend import max_chunk_bytes
from ..secure.ckks.wire import Kind, decode_envelope
from .attacks import cosine

__all__ = ["CkksRun", "reconstruction_ckks", "member_decrypts", "replayed_ciphertext", "flooding",
           "key_material"]


def _vectors(n: int, d: int, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)  # float32 values, as a member's tensors: the truth carries no cast
    return {i: rng.uniform(-1, 1, d).astype(np.float32).astype(np.float64) for i in range(n)}


@dataclass
class CkksRun:
    """One consortium key, n members and the server; ``round`` sums every member's vector."""

    n: int = 6
    d: int = 2000
    flood_bits: int = 20

    def __post_init__(self) -> None:
        self.params = derive_params(max_clients=self.n, value_bound=2.0, precision=1e-4, flood_bits=self.flood_bits)
        bundle = generate_keys(self.params)
        self.member = CkksSum(secret=bundle)  # every member holds the same secret bundle
        self.server = CkksSum(public=bundle.public())
        self.expected = Expected(shared={"v": (self.d,)}, per_cluster={})
        self.layout = self.server.layout(self.expected)

    def payloads(self, vecs: dict[int, np.ndarray]) -> dict[int, bytes]:
        """Each member's fresh ciphertext of its vector (what the server receives)."""
        out = {}
        for i, v in vecs.items():
            p = self.member.client_session(i, 0).payload(Contribution(shared={"v": torch.from_numpy(v)}), slot=0,
                                                         weights=[1.0], expected=self.expected)
            out[i] = p[payload_key(0)].numpy().tobytes()
        return out

    def server_sum(self, blobs: dict[int, bytes]) -> bytes:
        """The server's session over these ciphertexts: checks each, adds them."""
        info = SessionInfo(round=0, epoch=0, cohort=tuple(sorted(blobs)), clusters=1, passes=1,
                           weights={i: (1.0,) for i in blobs})
        s = self.server.server_session(info)
        s.begin_pass(0, slot=0, expected=self.expected)
        for i, b in sorted(blobs.items()):
            s.add_payload(i, {payload_key(0): torch.frombuffer(bytearray(b), dtype=torch.uint8)})
        s.end_inputs()
        sums = s.sums()
        assert sums is not None
        return sums[0][SUM_KEY].numpy().tobytes()

    def open(self, blob: bytes, *, flood: bool = True) -> np.ndarray:
        """A member opens a sum ciphertext: what it releases (flooded, float32), or with ``flood=False`` the
        raw float64 decryption, for measurement only."""
        assert self.member.client is not None
        if not flood:
            return self.member.client.open_values(blob, layout=self.layout, flood=False)
        return self.member.client.decrypt(blob, layout=self.layout)["v"].double().numpy()


def reconstruction_ckks(*, n: int = 6, d: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The server alone: it tries to decrypt the victim's ciphertext with its own context (refused: no
    secret key), then reads the ciphertext bytes as numbers, the only estimate left to it."""
    run = CkksRun(n=n, d=d)
    vecs = _vectors(n, d, seed)
    blobs = run.payloads(vecs)
    srv = run.server.server
    assert srv is not None
    env = decode_envelope(blobs[0], fingerprint=srv.params.fingerprint, key_id=srv.key_id,
                          layout=run.layout.digest, chunks=run.layout.num_ciphertexts,
                          max_chunk_bytes=max_chunk_bytes(srv.params, Kind.FRESH), kind=Kind.FRESH, sender=0)
    try:  # decrypting needs a secret key; the server's own context holds none, so TenSEAL refuses
        sk = srv.ctx.secret_key().data
    except Exception as exc:  # noqa: BLE001 - TenSEAL raises a plain ValueError without the key
        refused = f"{type(exc).__name__}: {exc}"
        raw = np.frombuffer(b"".join(env.chunks), dtype=np.uint8).astype(np.float64)
        est = raw[-d:] - raw.mean()  # the ciphertext bytes read as numbers: all that is left
    else:
        refused = ""
        plain, ct = sealapi.Plaintext(), srv.load(blobs[0], layout=run.layout, sender=0).ciphertexts[0]
        sealapi.Decryptor(srv.seal, sk).decrypt(ct, plain)
        est = np.asarray(sealapi.CKKSEncoder(srv.seal).decode_double(plain)[:d], dtype=np.float64)
    return {"cosine": cosine(est, vecs[0]), "decrypt_refused": refused, "ciphertext_bytes": len(blobs[0]),
            "server_context_has_secret_key": bool(srv.ctx.has_secret_key())}


def member_decrypts(*, n: int = 6, d: int = 2000, seed: int = 0) -> float:
    """Not claimed: one member colluding with the server (or a leaked key; no forward secrecy) opens any
    ciphertext the server holds. The server makes a 'sum' of the victim's ciphertext alone."""
    run = CkksRun(n=n, d=d)
    vecs = _vectors(n, d, seed)
    blobs = run.payloads(vecs)
    assert run.server.server is not None
    alone = run.server.server.weighted_sum({0: blobs[0]}, layout=run.layout)
    return cosine(run.open(alone), vecs[0])


def replayed_ciphertext(*, n: int = 6, d: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Not claimed (integrity): the server swaps the victim's ciphertext of this round for the one it sent
    in an earlier round under the same key. Figure: cosine between the error of the members' opened sum
    and the substitution (1: it went through unnoticed; 0: refused)."""
    run = CkksRun(n=n, d=d)
    old, new = _vectors(n, d, seed), _vectors(n, d, seed + 1)
    old_blobs, new_blobs = run.payloads(old), run.payloads(new)
    try:
        opened = run.open(run.server_sum({**new_blobs, 0: old_blobs[0]}))
    except FedHFTError as exc:
        return {"cosine": 0.0, "refused": f"{type(exc).__name__}: {exc}"}
    honest = sum(new.values())
    return {"cosine": cosine(opened - honest, old[0] - new[0]), "refused": ""}


def flooding(*, n: int = 6, d: int = 2000, seed: int = 0) -> dict[str, float]:
    """IND-CPA^D (Li-Micciancio): an adversary who knows the plaintexts (it chose them) and sees opened
    values learns the decryption error, which is linear in the secret key. Figure: cosine between the raw
    decryption error and the error of what members release (flooded); 1 without flooding."""
    run = CkksRun(n=n, d=d)
    vecs = _vectors(n, d, seed)
    blob = run.server_sum(run.payloads(vecs))
    truth = sum(vecs.values())
    raw, released = run.open(blob, flood=False) - truth, run.open(blob) - truth
    return {"cosine": cosine(raw, released), "cosine_without_flooding": cosine(raw, raw),
            "raw_error_std": float(raw.std()), "released_error_std": float(released.std()),
            "flood_bits": float(run.flood_bits)}


def key_material(*, members: int = 3) -> dict[str, Any]:
    """The closest measurable check of 'the server holds no secret key': keygen's files and contexts.
    Figure: the number of failed checks (member files readable beyond their owner; a secret key in the
    server's file or context; a widened member file read without refusal)."""
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "keys"
        keygen(members, out, derive_params(max_clients=members, value_bound=2.0, precision=1e-4))
        for i in range(members):
            if stat.S_IMODE((out / SECRET_NAME.format(i=i)).stat().st_mode) & 0o077:
                failed.append(f"member_{i} file readable by group/others")
        public = read_public(out / PUBLIC_NAME)
        if ts.context_from(public.context).has_secret_key():
            failed.append("the server's file holds a secret key")
        if public_context(public).has_secret_key():
            failed.append("the server's context holds a secret key")
        widened = out / SECRET_NAME.format(i=0)
        os.chmod(widened, 0o644)
        try:
            read_secret(widened)
            failed.append("a member file readable by others was read without refusal")
        except ConfigError:
            pass
    return {"failed": len(failed), "failures": failed, "checks": members + 3}
