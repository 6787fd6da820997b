"""The server side of a masking session: routes keys and shares, opens only sums.

``next_messages()`` closes the stage in progress (a client that did not
answer is dropped) and returns the next stage's messages: KeySetup,
KeyDirectory, ForwardedShares, then nothing until a pass; after a pass's
inputs, SurvivorList (the consistency check, when keys are signed) and
UnmaskRequest; then the sums are open and it returns nothing.

Share holders of client u: its neighbours and u itself (h = k + 1). A
survivor's own self-mask share comes in its UnmaskReply as ``b/{u}``; a
mask-key share is taken only from a neighbour. The session goes on while
every live client keeps t live holders (itself included) and every dropped
client whose shares went out keeps t live neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ...crypto.encoding import FixedPoint
from ...crypto.kex import KeyPair, agree
from ...crypto.packing import unpack
from ...crypto.shamir import lagrange_at_zero, reconstruct
from ...exceptions import AggregationAborted, LocalProtocolError, RemoteProtocolError, ShapeMismatch, WrongRound
from ...wire import Intake, encode
from ..api import Expected, ServerSession, SessionInfo, Tensors
from .masks import layout, pair_seed, self_seed, stream, support, unflatten
from .messages import (ForwardedShares, KeyAdvert, KeyDirectory, KeySetup, SharesHeld, ShareBundle, SurvivorList,
                       SurvivorSignature, UnmaskReply, UnmaskRequest)
from .params import MaskingParams, neighbour_graph

__all__ = ["MaskingServer"]

_REPLY = {"setup": KeyAdvert, "directory": ShareBundle, "forward": SharesHeld, "check": SurvivorSignature,
          "unmask": UnmaskReply}


class MaskingServer(ServerSession):
    def __init__(self, info: SessionInfo, params: MaskingParams, *, participation: Mapping[int, Sequence[int]],
                 graph_seed: int, max_bytes: int = 64 * 2**20, reveal_rows: bool = False,
                 consistency: bool = False) -> None:
        """``consistency``: run SecAgg's consistency check before each unmask (clients with signed keys
        insist on it, so a server that skips it gets no shares)."""
        self.pass_seq = 0
        self.consistency = consistency
        self.reveal_rows = reveal_rows
        self.rows: dict[int, dict[str, np.ndarray]] = {}
        self.withheld: dict[str, np.ndarray] = {}
        self.info, self.params = info, params
        self.cohort = list(info.cohort)
        self.part = {c: sorted(participation[c]) for c in self.cohort}
        self.graph = neighbour_graph(self.cohort, params.degree, graph_seed)
        self.graph_seed = graph_seed
        self.max_bytes = max_bytes
        self.intake = Intake(max_bytes=max_bytes)
        self.stage = "start"
        self.replies: dict[int, object] = {}
        self._alive = set(self.cohort)
        self.errors: list[tuple[int, str]] = []
        n_max = max(1, max(sum(j in p for p in self.part.values()) for j in range(info.clusters)))
        self.codec = FixedPoint(n=n_max, clip=params.clip, bits=params.bits)
        self.result: list[Tensors] | None = None

    @property
    def contributors(self) -> set[int]:
        return set(getattr(self, "inputs", {}))

    def _drop(self, client: int, why: str) -> None:
        if client in self._alive:
            self._alive.discard(client)
            self.errors.append((client, why))

    def receive(self, client: int, blob: bytes) -> None:
        expect = _REPLY.get(self.stage)
        if expect is None:
            raise WrongRound(f"no reply expected in stage {self.stage}", sender=client)
        try:
            msg = self.intake.accept(blob, expect, round=self.info.round, pass_idx=self.pass_seq
                                     if self.stage in ("check", "unmask") else 0, sender=client, allowed=self._alive)
            if msg.epoch != self.info.epoch:
                raise WrongRound(f"epoch {msg.epoch}, expected {self.info.epoch}", sender=client)
            self._check(client, msg)
        except RemoteProtocolError as exc:
            self._drop(client, f"{type(exc).__name__}: {exc}")
            raise
        self.replies[client] = msg

    def _check(self, client: int, msg: object) -> None:
        if isinstance(msg, KeyAdvert):
            k = msg.keys
            rows = {n[5:]: t for n, t in k.items() if n.startswith("rows/")}
            if (set(k) - set(f"rows/{n}" for n in rows) != {"enc", "mask", "sig"} or k["enc"].numel() != 32
                    or k["mask"].numel() != 32 * self.info.passes or k["enc"].dtype.is_floating_point):
                raise ShapeMismatch(f"sender {client}: key advert has the wrong shape", sender=client)
            if self.reveal_rows:
                if not rows or any(t.dtype != torch.bool or t.dim() != 1 for t in rows.values()):
                    raise ShapeMismatch(f"sender {client}: reveal-rows needs its kept-row sets", sender=client)
                first = next(iter(self.rows.values()), None)
                if first is not None and {n: len(v) for n, v in first.items()} != {n: t.numel()
                                                                                  for n, t in rows.items()}:
                    raise ShapeMismatch(f"sender {client}: row sets do not match the others'", sender=client)
                self.rows[client] = {n: t.numpy().astype(bool) for n, t in rows.items()}
            elif rows:
                raise ShapeMismatch(f"sender {client}: row sets sent in dense mode", sender=client)
        elif isinstance(msg, SurvivorSignature):
            sig = msg.sig.get("sig")
            if set(msg.sig) != {"sig"} or sig is None or sig.dtype != torch.uint8 or sig.shape != (64,):
                raise ShapeMismatch(f"sender {client}: a survivor signature is 64 bytes", sender=client)

    def _close(self) -> set[int]:
        """End a stage: who answered stays, the rest are dropped."""
        for c in sorted(self._alive - set(self.replies)):
            self._drop(c, f"no reply in stage {self.stage}")
        return set(self.replies)

    def next_messages(self) -> dict[int, bytes]:
        r, e = self.info.round, self.info.epoch
        if self.stage == "start":
            self.stage, self.replies, self.intake = "setup", {}, Intake(max_bytes=self.max_bytes)
            setup = KeySetup(round=r, epoch=e, cohort=self.cohort, participation=[self.part[c] for c in self.cohort],
                             graph_seed=self.graph_seed, degree=self.params.degree, threshold=self.params.threshold,
                             slots=self.info.passes, bits=self.params.bits, clip=self.params.clip,
                             clusters=self.info.clusters)
            blob = encode(setup, self.max_bytes)
            return {c: blob for c in sorted(self._alive)}
        if self.stage == "setup":
            self.adverts = {c: self.replies[c] for c in self._close()}
            self._check_live_holders()
            self.stage, self.replies, self.intake = "directory", {}, Intake(max_bytes=self.max_bytes)
            out = {}
            for c in sorted(self._alive):
                peers = {}
                for v in self.graph[c]:
                    if v in self.adverts:
                        peers.update({f"{v}/{k}": t for k, t in self.adverts[v].keys.items()})
                out[c] = encode(KeyDirectory(round=r, epoch=e, peers=peers), self.max_bytes)
            return out
        if self.stage == "directory":
            bundles = {c: self.replies[c] for c in self._close()}
            self.sharers = set(bundles)
            self._check_live_holders()
            self.stage, self.replies, self.intake = "forward", {}, Intake(max_bytes=self.max_bytes)
            if self.reveal_rows:  # rows fewer than t clients hold are sent by nobody
                live = [self.rows[c] for c in self._alive if c in self.rows]
                self.withheld = {n: sum(r[n].astype(int) for r in live) < self.params.threshold for n in live[0]}
            withheld = {f"withheld/{n}": torch.from_numpy(w.copy()) for n, w in self.withheld.items()}
            inbox: dict[int, dict[str, torch.Tensor]] = {c: {} for c in self._alive}
            for u, b in bundles.items():  # O(n k): route each bundle's shares to their receivers
                for key, blob in b.shares.items():
                    if key.isdigit() and int(key) in inbox:
                        inbox[int(key)][str(u)] = blob
            out = {}
            for c in sorted(self._alive):
                shares = dict(inbox[c])
                shares.update(withheld)
                out[c] = encode(ForwardedShares(round=r, epoch=e, shares=shares), self.max_bytes)
            return out
        if self.stage == "forward":
            self.held = {c: set(self.replies[c].holders) & set(self.graph[c]) & self.sharers for c in self._close()}
            for u in self._alive:
                for v in self.held[u]:
                    if v in self._alive and u not in self.held.get(v, set()):
                        raise AggregationAborted(f"clients {u} and {v} do not hold each other's shares")
            self._check_live_holders()
            self.stage, self.replies = "ready", {}
            return {}
        if self.stage == "inputs_closed" and self.consistency:
            self.stage, self.replies, self.intake = "check", {}, Intake(max_bytes=self.max_bytes)
            blob = encode(SurvivorList(round=r, pass_idx=self.pass_seq, epoch=e, slot=self.slot,
                                       survivors=sorted(self.inputs)), self.max_bytes)
            return {c: blob for c in sorted(self._alive)}
        if self.stage in ("inputs_closed", "check"):
            signatures = {}
            if self.stage == "check":
                signatures = {str(c): self.replies[c].sig["sig"] for c in self._close()}
                if len(signatures) < self.params.threshold:
                    raise AggregationAborted(f"{len(signatures)} survivors signed the survivor list, "
                                             f"{self.params.threshold} needed: no client will unmask")
            self.stage, self.replies, self.intake = "unmask", {}, Intake(max_bytes=self.max_bytes)
            req = UnmaskRequest(round=r, pass_idx=self.pass_seq, epoch=e, slot=self.slot,
                                dropped=sorted(self.dropped_now), survivors=sorted(self.inputs),
                                signatures=signatures)
            blob = encode(req, self.max_bytes)
            return {c: blob for c in sorted(self._alive)}
        if self.stage == "unmask":
            replies = {c: self.replies[c] for c in self._close()}
            self.result = self._open(replies)
            self.stage, self.replies = "ready", {}
            return {}
        return {}

    def _check_live_holders(self) -> None:
        """Abort early when some secret can no longer be opened: a live client's self mask needs t live
        holders (it counts itself), a dropped client's mask key t live neighbours (it answers nothing)."""
        t = self.params.threshold
        for c in sorted(self._alive):
            live = 1 + sum(v in self._alive for v in self.graph[c])
            if live < t:
                raise AggregationAborted(f"client {c} has {live} live share holders (itself included), fewer "
                                         f"than t={t}: no sum can be opened safely")
        for c in sorted(getattr(self, "sharers", set()) - self._alive):
            live = sum(v in self._alive for v in self.graph[c])
            if live < t:
                raise AggregationAborted(f"dropped client {c} has {live} live share holders, fewer than t={t}: "
                                         "its mask key cannot be recovered")

    # -- passes -------------------------------------------------------------------------
    def begin_pass(self, pass_seq: int, *, slot: int, expected: Expected) -> None:
        if self.stage != "ready":
            raise LocalProtocolError(f"a pass cannot begin in stage {self.stage}")
        if not 0 <= slot < self.info.passes:
            raise LocalProtocolError(f"slot {slot} outside the session's {self.info.passes} passes")
        self.pass_seq, self.expected, self.slot = pass_seq, expected, slot
        self.inputs: dict[int, dict[int, np.ndarray]] = {}
        self.result = None
        self.stage = "inputs"

    def _support(self, client: int) -> np.ndarray:
        rows = None
        if self.reveal_rows:
            rows = {n: self.rows[client][n] & ~w for n, w in self.withheld.items()}
        return support(layout(self.expected), self.expected.row_layers, rows)

    def add_payload(self, client: int, payload: Tensors) -> None:
        size = int(self._support(client).sum()) if client in self._alive else 0
        want = {f"c{j}" for j in self.part.get(client, ())}
        try:
            if client not in self._alive:
                raise WrongRound(f"sender {client} is not in the session", sender=client)
            if set(payload) != want:
                raise ShapeMismatch(f"sender {client}: clusters {sorted(payload)}, expected {sorted(want)}",
                                    sender=client)
            bits, vecs = self.params.bits, {}
            for key, t in payload.items():
                if t.dtype != torch.uint8 or t.dim() != 1:
                    raise ShapeMismatch(f"sender {client}: {key} is not a packed frame (1-D uint8)", sender=client)
                try:  # exactly ceil(size·bits/8) bytes, zero padding bits (crypto/packing.py)
                    vecs[int(key[1:])] = unpack(t.numpy(), size, bits)
                except RemoteProtocolError as exc:
                    raise type(exc)(f"sender {client}: {key}: {exc}", sender=client) from None
        except RemoteProtocolError as exc:
            self._drop(client, f"{type(exc).__name__}: {exc}")
            raise
        self.inputs[client] = vecs

    def end_inputs(self) -> None:
        for c in sorted(self._alive - set(self.inputs)):
            self._drop(c, "no masked input")
        # dropped at this pass: held shares (so masks may involve them) but sent no input
        self.dropped_now = {c for c in self.sharers if c not in self.inputs}
        self.stage = "inputs_closed"

    def _open(self, replies: Mapping[int, UnmaskReply]) -> list[Tensors]:
        t, slot, r, e = self.params.threshold, self.slot, self.info.round, self.info.epoch
        survivors = set(self.inputs)
        shares: dict[tuple[str, int], dict[int, bytes]] = {}
        for w, rep in replies.items():
            for key, blob in rep.shares.items():
                kind, _, u = key.partition("/")
                if not (kind in ("s", "b") and u.isdigit()):
                    continue
                # holders of u: its neighbours, and u itself for its self mask (its own share, at point u + 1)
                if w in self.graph.get(int(u), ()) or (kind == "b" and w == int(u)):
                    shares.setdefault((kind, int(u)), {})[w + 1] = bytes(blob.numpy())
        lagrange: dict[tuple[int, ...], list[int]] = {}

        def secret(kind: str, u: int) -> bytes:
            got = shares.get((kind, u), {})
            if len(got) < t:
                what = "mask key" if kind == "s" else "self mask"
                raise AggregationAborted(f"{len(got)} shares of client {u}'s {what}, {t} needed: the sum stays closed")
            xs = sorted(got)[:t]
            lam = lagrange.setdefault(tuple(xs), lagrange_at_zero(xs))
            return reconstruct(got, t, coefficients=(xs, lam))

        order = layout(self.expected)
        bits = self.params.bits
        selfs = {u: secret("b", u) for u in sorted(survivors)}
        dropped_keys = {}
        for v in sorted(self.dropped_now):
            kp = KeyPair.from_secret(secret("s", v))
            if kp.public != bytes(self.adverts[v].keys["mask"].numpy()[32 * slot:32 * (slot + 1)]):
                raise AggregationAborted(f"shares of client {v} reconstruct a key it never advertised")
            dropped_keys[v] = kp
        out: list[Tensors] = []
        sup = {c: self._support(c) for c in set(survivors) | set(dropped_keys)}
        for j in range(self.info.clusters):
            total = np.zeros(self.expected.size(), dtype=self.codec.dtype)
            for u in sorted(survivors):
                if j not in self.inputs[u]:
                    continue
                mine = sup[u]
                y = stream(self_seed(selfs[u], r, e, slot, j), total.size, bits)
                total[mine] += self.inputs[u][j] - y[mine]
                for v in self.held.get(u, ()):
                    if v in dropped_keys and j in self.part.get(v, ()):
                        peer_pk = self.adverts[u].keys["mask"].numpy()[32 * slot:32 * (slot + 1)].tobytes()
                        pm = stream(pair_seed(agree(dropped_keys[v].secret, peer_pk), r, e, slot, j), total.size, bits)
                        both = mine & sup[v]
                        total[both] = total[both] - pm[both] if u < v else total[both] + pm[both]
            vec = self.codec.decode_sum(total)
            named = unflatten(vec, order)
            out.append(named)
        return out

    def sums(self) -> list[Tensors] | None:
        return self.result
