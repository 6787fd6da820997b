"""Accountants: a client's privacy events -> epsilon. A small interface and a name registry.

Both wrap Opacus's accountants (``RDPAccountant``, ``PRVAccountant``) by
feeding them the events' Gaussian compositions as history; nothing here
keeps state between calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from ..exceptions import ConfigError, LocalProtocolError
from .events import PrivacyEvent

__all__ = ["Accountant", "ACCOUNTANTS", "accountant_for", "calibrate_noise"]


class Accountant(Protocol):
    name: str

    def epsilon(self, events: Sequence[PrivacyEvent], *, delta: float) -> float:
        """Epsilon at ``delta`` of all ``events`` composed (0 for none; inf without noise)."""
        ...


class _Opacus:
    def __init__(self, name: str) -> None:
        self.name = name

    def epsilon(self, events: Sequence[PrivacyEvent], *, delta: float) -> float:
        unsound = sorted({e.mechanism for e in events if self.name not in getattr(e, "accountants", (self.name,))})
        if unsound:
            raise LocalProtocolError(f"the {self.name} accountant is not sound for {', '.join(unsound)}")
        history = [c for e in events for c in e.compositions() if c[2] > 0 and c[1] > 0]
        if not history:
            return 0.0
        if any(sigma <= 0 for sigma, _, _ in history):
            return math.inf
        # Opacus keeps (noise_multiplier, sample_rate, steps) triples; merge equal ones.
        merged: dict[tuple[float, float], int] = {}
        for sigma, q, steps in history:
            merged[(sigma, q)] = merged.get((sigma, q), 0) + steps
        return _opacus_epsilon(self.name, tuple((sigma, q, steps) for (sigma, q), steps in merged.items()), delta)


@lru_cache(maxsize=4096)
def _opacus_epsilon(name: str, history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    """Memoized: a pure function of its arguments, asked again and again for clients with the same schedule
    (every client's ledger, the budget check of every round, the epsilon report)."""
    acc = _CLASSES[name]()
    acc.history = list(history)
    with np.errstate(divide="ignore", invalid="ignore"):  # PRV's log(0) at its domain edge
        return float(acc.get_epsilon(delta=delta))


_CLASSES: dict[str, type] = {"rdp": RDPAccountant, "prv": PRVAccountant}

ACCOUNTANTS: dict[str, Accountant] = {name: _Opacus(name) for name in _CLASSES}


def accountant_for(name: str) -> Accountant:
    try:
        return ACCOUNTANTS[name]
    except KeyError:
        raise ConfigError("privacy.accountant", f"{name!r} is not an accountant",
                          ", ".join(ACCOUNTANTS)) from None


def calibrate_noise(*, target_epsilon: float, delta: float, sample_rate: float, steps: int,
                    accountant: str) -> float:
    """The smallest noise multiplier whose ``steps`` steps at ``sample_rate`` spend at most the target."""
    accountant_for(accountant)
    return _calibrated(target_epsilon, delta, sample_rate, steps, accountant)


@lru_cache(maxsize=1024)
def _calibrated(target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """Memoized (pure; seconds per call): clients with the same schedule share one calibration."""
    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                      sample_rate=sample_rate, steps=steps, accountant=accountant,
                                      epsilon_tolerance=0.01))
