"""One-run privacy audit (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1) Training Run").

m canaries, each included in training independently with probability 1/2.
After training, the auditor guesses "in" for the ``k_pos`` highest membership
scores and "out" for the ``k_neg`` lowest, abstaining on the rest. Under
(epsilon, delta)-DP the number of correct guesses is (up to a delta term)
dominated by Binomial(r, e^eps / (1 + e^eps)); the lower bound is the largest
epsilon this rejects at the given confidence (their Theorem 5.2 and the
p-value computation of their appendix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

__all__ = ["AuditResult", "count_guesses", "p_value", "epsilon_lower_bound"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditResult:
    canaries: int
    guesses: int
    correct: int
    confidence: float
    epsilon_lower_bound: float


def count_guesses(scores: np.ndarray, included: np.ndarray, *, k_pos: int, k_neg: int) -> tuple[int, int]:
    """(guesses r, correct v): top ``k_pos`` scores guessed in, bottom ``k_neg`` guessed out."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    inc = np.asarray(included, dtype=bool)
    top, bottom = order[:k_pos], order[len(order) - k_neg:] if k_neg else order[:0]
    return k_pos + k_neg, int(inc[top].sum() + (~inc[bottom]).sum())


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P-value of ``v`` correct out of ``r`` guesses among ``m`` canaries under (eps, delta)-DP."""
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    alpha, acc = 0.0, 0.0
    for i in range(1, v + 1):
        acc += float(binom.pmf(v - i, r, q))
        alpha = max(alpha, acc / i)
    return min(1.0, beta + alpha * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, *, delta: float, confidence: float = 0.95) -> float:
    """Largest epsilon rejected at ``confidence`` (0 when even epsilon = 0 is not rejected)."""
    p = 1.0 - confidence
    if p_value(m, r, v, 0.0, delta) >= p:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < p:
        lo, hi = hi, hi * 2
        if hi > 1e3:
            return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) < p:
            lo = mid
        else:
            hi = mid
    return lo
