"""Messages of a FedHFT round (wire format: ``fedhft_secure.wire``, protocols/wire.md)."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from ..wire import DEFAULT_MAX_BYTES, SERVER, VERSION, Intake, Tensors, decode, encode, message

__all__ = ["VERSION", "SERVER", "Tensors", "RoundStart", "PassRequest", "PassReply", "Ready",
           "ExplicitUpload", "RoundLog", "Synced", "AFTER_PASSES", "encode", "decode", "Intake",
           "DEFAULT_MAX_BYTES"]

#: ``pass_idx`` of the messages that close or replay a round (after every pass request).
AFTER_PASSES = 0xFFFF


@message
class RoundStart:
    """Server -> client: the cluster adapters and this client's cluster weights."""

    KIND: ClassVar[int] = 1
    round: int
    pass_idx: int = 0
    sender: int = SERVER
    probs: list[float]
    lr: float
    adapters: Tensors = field(default_factory=dict)  # "c{j}/{layer}/B|A"
    heads: Tensors = field(default_factory=dict)  # "c{j}/{param}"


@message
class PassRequest:
    """Server -> clients: the matrices to multiply by, per cluster and layer.

    ``pass_idx`` counts requests within the round and is never reused (a plan
    restarted after a dropout continues the count); ``plan_pass`` is the
    step of the plan (0 = the pass that also carries counts, head, sketch).
    """

    KIND: ClassVar[int] = 2
    round: int
    pass_idx: int
    sender: int = SERVER
    plan_pass: int
    epoch: int  # the SecureSum session (0, +1 per restart of the plan)
    ops: dict[str, str]  # layer -> "L" | "R"
    omega: dict[str, list[int]]  # layer -> [seed, columns] when X is the public Gaussian
    probs: list[float]  # the receiving client's weights (0 = skip that cluster)
    inputs: Tensors = field(default_factory=dict)  # "c{j}/{layer}" -> X


@message
class PassReply:
    """Client -> server: the SecureSum payload of one pass, plus the sketch at pass 0."""

    KIND: ClassVar[int] = 3
    round: int
    pass_idx: int
    sender: int
    payload: Tensors = field(default_factory=dict)
    sketch: Tensors = field(default_factory=dict)


@message
class Ready:
    """Client -> server (pass plan): trained and holding its masked factors for this round."""

    KIND: ClassVar[int] = 5
    round: int
    pass_idx: int = 0
    sender: int


@message
class ExplicitUpload:
    """Client -> server, reference server only: kept B rows, A, head (as the official code)."""

    KIND: ClassVar[int] = 4
    round: int
    pass_idx: int = 0
    sender: int
    rows: Tensors = field(default_factory=dict)  # layer -> int32 kept row indices
    B: Tensors = field(default_factory=dict)  # layer -> kept rows of B
    A: Tensors = field(default_factory=dict)
    head: Tensors = field(default_factory=dict)
    sketch: Tensors = field(default_factory=dict)




@message
class RoundLog:
    """Server -> member (``ckks``): one round's per-pass cluster sums, as ciphertexts.

    The server keeps these (its only model state) and forwards them: at the
    end of a round the last pass (``first_pass`` = passes - 1; the member holds
    the earlier ones from the requests), or a whole round (``first_pass`` = 0)
    to a member catching up. ``passes`` = 0: the round changed nothing.
    """

    KIND: ClassVar[int] = 6
    round: int
    pass_idx: int = AFTER_PASSES
    sender: int = SERVER
    epoch: int
    totals: list[float]  # Σ_i p_ij over the clients in the sums (public weights)
    passes: int
    first_pass: int
    sums: Tensors = field(default_factory=dict)  # "p{k}/c{j}" -> ciphertext bytes (uint8)


@message
class Synced:
    """Member -> server (``ckks``): it now holds the cluster state after ``round``."""

    KIND: ClassVar[int] = 7
    round: int
    pass_idx: int = AFTER_PASSES
    sender: int
