"""Known-answer vectors for the masking backend (protocols/vectors/secagg, see its README)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fedhft_secure.crypto.encoding import FixedPoint
from fedhft_secure.crypto.kex import KeyPair, agree, hkdf
from fedhft_secure.crypto.packing import pack, packed_size, unpack
from fedhft_secure.crypto.prg import prg_uint
from fedhft_secure.crypto.shamir import reconstruct, split

V = Path(__file__).resolve().parents[1] / "protocols" / "vectors" / "secagg"


def load(name):
    return json.loads((V / f"{name}.json").read_text())


def test_x25519():
    v = load("x25519")
    a, b = KeyPair.from_secret(bytes.fromhex(v["alice_secret"])), KeyPair.from_secret(bytes.fromhex(v["bob_secret"]))
    assert a.public.hex() == v["alice_public"] and b.public.hex() == v["bob_public"]
    assert agree(a.secret, b.public).hex() == v["shared"] == agree(b.secret, a.public).hex()


def test_hkdf():
    v = load("hkdf")
    out = hkdf(bytes.fromhex(v["ikm"]), bytes.fromhex(v["info"]), v["length"], salt=bytes.fromhex(v["salt"]))
    assert out.hex() == v["okm"]


@pytest.mark.parametrize("name", ["prg", "prg-20-bits"])
def test_prg(name):
    v = load(name)
    assert prg_uint(bytes.fromhex(v["seed"]), len(v["values"]), v["bits"]).tolist() == v["values"]


def test_shamir():
    v = load("shamir")
    xs = [int(x) for x in v["shares"]]
    shares = split(bytes.fromhex(v["secret"]), v["threshold"], xs, [int(c) for c in v["coefficients"]])
    assert {str(x): s.hex() for x, s in shares.items()} == v["shares"]
    for drop in xs:
        subset = {x: s for x, s in shares.items() if x != drop}
        assert reconstruct(subset, v["threshold"]).hex() == v["secret"]


@pytest.mark.parametrize("name", ["fixed-point", "fixed-point-20-bits"])
def test_fixed_point(name):
    v = load(name)
    fp = FixedPoint(n=v["n"], clip=v["clip"], bits=v["bits"])
    assert fp.scale == v["scale"]
    assert fp.encode(np.array(v["x"]), np.array(v["uniform"])).tolist() == v["encoded"]


def test_packing():
    """Both directions: values -> the bytes computed with Python integers, and those bytes -> the values."""
    for case in load("packing")["cases"]:
        values = np.array([int(x) for x in case["values"]], dtype=np.uint64)
        frame = pack(values, case["bits"])
        assert frame.dtype == np.uint8 and frame.size == case["bytes"] == packed_size(values.size, case["bits"])
        assert bytes(frame).hex() == case["hex"], case["bits"]
        got = unpack(bytes.fromhex(case["hex"]), values.size, case["bits"])
        assert [int(x) for x in got] == [int(x) for x in case["values"]]


def _generator():
    sys.path.insert(0, str(V))
    try:
        import generate
    finally:
        sys.path.pop(0)
    return generate


@pytest.mark.parametrize("name", ["transcript-5-clients-1-dropout", "transcript-3-clients-1-dropout-after-input",
                                  "transcript-4-clients-20-bits-1-dropout"])
def test_round_transcript(name):
    generate = _generator()
    v = load(name)
    got = generate.transcript_vector(**generate.TRANSCRIPTS[name])
    assert (got["degree"], got["threshold"]) == (v["degree"], v["threshold"])
    assert got["revealed"] == v["revealed"]
    assert got["messages_sha256"] == v["messages_sha256"]
    np.testing.assert_allclose(got["sum"], v["sum"], rtol=0, atol=0)
    plain = sum(np.array(x) for k, x in v["vectors"].items() if int(k) not in v["dropped_before_input"])
    np.testing.assert_allclose(v["sum"], plain, atol=v["resolution"])
    # every client that answered the unmask request revealed its own self-mask share, never its mask-key share
    for w, keys in v["revealed"].items():
        assert f"b/{w}" in keys and f"s/{w}" not in keys
