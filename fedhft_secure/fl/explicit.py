"""The official code's server: per-client factors in, S_j formed explicitly (the reference)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..algorithm.aggregate import ClientFactors, dense_cluster_sums, explicit_refactor
from ..exceptions import RemoteProtocolError, ShapeMismatch
from ..model.lora import LayerFactors
from ..seeds import derive_seed
from .messages import ExplicitUpload
from .server import _ServerBase

__all__ = ["ExplicitServer"]


class ExplicitServer(_ServerBase):
    """The official code's server: per-client factors in, S_j formed explicitly, G_j += mean."""

    def __init__(self, **kw) -> None:  # noqa: ANN003
        super().__init__(**kw)
        self.uploads: dict[int, ClientFactors] = {}

    stage = "upload"

    def begin_round(self, clients: Sequence[int]) -> dict[int, bytes]:
        self.uploads = {}
        return super().begin_round(clients)

    def advance(self) -> None:
        self.finish_round()

    def receive(self, client: int, blob: bytes) -> None:
        try:
            msg = self.intake.accept(blob, ExplicitUpload, round=self.state.round, pass_idx=0,
                                     sender=client, allowed=self.cohort)
            self.sketches[client] = self._check_sketch(client, msg.sketch)
            self.uploads[client] = self._factors(client, msg)
        except RemoteProtocolError as exc:
            if client in self.cohort:
                self.drop(client, f"{type(exc).__name__}: {exc}")
            raise

    def _factors(self, sender: int, msg: ExplicitUpload) -> ClientFactors:
        r = self.cfg.lora.r
        layers, masks = {}, {}
        if set(msg.rows) != set(self.shapes) or set(msg.B) != set(self.shapes) or set(msg.A) != set(self.shapes):
            raise ShapeMismatch(f"sender {sender}: layers do not match the model", sender=sender)
        for n, (o, i) in self.shapes.items():
            rows, B, A = msg.rows[n].long(), msg.B[n], msg.A[n]
            ok = (rows.dim() == 1 and B.shape == (rows.numel(), r) and A.shape == (r, i)
                  and (rows.numel() == 0 or (rows.min() >= 0 and rows.max() < o))
                  and rows.unique().numel() == rows.numel()
                  and bool(torch.isfinite(B).all()) and bool(torch.isfinite(A).all()))
            if not ok:
                raise ShapeMismatch(f"sender {sender}: layer {n!r} has bad shapes or values", sender=sender)
            full = torch.zeros(o, r)
            full[rows] = B.to(torch.float32)
            mask = torch.zeros(o, dtype=torch.bool)
            mask[rows] = True
            layers[n] = LayerFactors(B=full, A=A.to(torch.float32))
            masks[n] = mask
        head0 = self.state.heads[0]
        if set(msg.head) != set(head0) or any(msg.head[k].shape != head0[k].shape for k in head0):
            raise ShapeMismatch(f"sender {sender}: head does not match the model", sender=sender)
        return ClientFactors(layers=layers, masks=masks, head={k: v.float() for k, v in msg.head.items()})

    def finish_round(self) -> None:
        ids = sorted(i for i in self.cohort if i in self.uploads)
        for i in sorted(self.cohort - set(ids)):
            self.drop(i, "no reply")
        if ids:
            clients = [self.uploads[i] for i in ids]
            w = torch.tensor([self.weights(i) for i in ids], dtype=torch.float64)
            S = dense_cluster_sums(clients, w, self.state.G)
            adapters, G = [], []
            fed, r = self.cfg.fed, self.cfg.lora.r
            for j in range(self.K):
                if float(w[:, j].sum()) <= 0 and self.state.adapters:
                    adapters.append(self.state.adapters[j])
                    G.append(self.state.G[j])
                    continue
                adapters.append({n: explicit_refactor(s.float(), r=r, q=r + fed.oversampling,
                                                      niter=fed.power_iters,
                                                      seed=derive_seed(self.cfg.seed, self.state.round, n,
                                                                       "omega"))
                                 for n, s in S[j].items()})
                G.append({n: s.float() for n, s in S[j].items()})
            self.state.adapters, self.state.G = adapters, G
            totals = [float(w[:, j].sum()) for j in range(self.K)]
            sums = [{k: sum(float(w[a, j]) * c.head[k] for a, c in enumerate(clients)) for k in clients[0].head}
                    for j in range(self.K)]
            self._new_heads(sums, totals)
        self._close()
