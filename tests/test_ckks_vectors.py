"""Known answers for the CKKS backend (protocols/vectors/ckks, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tenseal as ts
import torch
from tenseal import sealapi

from fedhft_secure.config import RunConfig, SecureConfig
from fedhft_secure.secure.ckks import (CkksParams, derive_params, flood_noise, layout_for, pack,
                                       tightest_precision, unpack)
from fedhft_secure.secure.ckks.wire import VERSION, Envelope, Kind, decode_envelope, encode_envelope

VECTORS = Path(__file__).resolve().parents[1] / "protocols" / "vectors" / "ckks"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def test_layout_offsets_and_digest():
    v = load("layout-minilm-pass0.json")
    layout = layout_for({k: tuple(s) for k, s in v["shapes"].items()}, slots=v["layout"]["slots"])
    assert layout.to_dict() == v["layout"]
    assert layout.total == v["total"] and layout.chunk_sizes() == v["chunk_sizes"]
    assert layout.digest.hex() == v["digest"]
    # packing puts each tensor's row-major values at its offset, and unpacking inverts it
    tensors = {k: torch.arange(np.prod(s), dtype=torch.float64).reshape(s) + 1000 * i
               for i, (k, s) in enumerate(sorted(v["shapes"].items()))}
    flat = pack(layout, tensors)
    for e in v["layout"]["entries"]:
        assert flat[e["offset"]] == tensors[e["name"]].reshape(-1)[0].item()
    back = unpack(layout, flat)
    assert all(torch.equal(back[k], tensors[k].float()) for k in tensors)


@pytest.mark.parametrize("name", ["params-default-50.json", "params-run-8.json"])
def test_parameter_derivation_and_fingerprint(name):
    v = load(name)
    p = derive_params(**v["request"])
    assert p.to_dict() == v["params"]
    assert p.fingerprint.hex() == v["fingerprint"]
    assert CkksParams.from_dict(v["params"]) == p


def test_the_run_default_is_the_vector():
    """secure.ckks_precision = 0: the finest precision one 60-bit q0 gives the default cohort."""
    s, n = SecureConfig(), RunConfig().fed.num_clients
    assert s.ckks_precision == 0
    finest = tightest_precision(max_clients=n, value_bound=s.ckks_value_bound, flood_bits=s.ckks_flood_bits)
    assert load("params-run-8.json")["request"] == {
        "max_clients": n, "value_bound": s.ckks_value_bound, "precision": finest,
        "flood_bits": s.ckks_flood_bits, "weight_bits": 0}


def test_message_envelope_v2():
    v = load("envelope-v2.json")
    env = Envelope(kind=Kind(v["kind"]), fingerprint=bytes.fromhex(v["fingerprint_hex"]),
                   key_id=bytes.fromhex(v["key_id_hex"]), layout=bytes.fromhex(v["layout_hex"]),
                   summands=v["summands"], chunks=tuple(bytes.fromhex(c) for c in v["chunks_hex"]))
    assert VERSION == v["version"]
    assert encode_envelope(env).hex() == v["message_hex"]
    back = decode_envelope(bytes.fromhex(v["message_hex"]), fingerprint=env.fingerprint, key_id=env.key_id,
                           layout=env.layout, chunks=len(env.chunks), max_chunk_bytes=100, kind=env.kind)
    assert back == env


@pytest.mark.parametrize("name", ["encode-n2048.json", "encode-n4096.json", "encode-n4096-q60.json"])
def test_seal_encode_decode_round_trip_is_the_known_answer(name):
    """Members decrypt bit-identically only if their CKKS encoders agree; this pins SEAL's."""
    v = load(name)
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, v["poly_modulus_degree"], coeff_mod_bit_sizes=v["coeff_mod_bit_sizes"],
                     encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC)
    enc = sealapi.CKKSEncoder(ctx.seal_context().data)
    pt = sealapi.Plaintext()
    enc.encode(v["values"], float(2 ** v["scale_bits"]), pt)
    assert enc.decode_double(pt) == v["decoded"]
    assert np.abs(np.array(v["decoded"]) - np.array(v["values"])).max() == v["max_abs_error"]


def test_flooding_noise_is_the_known_answer():
    v = load("flood-noise.json")
    got = flood_noise(bytes.fromhex(v["flood_key_hex"]), bytes.fromhex(v["ciphertext_hex"]), v["count"], v["bound"])
    assert got.tolist() == v["noise"]
    assert np.abs(got).max() < v["bound"]
