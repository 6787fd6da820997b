"""The reference backend: the server sees every vector (tests, baselines).

Having nothing to hide, it sends matrices row-sparse: only rows with a
nonzero entry travel (so a client's kept rows, and only those, leave it).
The server weights and adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..exceptions import MalformedMessage, RemoteProtocolError, ShapeMismatch
from .api import BACKENDS, ClientSession, Contribution, Expected, SecureSum, ServerSession, SessionInfo, Tensors

__all__ = ["PlaintextSum", "pack_rows", "unpack_rows", "check_names"]


def pack_rows(name: str, t: torch.Tensor) -> Tensors:
    """``name`` dense, or ``name#rows`` + ``name#vals`` when that is smaller."""
    if t.dim() != 2:
        return {name: t}
    rows = torch.nonzero(t.abs().sum(dim=1) > 0).flatten().to(torch.int32)
    if rows.numel() * (t.shape[1] + 1) >= t.numel():
        return {name: t}
    return {f"{name}#rows": rows, f"{name}#vals": t[rows.long()]}


def unpack_rows(payload: Mapping[str, torch.Tensor], name: str, shape: tuple[int, ...],
                sender: int) -> torch.Tensor:
    if name in payload:
        t = payload[name]
    elif f"{name}#rows" in payload and f"{name}#vals" in payload and len(shape) == 2:
        rows, vals = payload[f"{name}#rows"], payload[f"{name}#vals"]
        if rows.dtype != torch.int32 or rows.dim() != 1 or vals.shape != (rows.numel(), shape[1]):
            raise ShapeMismatch(f"sender {sender}: rows of {name!r} do not match their values",
                                sender=sender)
        r = rows.long()
        if r.numel() and (r.min() < 0 or r.max() >= shape[0] or not bool((r[1:] > r[:-1]).all())):
            raise MalformedMessage(f"sender {sender}: row indices of {name!r} out of range or unsorted",
                                   sender=sender)
        t = torch.zeros(shape, dtype=torch.float32)
        t[r] = vals.to(torch.float32)
    else:
        raise ShapeMismatch(f"sender {sender}: vector {name!r} is missing", sender=sender)
    if tuple(t.shape) != tuple(shape) or not t.dtype.is_floating_point:
        raise ShapeMismatch(f"sender {sender}: {name!r} has shape {tuple(t.shape)} {t.dtype}, "
                            f"expected {tuple(shape)} float", sender=sender)
    if not bool(torch.isfinite(t).all()):
        raise MalformedMessage(f"sender {sender}: {name!r} has non-finite values", sender=sender)
    return t.to(torch.float32)


def check_names(sender: int, payload: Mapping[str, torch.Tensor], expected: Expected, weights: Sequence[float],
                clusters: int) -> None:
    wanted = {f"s/{n}" for n in expected.shared} | {
        f"c{j}/{n}" for j in range(clusters) if weights[j] > 0 for n in expected.per_cluster}
    got = {k.split("#")[0] for k in payload}
    if got != wanted:
        raise ShapeMismatch(f"sender {sender}: vectors {sorted(got ^ wanted)[:4]} missing or unexpected",
                            sender=sender)


class _Server(ServerSession):
    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self._alive = set(info.cohort)
        self.vectors: dict[int, tuple[Tensors, dict[int, Tensors]]] = {}
        self.result: list[Tensors] | None = None

    @property
    def contributors(self) -> set[int]:
        return set(self.vectors) & self._alive

    def begin_pass(self, pass_seq: int, *, slot: int, expected: Expected) -> None:
        self.expected, self.weights = expected, self.info.weights
        self.vectors, self.result = {}, None

    def add_payload(self, client: int, payload: Tensors) -> None:
        try:
            w, K = self.weights[client], self.info.clusters
            check_names(client, payload, self.expected, w, K)
            shared = {n: unpack_rows(payload, f"s/{n}", s, client) for n, s in self.expected.shared.items()}
            per = {j: {n: unpack_rows(payload, f"c{j}/{n}", s, client) for n, s in self.expected.per_cluster.items()}
                   for j in range(K) if w[j] > 0}
        except RemoteProtocolError:
            self._alive.discard(client)
            raise
        self.vectors[client] = (shared, per)

    def end_inputs(self) -> None:
        self._alive &= set(self.vectors)
        K = self.info.clusters
        sums: list[Tensors] = [{n: torch.zeros(s) for n, s in {**self.expected.shared,
                                                               **self.expected.per_cluster}.items()}
                               for _ in range(K)]
        for client in sorted(self._alive):
            shared, per = self.vectors[client]
            w = self.weights[client]
            for j in range(K):
                if w[j] > 0:
                    for n, v in {**shared, **per[j]}.items():
                        sums[j][n] += float(w[j]) * v
        self.result = sums

    def sums(self) -> list[Tensors] | None:
        return self.result


class _Client(ClientSession):
    def payload(self, contribution: Contribution, *, slot: int, weights: Sequence[float],
                expected: Expected) -> Tensors:
        out: Tensors = {}
        for name, t in contribution.shared.items():
            out.update(pack_rows(f"s/{name}", t))
        for j, tensors in contribution.per_cluster.items():
            if weights[j] > 0:
                for name, t in tensors.items():
                    out.update(pack_rows(f"c{j}/{name}", t))
        return out


class PlaintextSum(SecureSum):
    name = "plaintext"
    server_learns = "every client's vector for every pass (no protection)"

    def server_session(self, info: SessionInfo) -> ServerSession:
        return _Server(info)

    def client_session(self, me: int, round: int, rows: Mapping[str, object] | None = None) -> ClientSession:
        return _Client()


BACKENDS[PlaintextSum.name] = PlaintextSum
