"""Malformed ciphertext messages against the ``ckks`` parties (the masking stages are in ``fuzz.py``).

Two targets: the server's check of a client's fresh ciphertext (what
``add_payload`` runs before adding it), and a member opening a sum. Mutants
of real envelopes: truncated, extended, oversized, garbage, the other kind
(a sum where a fresh ciphertext is expected and back), another version,
another key epoch (a ciphertext made under a different consortium key), a
stale message (another layout's ciphertext) and byte flips (value mutants:
a flipped ciphertext may decrypt to other values, which is not a protocol
error; it must only never crash).
"""

from __future__ import annotations

import random

import numpy as np

from ..secure.ckks.backend import max_chunk_bytes
from ..secure.ckks.wire import MAGIC, Kind
from .ckks_attacks import CkksRun
from .fuzz import VALUE, FuzzResult, flip, outcome

__all__ = ["fuzz_ckks", "CKKS_INVALID"]

CKKS_INVALID = ("truncate", "extend", "oversize", "garbage", "kind", "version", "other_key", "stale_stage")


def _mutate(rng: random.Random, kind: str, blob: bytes, *, other_key: bytes, stale: bytes, limit: int) -> bytes:
    if kind == "truncate":
        return blob[:rng.randrange(len(blob))]
    if kind == "extend":
        return blob + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    if kind == "oversize":
        return blob + bytes(limit)
    if kind == "garbage":
        return MAGIC + bytes(rng.randrange(256) for _ in range(rng.randint(0, 256))) if rng.random() < 0.5 \
            else bytes(rng.randrange(256) for _ in range(rng.randint(0, 256)))
    if kind == "kind":
        return blob[:5] + bytes([3 - blob[5]]) + blob[6:]  # FRESH <-> SUM
    if kind == "version":
        return blob[:4] + bytes([rng.choice([v for v in range(256) if v != blob[4]])]) + blob[5:]
    if kind == "other_key":
        return other_key
    if kind == "stale_stage":
        return stale
    if kind == "flip":
        return flip(rng, blob)
    raise ValueError(kind)


def fuzz_ckks(*, per_target: int, seed: int = 0, n: int = 4, d: int = 64) -> list[FuzzResult]:
    rng = random.Random(seed)
    vecs = {i: np.random.default_rng(i).uniform(-1, 1, d) for i in range(n)}
    run, other, stale_run = CkksRun(n=n, d=d), CkksRun(n=n, d=d), CkksRun(n=n, d=d + 1)
    stale_run.member, stale_run.server = run.member, run.server  # same key, another layout
    fresh = run.payloads(vecs)
    summed = run.server_sum(fresh)
    other_fresh = other.payloads(vecs)
    other_sum = other.server_sum(other_fresh)
    stale_fresh = stale_run.payloads({i: np.append(v, 0.5) for i, v in vecs.items()})
    stale_sum = stale_run.server_sum(stale_fresh)
    srv = run.server.server
    assert srv is not None
    limit = max_chunk_bytes(srv.params, Kind.SUM)  # the larger kind: oversized for either

    def check(b: bytes) -> None:
        srv.load(b, layout=run.layout, sender=0)

    targets = [("ckks:server:fresh", lambda: fresh[rng.randrange(n)], check, other_fresh[0], stale_fresh[0]),
               ("ckks:member:sum", lambda: summed, run.open, other_sum, stale_sum)]
    kinds = CKKS_INVALID + VALUE
    out = []
    for name, pick, take, foreign, stale in targets:
        res = FuzzResult(target=name)
        for k in range(per_target):
            kind = kinds[k % len(kinds)]
            bad = _mutate(rng, kind, pick(), other_key=foreign, stale=stale, limit=limit)
            res.record(kind, *outcome(lambda: take(bad)), invalid=kind in CKKS_INVALID)
        out.append(res)
    return out
