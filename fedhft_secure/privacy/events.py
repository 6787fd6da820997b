"""What happened, apart from how it is counted (as dp_accounting's ``dp_event``).

A run records one event per private release; accountants (``accountant.py``)
turn a client's events into epsilon. Every event reduces to a list of
subsampled-Gaussian compositions ``(noise_multiplier, sample_rate, steps)``,
the common currency of the RDP and PRV accountants.

Adding a mechanism is adding an event type here and registering it in
``EVENT_TYPES``: e.g. a ``DistributedNoiseAdded`` event (discrete Gaussian
noise inside the masked sum, Kairouz-Liu-Steinke 2021) would reduce to its
effective central noise multiplier per pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from ..exceptions import LocalProtocolError

__all__ = ["PrivacyEvent", "DpSgdTrained", "SketchReleased", "EVENT_TYPES", "event_to_dict",
           "event_from_dict", "RECORD_LEVEL", "CLIENT_LEVEL"]

#: neighbouring relations, as named in the epsilon report
RECORD_LEVEL = "add/remove one training example of the client"
CLIENT_LEVEL = "replace the client's whole dataset"


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


PrivacyEvent = DpSgdTrained | SketchReleased

EVENT_TYPES: dict[str, type] = {"dp_sgd": DpSgdTrained, "sketch": SketchReleased}


def event_to_dict(event: PrivacyEvent) -> dict[str, Any]:
    return {"mechanism": event.mechanism, **asdict(event)}


def event_from_dict(data: dict[str, Any]) -> PrivacyEvent:
    fields = dict(data)
    cls = EVENT_TYPES.get(fields.pop("mechanism", ""))
    if cls is None:
        raise LocalProtocolError(f"unknown privacy event {data!r}")
    return cls(**fields)
