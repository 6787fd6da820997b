"""Messages of the masking session (SecAgg+ stages), on the common wire codec.

Stages, in order (see protocols/secagg.md): KeySetup -> KeyAdvert,
KeyDirectory -> ShareBundle, ForwardedShares -> SharesHeld, then per pass:
the masked input travels in the round's PassReply, [SurvivorList ->
SurvivorSignature, with signed keys,] UnmaskRequest -> UnmaskReply.
"""

from __future__ import annotations

import enum
from dataclasses import field
from typing import ClassVar

from ...wire import SERVER, Tensors, message

__all__ = ["Stage", "KeySetup", "KeyAdvert", "KeyDirectory", "ShareBundle", "ForwardedShares", "SharesHeld",
           "SurvivorList", "SurvivorSignature", "UnmaskRequest", "UnmaskReply", "NEXT"]


class Stage(enum.Enum):
    IDLE = "idle"
    ADVERTISED = "advertised"  # sent our public keys
    SHARED = "shared"  # sent encrypted shares of our secrets
    READY = "ready"  # hold our neighbours' shares; may mask inputs


#: the one transition table: which message moves a client session from which stage.
NEXT = {
    ("KeySetup", Stage.IDLE): Stage.ADVERTISED,
    ("KeyDirectory", Stage.ADVERTISED): Stage.SHARED,
    ("ForwardedShares", Stage.SHARED): Stage.READY,
    ("SurvivorList", Stage.READY): Stage.READY,  # the consistency check (signed keys only)
    ("UnmaskRequest", Stage.READY): Stage.READY,
}


@message
class KeySetup:
    KIND: ClassVar[int] = 16
    round: int
    pass_idx: int = 0
    sender: int = SERVER
    epoch: int
    cohort: list[int]
    participation: list[list[int]]  # per cohort member (same order): clusters it sends vectors for
    graph_seed: int
    degree: int
    threshold: int  # of the degree + 1 share holders (the neighbours and the client itself)
    slots: int  # passes to make key material for
    bits: int
    clip: float
    clusters: int


@message
class KeyAdvert:
    KIND: ClassVar[int] = 17
    round: int
    pass_idx: int = 0
    sender: int
    epoch: int
    keys: Tensors = field(default_factory=dict)  # enc (32), mask (slots x 32), sig (64, or empty)


@message
class KeyDirectory:
    KIND: ClassVar[int] = 18
    round: int
    pass_idx: int = 0
    sender: int = SERVER
    epoch: int
    peers: Tensors = field(default_factory=dict)  # "{v}/enc", "{v}/mask", "{v}/sig"


@message
class ShareBundle:
    KIND: ClassVar[int] = 19
    round: int
    pass_idx: int = 0
    sender: int
    epoch: int
    shares: Tensors = field(default_factory=dict)  # "{v}": AES-GCM ciphertext for neighbour v (own share: kept)


@message
class ForwardedShares:
    KIND: ClassVar[int] = 20
    round: int
    pass_idx: int = 0
    sender: int = SERVER
    epoch: int
    shares: Tensors = field(default_factory=dict)  # "{u}": u's ciphertext for the receiver


@message
class SharesHeld:
    KIND: ClassVar[int] = 21
    round: int
    pass_idx: int = 0
    sender: int
    epoch: int
    holders: list[int]  # neighbours whose shares this client holds (its own share goes without saying)


@message
class SurvivorList:
    """The consistency check: who sent a masked input this pass, for every survivor to sign."""

    KIND: ClassVar[int] = 24
    round: int
    pass_idx: int
    sender: int = SERVER
    epoch: int
    slot: int
    survivors: list[int]


@message
class SurvivorSignature:
    KIND: ClassVar[int] = 25
    round: int
    pass_idx: int
    sender: int
    epoch: int
    sig: Tensors = field(default_factory=dict)  # "sig": 64-byte Ed25519 signature of the survivor list


@message
class UnmaskRequest:
    KIND: ClassVar[int] = 22
    round: int
    pass_idx: int
    sender: int = SERVER
    epoch: int
    slot: int
    dropped: list[int]
    survivors: list[int]
    signatures: Tensors = field(default_factory=dict)  # "{v}": v's signature of the survivors (signed keys)


@message
class UnmaskReply:
    KIND: ClassVar[int] = 23
    round: int
    pass_idx: int
    sender: int
    epoch: int
    shares: Tensors = field(default_factory=dict)  # "s/{u}" (u dropped) or "b/{u}" (u survived, sender included)

