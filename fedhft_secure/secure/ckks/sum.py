"""``CkksSum``: SecureSum on CKKS, plus the client-side ``open_sum`` step.

The server session's ``sums()`` are ciphertexts (``{"ckks/sum": bytes}`` per
cluster): the pass-plan server forwards them and the members open them
(``opens_on_client``). No extra stage, no recovery: a client that drops is
simply not in the sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ...exceptions import (MalformedCiphertext, MissingKey, RemoteProtocolError, ReplayedMessage,
                           ShapeMismatch)
from ..api import (BACKENDS, ClientSession, Contribution, Expected, SecureSum, ServerSession, SessionInfo,
                   Tensors)
from .backend import CkksClient, CkksServer, Upload
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


class CkksSum(SecureSum):
    """A sum whose ``server_sum`` returns ciphertexts the server cannot read.

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
        self._seen: tuple[int, set[bytes]] = (-1, set())  # (round, digests accepted in it)

    def round_digests(self, round: int) -> set[bytes]:
        """Chunks accepted in ``round``, over all its sessions: a plan restart opens a new session in the
        same round, and a chunk of the earlier one is still a replay there."""
        if self._seen[0] != round:
            self._seen = (round, set())
        return self._seen[1]

    @property
    def error_bound(self) -> float:
        """Largest |error| of an opened sum value (decryption error plus flooding)."""
        party = self.client or self.server
        if party is None:
            raise MissingKey("the ckks backend was built without key material")
        return party.params.error_bound + party.params.flood_bound

    def server_session(self, info: SessionInfo) -> ServerSession:
        if self.server is None:
            raise MissingKey("a server session needs the public bundle (CkksSum(public=...))")
        return _Server(self, info)

    def client_session(self, me: int, round: int, rows: Mapping[str, object] | None = None) -> ClientSession:
        return _Client(self)

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



class _Server(ServerSession):
    """Loads each payload as it arrives; adds the ciphertexts of the contributors at ``end_inputs``.

    A chunk whose bytes were already accepted in this round (any session, pass or
    sender) is a replay: fresh seeded encryptions never repeat, so it is
    refused with ``ReplayedMessage`` and its sender dropped.
    """

    def __init__(self, backend: CkksSum, info: SessionInfo) -> None:
        self.backend, self.info = backend, info
        self._alive = set(info.cohort)
        self.uploads: dict[int, dict[int, Upload]] = {}
        self._sent: set[int] = set()
        self._seen = backend.round_digests(info.round)
        self.result: list[Tensors] | None = None
        self.errors: list[tuple[int, str]] = []

    @property
    def contributors(self) -> set[int]:
        return self._sent & self._alive

    def begin_pass(self, pass_seq: int, *, slot: int, expected: Expected) -> None:
        self.expected, self.layout = expected, self.backend.layout(expected)
        self.uploads, self._sent, self.result = {}, set(), None

    def add_payload(self, client: int, payload: Tensors) -> None:
        server = self.backend.server
        assert server is not None
        try:
            w = self.info.weights[client]
            wanted = {payload_key(j) for j in range(self.info.clusters) if w[j] > 0}
            if set(payload) != wanted:
                raise ShapeMismatch(f"sender {client}: ciphertexts {sorted(set(payload) ^ wanted)[:4]} "
                                    f"missing or unexpected", sender=client)
            ups = {j: server.load(_to_bytes(payload[payload_key(j)], client), layout=self.layout, sender=client)
                   for j in range(self.info.clusters) if w[j] > 0}
            digests = [d for up in ups.values() for d in up.digests]
            if self._seen.intersection(digests) or len(set(digests)) < len(digests):
                raise ReplayedMessage(f"sender {client}: a ciphertext already sent in this round",
                                      sender=client)
        except RemoteProtocolError:
            self._alive.discard(client)
            raise
        self._seen.update(digests)
        self.uploads[client] = ups
        self._sent.add(client)

    def end_inputs(self) -> None:
        server = self.backend.server
        assert server is not None
        self._alive &= self._sent
        out: list[Tensors] = []
        for j in range(self.info.clusters):
            ups = {c: u[j] for c, u in self.uploads.items() if c in self._alive and j in u}
            out.append({SUM_KEY: _to_tensor(server.add(ups, layout=self.layout))} if ups else {})
        self.uploads = {}  # consumed by the additions
        self.result = out

    def sums(self) -> list[Tensors] | None:
        return self.result


class _Client(ClientSession):
    def __init__(self, backend: CkksSum) -> None:
        self.backend = backend

    def payload(self, contribution: Contribution, *, slot: int, weights: Sequence[float],
                expected: Expected) -> Tensors:
        return self.backend.client_payload(contribution, weights=weights)


BACKENDS[CkksSum.name] = CkksSum
