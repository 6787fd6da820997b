"""Regenerates the known-answer vectors in this folder (run from the repo root).

Expected values never come from the code under test:
- passplan: the explicit S_j is built with numpy from the formula, and the
  expected factors come from torch.svd_lowrank on it (torch's Gaussian drawn
  after torch.manual_seed(omega_seed));
- wire: bytes are packed by hand with struct, following protocols/wire.md.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def passplan_vector(name: str, *, out: int, inp: int, r: int, q: int, niter: int, n: int, K: int,
                    with_g: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    clients = []
    for _ in range(n):
        mask = rng.random(out) < 0.6
        B = rng.standard_normal((out, r)).astype(np.float32) * mask[:, None]
        A = rng.standard_normal((r, inp)).astype(np.float32)
        clients.append({"B": B.round(4).tolist(), "A": A.round(4).tolist(), "mask": mask.tolist()})
    probs = rng.dirichlet(np.ones(K), size=n).round(4)
    probs = (probs / probs.sum(1, keepdims=True)).tolist()
    G = [rng.standard_normal((out, inp)).astype(np.float32).round(4).tolist() if with_g else None
         for _ in range(K)]
    omega_seed = int(rng.integers(0, 2**31))
    expected = []
    for j in range(K):
        num = np.zeros((out, inp))
        den = np.zeros(out)
        for i, c in enumerate(clients):
            m = np.array(c["mask"], dtype=float)
            num += probs[i][j] * m[:, None] * (np.array(c["B"]) @ np.array(c["A"]))
            den += probs[i][j] * m
        S = np.where(den[:, None] > 0, num / np.where(den > 0, den, 1)[:, None], 0.0)
        if with_g:
            S = S + np.array(G[j])
        torch.manual_seed(omega_seed)
        U, s, V = torch.svd_lowrank(torch.tensor(S, dtype=torch.float32), q=q, niter=niter)
        delta = (U[:, :r] * s[:r]) @ V[:, :r].T
        expected.append({"singular_values": s[:r].tolist(), "delta": delta.tolist()})
    return {"name": name, "out": out, "in": inp, "r": r, "q": q, "niter": niter, "omega_seed": omega_seed,
            "clients": clients, "probs": probs, "G": G, "expected": expected,
            "tolerance": {"relative_frobenius": 1e-4}}


def wire_vector() -> dict:
    """A PassReply, round 7, pass 2, sender 3, one float32 frame payload/x = [[1.5, -2], [0, 0.25]]."""
    meta = b"{}"
    name = b"payload/x"
    blob = (struct.pack("<4sBBIHII", b"FHSM", 1, 3, 7, 2, 3, len(meta)) + meta + struct.pack("<I", 1)
            + struct.pack("<HBB", len(name), 1, 2) + name + struct.pack("<2I", 2, 2)
            + struct.pack("<4f", 1.5, -2.0, 0.0, 0.25))
    return {"name": "pass-reply-minimal", "kind": "PassReply", "round": 7, "pass_idx": 2, "sender": 3,
            "frames": {"payload/x": {"dtype": "float32", "shape": [2, 2], "values": [1.5, -2.0, 0.0, 0.25]}},
            "hex": blob.hex()}


def main() -> None:
    vectors = [
        passplan_vector("square-with-G", out=12, inp=12, r=3, q=4, niter=2, n=4, K=2, with_g=True, seed=1),
        passplan_vector("tall-no-G", out=16, inp=8, r=2, q=3, niter=1, n=3, K=2, with_g=False, seed=2),
        passplan_vector("wide-with-G", out=8, inp=14, r=2, q=4, niter=0, n=3, K=3, with_g=True, seed=3),
    ]
    for v in vectors:
        (HERE / "passplan" / f"{v['name']}.json").write_text(json.dumps(v, indent=1) + "\n")
    w = wire_vector()
    (HERE / "wire" / f"{w['name']}.json").write_text(json.dumps(w, indent=1) + "\n")


if __name__ == "__main__":
    main()
