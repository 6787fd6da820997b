"""A client's own privacy ledger and budget: it records events and refuses to overspend.

The client enforces its budget itself (it is the party whose data is at
stake); the runtime reads the ledger to write the epsilon report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from ..config import PrivacyConfig
from ..model.lora import LayerFactors
from .accountant import accountant_for, calibrate_noise
from ..secure.noise import NoiseApplied
from .dpsgd import dp_schedule
from .events import DistributedNoiseAdded, DpSgdTrained, PrivacyEvent, SketchReleased
from .sketch import protect_sketch

__all__ = ["ClientLedger", "private_row_scores"]


@dataclass(slots=True, kw_only=True)
class ClientLedger:
    client: int
    cfg: PrivacyConfig
    num_examples: int
    batch_size: int
    epochs: int
    planned_rounds: int
    #: round -> seed of that round's DP noise: secret (OS entropy) unless secure_rng is off
    noise_seed: Callable[[int], int]
    generator: torch.Generator = field(default_factory=torch.Generator)
    events: list[PrivacyEvent] = field(default_factory=list)
    noise_multiplier: float = 0.0

    def __post_init__(self) -> None:
        if self.cfg.dp_sgd:
            self.noise_multiplier = self.cfg.noise_multiplier or self._calibrated()

    def _calibrated(self) -> float:
        rate, steps = dp_schedule(self.num_examples, batch_size=self.batch_size, epochs=self.epochs)
        return calibrate_noise(target_epsilon=self.cfg.target_epsilon, delta=self.cfg.delta,
                               sample_rate=rate, steps=steps * self.planned_rounds,
                               accountant=self.cfg.accountant)

    def set_num_examples(self, n: int) -> None:
        """The client's training set changed size (e.g. audit canaries): recalibrate."""
        self.num_examples = n
        if self.cfg.dp_sgd and not self.cfg.noise_multiplier:
            self.noise_multiplier = self._calibrated()

    def begin_round(self, round: int) -> torch.Generator:
        """A fresh noise generator for ``round`` (never the same noise in two rounds)."""
        self.generator = torch.Generator().manual_seed(self.noise_seed(round))
        return self.generator

    def planned_event(self, round: int) -> DpSgdTrained:
        rate, steps = dp_schedule(self.num_examples, batch_size=self.batch_size, epochs=self.epochs)
        return DpSgdTrained(client=self.client, round=round, noise_multiplier=self.noise_multiplier,
                            sample_rate=rate, steps=steps, max_grad_norm=self.cfg.max_grad_norm)

    def dp_epsilon(self, extra: Sequence[PrivacyEvent] = ()) -> float:
        events = [e for e in self.events if isinstance(e, DpSgdTrained)] + list(extra)
        return accountant_for(self.cfg.accountant).epsilon(events, delta=self.cfg.delta)

    def may_train(self, round: int) -> bool:
        """False when one more round of DP-SGD would exceed privacy.target_epsilon."""
        if not self.cfg.dp_sgd:
            return True
        # The calibration tolerance of Opacus is 0.01; accept what it calibrated.
        return self.dp_epsilon([self.planned_event(round)]) <= self.cfg.target_epsilon + 0.011

    def record(self, event: PrivacyEvent) -> None:
        self.events.append(event)

    def record_distributed(self, applied: Sequence[NoiseApplied], round: int) -> None:
        """The vectors of one pass went into cluster sums with distributed noise: one event."""
        if applied:
            cohort = min(a.cohort for a in applied)
            self.record(DistributedNoiseAdded(client=self.client, round=round, noise=self.cfg.distributed_noise,
                                              clip=self.cfg.distributed_clip, sums=len(applied), cohort=cohort,
                                              contributors=cohort, dim=max(a.dim for a in applied),
                                              scale=min(a.scale for a in applied)))

    def settle_distributed(self, round: int, *, dropped: int) -> None:
        """``dropped`` clients left during ``round``: charge its sums at cohort - dropped contributors."""
        self.events = [replace(e, contributors=max(1, e.cohort - dropped))
                       if isinstance(e, DistributedNoiseAdded) and e.round == round else e for e in self.events]

    def release_sketch(self, v: torch.Tensor, round: int) -> torch.Tensor:
        cfg = self.cfg
        if cfg.sketch_noise <= 0:
            return v  # sent in clear, as without privacy
        self.record(SketchReleased(client=self.client, round=round, noise=cfg.sketch_noise, clip=cfg.sketch_clip))
        return protect_sketch(v, clip=cfg.sketch_clip, noise=cfg.sketch_noise, generator=self.generator)


def private_row_scores(start: dict[str, LayerFactors], layers: dict[str, tuple[int, int]],
                       generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Row scores for pre-fisher masks that never look at the client's data.

    A row's score is its squared norm in the client's personalized start
    ΔW (the merge of last round's cluster adapters: post-processing of
    releases already accounted). With no adapter yet (round 0) the scores
    are random draws from ``generator``, independent of the data.
    """
    out = {}
    for name, (rows, _) in layers.items():
        f = start.get(name)
        if f is not None:
            out[name] = (f.B @ f.A).pow(2).sum(dim=1) + 1e-12 * torch.rand(rows, generator=generator)
        else:
            out[name] = torch.rand(rows, generator=generator)
    return out
