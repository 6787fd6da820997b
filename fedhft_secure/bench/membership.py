"""Membership inference against the cluster model the server holds (issue 9, item 5).

Target: a small federation that can memorize (``MIA``: tiny random BERT, 2
clients with 60 training examples each, 5 rounds x 20 local epochs, LoRA r=16
on every attention and MLP linear layer, no dropout or weight decay, near-IID
labels). With 32 clients, 1 round and the bench's other setting (``SMALL``)
the cluster model memorizes nothing measurable (AUC ~0.50-0.54). Members
are the clients' training examples; non-members are the same clients'
held-out examples (``data.val_fraction = 0.5``: same distribution, never
trained on). What is attacked is the model the *server* can form after the
last round: with ``plaintext`` and ``masking`` it opens the cluster sums and
holds the cluster adapters and heads; with ``ckks`` it holds ciphertexts only,
so the best model it has is the public start (base model + initial head).

Two attacks, each an AUC over members vs non-members (0.5 = chance):

* **loss threshold** (Yeom et al. 2018): a lower loss means "member".
* **offline likelihood ratio** (LiRA, Carlini et al. 2022, offline variant
  with a global variance): the attacker runs ``references`` federations of
  its own, with the same public configuration (base model, protocol, DP
  setting) on population examples that exclude every candidate, and scores
  each candidate by how far the target's logit-scaled confidence exceeds the
  reference models' mean confidence on that example, in units of the
  reference spread (one global spread: with few references a per-example
  one is noise). This removes the per-example difficulty that the loss
  threshold mistakes for membership, as far as the reference models agree
  with the target on the examples none of them trained on.

Also reported: TPR at 1% and 10% FPR, and an empirical epsilon lower bound
from the likelihood-ratio scores (``privacy.audit.epsilon_from_scores``),
capped by the sample size (``epsilon_cap``).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from ..config import load_config
from ..data.partition import dirichlet_partition
from ..model.base import Encoded, encode_texts
from ..model.merge import lowrank_merge, merged_model, mix_heads
from ..privacy.audit import epsilon_cap, epsilon_from_scores
from ..runtime.checkpoint import load_checkpoint
from ..runtime.local import run
from ..runtime.world import World
from ..seeds import derive_seed

__all__ = ["MIA", "Target", "train_target", "train_references", "confidences", "membership_scores"]

#: few examples per client and many local epochs: a setting in which a model can memorize
MIA = {"model.name": '"tiny-random"', "data.name": '"tweets"', "data.train_size": "240", "data.test_size": "60",
       "data.val_fraction": "0.5", "fed.num_clients": "2", "fed.clusters": "1", "fed.rounds": "5",
       "lora.r": "16", "lora.targets": "[query,key,value,dense]", "lora.dropout": "0.0",
       "train.local_epochs": "20", "train.lr": "0.01", "train.weight_decay": "0.0", "data.dirichlet_alpha": "10.0",
       "fed.levels": "[1.0]", "fed.level_ratios": "[1.0]", "threads": "1"}


def _config(backend: str, *, dp: bool, seed: int, extra: dict[str, str] | None = None):  # noqa: ANN202
    over = {**MIA, "seed": str(seed), "secure.backend": f'"{backend}"', **(extra or {})}
    if backend == "ckks":  # pass vectors of a memorizing run exceed the default bound 4 (as masking's clip: 64)
        over = {"secure.ckks_value_bound": "64.0", "secure.ckks_precision": "1e-5", **over}
    if dp:
        over.update({"privacy.dp_sgd": "true", "privacy.target_epsilon": "8.0"})
    return load_config(None, [f"{k}={v}" for k, v in over.items()])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    members: Encoded
    non_members: Encoded
    conf: np.ndarray  # logit-scaled confidence of the model the server holds, members then non-members
    world: World
    epsilon: float | None  # DP-SGD epsilon accounted to the worst client (None without DP-SGD)

    @property
    def is_member(self) -> np.ndarray:
        return np.r_[np.ones(len(self.members), dtype=bool), np.zeros(len(self.non_members), dtype=bool)]


def _concat(parts: list[Encoded]) -> Encoded:
    return Encoded(ids=tuple(i for p in parts for i in p.ids), labels=torch.cat([p.labels for p in parts]),
                   pad_id=parts[0].pad_id)


def _server_model(world: World, run_dir: Path) -> torch.nn.Module:
    """The model the server can form: the cluster model it opened, or the public start (``ckks``)."""
    state, _ = load_checkpoint(run_dir)
    if not state.adapters:  # ckks: the server holds only ciphertexts
        return merged_model(world.base, {}, world.initial_head)
    p = [float(x) for x in state.probs[0]]
    return merged_model(world.base, lowrank_merge(state.adapters, p, world.cfg.lora.r), mix_heads(state.heads, p))


@torch.no_grad()
def confidences(model: torch.nn.Module, data: Encoded, batch_size: int = 128) -> np.ndarray:
    """log p_y - log(1 - p_y) per example (Carlini et al.'s logit scaling; stable in the logits)."""
    model.eval()
    out = []
    for s in range(0, len(data), batch_size):
        b = data.batch(list(range(s, min(s + batch_size, len(data)))))
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.double()
        y = b["labels"]
        own = logits.gather(1, y[:, None])[:, 0]
        rest = logits.scatter(1, y[:, None], float("-inf")).logsumexp(1)
        out.append((own - rest).numpy())
    return np.concatenate(out)


def _federation(cfg: Any, swap: Any = None) -> tuple[World, torch.nn.Module, float | None]:
    held: dict[str, World] = {}

    def prepare(world: World) -> None:
        held["world"] = world
        if swap is not None:
            swap(world)

    with tempfile.TemporaryDirectory() as tmp:
        run(cfg, Path(tmp) / "run", progress=False, prepare=prepare)
        world = held["world"]
        model = _server_model(world, Path(tmp) / "run")
    eps = [c.ledger.dp_epsilon() for c in world.clients if c.ledger is not None and cfg.privacy.dp_sgd]
    return world, model, (max(eps) if eps else None)


def train_target(backend: str, *, dp: bool, seed: int = 0, extra: dict[str, str] | None = None) -> Target:
    world, model, eps = _federation(_config(backend, dp=dp, seed=seed, extra=extra))
    members = _concat([c.data.train for c in world.clients])
    non_members = _concat([c.data.val for c in world.clients])
    conf = np.concatenate([confidences(model, members), confidences(model, non_members)])
    return Target(members=members, non_members=non_members, conf=conf, world=world, epsilon=eps)


def _population(world: World, exclude: set[tuple[int, ...]], need: int, seed: int) -> Encoded:
    """``need`` examples of the dataset that are none of the candidates (the attacker's own data)."""
    ds, cfg = world.dataset, world.cfg
    rng = np.random.default_rng(derive_seed(seed, "mia-population"))
    idx = rng.permutation(len(ds))[: 2 * need + len(exclude)]
    enc = encode_texts(world.tokenizer, tuple(ds.texts[i] for i in idx), ds.labels[idx], cfg.data.max_length)
    keep = [k for k, ids in enumerate(enc.ids) if tuple(ids.tolist()) not in exclude][:need]
    return Encoded(ids=tuple(enc.ids[k] for k in keep), labels=enc.labels[keep], pad_id=enc.pad_id)


def train_references(target: Target, k: int, *, dp: bool, seed: int = 0) -> np.ndarray:
    """[k, candidates] confidences of ``k`` reference federations trained without any candidate."""
    # the same seed: the same public base model, head and schedule; plaintext is the cheapest to simulate
    cfg = _config("plaintext", dp=dp, seed=target.world.cfg.seed)
    exclude = {tuple(x.tolist()) for x in target.members.ids + target.non_members.ids}
    n = cfg.fed.num_clients
    total = len(target.members)
    out = []
    for r in range(k):
        pool = _population(target.world, exclude, total, seed=derive_seed(seed, "reference", r))
        rng = np.random.default_rng(derive_seed(seed, "reference-partition", r))
        parts = dirichlet_partition(pool.labels.numpy(), n, cfg.data.dirichlet_alpha, rng)

        def swap(world: World, parts: list[np.ndarray] = parts, pool: Encoded = pool) -> None:
            for c, part in zip(world.clients, parts):
                train = Encoded(ids=tuple(pool.ids[int(i)] for i in part), labels=pool.labels[part],
                                pad_id=pool.pad_id)
                c.data = dataclasses.replace(c.data, train=train)
                if c.ledger is not None:
                    c.ledger.set_num_examples(len(train))

        _, model, _ = _federation(cfg, swap)
        out.append(np.concatenate([confidences(model, target.members), confidences(model, target.non_members)]))
    return np.stack(out)


def _tpr_at(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    f, t, _ = roc_curve(labels, scores)
    return float(np.interp(fpr, f, t))


def membership_scores(conf: np.ndarray, is_member: np.ndarray, refs: np.ndarray, *,
                      delta: float = 1e-5) -> dict[str, float]:
    """AUC of both attacks, TPR at low FPR and an empirical epsilon, from the target's confidences
    ``conf`` on the candidates, which of them are members, and ``refs`` [k, candidates]."""
    labels = np.asarray(is_member, dtype=float)
    spread = float(np.std(refs - refs.mean(0))) if refs.shape[0] > 1 else 1.0  # global variance (few refs)
    lira = (conf - refs.mean(0)) / max(spread, 1e-12)
    n_in, n_out = int(labels.sum()), int((1 - labels).sum())
    return {"auc_loss": float(roc_auc_score(labels, conf)),  # conf is monotone in -loss
            "auc_lira": float(roc_auc_score(labels, lira)),
            "tpr_at_1pct_fpr": _tpr_at(labels, lira, 0.01), "tpr_at_10pct_fpr": _tpr_at(labels, lira, 0.10),
            "epsilon_lower_bound": epsilon_from_scores(lira[labels == 1], lira[labels == 0], delta=delta),
            "epsilon_cap": epsilon_cap(n_in, n_out, delta=delta), "members": n_in, "non_members": n_out,
            "references": int(refs.shape[0]), "auc_std_error": _auc_se(n_in, n_out)}


def _auc_se(n_in: int, n_out: int) -> float:
    """Standard error of an AUC of 0.5 (Hanley-McNeil): the spread of chance."""
    return float(np.sqrt((n_in + n_out + 1) / (12 * n_in * n_out)))
