"""The discrete Gaussian N_Z(0, sigma^2): P[X = x] ∝ exp(-x^2 / (2 sigma^2)) on the integers.

Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential
Privacy" (NeurIPS), Algorithms 1-3: propose from a discrete Laplace of scale
t = floor(sigma) + 1, accept with probability
exp(-(|y| - sigma^2/t)^2 / (2 sigma^2)).

Two samplers of that one algorithm:

- ``sample_exact``: their exact version, rational arithmetic only
  (``fractions.Fraction``) and uniform integers from ``secrets`` — no
  floating point anywhere, so no floating-point leakage (Mironov 2012).
  Slow (pure Python); the reference the fast one is tested against.
- ``discrete_gaussian``: the same proposal/rejection vectorized in numpy
  float64 over uniform bits drawn from the OS (``os.urandom``), never from a
  seeded or global RNG. Float arithmetic makes the pmf exact only to about
  1e-15 relative (the usual practice for large vectors, e.g. the
  distributed-DP federated-learning implementations); this is what clients
  use on pass vectors.

Pure: randomness is an injected argument (an ``entropy(nbytes)`` callable or a
``secrets.SystemRandom``-like object); defaults are the OS.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

import numpy as np

from ..exceptions import LocalProtocolError

__all__ = ["sample_exact", "discrete_gaussian", "dgauss_pmf", "dgauss_variance"]


class _IntSource(Protocol):
    def randrange(self, stop: int) -> int: ...


def _bernoulli(p: Fraction, rng: _IntSource) -> bool:
    return rng.randrange(p.denominator) < p.numerator


def _bernoulli_exp(gamma: Fraction, rng: _IntSource) -> bool:
    """Bernoulli(exp(-gamma)) for rational gamma >= 0 (CKS Algorithm 1)."""
    while gamma > 1:  # exp(-gamma) = exp(-1)^floor(gamma) * exp(-(gamma - floor(gamma)))
        if not _bernoulli_exp(Fraction(1), rng):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(gamma / k, rng):
        k += 1
    return k % 2 == 1


def _discrete_laplace(t: int, rng: _IntSource) -> int:
    """P[Y = y] ∝ exp(-|y| / t) for an integer t >= 1 (CKS Algorithm 2 with s = 1)."""
    while True:
        u = rng.randrange(t)
        if not _bernoulli_exp(Fraction(u, t), rng):
            continue
        v = 0
        while _bernoulli_exp(Fraction(1), rng):
            v += 1
        x = u + t * v
        negative = _bernoulli(Fraction(1, 2), rng)
        if negative and x == 0:
            continue
        return -x if negative else x


def sample_exact(*, sigma2: Fraction | int, rng: _IntSource | None = None) -> int:
    """One exact draw of N_Z(0, sigma2) for a rational variance parameter sigma2 > 0 (CKS Algorithm 3)."""
    sigma2 = Fraction(sigma2)
    if sigma2 <= 0:
        raise LocalProtocolError(f"discrete Gaussian needs sigma^2 > 0, got {sigma2}")
    rng = rng or secrets.SystemRandom()
    t = math.isqrt(math.floor(sigma2)) + 1  # floor(sigma) + 1, exactly
    while True:
        y = _discrete_laplace(t, rng)
        gamma = (abs(y) - sigma2 / t) ** 2 / (2 * sigma2)
        if _bernoulli_exp(gamma, rng):
            return y


def _uniform(n: int, entropy: Callable[[int], bytes]) -> np.ndarray:
    """n floats in (0, 1], 53 random bits each."""
    bits = np.frombuffer(entropy(8 * n), dtype=np.uint64) >> np.uint64(11)
    return (bits.astype(np.float64) + 1.0) * 2.0 ** -53


def discrete_gaussian(size: int, *, sigma: float, entropy: Callable[[int], bytes] = os.urandom) -> np.ndarray:
    """``size`` independent draws of N_Z(0, sigma^2) as int64, from OS entropy (see module doc)."""
    if not sigma > 0 or not math.isfinite(sigma):
        raise LocalProtocolError(f"discrete Gaussian needs a finite sigma > 0, got {sigma}")
    if sigma > 2.0 ** 40:
        raise LocalProtocolError(f"sigma {sigma:g} is beyond the float sampler's exact-integer range")
    t = math.floor(sigma) + 1
    s2 = sigma * sigma
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        m = todo.size
        u = _uniform(3 * m, entropy)
        # discrete Laplace of scale t: difference of two geometrics with P[G >= k] = exp(-k / t)
        y = np.floor(-t * np.log(u[:m])) - np.floor(-t * np.log(u[m:2 * m]))
        keep = u[2 * m:] <= np.exp(-((np.abs(y) - s2 / t) ** 2) / (2 * s2))
        out[todo[keep]] = y[keep].astype(np.int64)
        todo = todo[~keep]
    return out


def _support(sigma: float) -> np.ndarray:
    k = int(math.ceil(12 * sigma)) + 2
    return np.arange(-k, k + 1)


def dgauss_pmf(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, P[X = x]) of N_Z(0, sigma^2) on |x| <= 12 sigma + 2 (the mass left out is below 1e-30)."""
    x = _support(sigma)
    w = np.exp(-(x.astype(np.float64) ** 2) / (2 * sigma * sigma))
    return x, w / w.sum()


def dgauss_variance(sigma: float) -> float:
    """Var N_Z(0, sigma^2): at most sigma^2, and within 1e-6 relative of it from sigma = 1 on (CKS)."""
    x, p = dgauss_pmf(sigma)
    return float((p * x.astype(np.float64) ** 2).sum())
