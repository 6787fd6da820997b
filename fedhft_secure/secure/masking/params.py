"""Public parameters of one masking session: graph degree, threshold, encoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...exceptions import ConfigError

__all__ = ["MaskingParams", "derive_params", "neighbour_graph", "THREATS"]

#: threshold as a fraction of the share holders h = k + 1, per adversary model (SecAgg+, Bell et al.
#: 2020): honest-but-curious: t > h/2; a server that lies about dropouts: t > 2h/3.
THREATS = {"honest-but-curious": 1 / 2, "semi-malicious": 2 / 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskingParams:
    degree: int  # k: neighbours per client
    threshold: int  # t: shares needed to reconstruct (out of h = k + 1 holders: the neighbours and the client)
    bits: int = 32
    clip: float = 64.0

    @property
    def holders(self) -> int:
        """h = k + 1: a client's secrets are shared among its neighbours and itself (Bonawitz et al. 2017
        share among all of U1, the client included; Flower's SecAgg+ ``num_shares`` counts the client too)."""
        return self.degree + 1


def derive_params(n: int, *, threat: str, degree: int = 0, threshold: int = 0, bits: int = 32,
                  clip: float = 64.0) -> MaskingParams:
    """k = n-1 up to 20 clients, else about 4 log2 n (SecAgg+'s O(log n)); t from the threat model,
    against the h = k + 1 share holders (the client holds a share of its own secrets, so with 3 clients
    h = 3, t = 2 and one dropout is survived at every stage; with k holders it was t = 2 of 2)."""
    if threat not in THREATS:
        raise ConfigError("secure.threat", f"{threat!r} is unknown", ", ".join(THREATS))
    if n < 2:
        raise ConfigError("fed.num_clients", "secure aggregation needs at least 2 clients", ">= 2")
    k = degree or (n - 1 if n <= 20 else min(n - 1, 4 * math.ceil(math.log2(n))))
    k = min(k, n - 1)
    k += k % 2 and n % 2  # odd k on an odd cohort: the graph gives everyone k + 1 neighbours, so t counts them
    h = k + 1
    t = threshold or int(math.floor(THREATS[threat] * h)) + 1
    if not 1 <= t <= h:
        raise ConfigError("secure.threshold", f"{t} does not fit {h} share holders (degree {k} + the client)",
                          f"1..{h}")
    if t <= THREATS[threat] * h:
        raise ConfigError("secure.threshold", f"{t} is too small for a {threat} server with {h} share holders "
                          f"(degree {k} + the client)", f"> {THREATS[threat] * h:g}")
    return MaskingParams(degree=k, threshold=t, bits=bits, clip=clip)


def neighbour_graph(cohort: list[int], degree: int, seed: int) -> dict[int, list[int]]:
    """A k-regular graph (k-regular up to one extra edge when k and n are both odd): a circulant
    over a random public ordering of the cohort — each client linked to the k/2 next on each side."""
    n = len(cohort)
    order = [cohort[i] for i in np.random.default_rng(seed).permutation(n)]
    pos = {c: i for i, c in enumerate(order)}
    out: dict[int, set[int]] = {c: set() for c in cohort}
    half = degree // 2
    for c in cohort:
        i = pos[c]
        for d in range(1, half + 1):
            for j in (i + d, i - d):
                out[c].add(order[j % n])
        if degree % 2:  # the diametric partner
            out[c].add(order[(i + n // 2) % n])
    for c in cohort:
        out[c].discard(c)
        for v in out[c]:
            out[v].add(c)
    return {c: sorted(v) for c, v in out.items()}
