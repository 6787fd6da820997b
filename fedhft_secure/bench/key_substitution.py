"""A server that substitutes advertised keys (threat model ``semi-malicious-server``).

Man in the middle on the share channels: in the victim's key directory the
server replaces every neighbour's encryption key with its own, and in every
neighbour's directory the victim's. Each share the victim sends (of its mask
key s and its self mask b) is then encrypted to the server, which reads it
and re-encrypts it to the neighbour it was meant for, so the session runs to
the end and the sum is right. Holding every share, the server rebuilds s and
b and strips all masks off the victim's input. With signed keys
(``secure.signed_keys``) the directory's signatures no longer match and the
clients refuse it: the victim's input never arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..crypto.aead import associated_data, open_share, seal_share
from ..crypto.kex import KeyPair
from ..crypto.shamir import SHARE_BYTES, reconstruct
from ..crypto.sign import IdentityKey
from ..exceptions import AggregationAborted, LocalProtocolError
from ..secure.masking import MaskingSum
from ..secure.masking.client import channel_key
from ..secure.masking.messages import ForwardedShares, KeyDirectory
from ..wire import decode, encode
from .attacks import cosine, strip_masks
from .session import MaskingRun

__all__ = ["key_substitution"]

_PURPOSE = b"fedhft-share"


def key_substitution(*, signed: bool, n: int = 6, d: int = 2000, seed: int = 0, victim: int = 0) -> dict[str, Any]:
    """Figure: cosine between the victim's vector and what the server rebuilt (0: it got nothing)."""
    rng = np.random.default_rng(seed)
    vecs = {i: rng.uniform(-1, 1, d) for i in range(n)}
    ids = {i: IdentityKey.generate() for i in range(n)} if signed else None
    backend = MaskingSum(identities=ids, threat="semi-malicious" if signed else "honest-but-curious")
    mine = KeyPair.generate()
    got: dict[int, bytes] = {}  # neighbour -> the victim's shares meant for it, read by the server

    def real_enc(run: MaskingRun, c: int) -> bytes:
        return bytes(run.server.adverts[c].keys["enc"].numpy())

    def tamper(stage: str, i: int, blob: bytes) -> bytes:
        if stage == "directory":
            m = decode(blob, KeyDirectory)
            swap = [k for k in m.peers if k.endswith("/enc") and (i == victim or k == f"{victim}/enc")]
            peers = {**m.peers, **{k: torch.frombuffer(bytearray(mine.public), dtype=torch.uint8) for k in swap}}
            return encode(KeyDirectory(round=m.round, epoch=m.epoch, peers=peers))
        if stage == "forward":
            m = decode(blob, ForwardedShares)
            shares = dict(m.shares)
            for key, ct in m.shares.items():
                if not key.isdigit() or (i != victim and int(key) != victim):
                    continue
                u = int(key)  # sender of this share ciphertext, i its receiver
                ad = associated_data(u, i, run.round, m.epoch, _PURPOSE)
                # u believes the server's key is its peer's: the channel is the server's and u's
                plain = open_share(channel_key(mine, real_enc(run, u), run.round, m.epoch), bytes(ct.numpy()), ad)
                if u == victim:
                    got[i] = plain
                    out = seal_share(channel_key(mine, real_enc(run, i), run.round, m.epoch), plain, ad)
                else:
                    out = seal_share(channel_key(mine, real_enc(run, victim), run.round, m.epoch), plain, ad)
                shares[key] = torch.frombuffer(bytearray(out), dtype=torch.uint8)
            return encode(ForwardedShares(round=m.round, epoch=m.epoch, shares=shares))
        return blob

    run = MaskingRun(vecs, backend, tamper=tamper)
    try:
        sums = run.run()
    except AggregationAborted as exc:
        return {"cosine": 0.0, "outcome": f"aborted: {exc}", "shares_read": len(got)}
    if victim not in run.server.inputs:
        return {"cosine": 0.0, "outcome": "the victim refused the directory: no input", "shares_read": len(got)}
    t = run.server.params.threshold
    try:
        s = reconstruct({v + 1: p[:SHARE_BYTES] for v, p in got.items()}, t)
        b = reconstruct({v + 1: p[SHARE_BYTES:2 * SHARE_BYTES] for v, p in got.items()}, t)
    except LocalProtocolError as exc:
        return {"cosine": 0.0, "outcome": f"too few shares: {exc}", "shares_read": len(got)}
    est = strip_masks(run, victim, b=b, s=KeyPair.from_secret(s))
    assert sums is not None
    error = float(np.abs(sums[0]["v"].double().numpy() - sum(vecs.values())).max())
    return {"cosine": cosine(est, vecs[victim]), "outcome": "session completed", "shares_read": len(got),
            "sum_max_error": error}  # the sum stays right: nothing for the clients to notice
