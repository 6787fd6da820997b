"""DP-SGD on a client's trainable parameters (LoRA rows + head) with Opacus.

Poisson sampling (Opacus ``DPDataLoader``), per-example clipping to
``max_grad_norm`` and Gaussian noise ``noise_multiplier * max_grad_norm`` in
the ``hooks`` grad-sample mode, then AdamW. Rows frozen by a pre-fisher mask
get zero per-example gradients before clipping (the clip budget goes to kept
rows) and zero noisy gradients after (they stay exactly 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, Dataset

from ..model.base import Encoded

__all__ = ["DpSgdResult", "train_private", "dp_schedule"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DpSgdResult:
    losses: list[float]  # mean loss per epoch
    steps: int
    sample_rate: float


def dp_schedule(n: int, *, batch_size: int, epochs: int) -> tuple[float, int]:
    """(Poisson sample rate, steps) of ``epochs`` epochs over ``n`` examples, as Opacus runs them."""
    batches = max(1, math.ceil(n / batch_size))  # DPDataLoader: rate 1 / len(loader), len(loader) steps
    return 1.0 / batches, epochs * batches


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        return (torch.tensor(i),)


def train_private(model: torch.nn.Module, data: Encoded, **kw) -> DpSgdResult:  # noqa: ANN003
    """Train ``model``'s parameters that require grad under DP-SGD; the model is left unwrapped."""
    with warnings.catch_warnings():  # Opacus's secure-RNG advice; torch's hook notice
        warnings.simplefilter("ignore", UserWarning)
        return _train_private(model, data, **kw)


def _train_private(model: torch.nn.Module, data: Encoded, *, epochs: int, batch_size: int, lr: float,
                  weight_decay: float, noise_multiplier: float, max_grad_norm: float,
                  generator: torch.Generator | None, secure_mode: bool,
                  row_masks: Mapping[str, torch.Tensor] | None = None) -> DpSgdResult:
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    keep = {id(params[n]): rows.to(params[n].dtype).unsqueeze(1) for n, rows in (row_masks or {}).items()}
    opt = torch.optim.AdamW(params.values(), lr=lr, weight_decay=weight_decay)
    loader = DataLoader(_Indices(len(data)), batch_size=batch_size)
    model.train()  # from_pretrained/peft leave eval mode; Opacus then sees no activations
    engine = PrivacyEngine(secure_mode=secure_mode)
    gs, dp_opt, dp_loader = engine.make_private(
        module=model, optimizer=opt, data_loader=loader, noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm, poisson_sampling=True, grad_sample_mode="hooks",
        noise_generator=None if secure_mode else generator)
    if not secure_mode and generator is not None:
        dp_loader.batch_sampler.generator = generator  # Poisson draws from the injected generator too
    losses, steps = [], 0
    try:
        for _ in range(epochs):
            total, count = 0.0, 0
            for (idx,) in dp_loader:
                dp_opt.zero_grad(set_to_none=True)
                if len(idx) == 0:  # an empty Poisson batch still takes a (noise-only) step
                    for p in params.values():
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
                else:
                    out = gs(**data.batch(idx))
                    out.loss.backward()
                    total += float(out.loss.detach()) * len(idx)
                    count += len(idx)
                    for p in params.values():
                        if id(p) in keep and p.grad_sample is not None:
                            p.grad_sample = p.grad_sample * keep[id(p)]
                if dp_opt.pre_step():
                    for p in params.values():
                        if id(p) in keep and p.grad is not None:
                            p.grad = p.grad * keep[id(p)]
                    dp_opt.original_optimizer.step()
                steps += 1
            losses.append(total / max(count, 1))
    finally:
        gs._close()
    model.eval()
    rate, _ = dp_schedule(len(data), batch_size=batch_size, epochs=epochs)
    return DpSgdResult(losses=losses, steps=steps, sample_rate=rate)
