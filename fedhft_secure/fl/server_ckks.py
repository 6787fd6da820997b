"""The pass plan when only members can read the sums (``ckks``, DESIGN §2).

The server runs the same stages as ``PassPlanServer`` but never opens a sum:
a pass's per-cluster ciphertexts go out with the next request, every member
decrypts them and computes that request's inputs itself (its own
``PlanBook``), and after the last pass the server sends the last sums and the
round is over for it. What it keeps is ``ServerState.log``: the ciphertexts of
every round's pass sums (the final epoch's), plus the public totals. A member
that missed rounds (dropped, offline, restarted) replays them from that log
before the next RoundStart -- the ``sync`` stage -- so there is no model in
clear anywhere on the server, and nothing to recover after a dropout: a client
that leaves is simply not in the sums (a drop after pass 0 still restarts the
plan, as with every backend, so the result is the exact plan over the
clients that completed it).

Stages: ``sync`` (RoundLog -> Synced, repeated while someone is behind) ->
``round_start`` -> ``pass:k`` ... -> ``result`` (RoundLog of the last pass ->
Synced).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..exceptions import RemoteProtocolError
from ..secure.ckks.sum import SUM_KEY
from .messages import AFTER_PASSES, RoundLog, RoundStart, Synced, encode
from .server import PassPlanServer, RoundRecord

__all__ = ["CkksPassServer"]


def _frame(blob: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8)


class CkksPassServer(PassPlanServer):
    """Adds ciphertexts, forwards them, keeps them; learns sizes, timing and the sketches."""

    def __init__(self, **kw) -> None:  # noqa: ANN003
        super().__init__(**kw)
        self.pass_sums: list[list[bytes | None]] = []
        self.sent: dict[int, int] = {}  # client -> round of the RoundLog it was sent in this stage
        self.acked: set[int] = set()

    def _reset_plans(self) -> None:
        # The server runs no plan: the book only gives the public schedule (shapes, ops, seeds).
        self.book.round = self.state.round
        self.book.reset([None] * self.K)
        self.pass_sums = []

    def begin_round(self, clients: Sequence[int]) -> dict[int, bytes]:
        self.cohort, self.errors, self.sketches = set(clients), [], {}
        self.seq, self.epoch, self.ready = 0, 0, set()
        self._reset_plans()
        self.phase = "sync"
        return self._sync() or self._round_start()

    @staticmethod
    def log_message(rec: RoundRecord, first_pass: int) -> RoundLog:
        """A stored round, from ``first_pass`` on, as the message members derive it from."""
        sums = {f"p{k}/c{j}": _frame(b) for k, per in enumerate(rec.sums) if k >= first_pass
                for j, b in enumerate(per) if b is not None}
        return RoundLog(round=rec.round, epoch=rec.epoch, totals=rec.totals, passes=len(rec.sums),
                        first_pass=first_pass, sums=sums)

    def _sync(self) -> dict[int, bytes]:
        """The next missing round's log for every member of the cohort that is behind."""
        self.sent, self.acked = {}, set()
        out = {}
        for i in sorted(self.cohort):
            have = self.state.synced.get(i, -1)
            if have < self.state.round - 1:
                rec = self.state.log[have + 1]
                self.sent[i] = rec.round
                out[i] = encode(self.log_message(rec, 0), self.cfg.secure.max_message_bytes)
        return out

    def _round_start(self) -> dict[int, bytes]:
        self.phase = "round_start"
        return {i: encode(RoundStart(round=self.state.round, probs=self.weights(i), lr=self.lr()),
                          self.cfg.secure.max_message_bytes) for i in sorted(self.cohort)}

    def receive(self, client: int, blob: bytes) -> None:
        if self.phase == "result":  # its input is in the sums already: a bad ack does not undo that
            try:
                self._receive(client, blob)
            except RemoteProtocolError as exc:
                self.errors.append((client, f"{type(exc).__name__}: {exc}"))
                raise
            return
        super().receive(client, blob)

    def _receive(self, client: int, blob: bytes) -> None:
        if self.phase in ("sync", "result"):
            msg = self.intake.accept(blob, Synced, round=self.sent.get(client, -1), pass_idx=AFTER_PASSES,
                                     sender=client, allowed=self.sent)
            self.state.synced[client] = msg.round
            self.acked.add(client)
            return
        super()._receive(client, blob)

    def _advance(self) -> dict[int, bytes] | None:
        if self.phase == "sync":
            for i in sorted(set(self.sent) - self.acked):
                self.drop(i, "no reply to the catch-up log")
            return self._sync() or self._round_start()
        if self.phase == "result":
            self.phase = "idle"
            self._close()
            return None
        return super()._advance()

    # -- what differs from opening the sums -------------------------------------------------
    def _inputs(self, gauss: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        """The last pass's cluster sums, still encrypted: members derive this pass's X from them."""
        if not self.pass_sums:
            return {}
        return {f"c{j}/{SUM_KEY}": _frame(b) for j, b in enumerate(self.pass_sums[-1]) if b is not None}

    @staticmethod
    def _for_client(key: str, w: list[float]) -> bool:
        return True  # every member keeps every cluster's state, whatever its own weights

    def _absorb(self, sums: list[dict[str, torch.Tensor]]) -> None:
        self.pass_sums.append([s[SUM_KEY].numpy().tobytes() if s else None for s in sums])
        self.book.pass_idx += 1

    def _finish(self, *, done: bool) -> dict[int, bytes] | None:
        self._session_errors()
        rnd = self.state.round
        if done:
            self.cohort = set(self.plan_cohort)
            rec = RoundRecord(round=rnd, epoch=self.epoch, totals=list(self.totals), sums=self.pass_sums)
        else:  # aborted or nobody left: the round changes nothing, and the log says so
            self.cohort = set()
            rec = RoundRecord(round=rnd, epoch=self.epoch, totals=[0.0] * self.K)
        self.state.log.append(rec)
        if not self.cohort:
            self.phase = "idle"
            self._close()
            return None
        self.phase = "result"
        self.sent, self.acked = {i: rnd for i in self.cohort}, set()
        blob = encode(self.log_message(rec, len(rec.sums) - 1), self.cfg.secure.max_message_bytes)
        return {i: blob for i in sorted(self.cohort)}
