"""Regenerates the masking (SecAgg+) known-answer vectors (run from the repo root).

Primitive vectors come from published standards or from independent code in
this file (not the functions under test); the round transcript is a
regression vector of this implementation, its sum checked against the plain sum.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = Path(__file__).resolve().parent
P521 = 2**521 - 1


def x25519_rfc7748() -> dict:
    # RFC 7748, section 6.1 (Diffie-Hellman test vector)
    return {"source": "RFC 7748 section 6.1",
            "alice_secret": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            "alice_public": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
            "bob_secret": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
            "bob_public": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
            "shared": "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"}


def hkdf_rfc5869() -> dict:
    # RFC 5869, appendix A.1 (SHA-256, test case 1)
    return {"source": "RFC 5869 appendix A.1", "ikm": "0b" * 22, "salt": "000102030405060708090a0b0c",
            "info": "f0f1f2f3f4f5f6f7f8f9", "length": 42,
            "okm": "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"}


def prg_vector(bits: int = 32) -> dict:
    """AES-256-CTR from a zero counter block = AES-256-ECB of the blocks 0, 1, 2, ... (big-endian);
    below 32 bits each little-endian 32-bit word keeps its low ``bits`` bits."""
    seed = bytes(range(32))
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    stream = b"".join(ecb.update(i.to_bytes(16, "big")) for i in range(4))
    words = [int.from_bytes(stream[i:i + 4], "little") % 2**bits for i in range(0, len(stream), 4)]
    return {"source": "AES-256-ECB of counter blocks (independent of the CTR code under test)"
                      + ("" if bits == 32 else f", each little-endian 32-bit word mod 2^{bits}"),
            "seed": seed.hex(), "bits": bits, "values": words}


def packing_vector() -> dict:
    """Values mod 2^b as one little-endian bit stream: sum of v_i * 2^(i*b), as ceil(d*b/8) little-endian
    bytes; computed with Python integers, independently of the numpy packing under test."""
    rng = np.random.default_rng(20)
    cases = []
    for bits, d in [(20, 5), (20, 4), (17, 3), (16, 4), (24, 3), (32, 3), (33, 2), (48, 3), (64, 2), (20, 1),
                    (20, 0)]:
        values = [int(x) for x in rng.integers(0, 2**bits, d, dtype=np.uint64, endpoint=False)] if bits < 64 \
            else [2**64 - 1, 0x0123456789ABCDEF][:d]
        if d >= 2:
            values[0], values[-1] = 2**bits - 1, 0  # the extremes: all ones, all zeros
        stream = sum(v << (i * bits) for i, v in enumerate(values))
        size = (d * bits + 7) // 8
        cases.append({"bits": bits, "values": [str(v) for v in values], "bytes": size,
                      "padding_bits": size * 8 - d * bits, "hex": stream.to_bytes(size, "little").hex()})
    return {"source": "sum of v_i * 2^(i*bits) as little-endian bytes, with Python integers, computed here",
            "cases": cases}


def shamir_vector() -> dict:
    secret = bytes(range(1, 33))
    coeffs = [123456789123456789, 2**300 + 7]
    xs = [1, 2, 5, 9]
    s = int.from_bytes(secret, "big")
    shares = {str(x): ((s + coeffs[0] * x + coeffs[1] * x * x) % P521).to_bytes(66, "big").hex() for x in xs}
    return {"source": "polynomial evaluated here over GF(2^521-1)", "secret": secret.hex(), "threshold": 3,
            "coefficients": [str(c) for c in coeffs], "shares": shares}


def fixed_point_vector(bits: int = 32) -> dict:
    n, clip = 5, 4.0
    scale = ((1 << (bits - 1)) - 1) // int(n * (clip + 1.0))
    x = [0.0, 1.5, -2.25, 4.0, 7.0, -9.0, 1e-7]
    u = [0.0, 0.5, 0.25, 0.999, 0.1, 0.9, 0.5]
    enc = [int(np.floor(np.clip(v, -clip, clip) * scale + w)) % 2**bits for v, w in zip(x, u)]
    return {"source": "floor(clip(x) * scale + u) mod 2^bits, computed here", "n": n, "clip": clip, "bits": bits,
            "scale": scale, "x": x, "uniform": u, "encoded": enc}


def entropy_stream(label: str):
    h = hashlib.shake_256(label.encode())
    state = {"pos": 0}

    def take(n: int) -> bytes:
        out = h.digest(state["pos"] + n)[state["pos"]:]
        state["pos"] += n
        return out
    return take


def transcript_vector(n: int = 5, before_input: tuple[int, ...] = (3,), after_input: tuple[int, ...] = (),
                      bits: int = 32) -> dict:
    """One key set-up and one pass with deterministic entropy; ``before_input`` clients drop before their
    masked input (their masks are removed with their mask keys), ``after_input`` ones after it (their
    input stays in the sum; they do not answer the unmask request). Records which shares each client
    revealed: a survivor reveals its own self-mask share too (its neighbours and itself hold shares)."""
    import torch

    from fedhft_secure.secure.api import Contribution, Expected, SessionInfo
    from fedhft_secure.secure.masking import MaskingClient, MaskingSum
    from fedhft_secure.secure.masking.messages import UnmaskReply
    from fedhft_secure.wire import decode

    ids = list(range(n))
    rng = np.random.default_rng(7)
    vectors = {i: rng.uniform(-1, 1, 6).round(3) for i in ids}
    weights = {i: (1.0,) for i in ids}
    backend = MaskingSum(bits=bits)
    info = SessionInfo(round=1, epoch=0, cohort=tuple(ids), clusters=1, passes=1, weights=weights)
    server = backend.server_session(info)
    clients = {i: MaskingClient(i, round=1, entropy=entropy_stream(f"client-{i}")) for i in ids}
    digest = hashlib.sha256()
    for _ in range(3):
        for i, blob in server.next_messages().items():
            reply = clients[i].handle(blob)
            digest.update(blob + reply)
            server.receive(i, reply)
    server.next_messages()
    expected = Expected(shared={"v": (6,)}, per_cluster={})
    server.begin_pass(1, slot=0, expected=expected)
    for i in ids:
        if i in before_input:
            continue
        p = clients[i].payload(Contribution(shared={"v": torch.from_numpy(vectors[i])}), slot=0,
                               weights=[1.0], expected=expected)
        digest.update(p["c0"].numpy().tobytes())
        server.add_payload(i, p)
    server.end_inputs()
    revealed = {}
    for i, blob in server.next_messages().items():
        if i in after_input:
            continue
        reply = clients[i].handle(blob)
        revealed[str(i)] = sorted(decode(reply, UnmaskReply).shares)
        digest.update(reply)
        server.receive(i, reply)
    server.next_messages()
    total = server.sums()[0]["v"].numpy()
    plain = sum(vectors[i] for i in ids if i not in before_input)
    assert np.abs(total - plain).max() <= server.codec.resolution
    return {"source": "this implementation (regression), sum checked against the plain sum",
            "clients": n, "bits": bits, "degree": server.params.degree, "threshold": server.params.threshold,
            "dropped_before_input": list(before_input), "dropped_after_input": list(after_input),
            "entropy": "shake_256('client-<id>') stream",
            "vectors": {str(i): v.tolist() for i, v in vectors.items()}, "round": 1,
            "revealed": revealed, "messages_sha256": digest.hexdigest(), "sum": total.tolist(),
            "resolution": server.codec.resolution}


#: transcript vector file -> the arguments of ``transcript_vector`` that make it
TRANSCRIPTS = {"transcript-5-clients-1-dropout": {"n": 5, "before_input": (3,)},
               "transcript-3-clients-1-dropout-after-input": {"n": 3, "before_input": (), "after_input": (2,)},
               "transcript-4-clients-20-bits-1-dropout": {"n": 4, "before_input": (2,), "bits": 20}}


def main() -> None:
    out = {"x25519": x25519_rfc7748(), "hkdf": hkdf_rfc5869(), "prg": prg_vector(), "shamir": shamir_vector(),
           "fixed-point": fixed_point_vector(), "prg-20-bits": prg_vector(20),
           "fixed-point-20-bits": fixed_point_vector(20), "packing": packing_vector()}
    out.update({name: transcript_vector(**kw) for name, kw in TRANSCRIPTS.items()})
    for name, v in out.items():
        (HERE / f"{name}.json").write_text(json.dumps(v, indent=1) + "\n")


if __name__ == "__main__":
    main()
