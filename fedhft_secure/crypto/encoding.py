"""Fixed-point encoding into Z_{2^b} (16 <= b <= 64) with a public clip bound and stochastic rounding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import LocalProtocolError
from .packing import word_dtype

__all__ = ["FixedPoint", "MODULUS_BITS", "centred"]

#: moduli 2^b the masked sums may use. Above 64 no machine word holds a residue; below 16 the
#: scale left for even a few clients within a useful clip is a handful of levels. (config.py repeats
#: the range: it sits below this layer.)
MODULUS_BITS = range(16, 65)


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
        if self.bits not in MODULUS_BITS:
            raise LocalProtocolError(f"secure.modulus_bits must be in {MODULUS_BITS.start}..{MODULUS_BITS.stop - 1}, "
                                     f"got {self.bits}")
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
        """The word residues live in: uint32 up to 32 bits, else uint64. Word arithmetic wraps mod
        2^32 or 2^64, multiples of 2^bits, so ``reduce`` after it gives the residue mod 2^bits."""
        return word_dtype(self.bits)

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """Residues mod 2^bits in ``dtype`` (the low ``bits`` bits of a word-wrapped value)."""
        y = np.asarray(x).astype(self.dtype, copy=False)
        return y if self.bits in (32, 64) else y & self.dtype((1 << self.bits) - 1)

    @property
    def resolution(self) -> float:
        """Worst-case error of one decoded sum coordinate: n quantization steps."""
        return self.n / self.scale

    def encode(self, x: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """``uniform``: values in [0, 1) for stochastic rounding (secret randomness on clients)."""
        v = np.clip(np.asarray(x, dtype=np.float64), -self.clip, self.clip) * self.scale
        q = np.floor(v + uniform.reshape(v.shape)).astype(np.int64)
        return self.reduce(q.astype(self.dtype))  # two's complement wrap, then mod 2^bits

    def decode_sum(self, total: np.ndarray) -> np.ndarray:
        return centred(total, self.bits).astype(np.float64) / self.scale


def centred(values: np.ndarray, bits: int) -> np.ndarray:
    """Residues mod 2^bits as signed int64 in [-2^(bits-1), 2^(bits-1)): the centred sum is the exact
    integer sum whenever its absolute value stays below 2^(bits-1) (which FixedPoint's scale ensures)."""
    shift = 64 - bits  # move bit bits-1 to the sign bit, then shift back arithmetically
    return (np.asarray(values).astype(np.uint64) << np.uint64(shift)).view(np.int64) >> shift
