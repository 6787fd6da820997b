"""CKKS parameters derived from what the sum needs, inside the 128-bit security table.

The computation is fixed: each client encrypts values it has already
multiplied by its public weight p_ij (so the server only *adds* at most
``max_clients`` ciphertexts), optionally times a public integer weight
k < 2^weight_bits that the server applies by additions. No ciphertext is
ever multiplied by another or rescaled, so one data prime q0 suffices; the
chain is ``[q0, special]`` (SEAL refuses a single prime; the special prime is
never used, as nothing is key-switched, and takes what the table leaves) and a ciphertext
travels at q0 only.

Size: N coefficients of one polynomial carry N/2 values. An upload is a
*seeded* symmetric ciphertext -- c0 plus the seed of c1 -- so 2 coefficients
per value; a sum (server -> members) is a full ciphertext, 4 coefficients.
SEAL stores a coefficient in a 64-bit word that zstd shrinks to about
min(8, log2(q0)/8 + 1) bytes (measured, ``COEFF_BYTES``). With q0 <= 60 bits an
upload is therefore at most about 16 bytes per value, 4x fp32: the prime size
limit, not the byte budget, bounds the precision.

Noise model (measured with SEAL symmetric encryption, seeded or not, TenSEAL 0.3.18; see
``protocols/ckks.md``): a fresh ciphertext decrypts with slot error of
standard deviation ``FRESH_SIGMA * sqrt(N) / scale`` (measured 2.31-2.32 by
``experiments/ckks_noise.py``); a sum of n has sqrt(n) times that. ``TAIL``
standard deviations bound it.

Flooding (IND-CPA^D, Li-Micciancio 2021): every decrypted slot gets uniform
noise in [-F, F] with F = 2^flood_bits * E, E the decryption-error bound, so
the released value is within 2^-flood_bits statistical distance of one that
does not depend on the decryption noise (the smudging lemma). The precision
asked for covers both: E + F <= precision.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from ...exceptions import ConfigError

__all__ = ["SECURITY_TABLE_128", "FRESH_SIGMA", "TAIL", "CkksParams", "CkksParameterError", "coeff_bytes",
           "derive_params", "check_params", "tightest_precision", "DEFAULT_MAX_CLIENTS", "DEFAULT_VALUE_BOUND",
           "DEFAULT_PRECISION", "DEFAULT_FLOOD_BITS"]

#: HomomorphicEncryption.org standard (2018), classic 128-bit security,
#: ternary secret: largest log2(q) (all primes incl. the special one) per N.
SECURITY_TABLE_128: dict[int, int] = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438,
                                      32768: 881}
#: slot-error std of a fresh ciphertext, times scale / sqrt(N): above the measured 2.32 (tests/test_ckks_noise.py)
FRESH_SIGMA = 2.5
TAIL = 8.0  # standard deviations that bound the error (Gaussian tail < 1e-15 per slot)
MAX_PRIME_BITS = 60  # SEAL's limit for one prime
MIN_PRIME_BITS = 20

def coeff_bytes(bits: int) -> float:
    """Serialized bytes of one coefficient modulo a ``bits``-bit prime (zstd on 64-bit words).

    Measured with TenSEAL 0.3.18 / SEAL 4.x at N = 4096 (``experiments/ckks_noise.py``): 20 bits 3.3,
    40 bits 6.0, 49 bits 7.1, 55 bits 7.6, 60 bits 8.05 (raw words: zstd stores them as they are).
    """
    return min(8.0, bits / 8 + 1.0)


DEFAULT_MAX_CLIENTS = 64
DEFAULT_VALUE_BOUND = 4.0
DEFAULT_PRECISION = 1e-4
DEFAULT_FLOOD_BITS = 20


class CkksParameterError(ConfigError):
    """Parameters outside the 128-bit table, or a precision they cannot reach."""

    def __init__(self, problem: str, allowed: str | None = None) -> None:
        super().__init__("secure.ckks", problem, allowed)


@dataclass(frozen=True, slots=True, kw_only=True)
class CkksParams:
    """One parameter set; ``fingerprint`` names it on the wire."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]  # (q0, special)
    scale_bits: int
    max_clients: int
    value_bound: float  # |p_ij * x| of one client's value, checked before encryption
    weight_bits: int  # server-side integer weights k < 2^weight_bits (0: plain sum)
    precision: float  # max |error| of a released (decrypted, flooded) sum value
    flood_bits: int

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def log_q(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def security_bits(self) -> int:
        """128 if the set lies inside the table (the only level this package accepts)."""
        return 128 if self.log_q <= SECURITY_TABLE_128.get(self.poly_modulus_degree, -1) else 0

    @property
    def upload_bytes_per_value(self) -> float:
        """Model: a seeded upload (c0 and a seed), 2 coefficients per value."""
        return 2 * coeff_bytes(self.coeff_mod_bit_sizes[0])

    @property
    def sum_bytes_per_value(self) -> float:
        """Model: a full sum ciphertext (c0, c1), 4 coefficients per value."""
        return 4 * coeff_bytes(self.coeff_mod_bit_sizes[0])

    @property
    def error_bound(self) -> float:
        """Bound E on the decryption error of a sum of max_clients (weighted) ciphertexts."""
        # integer weights k <= 2^w are divided out again: sqrt(sum k^2) / 2^w <= sqrt(n)
        return TAIL * FRESH_SIGMA * math.sqrt(self.poly_modulus_degree * self.max_clients) / self.scale

    @property
    def flood_bound(self) -> float:
        """F: released values get uniform noise in [-F, F]."""
        return self.error_bound * 2.0**self.flood_bits

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> CkksParams:
        try:
            p = cls(**{**d, "coeff_mod_bit_sizes": tuple(d["coeff_mod_bit_sizes"])})  # type: ignore[arg-type]
        except (TypeError, KeyError) as exc:
            raise CkksParameterError(f"not a parameter set: {exc}") from None
        check_params(p)
        return p

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).digest()[:8]


def _q0_bits(scale_bits: int, max_clients: int, value_bound: float, weight_bits: int) -> int:
    # |coefficient| <= scale * (n * 2^w * bound) plus noise; keep it below q0 / 4.
    return scale_bits + math.ceil(math.log2(max_clients * 2**weight_bits * value_bound)) + 2


def derive_params(*, max_clients: int = DEFAULT_MAX_CLIENTS, value_bound: float = DEFAULT_VALUE_BOUND,
                  precision: float = DEFAULT_PRECISION, flood_bits: int = DEFAULT_FLOOD_BITS,
                  weight_bits: int = 0) -> CkksParams:
    """The smallest ciphertext (smallest q0, then the smallest N) that meets ``precision`` for these sums."""
    if max_clients < 1 or not value_bound > 0 or not precision > 0 or flood_bits < 0 or weight_bits < 0:
        raise CkksParameterError(
            f"max_clients={max_clients}, value_bound={value_bound}, precision={precision}, "
            f"flood_bits={flood_bits}, weight_bits={weight_bits}",
            "max_clients >= 1, value_bound > 0, precision > 0, flood_bits >= 0, weight_bits >= 0")
    tried = []
    for n_poly in sorted(SECURITY_TABLE_128):
        noise = TAIL * FRESH_SIGMA * math.sqrt(n_poly * max_clients)  # E * scale (weights cancel)
        scale_bits = math.ceil(math.log2(noise * (1 + 2.0**flood_bits) / precision))
        q0 = max(_q0_bits(scale_bits, max_clients, value_bound, weight_bits), MIN_PRIME_BITS)
        tried.append(f"N={n_poly}: q0 {q0} bits")
        if q0 > MAX_PRIME_BITS:
            continue
        # The special prime only exists because SEAL wants one (nothing is key-switched):
        # as large as q0 when the table allows, else what is left of it.
        special = min(q0, SECURITY_TABLE_128[n_poly] - q0)
        if special >= MIN_PRIME_BITS:
            p = CkksParams(poly_modulus_degree=n_poly, coeff_mod_bit_sizes=(q0, special),
                           scale_bits=scale_bits, max_clients=max_clients, value_bound=value_bound,
                           weight_bits=weight_bits, precision=precision, flood_bits=flood_bits)
            check_params(p)
            return p
    raise CkksParameterError(
        f"precision {precision} for {max_clients} clients, |value| <= {value_bound}, "
        f"flood_bits {flood_bits} needs a data prime above {MAX_PRIME_BITS} bits ({'; '.join(tried)})",
        "a coarser precision, fewer clients, a smaller value bound or fewer flood bits")


def tightest_precision(*, max_clients: int = DEFAULT_MAX_CLIENTS, value_bound: float = DEFAULT_VALUE_BOUND,
                       flood_bits: int = DEFAULT_FLOOD_BITS, weight_bits: int = 0) -> float:
    """The finest precision one data prime (q0 <= 60 bits) gives these sums; ``derive_params`` accepts it.

    Why a function and not a constant: q0 must also hold the sum of ``max_clients``
    values, and E grows with sqrt(n), so the finest precision coarsens with the
    cohort (8 clients: 4.2e-7; 16: 1.2e-6; 50: 8.4e-6 at 20 flood bits).
    """
    if max_clients < 1 or not value_bound > 0 or flood_bits < 0 or weight_bits < 0:
        raise CkksParameterError(f"max_clients={max_clients}, value_bound={value_bound}, flood_bits={flood_bits}",
                                 "max_clients >= 1, value_bound > 0, flood_bits >= 0, weight_bits >= 0")
    best = math.inf
    for n_poly, limit in SECURITY_TABLE_128.items():
        q0 = min(MAX_PRIME_BITS, limit - MIN_PRIME_BITS)  # leave the special prime its minimum
        scale_bits = q0 - math.ceil(math.log2(max_clients * 2**weight_bits * value_bound)) - 2
        noise = TAIL * FRESH_SIGMA * math.sqrt(n_poly * max_clients)
        best = min(best, noise * (1 + 2.0**flood_bits) / 2.0**scale_bits)
    return best * (1 + 1e-9)  # so that derive_params' ceil(log2(...)) lands on that scale


def check_params(p: CkksParams) -> None:
    """Refuse any set outside the 128-bit table or unable to hold its own sums."""
    limit = SECURITY_TABLE_128.get(p.poly_modulus_degree)
    if limit is None:
        raise CkksParameterError(f"poly_modulus_degree {p.poly_modulus_degree} is not in the table",
                                 ", ".join(map(str, SECURITY_TABLE_128)))
    if len(p.coeff_mod_bit_sizes) != 2:
        raise CkksParameterError(f"chain {list(p.coeff_mod_bit_sizes)}: this backend uses [q0, special]")
    if any(not MIN_PRIME_BITS <= b <= MAX_PRIME_BITS for b in p.coeff_mod_bit_sizes):
        raise CkksParameterError(f"prime sizes {list(p.coeff_mod_bit_sizes)} outside "
                                 f"{MIN_PRIME_BITS}..{MAX_PRIME_BITS} bits")
    if p.log_q > limit:
        raise CkksParameterError(
            f"N={p.poly_modulus_degree} with log2(q)={p.log_q} is below 128-bit security",
            f"log2(q) <= {limit} for N={p.poly_modulus_degree}")
    if p.coeff_mod_bit_sizes[0] < _q0_bits(p.scale_bits, p.max_clients, p.value_bound, p.weight_bits):
        raise CkksParameterError(
            f"q0 of {p.coeff_mod_bit_sizes[0]} bits cannot hold sums of {p.max_clients} values "
            f"<= {p.value_bound} at scale 2^{p.scale_bits}")
    if p.error_bound * (1 + 2.0**p.flood_bits) > p.precision * (1 + 1e-12):
        raise CkksParameterError(f"scale 2^{p.scale_bits} does not reach precision {p.precision}")
