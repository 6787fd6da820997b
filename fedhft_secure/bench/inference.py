"""Attacks on what a server sees of real training rounds: label inference and row-mask leakage.

``observe`` runs a small federation (tiny random BERT, skewed labels) and
records every byte the server receives; each attack works only from those
bytes plus what the server sent, and is scored against the clients' true
majority labels (chance: the most common majority label among clients).
``extra`` config overrides select e.g. DP-SGD (``privacy.dp_sgd``).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import load_config
from ..crypto.encoding import centred
from ..crypto.packing import packed_size, unpack
from ..fl.messages import PassReply, RoundStart
from ..runtime.local import run
from ..secure.masking.masks import layout
from ..secure.masking.messages import KeyAdvert
from ..wire import decode

__all__ = ["Observation", "observe", "label_inference", "ciphertext_label_inference", "row_mask_leakage",
           "sketch_inference", "SMALL", "CKKS_PRECISION"]

#: a federation small enough for a benchmark, skewed enough that clients differ in their labels
SMALL = {"model.name": '"tiny-random"', "data.name": '"tweets"', "data.train_size": "1600",
         "data.test_size": "60", "fed.num_clients": "32", "fed.clusters": "1", "fed.rounds": "1",
         "lora.r": "4", "train.local_epochs": "2", "train.lr": "0.02", "data.dirichlet_alpha": "1.0",
         "fed.levels": "[1.0, 0.5]", "fed.level_ratios": "[0.5, 0.5]",
         "threads": "1"}  # one torch thread: two on a shared 2-core machine ran ~10x slower

#: ckks for 32 clients: the default 1e-6 needs a data prime above 60 bits
CKKS_PRECISION = "1e-5"


@dataclass
class Observation:
    received: dict[int, list[tuple[str, bytes]]]  # client -> (stage, bytes) the server received
    sent_start: bytes  # one RoundStart (the public start of the round)
    majority: dict[int, int]  # ground truth, for scoring only
    num_labels: int
    layout: list[tuple[str, tuple[int, ...]]]  # order of pass 0's vector, public to the server
    bits: int = 32  # modulus of the masked sums (public: the server sets it)


def observe(backend: str, *, sparsity: str = "dense", seed: int = 0,
            extra: dict[str, str] | None = None) -> Observation:
    over = {**SMALL, "seed": str(seed), "secure.backend": f'"{backend}"', "secure.sparsity": f'"{sparsity}"',
            **({"secure.ckks_precision": CKKS_PRECISION} if backend == "ckks" else {}), **(extra or {})}
    cfg = load_config(None, [f"{k}={v}" for k, v in over.items()])
    received: dict[int, list[tuple[str, bytes]]] = {}
    start: list[bytes] = []
    seen: dict[str, Any] = {}

    def tap(stage: str, rnd: int, client: int, blob: bytes) -> bytes:
        if stage.endswith("<"):
            received.setdefault(client, []).append((stage[:-1], blob))
        elif stage == "round_start>" and not start:
            start.append(blob)
        return blob

    def prepare(world: Any) -> None:  # note pass 0's public layout, as the server knows it
        seen["world"] = world
        open_session = world.backend.server_session

        def server_session(info: Any) -> Any:
            session = open_session(info)
            begin = session.begin_pass

            def begin_pass(seq: int, *, slot: int, expected: Any) -> None:
                seen.setdefault("expected", expected)
                begin(seq, slot=slot, expected=expected)
            session.begin_pass = begin_pass
            return session
        world.backend.server_session = server_session

    with tempfile.TemporaryDirectory() as tmp:
        run(cfg, Path(tmp) / "run", progress=False, fault=tap, prepare=prepare)
    world = seen["world"]
    majority = {c.data.id: int(torch.bincount(c.data.train.labels, minlength=world.dataset.num_labels).argmax())
                for c in world.clients}
    return Observation(received=received, sent_start=start[0], majority=majority,
                       num_labels=world.dataset.num_labels, layout=layout(seen["expected"]),
                       bits=cfg.secure.modulus_bits)


def _score(pred: dict[int, int], obs: Observation) -> dict[str, float]:
    ids = sorted(obs.majority)
    acc = float(np.mean([pred.get(i, -1) == obs.majority[i] for i in ids]))
    chance = Counter(obs.majority.values()).most_common(1)[0][1] / len(ids)
    return {"accuracy": acc, "chance": chance, "advantage": acc - chance}


def label_inference(obs: Observation) -> dict[str, float]:
    """iDLG-style: cross-entropy raises the head bias of the labels a client holds most, so the largest
    bias change names its majority label. Uses the head a client sent in pass 0 — in clear in plaintext
    mode; in masking mode the same coordinates, still masked, are all the server has."""
    start = decode(obs.sent_start, RoundStart)
    b0 = next(v for k, v in start.heads.items() if k.endswith("/bias"))
    pred = {}
    for client, msgs in obs.received.items():
        reply = next((decode(b, PassReply) for s, b in msgs if s.startswith("pass:")), None)
        if reply is None:
            continue
        bias = next((v for k, v in reply.payload.items() if k.endswith("head/bias")), None)
        if bias is None:  # masking: the same coordinates of the masked vector, read as if unmasked
            names = [n for n, _ in obs.layout]
            at = sum(int(np.prod(shape)) for n, shape in obs.layout[:names.index("s/head/bias")])
            size = sum(int(np.prod(shape)) for _, shape in obs.layout)
            frame = next(iter(reply.payload.values())).numpy()
            if frame.size != packed_size(size, obs.bits):
                raise ValueError("label inference reads dense vectors (reveal-rows shifts positions per client)")
            masked = centred(unpack(frame, size, obs.bits), obs.bits).astype(np.float64)
            bias = torch.from_numpy(masked[at:at + obs.num_labels])
        pred[client] = int(torch.argmax(bias.double() - b0.double()))
    return _score(pred, obs)


def ciphertext_label_inference(obs: Observation) -> dict[str, float]:
    """``ckks``: the head is inside a ciphertext, so there are no coordinates to read. Link each client to
    the client whose pass-0 ciphertext bytes are most similar, and take that client's majority label."""
    points = {}
    for client, msgs in obs.received.items():
        reply = next((decode(b, PassReply) for s, b in msgs if s.startswith("pass:")), None)
        if reply is not None:
            raw = np.concatenate([t.numpy().view(np.uint8) for _, t in sorted(reply.payload.items())])
            points[client] = raw.astype(np.float64) - 127.5
    size = min(len(v) for v in points.values())  # compressed ciphertexts differ by a few bytes
    return _score(_nearest_label({c: v[:size] for c, v in points.items()}, obs), obs)


def row_mask_leakage(obs: Observation) -> dict[str, float]:
    """Reveal-rows announces each client's kept-row sets; predict a client's majority label from its row
    set by the nearest other client's row set (leave-one-out, Hamming distance)."""
    rows = {}
    for client, msgs in obs.received.items():
        adv = next((decode(b, KeyAdvert) for s, b in msgs if s.startswith("secure:setup")), None)
        held = [t.numpy().astype(np.int8) for k, t in sorted(adv.keys.items()) if k.startswith("rows/")] \
            if adv is not None else []
        if held:  # dense mode announces nothing
            rows[client] = np.concatenate(held)
    pred = {}
    for i, ri in rows.items():
        others = [(int(np.sum(ri != rj)), j) for j, rj in rows.items() if j != i]
        if others:
            pred[i] = obs.majority[min(others)[1]]
    return {**_score(pred, obs), "share_of_clients_with_rows": len(rows) / len(obs.majority)}


def _nearest_label(points: dict[int, np.ndarray], obs: Observation) -> dict[int, int]:
    """Leave-one-out: each client gets the majority label of the client with the most similar vector."""
    ids = sorted(points)
    X = np.stack([points[i] / (np.linalg.norm(points[i]) + 1e-12) for i in ids])
    sim = X @ X.T
    np.fill_diagonal(sim, -np.inf)
    return {i: obs.majority[ids[int(np.argmax(sim[k]))]] for k, i in enumerate(ids)}


def sketch_inference(obs: Observation) -> dict[str, float]:
    """The clustering sketch travels in clear (protected only by its own noise): link each client to
    the most similar other client's sketch and take that client's majority label."""
    sketches = {}
    for client, msgs in obs.received.items():
        reply = next((decode(b, PassReply) for s, b in msgs if s.startswith("pass:")), None)
        if reply is not None and "v" in reply.sketch:
            sketches[client] = reply.sketch["v"].double().numpy()
    return _score(_nearest_label(sketches, obs), obs)
