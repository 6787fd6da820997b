"""Shamir t-of-n secret sharing over GF(p), p = 2^521 - 1 (holds any 256-bit secret).

Reconstruction precomputes the Lagrange coefficients at 0 once per set of
share holders and reuses them for every secret those holders share.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from ..exceptions import LocalProtocolError

__all__ = ["PRIME", "split", "reconstruct", "lagrange_at_zero", "SHARE_BYTES"]

PRIME = 2**521 - 1
SHARE_BYTES = 66


def split(secret: bytes, t: int, xs: Sequence[int], coeffs: Sequence[int] | None = None) -> dict[int, bytes]:
    """Shares at the nonzero points ``xs``; any ``t`` of them give ``secret`` back.

    ``coeffs`` (t-1 field elements) only for known-answer vectors; otherwise
    drawn with ``secrets``.
    """
    if not 1 <= t <= len(xs):
        raise LocalProtocolError(f"threshold {t} needs 1..{len(xs)}")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise LocalProtocolError("share points must be distinct and nonzero")
    s = int.from_bytes(secret, "big")
    poly = [s] + (list(coeffs) if coeffs is not None else [secrets.randbelow(PRIME) for _ in range(t - 1)])
    out = {}
    for x in xs:
        acc = 0
        for c in reversed(poly):
            acc = (acc * x + c) % PRIME
        out[x] = acc.to_bytes(SHARE_BYTES, "big")
    return out


def lagrange_at_zero(xs: Sequence[int]) -> list[int]:
    """λ_i = Π_{j≠i} x_j / (x_j - x_i); one modular inversion for all (Montgomery's batch trick)."""
    nums, dens = [], []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        nums.append(num)
        dens.append(den)
    prefix = [1]
    for d in dens:
        prefix.append(prefix[-1] * d % PRIME)
    inv = pow(prefix[-1], PRIME - 2, PRIME)
    out = [0] * len(xs)
    for i in range(len(xs) - 1, -1, -1):
        out[i] = nums[i] * inv * prefix[i] % PRIME
        inv = inv * dens[i] % PRIME
    return out


def reconstruct(shares: dict[int, bytes], t: int, length: int = 32,
                coefficients: tuple[list[int], list[int]] | None = None) -> bytes:
    """The secret from any ``t`` shares (the first ``t`` by point are used)."""
    if len(shares) < t:
        raise LocalProtocolError(f"{len(shares)} shares, {t} needed")
    xs = sorted(shares)[:t]
    lam = coefficients[1] if coefficients and coefficients[0] == xs else lagrange_at_zero(xs)
    s = sum(l * int.from_bytes(shares[x], "big") for l, x in zip(lam, xs)) % PRIME
    if s >= 2 ** (8 * length):
        raise LocalProtocolError("shares do not reconstruct a secret of this length (inconsistent shares)")
    return s.to_bytes(length, "big")
