"""Behaviour of the CKKS backend: sums within the precision bound, keys, refusals."""

from __future__ import annotations

import os
import stat
import struct

import numpy as np
import pytest
import tenseal as ts
import torch
import zstandard
from tenseal import sealapi

from fedhft_secure.cli import main
from fedhft_secure.exceptions import (ConfigError, FedHFTError, LocalProtocolError, MalformedCiphertext,
                                      MalformedMessage, MissingKey, OversizedMessage, RemoteProtocolError,
                                      ReplayedMessage, ShapeMismatch, ValueOutOfRange, WrongKey)
from fedhft_secure.runtime.keyfiles import PUBLIC_NAME, SECRET_NAME, keygen, read_public, read_secret
from fedhft_secure.secure.api import Contribution, Expected
from fedhft_secure.secure.ckks import (SECURITY_TABLE_128, CkksClient, CkksParameterError, CkksParams,
                                       CkksServer, SecretBundle, derive_params, generate_keys,
                                       tightest_precision)
from fedhft_secure.secure.ckks.backend import max_content
from fedhft_secure.secure.ckks.params import check_params
from fedhft_secure.secure.ckks.seal_io import canonical, load_ciphertext
from fedhft_secure.secure.ckks.sum import SUM_KEY, CkksSum
from fedhft_secure.secure.ckks.transport import new_identity, open_bundle, seal_bundle
from fedhft_secure.secure.ckks.wire import Envelope, Kind, decode_envelope, encode_envelope
from fedhft_secure.secure.opened import opens_on_client
from fedhft_secure.secure.plaintext import PlaintextSum


@pytest.fixture(scope="module")
def bundle() -> SecretBundle:
    return generate_keys(derive_params(max_clients=8, value_bound=2.0, precision=1e-4, flood_bits=16))


@pytest.fixture(scope="module")
def parties(bundle):
    return CkksClient(SecretBundle.from_bytes(bundle.to_bytes())), CkksServer(bundle.public())


# ---- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"flood_bits": 0}, {"max_clients": 2, "precision": 1e-2},
                                {"max_clients": 100, "value_bound": 64.0, "precision": 1e-3},
                                {"weight_bits": 10, "flood_bits": 8}])
def test_derived_sets_lie_inside_the_128_bit_table(kw):
    p = derive_params(**kw)
    assert p.log_q <= SECURITY_TABLE_128[p.poly_modulus_degree]
    assert p.security_bits == 128
    assert p.error_bound * (1 + 2**p.flood_bits) <= p.precision
    # smallest: one bit less of scale would miss the precision
    assert p.error_bound * 2 * (1 + 2**p.flood_bits) > p.precision


def test_table_is_the_standard_one():
    assert SECURITY_TABLE_128 == {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}


@pytest.mark.parametrize("change", [
    {"poly_modulus_degree": 3000},
    {"poly_modulus_degree": 2048, "coeff_mod_bit_sizes": (40, 40)},  # 80 > 54 bits
    {"coeff_mod_bit_sizes": (60, 50)},  # 110 > 109 for N=4096
    {"coeff_mod_bit_sizes": (30, 30)},  # q0 too small for its own sums
    {"coeff_mod_bit_sizes": (40, 40, 20)},
    {"scale_bits": 10},  # precision not reached
])
def test_parameters_outside_the_table_or_inconsistent_are_refused(change):
    base = derive_params(max_clients=8, value_bound=2.0, precision=1e-4, flood_bits=0)
    bad = CkksParams(**{**base.to_dict(), "coeff_mod_bit_sizes": base.coeff_mod_bit_sizes, **change})
    with pytest.raises(CkksParameterError) as info:
        check_params(bad)
    assert isinstance(info.value, ConfigError) and "secure.ckks" in str(info.value)


@pytest.mark.parametrize("kw", [{"precision": 1e-9}, {"flood_bits": 40}, {"max_clients": 0},
                                {"precision": -1.0}])
def test_unreachable_requests_are_refused_with_a_clear_error(kw):
    with pytest.raises(CkksParameterError, match="secure.ckks"):
        derive_params(**kw)


@pytest.mark.parametrize("n", [1, 8, 9, 50, 100])
def test_the_finest_precision_uses_the_largest_prime_and_nothing_finer_fits(n):
    finest = tightest_precision(max_clients=n, flood_bits=20)
    p = derive_params(max_clients=n, precision=finest, flood_bits=20)
    assert p.coeff_mod_bit_sizes[0] == 60 and p.security_bits == 128
    with pytest.raises(CkksParameterError):
        derive_params(max_clients=n, precision=finest * 0.99, flood_bits=20)


def test_the_run_default_precision_serves_larger_cohorts(tiny_cfg):
    """secure.ckks_precision = 0 follows the cohort; a fixed 5e-7 would refuse 9 clients."""
    from fedhft_secure.runtime.world import ckks_backends
    server, members = ckks_backends(tiny_cfg(**{"secure.backend": '"ckks"', "fed.num_clients": "9"}))
    assert server.server.params.max_clients == 9 and server.server.params.coeff_mod_bit_sizes[0] == 60
    assert len(members) == 9
    with pytest.raises(CkksParameterError):
        derive_params(max_clients=9, precision=5e-7)


# ---- sums ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sums_are_exact_within_the_precision_bound(bundle, parties, seed):
    client, server = parties
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 9, (1,), generator=g))
    shapes = {"a": (int(torch.randint(1, 300, (1,), generator=g)), 8), "b": (3,), "c": (2500,)}
    layout = client.layout(shapes)
    xs = [{k: (torch.rand(s, generator=g, dtype=torch.float64) * 4 - 2) for k, s in shapes.items()}
          for _ in range(n)]
    blobs = {i: client.encrypt(x, layout=layout) for i, x in enumerate(xs)}
    got = client.decrypt(server.weighted_sum(blobs, layout=layout), layout=layout)
    for k in shapes:
        want = sum(x[k] for x in xs)
        err = (got[k].double() - want).abs().max().item()
        # the bound plus float32 rounding of the returned tensor
        assert err <= bundle.params.precision + 2 * n * 2.0 * 2**-24, (k, err)
        assert err > 0  # flooded: never the exact value


def test_integer_weights_are_applied_by_additions():
    p = derive_params(max_clients=4, value_bound=1.0, precision=1e-4, flood_bits=0, weight_bits=6)
    sk = generate_keys(p)
    client, server = CkksClient(sk), CkksServer(sk.public())
    layout = client.layout({"v": (100,)})
    g = torch.Generator().manual_seed(3)
    xs = [torch.rand(100, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(4)]
    k = {0: 0, 1: 1, 2: 37, 3: 64}
    blobs = {i: client.encrypt({"v": x}, layout=layout) for i, x in enumerate(xs)}
    got = client.decrypt(server.weighted_sum(blobs, k, layout=layout), layout=layout)["v"].double()
    want = sum(k[i] * xs[i] for i in range(4)) / 64
    assert (got - want).abs().max() <= p.precision + 1e-6
    with pytest.raises(LocalProtocolError):
        server.weighted_sum(blobs, {**k, 3: 65}, layout=layout)


def test_decryption_is_bit_identical_across_members(bundle, tmp_path):
    # two members load the same secret from their own files
    keygen_dir = tmp_path / "keys"
    summary = keygen(2, keygen_dir, bundle.params)
    m0, m1 = (CkksClient(read_secret(keygen_dir / SECRET_NAME.format(i=i))) for i in (0, 1))
    server = CkksServer(read_public(keygen_dir / PUBLIC_NAME))
    assert summary["key_id"] == read_public(keygen_dir / PUBLIC_NAME).key_id.hex()
    layout = m0.layout({"x": (3000,)})
    g = torch.Generator().manual_seed(5)
    blobs = {i: (m0 if i % 2 else m1).encrypt({"x": torch.rand(3000, generator=g) - 0.5}, layout=layout)
             for i in range(5)}
    summed = server.weighted_sum(blobs, layout=layout)
    a, b = m0.decrypt(summed, layout=layout)["x"], m1.decrypt(summed, layout=layout)["x"]
    assert torch.equal(a, b)
    assert torch.equal(a, m0.decrypt(summed, layout=layout)["x"])  # and repeatable
    # the flooding noise is there and depends on the ciphertext
    raw, flooded = m0.open_values(summed, layout=layout, flood=False), m0.open_values(summed, layout=layout)
    assert torch.equal(a, torch.from_numpy(flooded.astype(np.float32)))  # decrypt releases these, cast
    noise = flooded - raw
    assert 0 < np.abs(noise).max() <= m0.params.flood_bound and noise.std() > 100 * m0.params.error_bound
    other = server.weighted_sum({i: blobs[i] for i in range(4)}, layout=layout)
    d1 = m0.open_values(other, layout=layout) - m0.open_values(other, layout=layout, flood=False)
    assert not np.allclose(d1, noise)


def test_values_outside_the_bound_are_refused_before_encryption(parties):
    client, _ = parties
    with pytest.raises(ValueOutOfRange):
        client.encrypt({"x": torch.tensor([0.0, 2.5])})
    with pytest.raises(ValueOutOfRange):
        client.encrypt({"x": torch.tensor([float("nan")])})


# ---- keys -----------------------------------------------------------------------------------------

def test_server_holds_no_secret_key_and_cannot_decrypt(bundle, parties):
    client, server = parties
    assert not server.ctx.has_secret_key() and not server.ctx.is_private()
    assert not server.ctx.has_galois_keys() and not server.ctx.has_relin_keys()
    with pytest.raises(ValueError, match="Secret key"):
        server.ctx.secret_key()
    # nothing the server object holds is a key or a key-holding SEAL object
    keyish = (sealapi.SecretKey, sealapi.PublicKey, sealapi.Encryptor, sealapi.Decryptor)
    assert not [n for n, v in vars(server).items() if isinstance(v, keyish)]
    assert not hasattr(server, "decrypt")
    pub = bundle.public().to_bytes()
    assert len(pub) < 1000 < len(bundle.to_bytes())
    assert bundle.flood_key not in pub
    layout = client.layout({"x": (10,)})
    blob = client.encrypt({"x": torch.ones(10)}, layout=layout)
    summed = server.weighted_sum({0: blob}, layout=layout)
    _, up = server._parse(summed, layout, Kind.SUM, None)  # it can load the sum it made ...
    with pytest.raises(ValueError):  # ... and no decryptor can be built from what it has
        sealapi.Decryptor(server.seal, sealapi.SecretKey())
    assert up.ciphertexts[0].size() == 2
    with pytest.raises(MalformedMessage):  # a public context that carries a secret key is refused
        CkksServer(type(bundle.public())(params=bundle.params, key_id=bundle.key_id, context=bundle.context))


def test_secret_bundle_repr_shows_no_secret(bundle):
    text = repr(bundle)
    assert bundle.flood_key.hex() not in text and "context" not in text
    assert "flood_key" not in text


def test_key_files_are_owner_only_and_loose_ones_are_refused(tmp_path, bundle, capsys):
    rc = main(["keygen", "--members", "3", "--out", str(tmp_path / "k"), "--max-clients", "4",
               "--precision", "1e-3", "--flood-bits", "4"])
    assert rc == 0
    out = capsys.readouterr().out
    for i in range(3):
        path = tmp_path / "k" / SECRET_NAME.format(i=i)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes()[-64:].hex() not in out
    assert read_secret(tmp_path / "k" / SECRET_NAME.format(i=0)).params.max_clients == 4
    loose = tmp_path / "k" / SECRET_NAME.format(i=1)
    os.chmod(loose, 0o640)
    with pytest.raises(ConfigError, match="0o600"):
        read_secret(loose)
    assert main(["keygen", "--members", "1", "--out", str(tmp_path / "k")]) == 2  # never overwrites


def test_keygen_default_precision_is_what_a_run_without_key_files_derives(tmp_path):
    assert main(["keygen", "--members", "1", "--out", str(tmp_path / "k"), "--max-clients", "16"]) == 0
    params = read_secret(tmp_path / "k" / SECRET_NAME.format(i=0)).params
    assert params.precision == tightest_precision(max_clients=16)
    assert params.coeff_mod_bit_sizes[0] == 60  # the finest: the data prime at its largest


def test_a_new_key_epoch_refuses_old_ciphertexts(bundle, parties):
    client, _ = parties
    other = generate_keys(bundle.params)
    layout = client.layout({"x": (4,)})
    blob = client.encrypt({"x": torch.ones(4)}, layout=layout)
    with pytest.raises(WrongKey):
        CkksServer(other.public()).weighted_sum({7: blob}, layout=layout)


def test_secret_bundle_transport_over_x25519_aes_gcm(bundle):
    alice, bob, eve = new_identity(), new_identity(), new_identity()
    blob = bundle.to_bytes()
    sealed = seal_bundle(blob, sender="alice", receiver="bob", sender_key=alice,
                         receiver_public=bob.public_key())
    assert blob[-200:] not in sealed
    got = open_bundle(sealed, sender="alice", receiver="bob", receiver_key=bob, sender_public=alice.public_key())
    assert SecretBundle.from_bytes(got).flood_key == bundle.flood_key
    bad = [dict(sender="alice", receiver="eve", receiver_key=eve, sender_public=alice.public_key()),
           dict(sender="mallory", receiver="bob", receiver_key=bob, sender_public=alice.public_key()),
           dict(sender="alice", receiver="bob", receiver_key=bob, sender_public=eve.public_key()),
           dict(sender="alice", receiver="bob", receiver_key=bob, sender_public=alice.public_key(),
                purpose="something else")]
    for kw in bad:
        with pytest.raises(MalformedMessage):
            open_bundle(sealed, **kw)
    flipped = bytearray(sealed)
    flipped[60] ^= 1
    with pytest.raises(MalformedMessage):
        open_bundle(bytes(flipped), sender="alice", receiver="bob", receiver_key=bob,
                    sender_public=alice.public_key())


# ---- uploads and hostile bytes ---------------------------------------------------------------

def test_uploads_are_seeded_and_a_full_ciphertext_upload_is_refused(bundle, parties):
    client, server = parties
    n_poly = bundle.params.poly_modulus_degree
    layout = client.layout({"x": (n_poly // 2,)})  # exactly one full ciphertext
    blob = client.encrypt({"x": torch.rand(n_poly // 2) - 0.5}, layout=layout)
    summed = server.weighted_sum({0: blob}, layout=layout)
    up_chunk = decode_envelope(blob, fingerprint=bundle.params.fingerprint, key_id=bundle.key_id,
                               layout=layout.digest, chunks=1, max_chunk_bytes=10**7).chunks[0]
    sum_chunk = decode_envelope(summed, fingerprint=bundle.params.fingerprint, key_id=bundle.key_id,
                                layout=layout.digest, chunks=1, max_chunk_bytes=10**7).chunks[0]
    # c0 + a seed against c0 + c1: about half, and close to the size model
    assert len(up_chunk) < 0.52 * len(sum_chunk)
    per_value = len(up_chunk) / (n_poly // 2)
    assert per_value <= bundle.params.upload_bytes_per_value * 1.05 + 0.2
    assert len(blob) / (n_poly // 2) / 4 <= 4.1  # bytes per fp32 value, q0 <= 60 bits
    # the server's own full sum re-labelled as an upload: too big for one polynomial and a seed
    full = encode_envelope(Envelope(kind=Kind.FRESH, fingerprint=bundle.params.fingerprint, key_id=bundle.key_id,
                                    layout=layout.digest, summands=1, chunks=(sum_chunk,)))
    with pytest.raises(OversizedMessage) as info:
        server.weighted_sum({4: full}, layout=layout)
    assert info.value.sender == 4


def test_a_replayed_ciphertext_is_refused(parties):
    client, server = parties
    layout = client.layout({"x": (100,)})
    a, b = (client.encrypt({"x": torch.ones(100)}, layout=layout) for _ in range(2))
    assert a != b  # same values, fresh seed and noise
    with pytest.raises(ReplayedMessage) as info:
        server.weighted_sum({0: a, 1: b, 2: a}, layout=layout)
    assert info.value.sender == 2
    # the same ciphertext framed otherwise (uncompressed, or deflated at another level) is still a replay
    env = decode_envelope(a, fingerprint=client.params.fingerprint, key_id=client.key_id, layout=layout.digest,
                          chunks=1, max_chunk_bytes=10**7)
    content = zstandard.ZstdDecompressor().decompress(env.chunks[0][16:])
    for mode, body in ((0, content), (2, zstandard.ZstdCompressor(level=19).compress(content))):
        chunk = env.chunks[0][:5] + bytes([mode]) + env.chunks[0][6:8] + struct.pack("<Q", 16 + len(body)) + body
        reframed = encode_envelope(Envelope(kind=Kind.FRESH, fingerprint=env.fingerprint, key_id=env.key_id,
                                            layout=env.layout, summands=1, chunks=(chunk,)))
        assert reframed != a
        with pytest.raises(ReplayedMessage):
            server.weighted_sum({0: a, 1: reframed}, layout=layout)


def test_tampered_or_truncated_ciphertexts_raise_typed_errors(parties):
    client, server = parties
    layout = client.layout({"x": (3000,)})
    good = client.encrypt({"x": torch.rand(3000)}, layout=layout)
    for cut in (0, 10, 40, 60, 80, 120, len(good) // 2, len(good) - 1):
        with pytest.raises(RemoteProtocolError) as info:
            server.weighted_sum({3: good[:cut]}, layout=layout)
        assert info.value.sender == 3
    with pytest.raises(RemoteProtocolError):
        server.weighted_sum({3: good + b"\0"}, layout=layout)
    with pytest.raises(ShapeMismatch):
        server.weighted_sum({3: good}, layout=client.layout({"x": (2999,)}))
    old = bytearray(good)
    old[4] = 1  # wire version 1 carried TenSEAL CKKSVectors
    with pytest.raises(MalformedCiphertext, match="version 1"):
        server.weighted_sum({3: bytes(old)}, layout=layout)
    rng = np.random.default_rng(0)
    outcomes = {"rejected": 0, "accepted": 0}
    for region in [(0, 60), (60, 140), (140, 400), (400, len(good))] * 15:  # envelope, SEAL/zstd headers, data
        bad = bytearray(good)
        for pos in rng.integers(*region, size=int(rng.integers(1, 4))):
            bad[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            summed = server.weighted_sum({1: bytes(bad)}, layout=layout)
        except RemoteProtocolError as exc:
            assert exc.sender == 1
            outcomes["rejected"] += 1
            continue
        outcomes["accepted"] += 1
        try:  # a flip the server could not see: the client either refuses the sum or decrypts it
            client.decrypt(summed, layout=layout)
        except RemoteProtocolError:
            pass
    assert outcomes["rejected"] > 0
    for junk in (b"", b"FHCK", os.urandom(200), b"FHCK" + os.urandom(5000)):
        with pytest.raises(RemoteProtocolError):
            client.decrypt(junk, layout=layout)


def test_a_forged_seed_loads_but_the_member_refuses_the_sum(bundle, parties):
    """A seeded upload ends with the 64-byte PRNG seed of c1: change it and SEAL expands another c1."""
    client, server = parties
    layout = client.layout({"x": (50,)})
    env = decode_envelope(client.encrypt({"x": torch.full((50,), 0.25)}, layout=layout),
                          fingerprint=bundle.params.fingerprint, key_id=bundle.key_id, layout=layout.digest,
                          chunks=1, max_chunk_bytes=10**7)
    content = bytearray(zstandard.ZstdDecompressor().decompress(env.chunks[0][16:]))
    content[-20] ^= 0x40  # inside the seed
    chunk = env.chunks[0][:5] + b"\0" + env.chunks[0][6:8] + struct.pack("<Q", 16 + len(content)) + bytes(content)
    forged = encode_envelope(Envelope(kind=Kind.FRESH, fingerprint=env.fingerprint, key_id=env.key_id,
                                      layout=env.layout, summands=1, chunks=(chunk,)))
    summed = server.weighted_sum({2: forged}, layout=layout)  # well-formed: the server cannot tell
    with pytest.raises(MalformedCiphertext, match="not made under this key"):
        client.decrypt(summed, layout=layout)


def _zstd(content: int, blocks: list[tuple[int, int, bytes]], fhd: int = 0xA0) -> bytes:
    """A zstd frame: FHD (single segment, 4-byte content size), then (type, size, payload) blocks."""
    out = b"\x28\xb5\x2f\xfd" + bytes([fhd]) + struct.pack("<I", content)
    for i, (kind, size, payload) in enumerate(blocks):
        head = (size << 3) | (kind << 1) | (i == len(blocks) - 1)
        out += head.to_bytes(3, "little") + payload
    return out


def test_hostile_seal_blobs_are_typed_errors_naming_the_sender(bundle, parties):
    client, server = parties
    layout = client.layout({"x": (10,)})
    env = decode_envelope(client.encrypt({"x": torch.ones(10)}, layout=layout), fingerprint=bundle.params.fingerprint,
                          key_id=bundle.key_id, layout=layout.digest, chunks=1, max_chunk_bytes=10**7)
    good = env.chunks[0]
    head = good[:8]  # SEAL's magic, header size, version and compression mode as SEAL writes them

    def seal(body: bytes, mode: int = 2) -> bytes:
        return head[:5] + bytes([mode]) + head[6:8] + struct.pack("<Q", 16 + len(body)) + body

    rle = [(1, 128 * 1024, b"\1")] * 800  # 100 MB from 3 kB
    # What aborted the process inside SEAL's own inflater (TenSEAL 0.3.18, found by fuzzing): the
    # inner array's header marked zstd-compressed, the content cut short, the whole deflated again.
    content = bytearray(zstandard.ZstdDecompressor().decompress(good[16:]))
    content[content.find(b"\x5e\xa1\x10\x04") + 5] = 2
    cases = {
        "aborts SEAL's inflater": seal(zstandard.ZstdCompressor().compress(bytes(content[:5000]))),
        "zstd bomb": seal(_zstd(len(rle) * 128 * 1024, rle)),
        "undeclared bomb": seal(b"\x28\xb5\x2f\xfd\x00\x58" + _zstd(0, rle)[9:]),  # no content size, 2 MB window
        "zlib": seal(b"x" * 40, mode=1),
        "unknown mode": seal(b"x" * 40, mode=7),
        "uncompressed nonsense": seal(os.urandom(300), mode=0),
        "not zstd": seal(os.urandom(300)),
        "size lies": good[:-1],
        "trailing byte": seal(good[16:] + b"\0"),
        "not SEAL 4": good[:2] + b"\x10\x03" + good[4:],
        "wrong magic": b"\x00" + good[1:],
        "empty": b"",
        "oversized": seal(bytes(max_content(bundle.params, Kind.FRESH) + 1), mode=0),
    }
    for name, blob in cases.items():
        wrapped = encode_envelope(Envelope(kind=Kind.FRESH, fingerprint=bundle.params.fingerprint,
                                           key_id=bundle.key_id, layout=layout.digest, summands=1, chunks=(blob,)))
        with pytest.raises(RemoteProtocolError) as info:
            server.weighted_sum({5: wrapped}, layout=layout)
        assert info.value.sender == 5, name
        if name in ("oversized", "zstd bomb"):  # declared: refused before anything is inflated
            assert isinstance(info.value, OversizedMessage), name
    with pytest.raises(MalformedCiphertext, match="canonical"):  # SEAL never sees compressed bytes
        load_ciphertext(server.seal, cases["zstd bomb"], sender=5)
    with pytest.raises(MalformedCiphertext, match="SEAL refuses"):
        load_ciphertext(server.seal, canonical(cases["uncompressed nonsense"], max_content=10**6), sender=5)


# ---- the SecureSum backend -----------------------------------------------------------------------

def test_keyless_sum_refuses_and_opens_on_clients():
    keyless = CkksSum()
    assert opens_on_client(keyless) and not opens_on_client(PlaintextSum())
    with pytest.raises(MissingKey):
        keyless.client_payload(Contribution(), weights=[1.0])


def test_ckks_sum_matches_the_plaintext_backend(bundle):
    member, aggregator = CkksSum(secret=bundle), CkksSum(public=bundle.public())
    assert aggregator.client is None
    g = torch.Generator().manual_seed(11)
    expected = Expected(shared={"s/v": (40, 8), "counts/x": (40,)}, per_cluster={"c/v": (40, 8)})
    contributions, weights = {}, {}
    for i in range(5):
        contributions[i] = Contribution(
            shared={"s/v": torch.rand(40, 8, generator=g) - 0.5,
                    "counts/x": (torch.rand(40, generator=g) > 0.5).float()},
            per_cluster={j: {"c/v": torch.rand(40, 8, generator=g) - 0.5} for j in range(3)})
        w = torch.rand(3, generator=g)
        w[i % 3] = 0.0  # some clients skip a cluster
        weights[i] = (w / w.sum()).tolist()
    ref = [{k: sum(weights[i][j] * {**c.shared, **c.per_cluster[j]}[k] for i, c in contributions.items())
            for k in ("s/v", "counts/x", "c/v")} for j in range(3)]
    payloads = {i: member.client_payload(c, weights=weights[i]) for i, c in contributions.items()}
    assert all(t.dtype == torch.uint8 for p in payloads.values() for t in p.values())
    summed = aggregator.server_sum(payloads, weights=weights, expected=expected, clusters=3)
    assert all(set(s) == {SUM_KEY} for s in summed)
    for j in range(3):
        opened = member.open_sum(summed[j], expected=expected, cluster=j)
        for k in ref[j]:
            assert (opened[k] - ref[j][k]).abs().max() <= bundle.params.precision + 1e-6, (j, k)
    with pytest.raises(ShapeMismatch):
        aggregator.server_sum({0: {}}, weights=weights, expected=expected, clusters=3)
    with pytest.raises(MissingKey):
        aggregator.open_sum(summed[0], expected=expected, cluster=0)


def test_errors_stay_in_the_hierarchy():
    for exc in (CkksParameterError, WrongKey, ValueOutOfRange, MissingKey):
        assert issubclass(exc, FedHFTError)
    assert ts.__version__ == "0.3.18"
