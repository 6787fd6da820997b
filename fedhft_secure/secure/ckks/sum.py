"""``CkksSum``: SecureSum on CKKS, plus the client-side ``open_sum`` step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ...exceptions import MalformedCiphertext, MissingKey, ShapeMismatch
from ..api import Contribution, Expected, Tensors
from .backend import CkksClient, CkksServer
from .keys import PublicBundle, SecretBundle
from .packing import Layout, layout_for

__all__ = ["CkksSum", "SUM_KEY", "payload_key"]

SUM_KEY = "ckks/sum"


def payload_key(cluster: int) -> str:
    return f"ckks/c{cluster}"


def _to_tensor(blob: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob else torch.zeros(0, dtype=torch.uint8)


def _to_bytes(t: torch.Tensor, sender: int | None) -> bytes:
    if t.dtype != torch.uint8 or t.dim() != 1:
        raise MalformedCiphertext(f"sender {sender}: ciphertext frame is not a 1-D uint8 tensor",
                                  sender=sender)
    return t.numpy().tobytes()


class CkksSum:
    """A sum whose ``server_sum`` returns ciphertexts the server cannot read.

    Not yet a registered ``secure.backend``: the round in which clients run
    the pass plan's linear algebra on opened sums (DESIGN §2) is the part of
    issue 5 still to be wired; until then this is used directly.

    Client: for every cluster j with p_ij > 0 it multiplies its shared and
    cluster-j vectors by p_ij, packs them densely (one layout per pass, the
    same on every party) and encrypts them: payload ``ckks/c{j}`` (uint8 bytes).
    Server: per cluster, adds the ciphertexts of the senders with p_ij > 0 and
    returns ``[{"ckks/sum": bytes}, ...]`` -- ciphertext, not sums. Clients call
    ``open_sum`` (``ClientOpenedSum``) to decrypt and flood them.

    Built without keys, every method raises
    ``MissingKey``; ``CkksSum(secret=...)`` is a member, ``CkksSum(public=...)``
    the aggregator (a server must never be given the secret bundle).
    """

    name = "ckks"
    server_learns = ("only ciphertexts: sizes, senders and timing (a member colluding with the server "
                     "decrypts everything: one consortium key)")
    opened_by_clients = True

    def __init__(self, *, secret: SecretBundle | None = None, public: PublicBundle | None = None) -> None:
        self.client = CkksClient(secret) if secret is not None else None
        self.server = CkksServer(public) if public is not None else None

    def layout(self, expected: Expected) -> Layout:
        party = self.client or self.server
        if party is None:
            raise MissingKey("the ckks backend was built without key material")
        return layout_for({**expected.shared, **expected.per_cluster}, slots=party.params.slots)

    def client_payload(self, contribution: Contribution, *, weights: Sequence[float]) -> Tensors:
        if self.client is None:
            raise MissingKey("client_payload needs the consortium secret key (CkksSum(secret=...))")
        out: Tensors = {}
        shapes = {n: tuple(t.shape) for n, t in contribution.shared.items()}
        for j, w in enumerate(weights):
            if w <= 0:
                continue
            tensors = {**contribution.shared, **contribution.per_cluster.get(j, {})}
            shapes_j = {**shapes, **{n: tuple(t.shape) for n, t in contribution.per_cluster.get(j, {}).items()}}
            layout = layout_for(shapes_j, slots=self.client.params.slots)
            scaled = {n: float(w) * t.to(torch.float64) for n, t in tensors.items()}
            out[payload_key(j)] = _to_tensor(self.client.encrypt(scaled, layout=layout))
        return out

    def server_sum(self, payloads: Mapping[int, Tensors], *, weights: Mapping[int, Sequence[float]],
                   expected: Expected, clusters: int) -> list[Tensors]:
        if self.server is None:
            raise MissingKey("server_sum needs the public bundle (CkksSum(public=...))")
        layout = self.layout(expected)
        for sender, payload in payloads.items():
            wanted = {payload_key(j) for j in range(clusters) if weights[sender][j] > 0}
            if set(payload) != wanted:
                raise ShapeMismatch(f"sender {sender}: ciphertexts {sorted(set(payload) ^ wanted)[:4]} "
                                    f"missing or unexpected", sender=sender)
        out: list[Tensors] = []
        for j in range(clusters):
            blobs = {s: _to_bytes(p[payload_key(j)], s) for s, p in payloads.items()
                     if weights[s][j] > 0}
            out.append({SUM_KEY: _to_tensor(self.server.weighted_sum(blobs, layout=layout))}
                       if blobs else {})
        return out

    def open_sum(self, summed: Tensors, *, expected: Expected, cluster: int) -> Tensors:
        if self.client is None:
            raise MissingKey("open_sum needs the consortium secret key")
        if not summed:  # nobody in this cluster: the plaintext backend's zeros
            return {n: torch.zeros(s) for n, s in {**expected.shared, **expected.per_cluster}.items()}
        if set(summed) != {SUM_KEY}:
            raise MalformedCiphertext(f"cluster {cluster}: unexpected frames {sorted(summed)[:4]}")
        return self.client.decrypt(_to_bytes(summed[SUM_KEY], None), layout=self.layout(expected))

