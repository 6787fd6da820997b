"""Regenerates the CKKS known-answer vectors (run from the repo root; deterministic).

Nothing here calls fedhft_secure: layouts are laid out by hand from the rule
in protocols/ckks.md, fingerprints and flooding noise are computed with
hashlib/hmac from the same spec, the message envelope is packed with struct
from its layout in the spec, and the encode -> decode values come straight
from SEAL's CKKSEncoder (tenseal.sealapi, TenSEAL 0.3.18). CKKS encoding
involves no randomness, so the decoded doubles are a known answer; the
encryption of those plaintexts (seeded symmetric) is random and has none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import struct
from pathlib import Path

import numpy as np
import tenseal as ts
from tenseal import sealapi

HERE = Path(__file__).resolve().parent


def fingerprint(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).digest()[:8].hex()


def layout_vector() -> dict:
    shapes = {"s/layer.1/L": [384, 8], "counts/layer.1": [384], "head/classifier.bias": [2],
              "head/classifier.weight": [2, 384], "s/layer.0/L": [384, 8]}
    slots, offset, entries = 2048, 0, []
    for name in sorted(shapes, key=str.encode):
        entries.append({"name": name, "shape": shapes[name], "offset": offset})
        offset += int(np.prod(shapes[name]))
    layout = {"slots": slots, "entries": entries}
    chunks = [min(slots, offset - i * slots) for i in range(-(-offset // slots))]
    return {"shapes": shapes, "layout": layout, "total": offset, "chunk_sizes": chunks,
            "digest": fingerprint(layout)}


def params_vector() -> dict:
    request = {"max_clients": 50, "value_bound": 4.0, "precision": 1e-4, "flood_bits": 20, "weight_bits": 0}
    # derived by hand from protocols/ckks.md: N=4096 first fits the table
    params = {"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": [57, 52], "scale_bits": 47,
              "max_clients": 50, "value_bound": 4.0, "weight_bits": 0, "precision": 1e-4, "flood_bits": 20}
    return {"request": request, "params": params, "fingerprint": fingerprint(params)}


def params_run_vector() -> dict:
    # The run's default precision (secure.ckks_precision = 0): the finest one 60-bit q0 allows for
    # 8 clients. By hand: q0 = 60 leaves 60 - ceil(log2(8 * 4)) - 2 = 53 bits of scale; N = 4096 is the
    # smallest N with room for a 20-bit special prime next to it (N = 2048: 54 bits in all), and
    # the larger N only add noise. E + F = 8 * 2.5 * sqrt(4096 * 8) * (1 + 2^20) / 2^53, times
    # (1 + 1e-9) so that ceil(log2(.)) lands on 53; special = min(60, 109 - 60) = 49.
    precision = 8 * 2.5 * math.sqrt(4096 * 8) * (1 + 2**20) / 2**53 * (1 + 1e-9)
    request = {"max_clients": 8, "value_bound": 4.0, "precision": precision, "flood_bits": 20, "weight_bits": 0}
    params = {"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": [60, 49], "scale_bits": 53,
              "max_clients": 8, "value_bound": 4.0, "weight_bits": 0, "precision": precision, "flood_bits": 20}
    return {"request": request, "params": params, "fingerprint": fingerprint(params)}


def envelope_vector() -> dict:
    """A kind-1 (upload) message of version 2 with two opaque chunks, packed from the spec's layout."""
    fp, key_id, layout = bytes.fromhex("0123456789abcdef"), bytes(range(8)), bytes.fromhex("fedcba9876543210")
    chunks = [b"first SEAL ciphertext", b"second"]
    blob = struct.pack("<4sBB8s8s8sII", b"FHCK", 2, 1, fp, key_id, layout, 1, len(chunks))
    for c in chunks:
        blob += struct.pack("<I", len(c)) + c
    return {"kind": 1, "version": 2, "fingerprint_hex": fp.hex(), "key_id_hex": key_id.hex(),
            "layout_hex": layout.hex(), "summands": 1, "chunks_hex": [c.hex() for c in chunks],
            "message_hex": blob.hex()}


def encode_vector(n_poly: int, bits: list[int], scale_bits: int, seed: int) -> dict:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, n_poly, coeff_mod_bit_sizes=bits,
                     encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC)
    sc = ctx.seal_context().data
    enc = sealapi.CKKSEncoder(sc)
    values = np.random.default_rng(seed).uniform(-4, 4, n_poly // 2).round(6)
    pt = sealapi.Plaintext()
    enc.encode(values.tolist(), float(2**scale_bits), pt)
    decoded = enc.decode_double(pt)
    return {"poly_modulus_degree": n_poly, "coeff_mod_bit_sizes": bits, "scale_bits": scale_bits,
            "values": values.tolist(), "decoded": [float(x) for x in decoded],
            "max_abs_error": float(np.abs(np.array(decoded) - values).max())}


def flood_vector() -> dict:
    key = bytes(range(32))
    ct = b"FHCK example ciphertext bytes"
    seed = hmac.new(key, b"fedhft-ckks-flood\x00" + hashlib.sha256(ct).digest(), hashlib.sha256).digest()
    raw = np.frombuffer(hashlib.shake_256(seed).digest(8 * 16), dtype="<u8")
    bound = 2.0**-10
    noise = ((raw >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2.0 - 1.0) * bound
    return {"flood_key_hex": key.hex(), "ciphertext_hex": ct.hex(), "count": 16, "bound": bound,
            "noise": noise.tolist()}


def main() -> None:
    files = {"layout-minilm-pass0.json": layout_vector(), "params-default-50.json": params_vector(),
             "params-run-8.json": params_run_vector(), "envelope-v2.json": envelope_vector(),
             "encode-n2048.json": encode_vector(2048, [34, 20], 26, 1),
             "encode-n4096.json": encode_vector(4096, [57, 52], 47, 2),
             "encode-n4096-q60.json": encode_vector(4096, [60, 49], 53, 3),
             "flood-noise.json": flood_vector()}
    for name, data in files.items():
        (HERE / name).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
