"""Protected sketches: clipped + Gaussian noise on the client; the server's mixture still finds the groups."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from fedhft_secure.algorithm.cluster import SketchProjector, soft_clusters
from fedhft_secure.config import PrivacyConfig, RunConfig
from fedhft_secure.privacy.accountant import accountant_for
from fedhft_secure.privacy.events import SketchReleased
from fedhft_secure.privacy.sketch import clip_sketch, protect_sketch

#: The sketch's privacy-utility trade-off, measured (README "Privacy"). Under client-level
#: neighbouring (replace the client's data: sensitivity 2C) the server must tell a client's
#: population from its one noisy sketch, so ARI >= 0.9 (about 97.5% of clients right) needs
#: epsilon >= ln(0.975/0.025) ~ 3.7 for ANY mechanism, and ~25 per release for this Gaussian one
#: even with opposite populations (accuracy at most Phi(1/sigma)). What passes, 100 clients per
#: population, 64-d sketches, full-covariance mixture:
#:   sigma 0.2 (epsilon per release: RDP 96, PRV 92), populations with independent means;
#:   sigma 0.4 (RDP 35, PRV 33), opposite means (2-class label skew pushes heads apart).
#: At sigma 1.0 (RDP 10.7, PRV 10.0) the mixture finds nothing (ARI < 0.2). privacy.sketch_noise
#: stays 0 (off) by default: no sigma gives a meaningful epsilon and a usable clustering.
SIGMA = 0.2
SIGMA_OPPOSITE = 0.4
N_PER = 100


def population_sketches(sigma: float, clip: float, seed: int, n_per: int = N_PER, dim: int = 770,
                        opposite: bool = False):
    """Clients of two populations: update = population direction + client-specific spread."""
    g = torch.Generator().manual_seed(seed)
    proj = SketchProjector(seed=seed + 1, n=dim, d=RunConfig().fed.sketch_dim)
    mus = torch.randn(2, dim, generator=g)
    if opposite:
        mus[1] = -mus[0]
    labels, out = [], []
    for pop in range(2):
        for _ in range(n_per):
            update = mus[pop] + 0.5 * torch.randn(dim, generator=g)
            out.append(protect_sketch(proj(update), clip=clip, noise=sigma, generator=g))
            labels.append(pop)
    return torch.stack(out).double().numpy(), np.array(labels)


def test_clip_bounds_the_norm_and_keeps_short_vectors():
    v = torch.tensor([3.0, 4.0])
    assert float(clip_sketch(v, 1.0).norm()) == pytest.approx(1.0)
    assert torch.equal(clip_sketch(v, 10.0), v)


def test_noise_has_the_stated_scale():
    g = torch.Generator().manual_seed(0)
    out = torch.stack([protect_sketch(torch.zeros(64), clip=0.2, noise=1.5, generator=g) for _ in range(400)])
    assert float(out.std()) == pytest.approx(0.3, rel=0.05)


def _ari(sigma: float, seed: int, **kw) -> float:
    sk, truth = population_sketches(sigma, PrivacyConfig().sketch_clip, seed, **kw)
    probs = soft_clusters(sk, 2, covariance=RunConfig().fed.gmm_covariance, seed=seed)
    return adjusted_rand_score(truth, probs.argmax(1))


def _eps(sigma: float, accountant: str) -> float:
    return accountant_for(accountant).epsilon([SketchReleased(client=0, round=0, noise=sigma, clip=1.0)],
                                              delta=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_recovers_two_populations_from_noisy_sketches(seed):
    assert _ari(SIGMA, seed) >= 0.9
    assert _ari(SIGMA_OPPOSITE, seed, opposite=True) >= 0.9
    assert 95 < _eps(SIGMA, "rdp") < 97 and 34 < _eps(SIGMA_OPPOSITE, "rdp") < 36  # the price, as stated


def test_at_epsilon_about_10_the_populations_stay_hidden():
    """The honest half of the trade-off: sigma = 1 costs ~10 per release and the mixture sees nothing."""
    assert 10.5 < _eps(1.0, "rdp") < 11 and 9.5 < _eps(1.0, "prv") < 10.5
    assert _ari(1.0, 0) < 0.2 and _ari(1.0, 0, opposite=True) < 0.2


def test_ari_0_9_needs_epsilon_3_7_whatever_the_mechanism():
    """Telling a client's population is a test between neighbouring datasets: TPR <= e^eps FPR + delta,
    so balanced accuracy a <= (e^eps + delta) / (1 + e^eps); ARI 0.9 on two halves needs a ~ 0.975."""
    truth = np.repeat([0, 1], 200)
    guess = truth.copy()
    guess[::40] ^= 1  # 2.5% wrong
    assert adjusted_rand_score(truth, guess) == pytest.approx(0.9, abs=0.01)
    assert math.log(0.975 / 0.025) == pytest.approx(3.66, abs=0.01)


def test_much_more_noise_does_hide_the_populations():
    """The ARI test can fail: at sigma = 8 the noise swamps the clipped signal."""
    sk, truth = population_sketches(8.0, PrivacyConfig().sketch_clip, 0, n_per=20)
    probs = soft_clusters(sk, 2, covariance=RunConfig().fed.gmm_covariance, seed=0)
    assert adjusted_rand_score(truth, probs.argmax(1)) < 0.5


def test_sketch_release_is_a_gaussian_mechanism_with_half_the_multiplier():
    """Replacing a client's data moves a clipped sketch by <= 2C: multiplier sigma / 2."""
    e = SketchReleased(client=0, round=0, noise=2.0, clip=1.0)
    assert e.compositions() == [(1.0, 1.0, 1)]
    eps1 = accountant_for("rdp").epsilon([e], delta=1e-5)
    eps4 = accountant_for("rdp").epsilon([e] * 4, delta=1e-5)
    assert 0 < eps1 < eps4 < 4 * eps1
