"""``masking``: the SecureSum backend over the masking session (see protocols/secagg.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...crypto.sign import IdentityKey
from ...seeds import derive_seed
from ..noise import DistributedNoise
from ..api import BACKENDS, ClientSession, SecureSum, ServerSession, SessionInfo
from .client import MaskingClient
from .params import derive_params
from .server import MaskingServer

__all__ = ["MaskingSum", "participation"]


def participation(weights: Mapping[int, Sequence[float]], clusters: int, minimum: int) -> dict[int, list[int]]:
    """Clusters each client sends vectors for: those it has weight in, and, where a cluster has fewer
    than ``minimum`` such clients, enough others (lowest ids first) sending zeros, so that no sum is
    ever taken over fewer than ``minimum`` clients."""
    out = {c: [j for j in range(clusters) if weights[c][j] > 0] for c in weights}
    for j in range(clusters):
        members = [c for c in sorted(weights) if j in out[c]]
        for c in sorted(weights):
            if len(members) >= minimum:
                break
            if c not in members:
                out[c].append(j)
                members.append(c)
    return {c: sorted(v) for c, v in out.items()}


class MaskingSum(SecureSum):
    name = "masking"
    server_learns = ("the per-cluster sum of every pass (and which clients took part); never one client's "
                     "vector unless t of its neighbours collude with the server (t of its k + 1 share holders)")

    def __init__(self, *, threat: str = "honest-but-curious", degree: int = 0, threshold: int = 0,
                 bits: int = 32, clip: float = 64.0, seed: int = 0, max_bytes: int = 64 * 2**20,
                 identities: Mapping[int, IdentityKey] | None = None, sparsity: str = "dense",
                 distributed_noise: tuple[float, float] | None = None) -> None:
        """``distributed_noise``: (L2 clip, noise) of the distributed discrete Gaussian, None = off."""
        self.distributed_noise = distributed_noise
        self.threat, self.degree, self.threshold = threat, degree, threshold
        self.bits, self.clip, self.seed, self.max_bytes = bits, clip, seed, max_bytes
        self.identities = identities
        self.reveal_rows = sparsity == "reveal-rows"
        self.roster = {c: k.public for c, k in identities.items()} if identities else None

    def params(self, n: int):  # noqa: ANN201
        return derive_params(n, threat=self.threat, degree=self.degree, threshold=self.threshold,
                             bits=self.bits, clip=self.clip)

    def server_session(self, info: SessionInfo) -> ServerSession:
        params = self.params(len(info.cohort))
        part = participation(info.weights, info.clusters, min(params.threshold + 1, len(info.cohort)))
        return MaskingServer(info, params, participation=part,
                             graph_seed=derive_seed(self.seed, info.round, info.epoch, "graph"),
                             max_bytes=self.max_bytes, reveal_rows=self.reveal_rows,
                             consistency=self.roster is not None)

    def client_session(self, me: int, round: int, rows: Mapping[str, object] | None = None) -> ClientSession:
        return MaskingClient(me, round=round, identity=self.identities.get(me) if self.identities else None,
                             roster=self.roster, max_bytes=self.max_bytes,
                             rows=rows if self.reveal_rows else None, threat=self.threat,
                             noise=None if self.distributed_noise is None else
                             DistributedNoise(clip=self.distributed_noise[0], noise=self.distributed_noise[1]))


BACKENDS[MaskingSum.name] = MaskingSum
