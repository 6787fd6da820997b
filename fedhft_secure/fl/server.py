"""The server's side of a round, as byte-driven state machines.

``PassPlanServer`` (default) learns only per-cluster sums, through SecureSum.
``ExplicitServer`` (fl/explicit.py) is the reference: it receives each client's
masked factors, as the official code does, and forms S_j explicitly;
``CkksPassServer`` (fl/server_ckks.py) runs the passes without opening sums.
The comparison methods' servers (one weighted sum per round) are in fl/average.py.

A round: ``begin_round`` gives RoundStart bytes per client; then the
runtime delivers each reply to ``receive`` and calls ``advance`` for the next
stage's messages, until ``advance`` returns None. A client that does not
answer, or whose message is rejected, is dropped; a drop after pass 0
restarts the plan (a new SecureSum session, the next epoch) with the
survivors, since earlier sums included the dropped client: the round's result
is always the exact plan over the clients that completed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..algorithm.cluster import align_clusters, soft_clusters
from ..config import RunConfig
from ..exceptions import AggregationAborted, ConfigError, RemoteProtocolError, ShapeMismatch, WrongRound
from ..model.lora import LayerFactors
from ..secure.api import SecureSum, ServerSession, SessionInfo
from ..secure.opened import opens_on_client
from .plan import ClusterState, PlanBook
from .messages import Intake, PassReply, PassRequest, Ready, RoundStart, encode

__all__ = ["ServerState", "RoundRecord", "PassPlanServer", "make_server",
           "NEGLIGIBLE_WEIGHT"]

#: cluster weights below this are sent as 0: the client skips that cluster.
NEGLIGIBLE_WEIGHT = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundRecord:
    """``ckks``: one round as the server keeps it -- ciphertexts of its per-pass cluster sums.

    ``sums[k][j]``: pass k, cluster j (None: nobody contributed). No passes:
    the round changed nothing (it was aborted).
    """

    round: int
    epoch: int
    totals: list[float]
    sums: list[list[bytes | None]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ServerState:
    """Everything a checkpoint must hold to continue after ``round``.

    Under ``ckks`` heads, adapters and G stay empty: the server's model state
    is ``log`` (ciphertext) only, and ``synced`` says which round's log each
    member has acknowledged.
    """

    round: int  # next round to run
    probs: np.ndarray  # clients x K
    heads: list[dict[str, torch.Tensor]]
    adapters: list[dict[str, LayerFactors]] = field(default_factory=list)
    G: list[dict[str, torch.Tensor] | None] = field(default_factory=list)
    log: list[RoundRecord] = field(default_factory=list)
    synced: dict[int, int] = field(default_factory=dict)

    @classmethod
    def initial(cls, *, num_clients: int, clusters: int, head: dict[str, torch.Tensor],
                plain: bool = True) -> "ServerState":
        """``plain=False``: a server that must never hold the model (``ckks``)."""
        return cls(round=0, probs=np.full((num_clients, clusters), 1.0 / clusters),
                   heads=[{k: v.clone() for k, v in head.items()} for _ in range(clusters)] if plain else [],
                   G=[None] * clusters)


class _ServerBase:
    def __init__(self, *, cfg: RunConfig, state: ServerState, layer_shapes: dict[str, tuple[int, int]]):
        self.cfg = cfg
        self.state = state
        self.shapes = layer_shapes
        self.K = cfg.fed.clusters
        self.intake = Intake(max_bytes=cfg.secure.max_message_bytes)
        self.cohort: set[int] = set()
        self.errors: list[tuple[int, str]] = []  # (client, error) threat-model events this round
        self.sketches: dict[int, torch.Tensor] = {}

    def weights(self, client: int) -> list[float]:
        return [float(p) if p >= NEGLIGIBLE_WEIGHT else 0.0 for p in self.state.probs[client]]

    def lr(self) -> float:
        return self.cfg.train.lr * self.cfg.train.lr_decay ** self.state.round

    def begin_round(self, clients: Sequence[int]) -> dict[int, bytes]:
        self.cohort = set(clients)
        self.errors = []
        self.sketches = {}
        adapters = {f"c{j}/{n}/{part}": getattr(f, part)
                    for j, a in enumerate(self.state.adapters) for n, f in a.items() for part in "BA"}
        heads = {f"c{j}/{k}": v for j, h in enumerate(self.state.heads) for k, v in h.items()}
        return {i: encode(RoundStart(round=self.state.round, probs=self.weights(i), lr=self.lr(),
                                     adapters=adapters, heads=heads), self.cfg.secure.max_message_bytes)
                for i in clients}

    def drop(self, client: int, reason: str) -> None:
        self.cohort.discard(client)
        self.errors.append((client, reason))

    def _check_sketch(self, sender: int, sketch: dict[str, torch.Tensor]) -> torch.Tensor:
        v = sketch.get("v")
        if v is None or tuple(v.shape) != (self.cfg.fed.sketch_dim,) or not bool(torch.isfinite(v).all()):
            raise ShapeMismatch(f"sender {sender}: sketch missing or not a finite "
                                f"({self.cfg.fed.sketch_dim},) vector", sender=sender)
        return v.to(torch.float32)

    def _recluster(self, round: int) -> None:
        fed = self.cfg.fed
        ids = sorted(i for i in self.cohort if i in self.sketches)
        if round < fed.warmup_rounds or self.K == 1 or len(ids) < self.K:
            return
        sk = torch.stack([self.sketches[i] for i in ids]).double().numpy()
        probs = soft_clusters(sk, self.K, covariance=fed.gmm_covariance, seed=self.cfg.seed)
        self.state.probs[ids] = align_clusters(self.state.probs[ids], probs)

    def _new_heads(self, head_sums: list[dict[str, torch.Tensor]], totals: list[float]) -> None:
        for j in range(self.K):
            if totals[j] > 0:
                self.state.heads[j] = {k: v / totals[j] for k, v in head_sums[j].items()}

    def _close(self) -> None:
        self._recluster(self.state.round)
        self.state.round += 1


class PassPlanServer(_ServerBase):
    """Learns Σ_i p_ij (client vector) per pass through a SecureSum session, and the sketches.

    The plan's bookkeeping is a ``PlanBook`` (fl/plan.py); subclasses change
    what happens to a pass's sums (``_absorb``), what a request carries
    (``_inputs``) and how the round ends (``_finish``).
    """

    def __init__(self, *, backend: SecureSum, head_shapes: dict[str, tuple[int, ...]] | None = None,
                 **kw) -> None:  # noqa: ANN003
        super().__init__(**kw)
        self.backend = backend
        fed = self.cfg.fed
        self.book = PlanBook(shapes=self.shapes, clusters=self.K, r=self.cfg.lora.r, oversampling=fed.oversampling,
                             niter=fed.power_iters, seed=self.cfg.seed, round=self.state.round,
                             head_shapes=head_shapes or {k: tuple(v.shape) for k, v in self.state.heads[0].items()})
        self.phase = "idle"
        self.seq = 0  # pass requests sent this round (wire pass id, never reused)
        self.epoch = 0
        self.session: ServerSession | None = None
        self.plan_cohort: set[int] = set()
        self.totals: list[float] = []
        self.ready: set[int] = set()

    @property
    def pass_idx(self) -> int:
        return self.book.pass_idx

    @property
    def stage(self) -> str:
        """A label for what the last messages were (tests hook faults on it)."""
        if self.phase == "pass":
            return f"pass:{self.pass_idx}"
        if self.phase == "session":
            return f"secure:{getattr(self.session, 'stage', 'none')}:{self.pass_idx}"
        return self.phase

    @property
    def num_passes(self) -> int:
        return self.book.num_passes

    def _reset_plans(self) -> None:
        self.book.round = self.state.round
        self.book.reset(self.state.G)

    def begin_round(self, clients: Sequence[int]) -> dict[int, bytes]:
        out = super().begin_round(clients)
        self.seq, self.epoch, self.phase, self.ready = 0, 0, "round_start", set()
        self._reset_plans()
        return out

    # -- replies ------------------------------------------------------------------------
    def receive(self, client: int, blob: bytes) -> None:
        """Accept one reply; a RemoteProtocolError drops the client and is re-raised for the record."""
        try:
            self._receive(client, blob)
        except RemoteProtocolError as exc:
            if client in self.cohort:
                self.drop(client, f"{type(exc).__name__}: {exc}")
            raise

    def _receive(self, client: int, blob: bytes) -> None:
        if self.phase == "round_start":
            self.intake.accept(blob, Ready, round=self.state.round, pass_idx=0, sender=client,
                               allowed=self.cohort)
            self.ready.add(client)
        elif self.phase == "session":
            assert self.session is not None
            self.session.receive(client, blob)
        elif self.phase == "pass":
            self._receive_pass(client, blob)
        else:
            raise WrongRound(f"no reply expected now (phase {self.phase})", sender=client)

    def _receive_pass(self, client: int, blob: bytes) -> None:
        assert self.session is not None
        msg = self.intake.accept(blob, PassReply, round=self.state.round, pass_idx=self.seq, sender=client,
                                 allowed=self.session.alive)
        if self.pass_idx == 0:
            sketch = self._check_sketch(client, msg.sketch)
        elif msg.sketch:
            raise ShapeMismatch(f"sender {client}: a sketch outside pass 0", sender=client)
        self.session.add_payload(client, msg.payload)
        if self.pass_idx == 0:
            self.sketches[client] = sketch

    # -- the round, stage by stage ----------------------------------------------------------
    def advance(self) -> dict[int, bytes] | None:
        """Close the stage in progress; the next stage's messages, or None when the round is over."""
        try:
            return self._advance()
        except AggregationAborted as exc:
            self.errors.append((-1, f"AggregationAborted: {exc}"))
            self._finish(done=False)
            return None

    def _advance(self) -> dict[int, bytes] | None:
        if self.phase == "round_start":
            for i in sorted(self.cohort - self.ready):
                self.drop(i, "no reply to RoundStart")
            return self._open_session()
        assert self.session is not None
        if self.phase == "pass":
            self.session.end_inputs()
            got = set(self.session.contributors)
            for i in sorted(self.cohort - got):
                self.drop(i, "no pass reply")
            if self.pass_idx == 0:
                self.plan_cohort = got
            elif got != self.plan_cohort:
                return self._restart()
            self.phase = "session"
        msgs = self.session.next_messages()
        if msgs:
            self.phase = "session"
            return msgs
        sums = self.session.sums()
        if sums is None:
            return self._start_pass()
        if self.pass_idx == 0:
            self.totals = [sum(self.weights(i)[j] for i in self.plan_cohort) for j in range(self.K)]
        self._absorb(sums)
        if self._plan_done():
            return self._finish(done=True)
        if set(self.session.alive) != self.plan_cohort:
            return self._restart()  # someone left during the pass's unmask stage
        return self._start_pass()

    def _open_session(self) -> dict[int, bytes] | None:
        cohort = tuple(sorted(self.cohort))
        if not cohort:
            return self._finish(done=False)
        info = SessionInfo(round=self.state.round, epoch=self.epoch, cohort=cohort, clusters=self.K,
                           passes=self.num_passes, weights={i: tuple(self.weights(i)) for i in cohort})
        self.session = self.backend.server_session(info)
        self.phase = "session"
        return self._advance()

    def _restart(self) -> dict[int, bytes] | None:
        """A client left after pass 0: the earlier sums include it, so run the plan again without it."""
        assert self.session is not None
        self._session_errors()
        self.cohort &= set(self.session.alive) & self.plan_cohort
        self.epoch += 1
        self._reset_plans()
        return self._open_session()

    def _start_pass(self) -> dict[int, bytes]:
        assert self.session is not None
        self.seq += 1
        schedule = self.book.schedule()
        ops = {n: op.value for n, (op, _) in schedule.items()}
        gauss = {n: [self.book.omega_seed(n), self.book.q[n]] for n, (_, g) in schedule.items() if g}
        inputs = self._inputs(gauss)
        self.session.begin_pass(self.seq, slot=self.pass_idx, expected=self.book.expected())
        self.phase = "pass"
        out = {}
        for i in sorted(self.session.alive):
            w = self.weights(i)
            mine = {k: X for k, X in inputs.items() if self._for_client(k, w)}
            out[i] = encode(PassRequest(round=self.state.round, pass_idx=self.seq, plan_pass=self.pass_idx,
                                        epoch=self.epoch, ops=ops, omega=gauss, probs=w, inputs=mine),
                            self.cfg.secure.max_message_bytes)
        return out

    def _inputs(self, gauss: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        """The request's matrices, keyed ``c{j}/{layer}``: the plan's X (the Gaussian is sent as a seed)."""
        return {f"c{j}/{n}": X for (j, n), (_, X) in self.book.requests().items() if n not in gauss}

    @staticmethod
    def _for_client(key: str, w: list[float]) -> bool:
        return w[int(key[1:key.index("/")])] > 0

    def _absorb(self, sums: list[dict[str, torch.Tensor]]) -> None:
        self.book.absorb(sums)

    def _plan_done(self) -> bool:
        return self.book.done

    def _session_errors(self) -> None:
        """The session's own drop records join the round's (each client once)."""
        known = {c for c, _ in self.errors}
        for c, why in getattr(self.session, "errors", []):
            if c not in known:
                self.errors.append((c, why))

    def _finish(self, *, done: bool) -> dict[int, bytes] | None:
        self.phase = "idle"
        self._session_errors()
        if done:
            self.cohort = set(self.plan_cohort)
            prev = ClusterState(round=self.state.round, heads=self.state.heads, adapters=self.state.adapters,
                                G=self.state.G)
            new = self.book.result(prev, self.totals)
            self.state.adapters, self.state.G, self.state.heads = new.adapters, new.G, new.heads
        else:
            self.cohort = set()
        self._close()
        return None


def make_server(*, cfg: RunConfig, state: ServerState, layer_shapes: dict[str, tuple[int, int]],
                backend: SecureSum, head_shapes: dict[str, tuple[int, ...]] | None = None
                ) -> _ServerBase:
    if cfg.method != "fedhft":  # the comparison methods (fl/baselines.py)
        from .average import AverageServer, CkksAverageServer, LocalServer

        if cfg.method in ("local", "central"):
            return LocalServer(cfg=cfg, state=state, layer_shapes=layer_shapes)
        cls = CkksAverageServer if opens_on_client(backend) else AverageServer
        return cls(cfg=cfg, state=state, layer_shapes=layer_shapes, backend=backend, head_shapes=head_shapes)
    if cfg.fed.server == "explicit":
        if opens_on_client(backend):
            raise ConfigError("fed.server", f"'explicit' receives every client's factors in clear; "
                              f"it cannot run with secure.backend = {backend.name!r}", "passplan")
        from .explicit import ExplicitServer  # builds on _ServerBase, so imported late

        return ExplicitServer(cfg=cfg, state=state, layer_shapes=layer_shapes)
    if opens_on_client(backend):
        from .server_ckks import CkksPassServer  # builds on PassPlanServer, so imported late

        return CkksPassServer(cfg=cfg, state=state, layer_shapes=layer_shapes, backend=backend,
                              head_shapes=head_shapes)
    return PassPlanServer(cfg=cfg, state=state, layer_shapes=layer_shapes, backend=backend,
                          head_shapes=head_shapes)
