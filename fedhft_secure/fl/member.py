"""A consortium member's copy of the cluster state and of the round's plan (``ckks``).

The server can only add ciphertexts, so each member does what the server
does with the other backends: it decrypts every cluster's pass sums, folds
them into its own ``PlanBook`` and derives the next request's inputs, and at
the end of the round the new adapters, accumulated updates and heads. Every
member runs the same code on the same bytes (decryption and flooding are
deterministic), so all members hold bit-identical states.

The round's result is always derived by replaying its sums in order from
the previous state -- the same path for a member that took part (it keeps
the sums it opened during the passes) and for one catching up from the
server's log. ``AverageMember`` does the same for the comparison methods,
whose round is one sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from ..algorithm.lowrank import Op
from ..config import RunConfig
from ..exceptions import MalformedMessage, WrongRound
from ..secure.api import Expected
from ..secure.opened import ClientOpenedSum
from .baselines import aggregate, expected_shapes
from .messages import SERVER, PassRequest, RoundLog
from .plan import ClusterState, PlanBook

__all__ = ["Member", "AverageMember"]

Tensors = dict[str, torch.Tensor]
_SUM = re.compile(r"^c(\d+)/ckks/sum$")
_LOG = re.compile(r"^p(\d+)/c(\d+)$")


class Member:
    def __init__(self, *, backend: ClientOpenedSum, cfg: RunConfig, shapes: Mapping[str, tuple[int, int]],
                 head: Mapping[str, torch.Tensor], count_floor: float) -> None:
        self.backend = backend
        self.K = cfg.fed.clusters
        self.state = ClusterState.initial(clusters=self.K, head=head)
        self._book_kw = dict(shapes=shapes, head_shapes={k: tuple(v.shape) for k, v in head.items()},
                             clusters=self.K, r=cfg.lora.r, oversampling=cfg.fed.oversampling,
                             niter=cfg.fed.power_iters, seed=cfg.seed, count_floor=count_floor)
        self.live: PlanBook | None = None
        self.live_key: tuple[int, int] | None = None  # (round, epoch) of the passes in ``opened``
        self.opened: list[list[Tensors]] = []  # per pass, per cluster: the sums opened so far

    def book(self, round: int) -> PlanBook:
        return PlanBook(round=round, **self._book_kw)  # type: ignore[arg-type]

    def _open(self, frames: Mapping[int, torch.Tensor], expected: Expected) -> list[Tensors]:
        """Every cluster's sum of a pass of these shapes (zeros where nobody contributed)."""
        return [self.backend.open_sum({"ckks/sum": frames[j]} if j in frames else {}, expected=expected,
                                      cluster=j) for j in range(self.K)]

    # -- during the passes ------------------------------------------------------------------
    def requests(self, req: PassRequest, round: int) -> tuple[dict[tuple[int, str], tuple[Op, torch.Tensor]],
                                                               set[str]]:
        """The (cluster, layer) -> (op, X) this member must answer, and the layers on the public Gaussian."""
        frames: dict[int, torch.Tensor] = {}
        for key, t in req.inputs.items():
            m = _SUM.match(key)
            if not m or int(m.group(1)) >= self.K:
                raise MalformedMessage(f"request frame {key!r} is not a cluster sum", sender=SERVER)
            frames[int(m.group(1))] = t
        if req.plan_pass == 0:
            if self.state.round != round:
                raise WrongRound(f"passes of round {round}, this member's state is at {self.state.round}",
                                 sender=SERVER)
            if frames:
                raise MalformedMessage("sums sent with the first pass", sender=SERVER)
            self.live, self.live_key, self.opened = self.book(round), (round, req.epoch), []
            self.live.reset(self.state.G)
        else:
            live = self.live
            if live is None or self.live_key != (round, req.epoch) or live.pass_idx != req.plan_pass - 1:
                raise WrongRound(f"pass {req.plan_pass} of epoch {req.epoch} without the pass before it",
                                 sender=SERVER)
            sums = self._open(frames, live.expected())
            self.opened.append(sums)
            live.absorb(sums)
        assert self.live is not None
        schedule = self.live.schedule()
        if req.ops != {n: op.value for n, (op, _) in schedule.items()}:
            raise MalformedMessage(f"request ops {req.ops} differ from the plan's schedule", sender=SERVER)
        return self.live.requests(), {n for n, (_, g) in schedule.items() if g}

    # -- the end of a round, or catching up -------------------------------------------------------
    def apply(self, msg: RoundLog) -> None:
        """Derive the cluster state after ``msg.round`` (a log for an older round is a harmless repeat)."""
        if msg.round < self.state.round:
            return
        if msg.round > self.state.round:
            raise WrongRound(f"log of round {msg.round}, this member needs round {self.state.round} first",
                             sender=SERVER)
        if msg.passes == 0:
            if msg.sums:
                raise MalformedMessage("an empty round with sums", sender=SERVER)
            self.state = ClusterState(round=msg.round + 1, heads=self.state.heads,
                                      adapters=self.state.adapters, G=self.state.G)
            return
        ok = (msg.passes == self.num_passes(msg.round) and 0 <= msg.first_pass < msg.passes
              and len(msg.totals) == self.K and all(math.isfinite(t) and t >= 0 for t in msg.totals))
        if not ok:
            raise MalformedMessage(f"round log with {msg.passes} passes from {msg.first_pass}, totals "
                                   f"{msg.totals}: not this plan", sender=SERVER)
        frames: list[dict[int, torch.Tensor]] = [{} for _ in range(msg.passes)]
        for key, t in msg.sums.items():
            m = _LOG.match(key)
            if not m or not msg.first_pass <= int(m.group(1)) < msg.passes or int(m.group(2)) >= self.K:
                raise MalformedMessage(f"round log frame {key!r} out of range", sender=SERVER)
            frames[int(m.group(1))][int(m.group(2))] = t
        self.state = self._derive(msg, frames)
        self.live, self.live_key, self.opened = None, None, []

    def num_passes(self, round: int) -> int:
        return self.book(round).num_passes

    def _derive(self, msg: RoundLog, frames: list[dict[int, torch.Tensor]]) -> ClusterState:
        """The state after ``msg.round``: its passes replayed from the previous state."""
        book = self.book(msg.round)
        held = self.opened if self.live_key == (msg.round, msg.epoch) else []
        if len(held) < msg.first_pass:
            raise MalformedMessage(f"log from pass {msg.first_pass}, but this member opened {len(held)} "
                                   f"passes of round {msg.round} epoch {msg.epoch}", sender=SERVER)
        book.reset(self.state.G)
        for k in range(msg.passes):
            sums = held[k] if k < msg.first_pass else self._open(frames[k], book.expected())
            book.requests()
            book.absorb(sums)
        return book.result(self.state, msg.totals)


class AverageMember(Member):
    """A comparison method's global model (fl/baselines.py, ``ckks``): one opened sum per round.

    The round's one pass is answered from the client's own factors (no input
    from the plan), so all a member does is open the sum the server forwards
    (``RoundLog``, one pass, cluster 0) and run ``baselines.aggregate`` on it,
    as the plaintext and masking servers do on theirs. ``fedsa-lora``: the
    global B is 0 here too; each client's B never left it.
    """

    def __init__(self, *, cfg: RunConfig, shapes: Mapping[str, tuple[int, int]], head: Mapping[str, torch.Tensor],
                 **kw) -> None:  # noqa: ANN003
        super().__init__(cfg=cfg, shapes=shapes, head=head, **kw)
        self.method, self.r, self.seed, self.shapes = cfg.method, cfg.lora.r, cfg.seed, dict(shapes)
        heads = {k: tuple(v.shape) for k, v in head.items()}
        self.expected = Expected(shared=expected_shapes(cfg.method, shapes, heads, cfg.lora.r), per_cluster={},
                                 row_layers={})

    def num_passes(self, round: int) -> int:
        return 1

    def _derive(self, msg: RoundLog, frames: list[dict[int, torch.Tensor]]) -> ClusterState:
        sums = self._open(frames[0], self.expected)[0]
        if not float(sums["weight"].reshape(-1)[0]) > self._book_kw["count_floor"]:  # type: ignore[operator]
            raise MalformedMessage("a round sum that holds no client's weight", sender=SERVER)
        factors, head = aggregate(self.method, sums, self.shapes, r=self.r, seed=self.seed)
        return ClusterState(round=msg.round + 1, heads=[head], adapters=[factors], G=[None])
