"""Distributed discrete Gaussian inside the masked sum: sampler, split noise, modulus bits, accounting, a run."""

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

from fedhft_secure.config import load_config
from fedhft_secure.crypto.dgauss import dgauss_pmf, dgauss_variance, discrete_gaussian, sample_exact
from fedhft_secure.crypto.encoding import FixedPoint
from fedhft_secure.exceptions import ConfigError, LocalProtocolError
from fedhft_secure.privacy.accountant import accountant_for
from fedhft_secure.privacy.ddp import (ORDERS, ddp_epsilon, effective_multiplier, kls_rdp, kls_tau, scale_for_bits,
                                       sensitivity, sum_bits)
from fedhft_secure.privacy.events import DISTRIBUTED, DistributedNoiseAdded, event_from_dict, event_to_dict
from fedhft_secure.secure.masking import MaskingSum
from fedhft_secure.secure.noise import TAIL, DistributedNoise, headroom_ok

from conftest import tiny_overrides
from masking_harness import run_pass


def _counter_entropy():
    state = [0]

    def entropy(n):
        import hashlib
        out = b""
        while len(out) < n:
            state[0] += 1
            out += hashlib.sha256(state[0].to_bytes(8, "little")).digest()
        return out[:n]
    return entropy


# -- the sampler ---------------------------------------------------------------------------

def test_pmf_known_values():
    """N_Z(0, 1): P[0] = 1 / Σ_k exp(-k²/2) = (1/√(2π)) / (1 + 2 e^{-2π²} + ...) (Poisson summation),
    just below the continuous density 0.3989422804; variance just below sigma² (CKS)."""
    x, p = dgauss_pmf(1.0)
    assert p[x == 0][0] == pytest.approx(1 / sum(math.exp(-k * k / 2) for k in range(-40, 41)), rel=1e-12)
    assert p[x == 0][0] == pytest.approx(1 / math.sqrt(2 * math.pi) / (1 + 2 * math.exp(-2 * math.pi ** 2)), abs=1e-12)
    assert dgauss_variance(1.0) == pytest.approx(1.0, abs=1e-6) and dgauss_variance(1.0) <= 1.0
    assert dgauss_variance(0.5) == pytest.approx(0.2150, abs=5e-4)  # well below 0.25 for small sigma


def test_exact_sampler_matches_the_pmf():
    rng = random.Random(1)  # any randrange source; the default is secrets.SystemRandom
    draws = np.array([sample_exact(sigma2=Fraction(2), rng=rng) for _ in range(6000)])
    x, p = dgauss_pmf(math.sqrt(2))
    for v in range(-3, 4):
        assert np.mean(draws == v) == pytest.approx(p[x == v][0], abs=0.02)
    assert draws.var() == pytest.approx(dgauss_variance(math.sqrt(2)), rel=0.08)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0, 1e4])
def test_fast_sampler_moments(sigma):
    z = discrete_gaussian(200_000, sigma=sigma)
    assert z.dtype == np.int64
    assert abs(z.mean()) < 5 * math.sqrt(dgauss_variance(sigma) / z.size)
    assert z.var() == pytest.approx(dgauss_variance(sigma), rel=0.02)


def test_fast_sampler_matches_the_pmf_and_uses_its_entropy_source():
    z = discrete_gaussian(100_000, sigma=1.5)
    x, p = dgauss_pmf(1.5)
    for v in range(-4, 5):
        assert np.mean(z == v) == pytest.approx(p[x == v][0], abs=0.006)
    a = discrete_gaussian(50, sigma=3.0, entropy=_counter_entropy())
    b = discrete_gaussian(50, sigma=3.0, entropy=_counter_entropy())
    assert np.array_equal(a, b)  # all randomness comes from the injected source (OS by default)
    assert not np.array_equal(discrete_gaussian(50, sigma=3.0), discrete_gaussian(50, sigma=3.0))
    with pytest.raises(LocalProtocolError):
        discrete_gaussian(3, sigma=0.0)


def test_sum_of_n_client_shares_has_the_target_variance():
    """50 clients each add N_Z(0, sigma²/50): the sum's variance is sigma² (within sampling error)."""
    n, sigma, coords = 50, 40.0, 40_000
    total = sum(discrete_gaussian(coords, sigma=sigma / math.sqrt(n)) for _ in range(n))
    # var of a sample variance: 2 sigma^4 / coords -> 0.7% relative std; allow 4%
    assert total.var() == pytest.approx(sigma ** 2, rel=0.04)
    assert abs(total.mean()) < 5 * sigma / math.sqrt(coords)


# -- bits: the modulus holds n x (clip range + noise tail) -----------------------------------

@pytest.mark.parametrize("noise", [1.0, 5.0, 10.0])
def test_fifty_clients_fit_in_20_bits(noise):
    n, clip, dim = 50, 1.0, 4096
    scale = scale_for_bits(n=n, clip=clip, noise=noise, bits=20)
    assert sum_bits(n=n, clip=clip, noise=noise, scale=scale) <= 20 and scale >= 1000
    # the worst vectors: every client puts its whole clip on coordinate 0, with the same sign
    rng = np.random.default_rng(0)
    worst = np.zeros(dim)
    worst[0] = clip
    enc = [np.floor(worst * scale + rng.random(dim)).astype(np.int64)
           + discrete_gaussian(dim, sigma=noise * clip * scale / math.sqrt(n)) for _ in range(n)]
    exact = np.sum(enc, axis=0)
    mod = 1 << 20
    wrapped = np.sum([e % mod for e in enc], axis=0) % mod
    centred = np.where(wrapped >= mod // 2, wrapped - mod, wrapped)
    assert np.array_equal(centred, exact)  # no wrap-around
    # ... and at that granularity the rounding costs little privacy: within 10% of the ideal Gaussian
    eps = ddp_epsilon(clip=clip, noise=noise, scale=scale, cohort=n, contributors=n, dim=dim, releases=1,
                      delta=1e-5)
    ideal, _ = get_privacy_spent(orders=ORDERS, rdp=compute_rdp(q=1.0, noise_multiplier=noise / 2, steps=1,
                                                                orders=ORDERS), delta=1e-5)
    assert ideal <= eps <= 1.1 * ideal


def test_codec_headroom_for_the_noise_tail():
    codec = FixedPoint(n=6, clip=64.0, bits=32)
    assert headroom_ok(codec, clip=1.0, noise=10.0)
    assert not headroom_ok(codec, clip=64.0, noise=20.0)
    with pytest.raises(ConfigError, match="privacy.distributed_noise"):
        DistributedNoise(clip=64.0, noise=20.0).encode(codec, np.zeros(4), np.zeros(4), cluster=0, cohort=6)


def test_config_checks_backend_and_headroom():
    with pytest.raises(ConfigError, match="secure.backend.*allowed: masking"):
        load_config(None, ['secure.backend="plaintext"', "privacy.distributed_noise=2.0"])
    with pytest.raises(ConfigError, match="privacy.distributed_noise"):
        load_config(None, ['secure.backend="masking"', "privacy.distributed_noise=50.0"])
    with pytest.raises(ConfigError, match="secure.sparsity.*allowed: dense"):
        load_config(None, ['secure.backend="masking"', 'secure.sparsity="reveal-rows"',
                           "privacy.distributed_noise=2.0"])
    from pathlib import Path

    from fedhft_secure.threat import check_config, load_threat_model
    model = load_threat_model(Path(__file__).resolve().parents[1] / "threat_models" / "distributed-dp-server.toml")
    with pytest.raises(ConfigError, match="privacy.distributed_noise"):
        check_config(load_config(None, ['secure.backend="masking"']), model)
    check_config(load_config(None, ['secure.backend="masking"', "privacy.distributed_noise=2.0"]), model)
    assert TAIL == 9.0  # config.py repeats this constant in its headroom check
    assert load_config(None, []).privacy.distributed_noise == 0.0  # off by default


# -- accounting ------------------------------------------------------------------------------

def test_kls_bound_reduces_to_a_gaussian_multiplier():
    clip, noise, scale, n, dim = 1.0, 4.0, 1000.0, 20, 5000
    z = effective_multiplier(clip=clip, noise=noise, scale=scale, cohort=n, contributors=n, dim=dim)
    ideal = noise * clip * scale / sensitivity(clip=clip, scale=scale, dim=dim)
    assert z == pytest.approx(ideal, rel=1e-9)  # tau ~ 0 at these sigmas: only the rounding inflation
    assert z < noise / 2 < 1.08 * z
    sigma = noise * clip * scale / math.sqrt(n)
    rdp = kls_rdp([2.0, 8.0], l2=sensitivity(clip=clip, scale=scale, dim=dim), sigma=sigma, m=n, dim=dim)
    assert rdp == pytest.approx([2.0 / (2 * z * z), 8.0 / (2 * z * z)], rel=1e-9)
    # at tiny sigma the tau term matters, and below 1/2 there is no claim
    assert kls_tau(sigma=0.6, m=50) > 1e-3 and kls_tau(sigma=5.0, m=50) < 1e-100
    assert effective_multiplier(clip=1.0, noise=1e-6, scale=1.0, cohort=2, contributors=2, dim=4) == 0.0


def test_dropouts_shrink_the_noise_and_raise_epsilon():
    kw = dict(clip=1.0, noise=4.0, scale=5000.0, cohort=20, dim=1000, releases=10, delta=1e-5)
    full, half = ddp_epsilon(contributors=20, **kw), ddp_epsilon(contributors=10, **kw)
    assert full < half
    ev = DistributedNoiseAdded(client=1, round=0, noise=4.0, clip=1.0, sums=10, cohort=20, contributors=10,
                               dim=1000, scale=5000.0)
    assert accountant_for("rdp").epsilon([ev], delta=1e-5) == pytest.approx(
        ddp_epsilon(contributors=10, bound="third", **kw), rel=1e-6)
    assert event_from_dict(json.loads(json.dumps(event_to_dict(ev)))) == ev
    with pytest.raises(LocalProtocolError, match="not sound"):
        accountant_for("prv").epsilon([ev], delta=1e-5)


# -- in the masking protocol -----------------------------------------------------------------

def test_masked_sum_carries_the_target_noise():
    n, d, clip, noise = 5, 4000, 1.0, 0.5
    rng = np.random.default_rng(3)
    vecs = {i: (rng.standard_normal(d) * 0.3 / math.sqrt(d)).astype(np.float32) for i in range(n)}
    sums, _, clients, errors = run_pass(vecs, {i: [1.0] for i in range(n)},
                                        backend=MaskingSum(distributed_noise=(clip, noise)))
    assert not errors
    err = sums[0]["v"].numpy() - sum(vecs.values())
    assert err.std() == pytest.approx(noise * clip, rel=0.05)  # the target std, split over 5 clients
    rec = clients[0].noise.take()
    assert [(r.cluster, r.cohort, r.dim) for r in rec] == [(0, n, d)]


def test_dropped_client_leaves_less_noise_in_the_sum():
    n, d = 5, 4000
    vecs = {i: np.zeros(d, dtype=np.float32) for i in range(n)}
    sums, server, _, _ = run_pass(vecs, {i: [1.0] for i in range(n)}, drop={4: "input"},
                                  backend=MaskingSum(distributed_noise=(1.0, 0.5)))
    assert server.contributors == {0, 1, 2, 3}
    assert sums[0]["v"].numpy().std() == pytest.approx(0.5 * math.sqrt(4 / 5), rel=0.05)


def test_run_with_masking_and_distributed_noise_reports_the_mechanism(tmp_path):
    from fedhft_secure.runtime import run

    cfg = load_config(None, tiny_overrides(**{"secure.backend": '"masking"', "privacy.distributed_noise": "4.0",
                                              "privacy.accountant": '"prv"', "fed.rounds": "1",
                                              "fed.num_clients": "4", "fed.clusters": "1"}))
    run(cfg, tmp_path, progress=False)
    rep = json.loads((tmp_path / "epsilon_report.json").read_text())
    assert len(rep["clients"]) == 4
    for c in rep["clients"]:
        (m,) = [m for m in c["mechanisms"] if m["name"] == DISTRIBUTED]
        assert m["accountant"] == "rdp"  # PRV is not sound for a sum of discrete Gaussians
        assert 0 < m["epsilon"] < math.inf and m["delta"] == 1e-5
        assert m["noise_std"] == 4.0 and m["clip"] == 1.0 and m["contributors_min"] == m["cohort_min"] == 4
        assert "replace" in m["neighbouring"] and m["steps"] > 0
        assert m["other_accountants"]["prv"].startswith("not applicable")
    assert "distributed-discrete-gaussian" in (tmp_path / "report.html").read_text()
