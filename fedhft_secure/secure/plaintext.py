"""The reference backend: the server sees every vector (tests, baselines).

Having nothing to hide, it sends matrices row-sparse: only rows with a
nonzero entry travel (so a client's kept rows, and only those, leave it).
The server weights and adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..exceptions import MalformedMessage, ShapeMismatch
from .api import BACKENDS, Contribution, Expected, SecureSum, Tensors

__all__ = ["PlaintextSum", "pack_rows", "unpack_rows"]


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


class PlaintextSum(SecureSum):
    name = "plaintext"
    server_learns = "every client's vector for every pass (no protection)"

    def client_payload(self, contribution: Contribution, *, weights: Sequence[float]) -> Tensors:
        out: Tensors = {}
        for name, t in contribution.shared.items():
            out.update(pack_rows(f"s/{name}", t))
        for j, tensors in contribution.per_cluster.items():
            if weights[j] > 0:
                for name, t in tensors.items():
                    out.update(pack_rows(f"c{j}/{name}", t))
        return out

    def server_sum(self, payloads: Mapping[int, Tensors], *, weights: Mapping[int, Sequence[float]],
                   expected: Expected, clusters: int) -> list[Tensors]:
        sums: list[Tensors] = [{} for _ in range(clusters)]

        def add(j: int, name: str, v: torch.Tensor) -> None:
            sums[j][name] = sums[j][name] + v if name in sums[j] else v.clone()

        for sender, payload in payloads.items():
            w = weights[sender]
            wanted = {f"s/{n}" for n in expected.shared} | {
                f"c{j}/{n}" for j in range(clusters) if w[j] > 0 for n in expected.per_cluster}
            got = {k.split("#")[0] for k in payload}
            if got != wanted:
                raise ShapeMismatch(f"sender {sender}: vectors {sorted(got ^ wanted)[:4]} "
                                    f"missing or unexpected", sender=sender)
            shared = {n: unpack_rows(payload, f"s/{n}", s, sender) for n, s in expected.shared.items()}
            for j in range(clusters):
                if w[j] <= 0:
                    continue
                for n, v in shared.items():
                    add(j, n, float(w[j]) * v)
                for n, s in expected.per_cluster.items():
                    add(j, n, float(w[j]) * unpack_rows(payload, f"c{j}/{n}", s, sender))
        for j in range(clusters):
            for n, s in {**expected.shared, **expected.per_cluster}.items():
                sums[j].setdefault(n, torch.zeros(s))
        return sums


BACKENDS[PlaintextSum.name] = PlaintextSum
