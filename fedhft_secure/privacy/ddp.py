"""Accounting of the distributed discrete Gaussian inside the masked sum (central DP toward the server).

Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation" (ICML), Proposition 14 /
Theorem 1: if m clients each add independent N_Z(0, sigma^2) to a
d-dimensional integer vector, the sum is *not* a discrete Gaussian, but for
integer sensitivities ||Δ||_2 <= D2, ||Δ||_1 <= D1 it satisfies, at every
Rényi order a > 1, D_a <= min of

    a/2 · D2²/(m σ²) + τ d,
    a/2 · (D2²/(m σ²) + 2 D1 τ / (√m σ) + τ² d),
    a/2 · (D2/(√m σ) + τ √d)²,        τ = 10 Σ_{k=1}^{m-1} exp(-2π² σ² k/(k+1)),

for σ >= 1/2. The third line is exactly the RDP of a Gaussian mechanism with
noise multiplier z = 1 / (D2/(√m σ) + τ √d): that is how a release enters the
ledger (``DistributedNoiseAdded.compositions``), so it composes with every
other event in the RDP accountant. It is the conservative choice of the three
(within a factor (1 + τ√(dm)σ/D2)² of the first, and τ is below 1e-30 for
the σ in integer units that fixed-point scales give here). Only RDP is
sound for it: the PRV accountant would charge the continuous Gaussian's exact
privacy profile, which the sum of discrete Gaussians is not proven to have.

Sensitivity (integer units, replace-one-client): the client's real vector is
L2-clipped to C and stochastic rounding moves every coordinate by less than 1,
so its integer vector has L2 norm below C·scale + √d, and replacing the client
moves the sum by D2 = 2 (C·scale + √d), D1 = √d · D2.

Dropouts: each client adds σ² = (noise·C·scale)²/n_j for the n_j clients set
up to contribute; when only m < n_j contribute, the sum carries m/n_j of the
target variance and the event is charged at the m that remained (the runtime
settles m from the round's dropouts: m >= n_j − dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from opacus.accountants.analysis.rdp import get_privacy_spent

from ..secure.noise import TAIL

__all__ = ["kls_tau", "kls_rdp", "sensitivity", "effective_multiplier", "ddp_epsilon", "sum_bits",
           "scale_for_bits", "ORDERS"]

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [128, 256]


def kls_tau(*, sigma: float, m: int) -> float:
    """τ of KLS Theorem 1 for m contributors with local std ``sigma`` (integer units)."""
    return 10.0 * sum(math.exp(-2 * math.pi ** 2 * sigma ** 2 * k / (k + 1)) for k in range(1, m))


def sensitivity(*, clip: float, scale: float, dim: int) -> float:
    """D2 in integer units: replacing a client moves the sum by at most 2 (C·scale + √d)."""
    return 2.0 * (clip * scale + math.sqrt(dim))


def kls_rdp(orders: Sequence[float], *, l2: float, sigma: float, m: int, dim: int,
            l1: float | None = None) -> np.ndarray:
    """RDP at ``orders`` of one sum of m clients' N_Z(0, sigma^2) noise, sensitivities in integer units."""
    if sigma < 0.5:
        return np.full(len(orders), np.inf)  # outside the theorem: no claim
    tau = kls_tau(sigma=sigma, m=m)
    l1 = math.sqrt(dim) * l2 if l1 is None else l1
    s = math.sqrt(m) * sigma
    out = []
    for a in orders:
        out.append(min(a / 2 * (l2 / s) ** 2 + tau * dim,
                       a / 2 * ((l2 / s) ** 2 + 2 * (l1 / s) * tau + tau ** 2 * dim),
                       a / 2 * (l2 / s + tau * math.sqrt(dim)) ** 2))
    return np.array(out)


def effective_multiplier(*, clip: float, noise: float, scale: float, cohort: int, contributors: int,
                         dim: int) -> float:
    """The Gaussian noise multiplier whose RDP equals KLS's third bound for one such sum (0: no claim)."""
    sigma = noise * clip * scale / math.sqrt(max(cohort, 1))
    m = max(1, min(contributors, cohort))
    if noise <= 0 or sigma < 0.5:
        return 0.0
    l2 = sensitivity(clip=clip, scale=scale, dim=dim)
    return 1.0 / (l2 / (math.sqrt(m) * sigma) + kls_tau(sigma=sigma, m=m) * math.sqrt(dim))


def ddp_epsilon(*, clip: float, noise: float, scale: float, cohort: int, contributors: int, dim: int,
                releases: int, delta: float, bound: str = "min") -> float:
    """Epsilon at ``delta`` of ``releases`` such sums composed; ``bound`` "min" (all three KLS lines)
    or "third" (the Gaussian-equivalent line the ledger uses)."""
    sigma = noise * clip * scale / math.sqrt(max(cohort, 1))
    m = max(1, min(contributors, cohort))
    l2 = sensitivity(clip=clip, scale=scale, dim=dim)
    if bound == "min":
        rdp = kls_rdp(ORDERS, l2=l2, sigma=sigma, m=m, dim=dim) * releases
    else:
        z = effective_multiplier(clip=clip, noise=noise, scale=scale, cohort=cohort, contributors=m, dim=dim)
        rdp = np.array([a / (2 * z * z) if z > 0 else np.inf for a in ORDERS]) * releases
    eps, _ = get_privacy_spent(orders=ORDERS, rdp=rdp, delta=delta)
    return float(eps)


def sum_bits(*, n: int, clip: float, noise: float, scale: float) -> int:
    """Bits a modulus needs so that n clipped vectors plus the summed noise never wrap.

    Each coordinate of a clipped vector is at most C·scale + 1 after rounding;
    the summed noise stays within TAIL·noise·C·scale except with probability
    2 exp(-TAIL²/2) per coordinate; the sign takes one more bit.
    """
    top = n * (clip * scale + 1) + TAIL * noise * clip * scale
    return 1 + math.ceil(math.log2(top + 1))


def scale_for_bits(*, n: int, clip: float, noise: float, bits: int) -> float:
    """The finest integer scale (levels per real unit) at which ``sum_bits`` <= ``bits``."""
    scale = math.floor(((1 << (bits - 1)) - 1 - n) / (n * clip + TAIL * noise * clip))
    while scale > 0 and sum_bits(n=n, clip=clip, noise=noise, scale=scale) > bits:
        scale -= 1
    return float(scale)
