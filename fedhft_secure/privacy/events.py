"""What happened, apart from how it is counted (as dp_accounting's ``dp_event``).

A run records one event per private release; accountants (``accountant.py``)
turn a client's events into epsilon. Every event reduces to a list of
subsampled-Gaussian compositions ``(noise_multiplier, sample_rate, steps)``,
the common currency of the RDP and PRV accountants.

Adding a mechanism is adding an event type here and registering it in
``EVENT_TYPES``. ``DistributedNoiseAdded`` (discrete Gaussian noise inside the
masked sum, Kairouz-Liu-Steinke 2021) reduces to the Gaussian multiplier
whose RDP equals their bound (``ddp.py``); its class lists the accountants that
are sound for it (RDP only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from ..exceptions import LocalProtocolError
from .ddp import effective_multiplier

__all__ = ["PrivacyEvent", "DpSgdTrained", "SketchReleased", "DistributedNoiseAdded", "EVENT_TYPES",
           "event_to_dict", "event_from_dict", "RECORD_LEVEL", "CLIENT_LEVEL", "DISTRIBUTED"]

#: neighbouring relations, as named in the epsilon report
RECORD_LEVEL = "add/remove one training example of the client"
CLIENT_LEVEL = "replace the client's whole dataset"
#: the mechanism name of the distributed discrete Gaussian, as in the epsilon report
DISTRIBUTED = "distributed-discrete-gaussian"


@dataclass(frozen=True, slots=True, kw_only=True)
class DpSgdTrained:
    """A client ran ``steps`` DP-SGD steps (Poisson rate ``sample_rate``) in ``round``."""

    mechanism: ClassVar[str] = "dp_sgd"
    neighbouring: ClassVar[str] = RECORD_LEVEL
    client: int
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float

    def compositions(self) -> list[tuple[float, float, int]]:
        return [(self.noise_multiplier, self.sample_rate, self.steps)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SketchReleased:
    """A client sent its clustering sketch, L2-clipped to ``clip``, plus N(0, (noise*clip)^2 I).

    Replacing the client's data moves the clipped sketch by at most 2 * clip,
    so the release is a Gaussian mechanism with multiplier ``noise / 2``.
    """

    mechanism: ClassVar[str] = "sketch"
    neighbouring: ClassVar[str] = CLIENT_LEVEL
    client: int
    round: int
    noise: float
    clip: float

    def compositions(self) -> list[tuple[float, float, int]]:
        return [(self.noise / 2.0, 1.0, 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class DistributedNoiseAdded:
    """A client's vectors entered ``sums`` cluster sums, each carrying distributed discrete Gaussian noise.

    Central DP toward the server (who sees only the sums): every sum has noise
    std ``noise * clip`` per coordinate when all ``cohort`` clients set up for
    it contribute; it is charged at ``contributors`` (<= cohort, settled from
    the round's dropouts), with KLS's bound at ``dim`` coordinates and
    ``scale`` integer levels per unit (``ddp.py``).
    """

    mechanism: ClassVar[str] = DISTRIBUTED
    neighbouring: ClassVar[str] = CLIENT_LEVEL + " (each cluster pass vector moves by <= 2 x clip in L2)"
    accountants: ClassVar[tuple[str, ...]] = ("rdp",)
    client: int
    round: int
    noise: float
    clip: float
    sums: int
    cohort: int
    contributors: int
    dim: int
    scale: float

    def compositions(self) -> list[tuple[float, float, int]]:
        z = effective_multiplier(clip=self.clip, noise=self.noise, scale=self.scale, cohort=self.cohort,
                                 contributors=self.contributors, dim=self.dim)
        return [(z, 1.0, self.sums)]


PrivacyEvent = DpSgdTrained | SketchReleased | DistributedNoiseAdded

EVENT_TYPES: dict[str, type] = {"dp_sgd": DpSgdTrained, "sketch": SketchReleased,
                                DISTRIBUTED: DistributedNoiseAdded}


def event_to_dict(event: PrivacyEvent) -> dict[str, Any]:
    return {"mechanism": event.mechanism, **asdict(event)}


def event_from_dict(data: dict[str, Any]) -> PrivacyEvent:
    fields = dict(data)
    cls = EVENT_TYPES.get(fields.pop("mechanism", ""))
    if cls is None:
        raise LocalProtocolError(f"unknown privacy event {data!r}")
    return cls(**fields)
