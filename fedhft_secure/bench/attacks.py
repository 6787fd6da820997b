"""Attacks on the secure sum, each returning what the adversary actually got.

The figure is the cosine similarity between a victim's true vector and the
adversary's best estimate from everything it holds: about 0 means the
estimate is noise, 1 means the vector was recovered. The adversary here is
the server (it holds every message it routed) plus the clients it names as
colluders (they hand over every share and key they hold).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..crypto.kex import KeyPair, agree
from ..crypto.shamir import reconstruct
from ..crypto.sign import IdentityKey
from ..exceptions import LocalProtocolError, RemoteProtocolError
from ..secure.api import Contribution, Expected
from ..secure.masking import MaskingSum
from ..secure.masking.masks import pair_seed, self_seed, stream
from ..secure.masking.messages import SurvivorList, SurvivorSignature, UnmaskReply, UnmaskRequest
from ..secure.plaintext import PlaintextSum
from ..wire import decode, encode
from .session import MaskingRun

__all__ = ["cosine", "strip_masks", "reconstruction_plaintext", "reconstruction_masking", "collusion", "dropout_lie"]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def _vectors(n: int, d: int, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: rng.uniform(-1, 1, d) for i in range(n)}


def strip_masks(run: MaskingRun, victim: int, *, b: bytes | None, s: KeyPair | None,
           known_pairs: Sequence[int] = ()) -> np.ndarray:
    """The victim's masked input minus every mask the adversary can compute, decoded."""
    srv = run.server
    r, e, slot, bits = run.round, 0, 0, srv.params.bits
    y = srv.inputs[victim][0].copy()
    if b is not None:
        y = y - stream(self_seed(b, r, e, slot, 0), y.size, bits)
    own_pub = bytes(srv.adverts[victim].keys["mask"].numpy()[:32])
    for v in srv.graph[victim]:
        if v not in srv.adverts:
            continue
        peer_pub = bytes(srv.adverts[v].keys["mask"].numpy()[:32])
        if s is not None:
            shared = agree(s.secret, peer_pub)
        elif v in known_pairs:  # a colluding neighbour knows its own mask key
            shared = agree(run.clients[v].masks[0].secret, own_pub)
        else:
            continue
        pm = stream(pair_seed(shared, r, e, slot, 0), y.size, bits)
        y = y - pm if victim < v else y + pm
    return srv.codec.decode_sum(y)


def reconstruction_plaintext(*, n: int = 6, d: int = 2000, seed: int = 0) -> float:
    """The plaintext server reads the victim's vector off its pass reply."""
    vecs = _vectors(n, d, seed)
    exp = Expected(shared={"v": (d,)}, per_cluster={})
    payload = PlaintextSum().client_session(0, 1).payload(Contribution(shared={"v": torch.from_numpy(vecs[0])}),
                                                          slot=0, weights=[1.0], expected=exp)
    return cosine(payload["s/v"].double().numpy(), vecs[0])


def reconstruction_masking(*, n: int = 6, d: int = 2000, seed: int = 0) -> dict[str, float]:
    """The server alone: the victim's masked input, and its self mask (revealed because it survived)."""
    vecs = _vectors(n, d, seed)
    run = MaskingRun(vecs, MaskingSum())
    run.run()
    holders = {w + 1: run.clients[w].held[0][1][0] for w in run.server.graph[0] if 0 in run.clients[w].held}
    b = reconstruct(holders, run.server.params.threshold)  # the server did this itself while unmasking
    est = strip_masks(run, 0, b=b, s=None)
    total = sum(vecs.values())
    return {"cosine": cosine(est, vecs[0]), "cosine_from_sum_alone": cosine(total / n, vecs[0])}


def collusion(colluders: int, *, n: int = 8, d: int = 2000, seed: int = 0) -> float:
    """Server + ``colluders`` of the victim's neighbours pool the victim's shares of both its secrets."""
    vecs = _vectors(n, d, seed)
    run = MaskingRun(vecs, MaskingSum())
    run.run()
    t, victim = run.server.params.threshold, 0
    gang = [w for w in run.server.graph[victim]][:colluders]
    b_sh = {w + 1: run.clients[w].held[victim][1][0] for w in gang}
    s_sh = {w + 1: run.clients[w].held[victim][0][0] for w in gang}
    try:
        b, s = reconstruct(b_sh, t), KeyPair.from_secret(reconstruct(s_sh, t))
    except LocalProtocolError:  # fewer than t shares: only the colluders' own pairwise masks come off
        return cosine(strip_masks(run, victim, b=None, s=None, known_pairs=gang), vecs[victim])
    return cosine(strip_masks(run, victim, b=b, s=s), vecs[victim])


def dropout_lie(*, signed: bool, colluders: int, n: int = 6, d: int = 2000, seed: int = 0) -> float:
    """After the victim's masked input arrived, tell some neighbours it dropped (to collect shares of its
    mask key) and the others it survived (shares of its self mask); colluders add both kinds."""
    vecs = _vectors(n, d, seed)
    ids = {i: IdentityKey.generate() for i in range(n)} if signed else None
    run = MaskingRun(vecs, MaskingSum(identities=ids, threat="semi-malicious" if signed else "honest-but-curious"))
    run.run(until="check" if signed else "unmask")
    srv, victim, t, r = run.server, 0, run.server.params.threshold, run.round
    honest = [w for w in srv.graph[victim] if w != victim][colluders:]
    gang = [w for w in srv.graph[victim] if w != victim][:colluders]
    told_dropped, told_alive = honest[: len(honest) // 2], honest[len(honest) // 2:] + [victim]
    everyone = sorted(srv.inputs)
    stories = {w: ([victim], [c for c in everyone if c != victim]) for w in told_dropped}
    stories.update({w: ([], everyone) for w in told_alive})
    sigs: dict[tuple[int, ...], dict[str, torch.Tensor]] = {}
    if signed:  # the consistency round, with a different list for each group
        for w, (_, alive) in stories.items():
            try:
                reply = run.clients[w].handle(encode(SurvivorList(round=r, pass_idx=1, epoch=0, slot=0,
                                                                  survivors=alive)))
            except RemoteProtocolError:
                continue
            sigs.setdefault(tuple(alive), {})[str(w)] = decode(reply, SurvivorSignature).sig["sig"]
    s_sh: dict[int, bytes] = {}
    b_sh: dict[int, bytes] = {}
    for w, (dropped, alive) in stories.items():
        if w == victim:
            continue
        req = UnmaskRequest(round=r, pass_idx=1, epoch=0, slot=0, dropped=dropped, survivors=alive,
                            signatures=sigs.get(tuple(alive), {}))
        try:
            rep = decode(run.clients[w].handle(encode(req)), UnmaskReply)
        except RemoteProtocolError:
            continue  # the client saw through it
        for key, blob in rep.shares.items():
            if key == f"s/{victim}":
                s_sh[w + 1] = bytes(blob.numpy())
            if key == f"b/{victim}":
                b_sh[w + 1] = bytes(blob.numpy())
    for w in gang:
        s_sh[w + 1], b_sh[w + 1] = run.clients[w].held[victim][0][0], run.clients[w].held[victim][1][0]
    try:
        b, s = reconstruct(b_sh, t), KeyPair.from_secret(reconstruct(s_sh, t))
    except LocalProtocolError:
        return cosine(strip_masks(run, victim, b=None, s=None, known_pairs=gang), vecs[victim])
    return cosine(strip_masks(run, victim, b=b, s=s), vecs[victim])

