"""The one interface everything that protects data sits behind.

Given each client's vectors and public weights p_ij, a backend returns the
per-cluster sums Σ_i p_ij v_ij and nothing about any single v_ij beyond what
its threat model states. A client's vectors come in two kinds: ``shared``
(the same vector for every cluster, e.g. a product with the public Gaussian)
and ``per_cluster[j]`` (computed from cluster j's own request). A weight of 0
means the client does not take part in that cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..exceptions import ConfigError

__all__ = ["Contribution", "Expected", "SecureSum", "backend_for", "BACKENDS"]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True, slots=True, kw_only=True)
class Contribution:
    shared: Tensors = field(default_factory=dict)
    per_cluster: dict[int, Tensors] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """The shapes a pass asked for; payloads that differ are rejected."""

    shared: dict[str, tuple[int, ...]]
    per_cluster: dict[str, tuple[int, ...]]


class SecureSum(ABC):
    """Client side: contribution -> payload tensors. Server side: payloads -> per-cluster sums."""

    name: ClassVar[str]
    #: one line for reports: what the aggregator learns.
    server_learns: ClassVar[str]

    @abstractmethod
    def client_payload(self, contribution: Contribution, *, weights: Sequence[float]) -> Tensors:
        """What leaves the client for this pass (goes into a PassReply)."""

    @abstractmethod
    def server_sum(self, payloads: Mapping[int, Tensors], *, weights: Mapping[int, Sequence[float]],
                   expected: Expected, clusters: int) -> list[Tensors]:
        """Per-cluster sums over the senders in ``payloads``.

        Raises a RemoteProtocolError naming the sender whose payload is bad;
        the caller drops that sender and sums again.
        """


BACKENDS: dict[str, type[SecureSum]] = {}


def backend_for(name: str) -> SecureSum:
    if name not in BACKENDS:
        raise ConfigError("secure.backend", f"{name!r} is not available", ", ".join(sorted(BACKENDS)))
    return BACKENDS[name]()
