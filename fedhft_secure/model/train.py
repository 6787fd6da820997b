"""The local training loop and evaluation (plain torch: AdamW, dynamic padding)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from sklearn.metrics import f1_score

from .base import Encoded

__all__ = ["train_local", "predict", "logits", "Scores", "score", "fisher_row_scores"]


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def _length_grouped(data: Encoded, batch_size: int, gen: torch.Generator, group: int = 8) -> list[torch.Tensor]:
    """Random batches of similar lengths (as HF's group_by_length): less padding, same epoch.

    Shuffle, cut into groups of ``group`` batches, sort each group by length,
    batch it, and shuffle the batch order.
    """
    perm = torch.randperm(len(data), generator=gen)
    lengths = torch.tensor([len(data.ids[i]) for i in range(len(data))])
    batches = []
    span = batch_size * group
    for s in range(0, len(perm), span):
        chunk = perm[s:s + span]
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=gen)
    return [batches[int(k)] for k in order]


def train_local(model: torch.nn.Module, data: Encoded, *, epochs: int, batch_size: int, lr: float,
                weight_decay: float, seed: int,
                row_masks: Mapping[str, torch.Tensor] | None = None) -> list[float]:
    """Train the parameters that require grad; returns the mean loss of each epoch.

    ``row_masks`` (parameter name -> bool rows) freezes the other rows of
    those parameters: their gradient is zeroed, so with B initialised at 0 and
    AdamW, they stay exactly 0.
    """
    torch.manual_seed(seed)  # dropout
    gen = torch.Generator().manual_seed(seed)
    params = dict((n, p) for n, p in model.named_parameters() if p.requires_grad)
    hooks = []
    for name, rows in (row_masks or {}).items():
        keep = rows.to(params[name].dtype).unsqueeze(1)
        hooks.append(params[name].register_hook(lambda g, keep=keep: g * keep))
    opt = torch.optim.AdamW(params.values(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses = []
    try:
        for _ in range(epochs):
            total, count = 0.0, 0
            for idx in _length_grouped(data, batch_size, gen):
                out = model(**data.batch(idx))
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                total += float(out.loss.detach()) * len(idx)
                count += len(idx)
            losses.append(total / max(count, 1))
    finally:
        for h in hooks:
            h.remove()
    model.eval()
    return losses


@torch.no_grad()
def predict(model: torch.nn.Module, data: Encoded, batch_size: int) -> np.ndarray:
    z = logits(model, data, batch_size)
    return z.argmax(-1) if len(z) else np.empty(0, dtype=np.int64)


@torch.no_grad()
def logits(model: torch.nn.Module, data: Encoded, batch_size: int) -> np.ndarray:
    model.eval()
    # Sorting by length keeps padding small; rows are put back in order.
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    out = np.empty((0, 0), dtype=np.float32)  # no examples (a client's empty held-out split)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = data.batch(idx)
        batch.pop("labels")
        z = model(**batch).logits.float().numpy()
        if not out.size:
            out = np.empty((len(data), z.shape[1]), dtype=np.float32)
        out[idx] = z
    return out


class Scores(dict):
    """accuracy, macro_f1 and the majority baseline's accuracy."""


def score(preds: np.ndarray, labels: np.ndarray, majority_label: int) -> Scores:
    labels = np.asarray(labels)
    if len(labels) == 0:
        return Scores(accuracy=float("nan"), macro_f1=float("nan"), majority_accuracy=float("nan"))
    return Scores(accuracy=float((preds == labels).mean()),
                  macro_f1=float(f1_score(labels, preds, average="macro", zero_division=0)),
                  majority_accuracy=float((labels == majority_label).mean()))


def fisher_row_scores(model: torch.nn.Module, data: Encoded, *, batches: int, batch_size: int,
                      seed: int, params: Mapping[str, Callable[[], torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Empirical Fisher per output row: Σ over a few batches of squared row gradients.

    ``params`` maps a name to a function returning the tensor whose ``.grad``
    is scored (rows = output rows). Mini-batch gradients stand in for
    per-example ones (a cheaper, coarser estimate of the same diagonal).
    """
    gen = torch.Generator().manual_seed(seed)
    acc = {n: None for n in params}
    model.train()
    for idx in _batches(len(data), batch_size, gen)[:batches]:
        model.zero_grad(set_to_none=True)
        model(**data.batch(idx)).loss.backward()
        for n, get in params.items():
            g = get().grad
            s = (g * g).sum(dim=1)
            acc[n] = s if acc[n] is None else acc[n] + s
    model.zero_grad(set_to_none=True)
    model.eval()
    return {n: v for n, v in acc.items() if v is not None}
