"""Servers of the comparison methods (fl/baselines.py), on the same stages and SecureSum as FedHFT.

``AverageServer``: one pass per round whose per-client vector is the method's
weighted factors; the new global model is the sum divided by the sum of
weights. ``CkksAverageServer``: the same pass when only members can open the
sum (``ckks``): the server forwards and logs the sum's ciphertext, and every
member computes the global model (fl/member.py ``AverageMember``).
``LocalServer``: starts rounds and aggregates nothing (``local``, ``central``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..exceptions import RemoteProtocolError, ShapeMismatch
from ..secure.api import Expected
from .baselines import aggregate, expected_shapes
from .messages import PassReply, PassRequest, Ready, encode
from .server import PassPlanServer, _ServerBase
from .server_ckks import CkksPassServer

__all__ = ["AverageServer", "CkksAverageServer", "LocalServer"]


class AverageServer(PassPlanServer):
    """Σ_i w_i x_i and Σ_i w_i through SecureSum, once per round (K = 1)."""

    @property
    def num_passes(self) -> int:
        return 1

    @property
    def pass_idx(self) -> int:
        return int(getattr(self, "_sums", None) is not None)

    def _reset_plans(self) -> None:
        self._sums: dict[str, torch.Tensor] | None = None

    def _plan_done(self) -> bool:
        return self._sums is not None

    def _receive_pass(self, client: int, blob: bytes) -> None:
        assert self.session is not None
        msg = self.intake.accept(blob, PassReply, round=self.state.round, pass_idx=self.seq, sender=client,
                                 allowed=self.session.alive)
        if msg.sketch:
            raise ShapeMismatch(f"sender {client}: a sketch in a single-model method", sender=client)
        self.session.add_payload(client, msg.payload)

    def _expected(self) -> Expected:
        shapes = expected_shapes(self.cfg.method, self.shapes, self.book.head_shapes, self.cfg.lora.r)
        return Expected(shared=shapes, per_cluster={}, row_layers={})

    def _start_pass(self) -> dict[int, bytes]:
        assert self.session is not None
        self.seq += 1
        self.session.begin_pass(self.seq, slot=0, expected=self._expected())
        self.phase = "pass"
        return {i: encode(PassRequest(round=self.state.round, pass_idx=self.seq, plan_pass=0, epoch=self.epoch,
                                      ops={}, omega={}, probs=[1.0], inputs={}),
                          self.cfg.secure.max_message_bytes)
                for i in sorted(self.session.alive)}

    def _absorb(self, sums: list[dict[str, torch.Tensor]]) -> None:
        self._sums = sums[0]

    def _finish(self, *, done: bool) -> None:
        self.phase = "idle"
        self._session_errors()
        if done and self._sums is not None:
            self.cohort = set(self.plan_cohort)
            factors, head = aggregate(self.cfg.method, self._sums, self.shapes, r=self.cfg.lora.r,
                                      seed=self.cfg.seed)
            self.state.adapters, self.state.heads = [factors], [head]
        else:
            self.cohort = set()
        self._close()


class CkksAverageServer(AverageServer, CkksPassServer):
    """``ckks``: AverageServer's one pass inside CkksPassServer's round; no sum is ever opened here.

    From AverageServer: the pass request, its expected shapes, the reply check.
    From CkksPassServer: the ``sync`` stage, a RoundStart without the model,
    the pass's ciphertext sum kept in ``ServerState.log`` and forwarded to the
    cohort as a RoundLog (``result`` stage). Each member opens it and runs
    ``baselines.aggregate`` itself (``AverageMember``).
    """

    _reset_plans = CkksPassServer._reset_plans
    _absorb = CkksPassServer._absorb
    _finish = CkksPassServer._finish  # type: ignore[assignment]

    @property
    def pass_idx(self) -> int:
        return len(self.pass_sums)

    def _plan_done(self) -> bool:
        return bool(self.pass_sums)


class LocalServer(_ServerBase):
    """Starts each round and collects Ready; nothing leaves a client but that."""

    stage = "round_start"

    def begin_round(self, clients: Sequence[int]) -> dict[int, bytes]:
        self.ready: set[int] = set()
        return super().begin_round(clients)

    def receive(self, client: int, blob: bytes) -> None:
        try:
            self.intake.accept(blob, Ready, round=self.state.round, pass_idx=0, sender=client,
                               allowed=self.cohort)
        except RemoteProtocolError as exc:
            if client in self.cohort:
                self.drop(client, f"{type(exc).__name__}: {exc}")
            raise
        self.ready.add(client)

    def advance(self) -> None:
        for i in sorted(self.cohort - self.ready):
            self.drop(i, "no reply to RoundStart")
        self._close()
