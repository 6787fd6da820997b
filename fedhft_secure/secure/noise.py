"""A client's share of distributed discrete Gaussian noise inside an integer-encoded sum.

Kairouz, Liu, Steinke 2021 ("The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation"): each client clips its real
vector to L2 norm ``clip``, rounds it to integers (stochastic rounding,
``FixedPoint``), and adds N_Z(0, sigma_local^2) per coordinate, where
sigma_local^2 = (noise * clip * scale)^2 / n_j splits the target variance
over the n_j clients set up to contribute to cluster j. The masked sum then
carries noise of variance ~(noise * clip)^2 per coordinate (real units) and
the server only ever sees that noisy sum.

When clients drop after set-up the sum has m < n_j contributors and only
m/n_j of the target variance: this module does not hide that; it records, per
encoded vector, the cohort n_j it split over, so the accounting
(``privacy/ddp.py``) can charge the smaller noise of the contributors that
actually remained.

The privacy analysis lives in ``privacy/`` (above this layer); here is only
what a client does to its vector, and the check that the modulus still holds
n (clip range) + the noise tail without wrapping.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..crypto.dgauss import discrete_gaussian
from ..crypto.encoding import FixedPoint
from ..exceptions import ConfigError

__all__ = ["DistributedNoise", "NoiseApplied", "TAIL", "headroom_ok"]

#: the sum's noise stays within TAIL standard deviations except with probability
#: 2 exp(-TAIL^2 / 2) ~ 2.6e-18 per coordinate (a sum of discrete Gaussians is sub-Gaussian, CKS Prop. 19)
TAIL = 9.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseApplied:
    """One vector this client perturbed: for the privacy ledger."""

    cluster: int
    cohort: int  # n_j: contributors the noise was split over
    dim: int  # coordinates of the vector
    scale: float  # integer levels per real unit of the encoding
    sigma_local: float  # std of this client's discrete Gaussian, integer units


def headroom_ok(codec: FixedPoint, *, clip: float, noise: float) -> bool:
    """True when n vectors within the clips plus TAIL sum-noise stds fit in the codec's range.

    The codec's range is n (clip_inf scale + 1) < 2^(bits-1); an L2 clip bounds
    every coordinate by min(clip, clip_inf), and the summed noise by
    TAIL * noise * clip * scale (with all n_j present; fewer contributors mean less).
    """
    limit = (1 << (codec.bits - 1)) - 1
    need = codec.n * (min(clip, codec.clip) * codec.scale + 1) + TAIL * noise * clip * codec.scale
    return need <= limit


@dataclass(slots=True, kw_only=True)
class DistributedNoise:
    """What a client adds to each cluster vector it encodes (see the module doc).

    ``noise``: std of a sum coordinate / ``clip`` with the full cohort.
    ``entropy``: the OS by default (never a seeded RNG: the noise protects the client's vector).
    """

    clip: float
    noise: float
    entropy: Callable[[int], bytes] = os.urandom
    applied: list[NoiseApplied] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.clip > 0:
            raise ConfigError("privacy.distributed_clip", f"{self.clip} with distributed noise on", "> 0")
        if not self.noise > 0:
            raise ConfigError("privacy.distributed_noise", f"{self.noise}", "> 0 (0 turns the noise off)")

    def encode(self, codec: FixedPoint, vec: np.ndarray, uniform: np.ndarray, *, cluster: int,
               cohort: int) -> np.ndarray:
        """Clip to L2 ``clip``, fixed-point encode, add this client's N_Z(0, sigma_local^2) mod 2^bits."""
        if not headroom_ok(codec, clip=self.clip, noise=self.noise):
            raise ConfigError("privacy.distributed_noise",
                              f"{self.noise} x clip {self.clip} over {codec.n} clients does not fit "
                              f"{codec.bits}-bit sums with secure.clip {codec.clip}",
                              "a smaller noise or privacy.distributed_clip, or a larger secure.clip")
        x = np.asarray(vec, dtype=np.float64)
        norm = float(np.linalg.norm(x))
        if norm > self.clip:
            x = x * (self.clip / norm)
        y = codec.encode(x, uniform)
        sigma = self.noise * self.clip * codec.scale / math.sqrt(max(cohort, 1))
        z = discrete_gaussian(y.size, sigma=sigma, entropy=self.entropy)
        self.applied.append(NoiseApplied(cluster=cluster, cohort=cohort, dim=int(y.size), scale=codec.scale,
                                         sigma_local=sigma))
        return codec.reduce(y + z.astype(codec.dtype))  # two's complement, then mod 2^bits: adds z mod 2^bits

    def take(self) -> list[NoiseApplied]:
        """The records since the last call (the ledger reads them once per pass)."""
        out, self.applied = self.applied, []
        return out
