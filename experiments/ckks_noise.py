"""The two measured constants CKKS parameter derivation rests on, measured again in this run.

``fedhft_secure/secure/ckks/params.py`` sizes the scale from a noise model and
the bytes from a size model; both were measured once with TenSEAL 0.3.18 and
written down (``protocols/ckks.md``). This script measures them anew, through
the backend's own encryption path (seeded symmetric ciphertexts, server-side
sums), so a TenSEAL/SEAL upgrade that breaks either assumption shows here:

- sigma: the slot-error standard deviation of a sum of n fresh ciphertexts,
  times scale / sqrt(N n). The model takes ``FRESH_SIGMA`` (2.5) and bounds a
  sum's error by E = TAIL * FRESH_SIGMA * sqrt(N n) / scale; ``max/E`` is the
  largest error seen as a fraction of that bound (it must stay below 1, or the
  flooding and precision guarantees do not hold).
- bytes per coefficient of a seeded upload after SEAL's zstd, by data-prime
  size, beside ``coeff_bytes`` (min(8, bits / 8 + 1)).

    python experiments/ckks_noise.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedhft_secure.secure.ckks import CkksClient, CkksServer, generate_keys  # noqa: E402
from fedhft_secure.secure.ckks.params import (FRESH_SIGMA, MIN_PRIME_BITS, SECURITY_TABLE_128,  # noqa: E402
                                              CkksParams, check_params, coeff_bytes)
from fedhft_secure.secure.ckks.wire import decode_envelope  # noqa: E402

#: (N, q0 bits, scale bits) for the noise rows: a data prime and scale of the sizes derive_params picks
NOISE_SETS = [(2048, 34, 26), (4096, 49, 40), (8192, 60, 50)]
SIZE_BITS = (20, 40, 49, 55, 60)  # data-prime sizes of the size rows (N = 4096, as ckks.md's figures)


def params(n_poly: int, q0: int, scale_bits: int, summands: int) -> CkksParams:
    """A set of these sizes (the special prime as derive_params picks it); nothing is flooded here, so the
    precision only has to admit the set."""
    special = max(MIN_PRIME_BITS, min(q0, SECURITY_TABLE_128[n_poly] - q0))
    p = CkksParams(poly_modulus_degree=n_poly, coeff_mod_bit_sizes=(q0, special), scale_bits=scale_bits,
                   max_clients=summands, value_bound=1.0, weight_bits=0, precision=1.0, flood_bits=0)
    check_params(p)
    return p


def noise_row(n_poly: int, q0: int, scale_bits: int, summands: int, chunks: int, rng: np.random.Generator) -> dict:
    p = params(n_poly, q0, scale_bits, summands)
    secret = generate_keys(p)
    client, server = CkksClient(secret), CkksServer(secret.public())
    shape = {"x": (chunks, p.slots)}
    layout = client.layout(shape)
    xs = [torch.from_numpy(rng.uniform(-1, 1, size=shape["x"])) for _ in range(summands)]
    blobs = {i: client.encrypt({"x": x}, layout=layout) for i, x in enumerate(xs)}
    raw = client.open_values(server.weighted_sum(blobs, layout=layout), layout=layout, flood=False)
    err = raw - torch.stack(xs).sum(0).numpy().ravel()  # float64 throughout: encrypt packs float64 exactly
    return {"N": n_poly, "q0_bits": q0, "scale_bits": scale_bits, "summands": summands, "samples": err.size,
            "sigma": float(err.std() * p.scale / math.sqrt(n_poly * summands)), "model_sigma": FRESH_SIGMA,
            "max_over_bound": float(np.abs(err).max() / p.error_bound)}


def size_row(q0: int, rng: np.random.Generator, chunks: int) -> dict:
    n_poly = 4096
    p = params(n_poly, q0, q0 - 2, 1)
    secret = generate_keys(p)
    client = CkksClient(secret)
    layout = client.layout({"x": (chunks, p.slots)})
    blob = client.encrypt({"x": torch.from_numpy(rng.uniform(-1, 1, size=(chunks, p.slots)))}, layout=layout)
    env = decode_envelope(blob, fingerprint=p.fingerprint, key_id=secret.key_id, layout=layout.digest,
                          chunks=chunks, max_chunk_bytes=len(blob))
    per_coeff = [len(c) / n_poly for c in env.chunks]  # a seeded ciphertext: c0 (N coefficients) + a seed
    return {"N": n_poly, "q0_bits": q0, "bytes_per_coeff": float(np.mean(per_coeff)),
            "model_bytes_per_coeff": coeff_bytes(q0), "bytes_per_fp32": float(np.mean(per_coeff)) * 2 / 4}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples, N up to 4096")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)  # the values only; keys and encryption randomness come from the OS
    chunks = 2 if a.quick else 16
    sets = NOISE_SETS[:2] if a.quick else NOISE_SETS
    noise = [noise_row(n, q0, s, k, chunks, rng) for n, q0, s in sets for k in (1, 8)]
    sizes = [size_row(b, rng, chunks) for b in SIZE_BITS]
    print(f"{'N':>5} {'q0':>3} {'scale':>5} {'n':>2} {'samples':>8} {'sigma':>6} {'model':>5} {'max/E':>6}")
    for r in noise:
        print(f"{r['N']:>5} {r['q0_bits']:>3} {r['scale_bits']:>5} {r['summands']:>2} {r['samples']:>8} "
              f"{r['sigma']:>6.3f} {r['model_sigma']:>5.2f} {r['max_over_bound']:>6.3f}")
    print(f"\n{'N':>5} {'q0':>3} {'B/coeff':>7} {'model':>5} {'x fp32':>6}")
    for r in sizes:
        print(f"{r['N']:>5} {r['q0_bits']:>3} {r['bytes_per_coeff']:>7.2f} {r['model_bytes_per_coeff']:>5.2f} "
              f"{r['bytes_per_fp32']:>6.2f}")
    out = {"command": "python experiments/ckks_noise.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "noise": noise, "sizes": sizes}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
