"""Attacks on the secure sum, each returning what the adversary actually got.

The figure is the cosine similarity between a victim's true vector and the
adversary's best estimate from everything it holds: about 0 means the
estimate is noise, 1 means the vector was recovered. The adversary here is
the server (it holds every message it routed) plus the clients it names as
colluders (they hand over every share and key they hold).

A client's secrets are shared among its k neighbours and itself (h = k + 1
holders). The victim's own share is the victim's: no colluder has it, and
the victim reveals only its self-mask share, only when told it survived.
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


def _open(shares: dict[int, bytes], t: int) -> bytes | None:
    """The secret if ``shares`` open it (t or more), else None."""
    try:
        return reconstruct(shares, t)
    except LocalProtocolError:
        return None


def _opened_self_seed(run: MaskingRun, victim: int) -> bytes:
    """The victim's self-mask seed as the server opened it while unmasking: from the ``b/{victim}`` shares
    of the unmask replies it received (the victim's own among them)."""
    got = {}
    for w, blob in run.from_client["unmask"].items():
        share = decode(blob, UnmaskReply).shares.get(f"b/{victim}")
        if share is not None:
            got[w + 1] = bytes(share.numpy())
    return reconstruct(got, run.server.params.threshold)


def reconstruction_masking(*, n: int = 6, d: int = 2000, seed: int = 0) -> dict[str, float]:
    """The server alone: the victim's masked input, and its self mask (revealed because it survived)."""
    vecs = _vectors(n, d, seed)
    run = MaskingRun(vecs, MaskingSum())
    run.run()
    b = _opened_self_seed(run, 0)  # the server did this itself while unmasking
    est = strip_masks(run, 0, b=b, s=None)
    total = sum(vecs.values())
    return {"cosine": cosine(est, vecs[0]), "cosine_from_sum_alone": cosine(total / n, vecs[0])}


def collusion(colluders: int, *, n: int = 8, d: int = 2000, seed: int = 0) -> float:
    """Server + ``colluders`` of the victim's neighbours pool the victim's shares of its mask key. The
    self mask is the server's anyway (the victim survived: it was opened, with the victim's own share);
    the pairwise masks with honest neighbours need the mask key, whose shares only neighbours hold."""
    vecs = _vectors(n, d, seed)
    run = MaskingRun(vecs, MaskingSum())
    run.run()
    t, victim = run.server.params.threshold, 0
    gang = [w for w in run.server.graph[victim]][:colluders]
    b = _opened_self_seed(run, victim)
    s = _open({w + 1: run.clients[w].held[victim][0][0] for w in gang}, t)
    # fewer than t shares: only the colluders' own pairwise masks come off
    return cosine(strip_masks(run, victim, b=b, s=None if s is None else KeyPair.from_secret(s), known_pairs=gang),
                  vecs[victim])


def dropout_lie(*, signed: bool, colluders: int, n: int = 6, d: int = 2000, seed: int = 0) -> float:
    """After the victim's masked input arrived, tell some neighbours it dropped (to collect shares of its
    mask key) and the others, and the victim, it survived (shares of its self mask, the victim's own
    among them); colluders add both kinds. The split is the best one for the server: mask-key shares
    come from neighbours only, so just enough honest ones (t - colluders) are told "dropped".
    Unsigned, 2t - h colluders suffice (h = k + 1); with the consistency check, t are needed."""
    vecs = _vectors(n, d, seed)
    ids = {i: IdentityKey.generate() for i in range(n)} if signed else None
    run = MaskingRun(vecs, MaskingSum(identities=ids, threat="semi-malicious" if signed else "honest-but-curious"))
    run.run(until="check" if signed else "unmask")
    srv, victim, t, r = run.server, 0, run.server.params.threshold, run.round
    honest = [w for w in srv.graph[victim] if w != victim][colluders:]
    gang = [w for w in srv.graph[victim] if w != victim][:colluders]
    told_dropped = honest[: max(0, t - colluders)]
    told_alive = honest[len(told_dropped):] + [victim]
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
    b, s = _open(b_sh, t), _open(s_sh, t)  # whichever opens comes off; both are needed
    return cosine(strip_masks(run, victim, b=b, s=None if s is None else KeyPair.from_secret(s), known_pairs=gang),
                  vecs[victim])

