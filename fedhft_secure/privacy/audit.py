"""One-run privacy audit (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1) Training Run").

m canaries, each included in training independently with probability 1/2.
After training, the auditor guesses "in" for the ``k_pos`` highest membership
scores and "out" for the ``k_neg`` lowest, abstaining on the rest. Under
(epsilon, delta)-DP the number of correct guesses is (up to a delta term)
dominated by Binomial(r, e^eps / (1 + e^eps)); the lower bound is the largest
epsilon this rejects at the given confidence (their Theorem 5.2 and the
p-value computation of their appendix).

``epsilon_from_scores`` is the classic two-sample bound instead (one score per
example known to be in or out, e.g. a membership attack on many examples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binom

__all__ = ["AuditResult", "count_guesses", "p_value", "epsilon_lower_bound", "epsilon_from_scores", "epsilon_cap"]


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


def _bounds(tp: np.ndarray, n_in: int, fp: np.ndarray, n_out: int, delta: float,
            confidence: float) -> np.ndarray:
    """log((TPR_low - delta) / FPR_high) with one-sided Clopper-Pearson bounds; 0 where nothing shows."""
    tp, fp = np.asarray(tp, dtype=float), np.asarray(fp, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(tp > 0, beta.ppf(1.0 - confidence, tp, n_in - tp + 1), 0.0) - delta
        hi = np.where(fp < n_out, beta.ppf(confidence, fp + 1, n_out - fp), 1.0)
        out = np.where((lo > 0) & (hi > 0), np.log(np.maximum(lo, 1e-300) / hi), 0.0)
    return np.maximum(out, 0.0)


def _counts(inside: np.ndarray, outside: np.ndarray, t: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) at thresholds ``t``; d = +1: score > t is 'in', -1: score <= t."""
    a, b = np.sort(inside), np.sort(outside)
    above_a = len(a) - np.searchsorted(a, t, side="right")
    above_b = len(b) - np.searchsorted(b, t, side="right")
    return (above_a, above_b) if d == 1 else (len(b) - above_b, len(a) - above_a)


def _best_threshold(inside: np.ndarray, outside: np.ndarray, delta: float,
                    confidence: float) -> tuple[float, int]:
    """(threshold, direction) maximizing the bound on this sample; the middle of a plateau of best ones."""
    u = np.unique(np.r_[inside, outside])
    if len(u) < 2:
        return math.inf, 1
    mids = (u[:-1] + u[1:]) / 2
    best: tuple[float, float, int] = (0.0, math.inf, 1)
    for d in (1, -1):
        tp, fp = _counts(inside, outside, mids, d)
        n_a, n_b = (len(inside), len(outside)) if d == 1 else (len(outside), len(inside))
        b = _bounds(tp, n_a, fp, n_b, delta, confidence)
        if b.max() > best[0]:
            top = mids[b >= b.max() - 1e-12]
            best = (float(b.max()), float(top[len(top) // 2]), d)
    return best[1], best[2]


def epsilon_from_scores(inside: np.ndarray, outside: np.ndarray, *, delta: float,
                        confidence: float = 0.95) -> float:
    """Empirical epsilon lower bound of a two-sample membership test (Jagielski et al. 2020).

    Under (eps, delta)-DP every test has TPR <= e^eps FPR + delta (and the same
    with the roles of the two samples swapped). The threshold and direction are
    chosen on the first half of each sample and the bound is computed on the
    second half with one-sided Clopper-Pearson intervals, so choosing the best
    threshold does not inflate it. 0 when no threshold shows anything.
    """
    inside, outside = np.asarray(inside, dtype=float), np.asarray(outside, dtype=float)
    t, d = _best_threshold(inside[0::2], outside[0::2], delta, confidence)
    if not math.isfinite(t):
        return 0.0
    a, b = inside[1::2], outside[1::2]
    tp, fp = _counts(a, b, np.array([t]), d)
    n_a, n_b = (len(a), len(b)) if d == 1 else (len(b), len(a))
    return float(_bounds(tp, n_a, fp, n_b, delta, confidence)[0])


def epsilon_cap(n_in: int, n_out: int, *, delta: float, confidence: float = 0.95) -> float:
    """The largest bound ``epsilon_from_scores`` can give with these sample sizes (perfect separation)."""
    a, b = n_in // 2, n_out // 2  # the evaluated halves
    return float(max(_bounds(np.array([a]), a, np.array([0]), b, delta, confidence)[0],
                     _bounds(np.array([b]), b, np.array([0]), a, delta, confidence)[0]))
