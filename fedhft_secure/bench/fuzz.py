"""Malformed input against every decoder and every masking stage: each must be a typed error.

For each target (a message kind at the stage where it is expected, on the
side that receives it) the fuzzer takes real messages of a real session and
feeds mutants to a fresh copy of the receiving state machine:

- *invalid* mutants — truncated, extended, oversized, garbage, wrong kind,
  wrong version, wrong round, replayed, from a forged sender, an earlier
  stage's message — must raise a ``RemoteProtocolError``; one that is
  accepted counts in ``accepted``;
- *value* mutants (bytes flipped anywhere) may be legitimately accepted, since
  a sender chooses its own values; they count only when they crash.

Anything but a ``RemoteProtocolError`` (or a clean ``AggregationAborted``) is
a crash.
"""

from __future__ import annotations

import copy
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..crypto.sign import IdentityKey
from ..exceptions import AggregationAborted, RemoteProtocolError
from ..fl.messages import PassReply, PassRequest, Ready, RoundStart
from ..secure.masking import MaskingSum
from ..wire import SERVER, Intake, decode, encode
from .session import MaskingRun

__all__ = ["FuzzResult", "fuzz_all", "outcome", "mutate", "flip", "INVALID", "VALUE"]

INVALID = ("truncate", "extend", "oversize", "garbage", "kind", "version", "round", "replay", "forged_sender",
           "stale_stage")
VALUE = ("flip",)
_HEAD = struct.Struct("<4sBBIHII")  # magic, version, kind, round, pass, sender, header length


@dataclass
class FuzzResult:
    target: str
    inputs: int = 0
    crashes: int = 0
    accepted: int = 0  # invalid mutants taken as valid
    value_mutants_accepted: int = 0  # informational: values are the sender's to choose
    examples: list[str] = field(default_factory=list)

    def record(self, kind: str, outcome: str, detail: str = "", *, invalid: bool | None = None) -> None:
        """``invalid``: whether the mutant must be refused (default: ``kind`` is one of ``INVALID``)."""
        invalid = kind in INVALID if invalid is None else invalid
        self.inputs += 1
        if outcome == "crash":
            self.crashes += 1
        elif outcome == "accepted" and invalid:
            self.accepted += 1
        elif outcome == "accepted":
            self.value_mutants_accepted += 1
        if outcome == "crash" or (outcome == "accepted" and invalid):
            if len(self.examples) < 5:
                self.examples.append(f"{kind}: {outcome} {detail}"[:300])


def _with_head(blob: bytes, **change: int) -> bytes:
    magic, ver, kind, rnd, pss, snd, hl = _HEAD.unpack_from(blob)
    vals = dict(version=ver, kind=kind, round=rnd, pass_idx=pss, sender=snd)
    vals.update(change)
    return _HEAD.pack(magic, vals["version"], vals["kind"], vals["round"], vals["pass_idx"], vals["sender"],
                      hl) + blob[_HEAD.size:]


def flip(rng: random.Random, blob: bytes) -> bytes:
    """1 to 4 random bytes XORed with a nonzero value: a value mutant (it may stay well-formed)."""
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] ^= rng.randint(1, 255)
    return bytes(b)


def mutate(rng: random.Random, kind: str, blob: bytes, *, max_bytes: int, other: bytes) -> bytes:
    head = _HEAD.unpack_from(blob)
    if kind == "truncate":
        return blob[:rng.randrange(len(blob))]
    if kind == "extend":
        return blob + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    if kind == "oversize":
        return blob + bytes(max_bytes - len(blob) + 1)
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 2 * len(blob))))
    if kind == "kind":
        return _with_head(blob, kind=rng.choice([k for k in range(1, 32) if k != head[2]]))
    if kind == "version":
        return _with_head(blob, version=rng.choice([v for v in range(256) if v != head[1]]))
    if kind == "round":
        return _with_head(blob, round=(head[3] + rng.randint(1, 2**31)) % 2**32)
    if kind == "stale_stage":
        return other
    if kind == "flip":
        return flip(rng, blob)
    raise ValueError(kind)


def outcome(fn: Callable[[], object]) -> tuple[str, str]:
    """rejected (a typed RemoteProtocolError or a clean abort), accepted, or crash (anything else)."""
    try:
        fn()
    except (RemoteProtocolError, AggregationAborted):
        return "rejected", ""
    except Exception as exc:  # noqa: BLE001 - that is what a crash is
        return "crash", f"{type(exc).__name__}: {exc}"
    return "accepted", ""


def _fuzz_server_stage(run: MaskingRun, snapshot, stage: str, n: int, rng: random.Random,  # noqa: ANN001
                       max_bytes: int) -> FuzzResult:
    res = FuzzResult(target=f"server:{stage}")
    replies = run.from_client[stage]
    earlier = [b for s, m in run.from_client.items() if s != stage for b in m.values()]
    ids = sorted(replies)
    for k in range(n):
        kind = (INVALID + VALUE)[k % (len(INVALID) + len(VALUE))]
        c = rng.choice(ids)
        blob = replies[c]
        server = copy.deepcopy(snapshot)
        if kind == "replay":
            server.receive(c, blob)
            res.record(kind, *outcome(lambda: server.receive(c, blob)))
        elif kind == "forged_sender":
            other = rng.choice([i for i in ids if i != c])
            res.record(kind, *outcome(lambda: server.receive(other, blob)))
        else:
            bad = mutate(rng, kind, blob, max_bytes=max_bytes, other=rng.choice(earlier) if earlier else b"")
            res.record(kind, *outcome(lambda: server.receive(c, bad)))
    return res


def _fuzz_client_stage(run: MaskingRun, clients, stage: str, n: int, rng: random.Random,  # noqa: ANN001
                       max_bytes: int) -> FuzzResult:
    res = FuzzResult(target=f"client:{stage}")
    msgs = run.to_client[stage]
    earlier = [b for s, m in run.to_client.items() if s != stage for b in m.values()]
    ids = sorted(msgs)
    for k in range(n):
        kind = (INVALID + VALUE)[k % (len(INVALID) + len(VALUE))]
        c = rng.choice(ids)
        client = copy.deepcopy(clients[c])
        blob = msgs[c]
        if kind == "replay":
            client.handle(blob)
            res.record(kind, *outcome(lambda: client.handle(blob)))
        elif kind == "forged_sender":  # a message that claims to come from a client, not the server
            res.record(kind, *outcome(lambda: client.handle(_with_head(blob, sender=rng.choice(ids)))))
        else:
            bad = mutate(rng, kind, blob, max_bytes=max_bytes, other=rng.choice(earlier) if earlier else b"")
            res.record(kind, *outcome(lambda: client.handle(bad)))
    return res


def _fuzz_round_messages(n: int, rng: random.Random, max_bytes: int) -> list[FuzzResult]:
    """The round's own messages (fl/messages.py), against their decoders with the intake's checks."""
    import torch

    v = torch.ones(6, 4)
    samples = {
        "RoundStart": (RoundStart(round=2, probs=[0.5, 0.5], lr=0.1, adapters={"c0/x/B": v}, heads={"c0/w": v}),
                       SERVER),
        "PassRequest": (PassRequest(round=2, pass_idx=3, plan_pass=1, epoch=0, ops={"x": "L"}, omega={},
                                    probs=[1.0, 0.0], inputs={"c0/x": v}), SERVER),
        "Ready": (Ready(round=2, sender=1), 1),
        "PassReply": (PassReply(round=2, pass_idx=3, sender=1, payload={"x": v}, sketch={}), 1),
    }
    out = []
    for name, (msg, sender) in samples.items():
        res = FuzzResult(target=f"decoder:{name}")
        blob = encode(msg)
        other = encode(next(m for n2, (m, _) in samples.items() if n2 != name))
        cls, pss = type(msg), msg.pass_idx
        # a client cannot spot a replay at the decoder (its state machine orders passes): not fuzzed there
        kinds = [k for k in INVALID + VALUE if not (sender == SERVER and k == "replay")]
        for k in range(n):
            kind = kinds[k % len(kinds)]
            intake = Intake(max_bytes=max_bytes)

            def take(b: bytes, channel: int = sender, intake: Intake = intake, cls: type = cls) -> object:
                if channel == SERVER:  # what a client expects from the server
                    return decode(b, cls, round=2, pass_idx=pss, sender=SERVER, max_bytes=max_bytes)
                return intake.accept(b, cls, round=2, pass_idx=pss, sender=channel, allowed={1, 2})

            if kind == "replay":
                take(blob)
                res.record(kind, *outcome(lambda: take(blob)))
            elif kind == "forged_sender" and sender == SERVER:
                res.record(kind, *outcome(lambda: take(_with_head(blob, sender=1))))
            elif kind == "forged_sender":
                res.record(kind, *outcome(lambda: take(blob, 2)))  # client 1's message on client 2's channel
            else:
                bad = mutate(rng, kind, blob, max_bytes=max_bytes, other=other)
                res.record(kind, *outcome(lambda: take(bad)))
        out.append(res)
    return out


def fuzz_all(*, per_target: int, seed: int = 0, n: int = 6, max_bytes: int = 2**20,
             signed: bool = True) -> list[FuzzResult]:
    """Every decoder and every masking stage on both sides, ``per_target`` inputs each."""
    rng = random.Random(seed)
    vecs = {i: np.random.default_rng(i).uniform(-1, 1, 16) for i in range(n)}
    ids = {i: IdentityKey.generate() for i in range(n)} if signed else None
    backend = MaskingSum(identities=ids, threat="semi-malicious" if signed else "honest-but-curious",
                         max_bytes=max_bytes)
    snaps: dict[str, tuple] = {}

    def hook(stage: str, run: MaskingRun) -> None:
        snaps[stage] = (copy.deepcopy(run.server), copy.deepcopy(run.clients))

    run = MaskingRun(vecs, backend)
    assert run.run(hook=hook) is not None, "the session to fuzz must itself succeed"
    results = []
    for stage, (server, clients) in snaps.items():
        results.append(_fuzz_client_stage(run, clients, stage, per_target, rng, max_bytes))
        results.append(_fuzz_server_stage(run, server, stage, per_target, rng, max_bytes))
    results += _fuzz_round_messages(per_target, rng, max_bytes)
    return results
