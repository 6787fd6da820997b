"""One round's pass plan for every cluster: a pure object both sides can run.

The plaintext and masking servers run it on the sums they open. With a
backend whose sums only clients can read (``ckks``), every client runs its
own copy on the sums it decrypts: the requests it answers and the round's
result (cluster adapters, accumulated updates, heads) are then derived by the
members, and the server never needs to. Keeping the bookkeeping here, once,
is what makes the server's and the members' results the same algorithm.

``ClusterState`` is what the plan starts from and produces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ..algorithm.lowrank import LayerPlan, Op, plan_layer
from ..model.lora import LayerFactors
from ..secure.api import Expected
from ..seeds import derive_seed

__all__ = ["PlanBook", "ClusterState"]

Tensors = dict[str, torch.Tensor]


@dataclass(slots=True, kw_only=True)
class ClusterState:
    """The cluster model after ``round - 1``: what round ``round`` starts from."""

    round: int
    heads: list[Tensors]
    adapters: list[dict[str, LayerFactors]] = field(default_factory=list)
    G: list[Tensors | None] = field(default_factory=list)

    @classmethod
    def initial(cls, *, clusters: int, head: Mapping[str, torch.Tensor]) -> ClusterState:
        return cls(round=0, heads=[{k: v.clone() for k, v in head.items()} for _ in range(clusters)],
                   G=[None] * clusters)


class PlanBook:
    """The randomized SVD of every cluster's S_j for one round (and one epoch of it).

    ``count_floor``: counts at or below it are taken as 0 (rows nobody holds).
    Exact backends use 0; a backend with approximate sums sets it to its
    error bound, so decryption noise in an empty row is not divided by itself.
    """

    def __init__(self, *, shapes: Mapping[str, tuple[int, int]], head_shapes: Mapping[str, tuple[int, ...]],
                 clusters: int, r: int, oversampling: int, niter: int, seed: int, round: int,
                 count_floor: float = 0.0) -> None:
        self.shapes = dict(shapes)
        self.head_shapes = dict(head_shapes)
        self.K, self.r, self.niter = clusters, r, niter
        self.seed, self.round = seed, round
        self.count_floor = count_floor
        self.q = {n: min(r + oversampling, *s) for n, s in self.shapes.items()}
        self.plans: list[dict[str, LayerPlan]] = []
        self.pass_idx = 0
        self.requested: dict[tuple[int, str], tuple[Op, torch.Tensor]] = {}
        self.head_sums: list[Tensors] = []

    def reset(self, G: Sequence[Tensors | None]) -> None:
        self.plans = [{n: plan_layer(out=o, inp=i, q=self.q[n], niter=self.niter,
                                     G=None if G[j] is None else G[j][n])  # type: ignore[index]
                       for n, (o, i) in self.shapes.items()} for j in range(self.K)]
        self.pass_idx = 0
        self.requested = {}
        self.head_sums = []

    @property
    def num_passes(self) -> int:
        return max(plan_layer(out=o, inp=i, q=self.q[n], niter=self.niter, G=None).num_passes
                   for n, (o, i) in self.shapes.items())

    @property
    def done(self) -> bool:
        return self.pass_idx >= self.num_passes

    def omega_seed(self, layer: str) -> int:
        return derive_seed(self.seed, self.round, layer, "omega")

    def schedule(self) -> dict[str, tuple[Op, bool]]:
        """Layer -> (op, by the public Gaussian) at this pass; the same for every cluster and input."""
        out = {}
        for n, (o, i) in self.shapes.items():
            p = plan_layer(out=o, inp=i, q=self.q[n], niter=self.niter, G=None)
            k = self.pass_idx - p.offset
            if 0 <= k < len(p.ops):
                out[n] = (p.ops[k], k == 0 and p.tall)
        return out

    def expected(self) -> Expected:
        """The shapes of this pass's vectors (public: they follow from the schedule alone)."""
        shared: dict[str, tuple[int, ...]] = {}
        per: dict[str, tuple[int, ...]] = {}
        rows: dict[str, str] = {}
        if self.pass_idx == 0:
            shared.update({f"counts/{n}": (o,) for n, (o, _) in self.shapes.items()})
            rows.update({f"counts/{n}": n for n in self.shapes})
            shared.update({f"head/{k}": tuple(s) for k, s in self.head_shapes.items()})
        for n, (op, gauss) in self.schedule().items():
            o, i = self.shapes[n]
            (shared if gauss else per)[n] = (o, self.q[n]) if op is Op.LEFT else (i, self.q[n])
            if op is Op.LEFT:
                rows[n] = n
        return Expected(shared=shared, per_cluster=per, row_layers=rows)

    def requests(self) -> dict[tuple[int, str], tuple[Op, torch.Tensor]]:
        """(cluster, layer) -> (op, X) the clients multiply by at this pass."""
        self.requested = {}
        for j, plans in enumerate(self.plans):
            for n, plan in plans.items():
                req = plan.request(self.pass_idx, self.omega_seed(n))
                if req is not None:
                    self.requested[(j, n)] = req
        return self.requested

    def absorb(self, sums: Sequence[Mapping[str, torch.Tensor]]) -> None:
        """Fold the per-cluster sums of this pass (after ``requests``) into the plans."""
        if self.pass_idx == 0:
            self.head_sums = [{k: sums[j][f"head/{k}"] for k in self.head_shapes} for j in range(self.K)]
            for j, plans in enumerate(self.plans):
                for n, plan in plans.items():
                    c = sums[j][f"counts/{n}"]
                    plan.counts = torch.where(c > self.count_floor, c, torch.zeros_like(c))
        for (j, n) in self.requested:
            self.plans[j][n].absorb(sums[j][n])
        self.requested = {}
        self.pass_idx += 1

    def result(self, prev: ClusterState, totals: Sequence[float]) -> ClusterState:
        """The round's new cluster state; a cluster nobody joined keeps its previous one."""
        assert self.done, "plan not finished"
        adapters, G, heads = [], [], []
        for j in range(self.K):
            if totals[j] <= 0 and prev.adapters:
                adapters.append(prev.adapters[j])
                G.append(prev.G[j])
            else:
                fac = {n: LayerFactors(B=B, A=A) for n, (B, A) in
                       ((n, p.factors(self.r)) for n, p in self.plans[j].items())}
                adapters.append(fac)
                # Nobody sees S_j, so what accumulates is the rank-r estimate just computed.
                G.append({n: f.delta() for n, f in fac.items()})
            heads.append({k: v / totals[j] for k, v in self.head_sums[j].items()} if totals[j] > 0
                         else prev.heads[j])
        return ClusterState(round=self.round + 1, heads=heads, adapters=adapters, G=G)
