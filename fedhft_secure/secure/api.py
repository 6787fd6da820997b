"""The one interface everything that protects data sits behind.

Given each client's vectors and public weights p_ij, a backend returns the
per-cluster sums Σ_i p_ij v_ij and nothing about any single v_ij beyond what
its threat model states. A client's vectors come in two kinds: ``shared``
(the same vector for every cluster, e.g. a product with the public Gaussian)
and ``per_cluster[j]`` (computed from cluster j's own request). A weight of 0
means the client does not take part in that cluster.

A backend opens one *session* per round (and again after a restart), on each
side. Sessions are sans-I/O state machines: bytes in, bytes out.

- server: ``next_messages()`` gives the messages of the session's current
  extra stage (key set-up before the first pass, unmasking after a pass), or
  ``{}`` when it needs none; ``receive`` takes the replies; ``add_payload``
  takes the payload of each pass reply; ``sums()`` is the per-cluster result
  once a pass is complete.
- client: ``handle`` answers the session's own messages; ``payload`` turns a
  contribution into what leaves the client in a pass reply.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..exceptions import ConfigError, MalformedMessage
from ..wire import SERVER, kind_of

__all__ = ["Contribution", "Expected", "SecureSum", "ServerSession", "ClientSession", "SessionInfo",
           "backend_for", "BACKENDS"]

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
    #: vectors whose first axis is the output rows of an adapted layer: name -> layer
    row_layers: dict[str, str] = field(default_factory=dict)

    def size(self) -> int:
        return sum(int(torch.Size(s).numel()) for s in (*self.shared.values(), *self.per_cluster.values()))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """Public facts a session is opened with (the same on both sides)."""

    round: int
    epoch: int  # 0, then +1 for every restart of the round's plan
    cohort: tuple[int, ...]
    clusters: int
    passes: int  # passes the plan will need (key material is made for each)
    weights: dict[int, tuple[float, ...]]  # public cluster weights of every cohort member


class ServerSession(ABC):
    _alive: set[int]

    def next_messages(self) -> dict[int, bytes]:
        return {}

    def receive(self, client: int, blob: bytes) -> None:  # noqa: B027 - optional stage
        raise NotImplementedError

    @abstractmethod
    def begin_pass(self, pass_seq: int, *, slot: int, expected: Expected) -> None:
        """A pass starts: its wire sequence number, its slot in the plan (0..passes-1), its shapes."""

    @abstractmethod
    def add_payload(self, client: int, payload: Tensors) -> None:
        """One client's pass payload; a RemoteProtocolError names a bad sender."""

    @abstractmethod
    def end_inputs(self) -> None:
        """No more payloads for this pass (the missing are dropouts)."""

    @abstractmethod
    def sums(self) -> list[Tensors] | None:
        """Per-cluster sums once the pass (and any unmask stage) is complete."""

    @property
    def alive(self) -> set[int]:
        """Clients still in the session (not dropped at any stage)."""
        return self._alive

    @property
    @abstractmethod
    def contributors(self) -> set[int]:
        """Clients whose input is in the current pass's sums (known after ``end_inputs``)."""


class ClientSession(ABC):
    def handle(self, blob: bytes) -> bytes:
        """A backend whose sums need no messages of their own (plaintext, ckks) has none to accept."""
        raise MalformedMessage(f"message kind {kind_of(blob)}: this backend's sums take no messages of their own",
                               sender=SERVER)

    @abstractmethod
    def payload(self, contribution: Contribution, *, slot: int, weights: Sequence[float],
                expected: Expected) -> Tensors:
        """What leaves the client for this pass (goes into a PassReply)."""


class SecureSum(ABC):
    name: ClassVar[str]
    #: one line for reports: what the aggregator learns.
    server_learns: ClassVar[str]

    @abstractmethod
    def server_session(self, info: SessionInfo) -> ServerSession: ...

    @abstractmethod
    def client_session(self, me: int, round: int, rows: Mapping[str, object] | None = None) -> ClientSession:
        """A client's session for a round; it learns the rest from the backend's own messages.

        ``rows``: the client's kept-row masks per layer, for backends that may use them."""


BACKENDS: dict[str, type[SecureSum]] = {}


def backend_for(name: str, **options: object) -> SecureSum:
    if name not in BACKENDS:
        raise ConfigError("secure.backend", f"{name!r} is not available", ", ".join(sorted(BACKENDS)))
    return BACKENDS[name](**options)
