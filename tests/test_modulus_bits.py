"""Masked sums mod 2^b for b in 16..64: exact noisy sums at b = 20 for 50 clients, dropouts, refused
frames, bytes on the wire, and the config's refusal of a modulus too small for the cohort and the noise."""

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from fedhft_secure.config import load_config, modulus_problem
from fedhft_secure.crypto.encoding import MODULUS_BITS, FixedPoint, centred
from fedhft_secure.crypto.packing import packed_size
from fedhft_secure.exceptions import ConfigError, LocalProtocolError, MalformedMessage, ShapeMismatch
from fedhft_secure.fl.messages import PassReply
from fedhft_secure.secure.api import Contribution, Expected, SessionInfo
from fedhft_secure.secure.masking import MaskingSum
from fedhft_secure.secure.masking.messages import KeySetup
from fedhft_secure.secure.noise import TAIL, DistributedNoise, headroom_ok
from fedhft_secure.wire import encode
from masking_harness import run_pass


def vecs(n, d, seed=0, norm=0.8):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        x = rng.standard_normal(d)
        out[i] = x * (norm * rng.uniform(0.2, 1.5) / np.linalg.norm(x))  # some above the L2 clip of 1
    return out


def ones(n):
    return {i: [1.0] for i in range(n)}


@dataclass(slots=True, kw_only=True)
class RecordingNoise(DistributedNoise):
    """Keeps the noisy integer vector each client hands to the masking (the test's ground truth)."""

    seen: list = field(default_factory=list)

    def encode(self, codec, vec, uniform, *, cluster, cohort):  # noqa: ANN001, ANN201
        y = DistributedNoise.encode(self, codec, vec, uniform, cluster=cluster, cohort=cohort)
        self.seen.append(y.copy())
        return y


class RecordingCodec:
    """The server's codec, keeping the integer sum it is asked to decode."""

    def __init__(self, codec: FixedPoint) -> None:
        self.codec, self.totals = codec, []

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.codec, name)

    def decode_sum(self, total):  # noqa: ANN001, ANN201
        self.totals.append(total.copy())
        return self.codec.decode_sum(total)


class Recorded(MaskingSum):
    def client_session(self, me, round, rows=None):  # noqa: ANN001, ANN201
        c = super().client_session(me, round, rows)
        if self.distributed_noise is not None:
            c.noise = RecordingNoise(clip=self.distributed_noise[0], noise=self.distributed_noise[1])
        return c

    def server_session(self, info):  # noqa: ANN001, ANN201
        s = super().server_session(info)
        s.codec = RecordingCodec(s.codec)
        return s


# -- b = 20, 50 clients, distributed noise on ---------------------------------------------------------

@pytest.mark.parametrize("drop", [{}, {7: "setup", 11: "input", 23: "unmask", 42: "directory"}],
                         ids=["all", "four-dropouts"])
def test_fifty_noisy_clients_sum_exactly_mod_2_20(drop):
    n, d, z, C = 50, 240, 1.0, 1.0
    v = vecs(n, d, seed=len(drop))
    backend = Recorded(bits=20, clip=8.0, distributed_noise=(C, z))
    sums, server, clients, errors = run_pass(v, ones(n), backend=backend, drop=drop)
    assert sums is not None, errors
    codec = server.codec.codec
    assert codec.bits == 20 and codec.n == n
    contributed = [c for c in range(n) if c not in drop or drop[c] == "unmask"]
    assert {c for c in range(n) if clients[c].noise.seen} == set(contributed)
    noisy = [clients[c].noise.seen[0] for c in contributed]
    assert all(y.dtype == np.uint32 and int(y.max()) < 2**20 for y in noisy)  # residues mod 2^20
    (total,) = server.codec.totals
    # the opened sum is exactly the sum of the noisy integer inputs mod 2^20 ...
    assert np.array_equal(codec.reduce(total), codec.reduce(sum(y.astype(np.uint64) for y in noisy)))
    # ... which never wrapped: it is the plain integer sum of the centred inputs
    assert np.array_equal(centred(total, 20), sum(centred(y, 20) for y in noisy))
    got = sums[0]["v"].numpy()
    np.testing.assert_array_equal(got, (centred(total, 20) / codec.scale).astype(np.float32))
    # decoded: the sum of the L2-clipped vectors plus noise of std z·C (the target with all 50 clients;
    # contributors/50 of the variance when some dropped before their input)
    clean = sum(x * min(1.0, C / np.linalg.norm(x)) for c, x in v.items() if c in contributed)
    err = got - clean
    std = z * C * math.sqrt(len(contributed) / n)
    assert np.abs(err).max() < 6 * std + codec.resolution
    assert 0.75 * std < err.std() < 1.25 * std


@pytest.mark.parametrize("bits", [16, 20, 24, 32, 33, 64])
def test_sums_without_noise_at_every_width(bits):
    v = vecs(6, 37, seed=bits, norm=3.0)
    sums, server, _, errors = run_pass(v, ones(6), backend=MaskingSum(bits=bits), drop={2: "input", 4: "unmask"})
    assert sums is not None, errors
    want = sum(x for c, x in v.items() if c != 2)
    np.testing.assert_allclose(sums[0]["v"].numpy(), want, atol=server.codec.resolution * 2 + 1e-6)


@pytest.mark.parametrize("stage", ["setup", "directory", "forward", "input", "unmask"])
def test_dropout_recovery_at_20_bits(stage):
    v = vecs(5, 29, seed=3, norm=2.0)
    sums, server, _, errors = run_pass(v, ones(5), backend=MaskingSum(bits=20), drop={1: stage})
    assert sums is not None, errors
    want = sum(x for c, x in v.items() if c != 1 or stage == "unmask")
    np.testing.assert_allclose(sums[0]["v"].numpy(), want, atol=server.codec.resolution * 2)


# -- the server refuses frames that are not exactly one packed vector ------------------------------------

def _tampered(edit, d=7):
    """d = 7 values of 20 bits: 140 bits in 18 bytes, 4 padding bits."""
    v = vecs(5, d, seed=1)

    def tamper(stage, i, payload):
        return {k: edit(t) for k, t in payload.items()} if stage == "input" and i == 3 else payload
    sums, server, _, errors = run_pass(v, ones(5), backend=MaskingSum(bits=20), tamper=tamper)
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v[i] for i in v if i != 3), atol=server.codec.resolution * 2)
    assert 3 not in server.inputs
    return [e for i, e in errors if i == 3]


def test_short_and_long_frames_are_shape_mismatches():
    assert packed_size(7, 20) == 18
    for edit in (lambda t: t[:-1], lambda t: torch.cat([t, torch.zeros(1, dtype=torch.uint8)]),
                 lambda t: t.view(torch.int8), lambda t: torch.zeros(7, dtype=torch.int32)):
        (err,) = _tampered(edit)
        assert isinstance(err, ShapeMismatch) and err.sender == 3 and "c0" in str(err)


def test_nonzero_padding_is_malformed():
    def set_padding(t):
        t = t.clone()
        t[-1] |= 0x80  # a padding bit (the top 4 bits of the 18th byte are spare)
        return t
    (err,) = _tampered(set_padding)
    assert isinstance(err, MalformedMessage) and err.sender == 3 and "padding" in str(err)


def test_client_refuses_a_key_setup_outside_the_range():
    client = MaskingSum().client_session(0, 1)
    for bits in (12, 65):
        setup = KeySetup(round=1, epoch=0, cohort=[0, 1], participation=[[0], [0]], graph_seed=1, degree=1,
                         threshold=2, slots=1, bits=bits, clip=64.0, clusters=1)
        with pytest.raises(MalformedMessage, match="2\\^16"):
            client.handle(encode(setup))


# -- bytes per coordinate -----------------------------------------------------------------------------

def pass_reply_bytes(bits, d):
    backend = MaskingSum(bits=bits)
    info = SessionInfo(round=1, epoch=0, cohort=(0, 1, 2), clusters=1, passes=1, weights=ones(3))
    server = backend.server_session(info)
    clients = {i: backend.client_session(i, 1) for i in range(3)}
    for _ in range(3):
        for i, blob in server.next_messages().items():
            server.receive(i, clients[i].handle(blob))
    server.next_messages()
    expected = Expected(shared={"v": (d,)}, per_cluster={})
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, d))
    payload = clients[0].payload(Contribution(shared={"v": x}), slot=0, weights=[1.0], expected=expected)
    return len(encode(PassReply(round=1, pass_idx=1, sender=0, payload=payload)))


@pytest.mark.parametrize("bits,per_coordinate", [(20, 2.5), (32, 4.0), (16, 2.0), (64, 8.0)])
def test_bytes_per_coordinate(bits, per_coordinate):
    d = 10_000
    size = pass_reply_bytes(bits, d)
    header = size - per_coordinate * d
    assert 0 < header < 80, size  # envelope, JSON meta, one frame header: tens of bytes
    assert size / d == pytest.approx(per_coordinate, abs=0.01)


# -- config: the range, and a modulus too small for the cohort and the noise ----------------------------

def test_modulus_bits_range():
    assert load_config(None, ["secure.modulus_bits=20"]).secure.modulus_bits == 20
    for bad in (12, 15, 65, 128):
        with pytest.raises(ConfigError, match=r"secure\.modulus_bits.*allowed: 16\.\.64"):
            load_config(None, [f"secure.modulus_bits={bad}"])
    assert (MODULUS_BITS.start, MODULUS_BITS.stop - 1) == (16, 64)  # config.py repeats this range
    with pytest.raises(LocalProtocolError, match="16..64"):
        FixedPoint(n=2, clip=1.0, bits=15)


def test_too_small_a_modulus_is_refused_with_what_would_fit():
    # 1000 clients within ±64 leave no level in 2^16: 2^17 would
    with pytest.raises(ConfigError, match=r"secure\.modulus_bits.*1000 clients.*allowed: >= 17"):
        load_config(None, ["secure.modulus_bits=16", "fed.num_clients=1000", "fed.clusters=1"])
    # distributed noise 0.3 x 1 over 50 clients at 2^16 (scale 10): a share of std 0.42 < 1/2 level
    with pytest.raises(ConfigError, match=r"secure\.modulus_bits.*below 1/2 level.*allowed: >= 17"):
        load_config(None, ["secure.modulus_bits=16", "fed.num_clients=50", "privacy.distributed_noise=0.3"])
    # 20 bits carry 50 clients with noise 1, at the default clip, and a finer scale at a smaller secure.clip
    for clip in (64.0, 8.0):
        load_config(None, ["secure.modulus_bits=20", "fed.num_clients=50", "privacy.distributed_noise=1.0",
                           f"secure.clip={clip}"])


@pytest.mark.parametrize("bits", [16, 17, 20, 24, 32])
@pytest.mark.parametrize("clip,dp_clip,noise", [(64.0, 1.0, 1.0), (8.0, 1.0, 0.3), (2.0, 1.0, 0.2),
                                                (1.0, 1.0, 0.1), (64.0, 1.0, 0.0), (4.0, 0.5, 0.6),
                                                (1.0, 1.0, 0.5)])  # the last: the noise tail overflows
@pytest.mark.parametrize("clients", [2, 10, 50, 300, 600])
def test_config_check_agrees_with_the_codec_and_the_noise(bits, clip, dp_clip, noise, clients):
    """config.modulus_problem repeats FixedPoint, headroom_ok and KLS's sigma >= 1/2: the same verdict."""
    fits = True
    for n in range(2, clients + 1):
        try:
            codec = FixedPoint(n=n, clip=clip, bits=bits)
        except LocalProtocolError:
            fits = False
            break
        if noise > 0 and not (headroom_ok(codec, clip=dp_clip, noise=noise)
                              and noise * dp_clip * codec.scale / math.sqrt(n) >= 0.5):
            fits = False
            break
    got = modulus_problem(bits=bits, clients=clients, clip=clip, dp_clip=dp_clip, noise=noise)
    assert (got is None) == fits, got
    assert TAIL == 9.0  # config.py repeats this constant


def test_server_codec_is_the_clients():
    v = vecs(4, 5)
    _, server, clients, _ = run_pass(v, ones(4), backend=MaskingSum(bits=20, clip=8.0), until="input")
    assert all(c.codec == server.codec for c in clients.values())
    assert server.codec.scale == (2**19 - 1) // (4 * 9)


def test_a_run_at_20_bits_with_distributed_noise(tmp_path):
    """A whole run (the pass plan's vectors masked, noised and packed at 20 bits) completes and reports a
    finite epsilon for the distributed noise."""
    import json

    from conftest import tiny_overrides
    from fedhft_secure.runtime import run

    cfg = load_config(None, tiny_overrides(**{"secure.backend": '"masking"', "secure.modulus_bits": "20",
                                              "privacy.distributed_noise": "4.0", "fed.rounds": "1",
                                              "fed.num_clients": "4", "fed.clusters": "2"}))
    run(cfg, tmp_path, progress=False)
    rep = json.loads((tmp_path / "epsilon_report.json").read_text())
    assert len(rep["clients"]) == 4
    for c in rep["clients"]:
        (m,) = [m for m in c["mechanisms"] if m["name"] == "distributed-discrete-gaussian"]
        assert 0 < m["epsilon"] < math.inf
