"""Fixed-point encoding into Z_{2^b} with a public clip bound and stochastic rounding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import LocalProtocolError

__all__ = ["FixedPoint"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedPoint:
    """Values in [-clip, clip] -> integers mod 2^bits such that a sum of ``n`` never wraps.

    scale = floor((2^(bits-1) - 1) / (n (clip + 1))) levels per unit: n encoded
    values add to at most n (scale·clip + 1) < 2^(bits-1) in absolute value,
    so the centred residue of the sum is the exact integer sum.
    """

    n: int
    clip: float
    bits: int = 32

    def __post_init__(self) -> None:
        if self.bits not in (32, 64):
            raise LocalProtocolError("secure.modulus_bits must be 32 or 64")
        if self.n < 1 or self.clip <= 0:
            raise LocalProtocolError("fixed point needs n >= 1 and clip > 0")
        if self.scale < 1:
            raise LocalProtocolError(
                f"{self.n} clients x range ±{self.clip} overflow 2^{self.bits}: raise secure.modulus_bits, "
                f"lower secure.clip, or use fewer clients per sum")

    @property
    def scale(self) -> float:
        return float(((1 << (self.bits - 1)) - 1) // (self.n * (self.clip + 1.0)))

    @property
    def dtype(self) -> type:
        return np.uint32 if self.bits == 32 else np.uint64

    @property
    def resolution(self) -> float:
        """Worst-case error of one decoded sum coordinate: n quantization steps."""
        return self.n / self.scale

    def encode(self, x: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """``uniform``: values in [0, 1) for stochastic rounding (secret randomness on clients)."""
        v = np.clip(np.asarray(x, dtype=np.float64), -self.clip, self.clip) * self.scale
        q = np.floor(v + uniform.reshape(v.shape)).astype(np.int64)
        return q.astype(self.dtype)  # two's complement wrap = residue mod 2^bits

    def decode_sum(self, total: np.ndarray) -> np.ndarray:
        signed = total.astype(np.int64) if self.bits == 64 else total.astype(np.uint32).view(np.int32)
        return signed.astype(np.float64) / self.scale
