"""``fedhft-secure audit``: one run with canaries in client 0's data, then the one-run audit.

Canaries are short sequences of random tokens with random labels (easy to
memorize, unlike anything in the data); each is included with probability
1/2. The membership score of a canary is how much its loss fell from the
base model to client 0's personalized model after the last round (what the
server releases to it; post-processing of its DP-SGD outputs). Writes
``DIR/audit.json`` and the run's reports, which show the audit beside the
accounted epsilon.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..model.base import Encoded
from ..model.merge import lowrank_merge, merged_model, mix_heads
from ..privacy.audit import count_guesses, epsilon_lower_bound
from ..seeds import derive_seed
from .checkpoint import load_checkpoint, write_json
from .local import run
from .report import write_reports
from .world import World

__all__ = ["run_audit", "make_canaries"]


def make_canaries(m: int, *, vocab: int, num_labels: int, cls_id: int, sep_id: int, pad_id: int,
                  length: int, seed: int) -> tuple[Encoded, np.ndarray]:
    """m canaries and their inclusion coins (True = goes into training)."""
    rng = np.random.default_rng(seed)
    lo = min(1000, vocab // 2)
    ids = tuple(torch.tensor([cls_id, *rng.integers(lo, vocab, size=length).tolist(), sep_id]) for _ in range(m))
    labels = torch.as_tensor(rng.integers(0, num_labels, size=m), dtype=torch.long)
    return Encoded(ids=ids, labels=labels, pad_id=pad_id), rng.random(m) < 0.5


def _concat(a: Encoded, b: Encoded) -> Encoded:
    return Encoded(ids=a.ids + b.ids, labels=torch.cat([a.labels, b.labels]), pad_id=a.pad_id)


@torch.no_grad()
def _losses(model: torch.nn.Module, data: Encoded) -> np.ndarray:
    model.eval()
    out = []
    for i in range(len(data)):
        logits = model(**{k: v for k, v in data.batch([i]).items() if k != "labels"}).logits
        out.append(float(torch.nn.functional.cross_entropy(logits, data.labels[i:i + 1])))
    return np.array(out)


def run_audit(cfg: RunConfig, out_dir: Path, *, canaries: int = 200, guesses: int | None = None,
              length: int = 8, confidence: float = 0.95, progress: bool = False) -> dict[str, Any]:
    out_dir = Path(out_dir)
    holder: dict[str, Any] = {}

    def insert(world: World) -> None:
        tok = world.tokenizer
        can, coins = make_canaries(canaries, vocab=tok.vocab_size, num_labels=world.dataset.num_labels,
                                   cls_id=tok.cls_token_id, sep_id=tok.sep_token_id, pad_id=tok.pad_token_id,
                                   length=length, seed=derive_seed(cfg.seed, "canaries"))
        client = world.clients[0]
        inside = Encoded(ids=tuple(can.ids[i] for i in np.flatnonzero(coins)), labels=can.labels[coins],
                         pad_id=can.pad_id)
        client.data = dataclasses.replace(client.data, train=_concat(client.data.train, inside))
        if client.ledger is not None:  # the ledger counts the examples it really trains on
            client.ledger.set_num_examples(len(client.data.train))
        holder.update(world=world, canaries=can, coins=coins)

    results = run(cfg, out_dir, progress=progress, prepare=insert)
    world, can, coins = holder["world"], holder["canaries"], holder["coins"]
    state, _ = load_checkpoint(out_dir)
    p0 = [float(x) for x in state.probs[0]]
    adapter = lowrank_merge(state.adapters, p0, cfg.lora.r) if state.adapters else {}
    model = merged_model(world.base, adapter, mix_heads(state.heads, p0))
    scores = _losses(world.base, can) - _losses(model, can)  # loss drop: members drop more
    r = guesses if guesses is not None else canaries // 2
    r_pos = r // 2
    r, v = count_guesses(scores, coins, k_pos=r_pos, k_neg=r - r_pos)
    lb = epsilon_lower_bound(canaries, r, v, delta=cfg.privacy.delta, confidence=confidence)
    client0 = world.clients[0].ledger
    accounted = client0.dp_epsilon() if cfg.privacy.dp_sgd and client0 is not None else None
    audit = {"epsilon_lower_bound": lb, "epsilon_accounted": accounted, "canaries": canaries,
             "included": int(coins.sum()), "guesses": r, "correct": v, "confidence": confidence,
             "delta": cfg.privacy.delta, "client": 0, "accountant": cfg.privacy.accountant,
             "dp_sgd": cfg.privacy.dp_sgd,
             "scored_model": "client 0's personalized model after the last round",
             "final_test_accuracy": results.get("final", {}).get("test_accuracy"),
             "scores": [float(x) for x in scores], "membership": [bool(x) for x in coins]}
    write_json(out_dir / "audit.json", audit)
    write_reports(out_dir)
    return audit
