"""Protected sketches: clipped + Gaussian noise on the client; the server's mixture still finds the groups."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from fedhft_secure.algorithm.cluster import SketchProjector, soft_clusters
from fedhft_secure.config import PrivacyConfig, RunConfig
from fedhft_secure.privacy.accountant import accountant_for
from fedhft_secure.privacy.events import SketchReleased
from fedhft_secure.privacy.sketch import clip_sketch, protect_sketch

#: the sigma this test checks (the largest of 0.1, 0.2, 0.3, 0.5 that passes); privacy.sketch_noise
#: defaults to 0 (off): see README "Privacy" for why
SIGMA = 0.1


def population_sketches(sigma: float, clip: float, seed: int, n_per: int = 20, dim: int = 770):
    """Clients of two populations: update = population direction + client-specific spread."""
    g = torch.Generator().manual_seed(seed)
    proj = SketchProjector(seed=seed + 1, n=dim, d=RunConfig().fed.sketch_dim)
    mus = torch.randn(2, dim, generator=g)
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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_recovers_two_populations_from_noisy_sketches(seed):
    cov = RunConfig().fed.gmm_covariance
    sk, truth = population_sketches(SIGMA, PrivacyConfig().sketch_clip, seed)
    probs = soft_clusters(sk, 2, covariance=cov, seed=seed)
    assert adjusted_rand_score(truth, probs.argmax(1)) >= 0.9


def test_much_more_noise_does_hide_the_populations():
    """The ARI test can fail: at sigma = 8 the noise swamps the clipped signal."""
    sk, truth = population_sketches(8.0, PrivacyConfig().sketch_clip, 0)
    probs = soft_clusters(sk, 2, covariance=RunConfig().fed.gmm_covariance, seed=0)
    assert adjusted_rand_score(truth, probs.argmax(1)) < 0.5


def test_sketch_release_is_a_gaussian_mechanism_with_half_the_multiplier():
    """Replacing a client's data moves a clipped sketch by <= 2C: multiplier sigma / 2."""
    e = SketchReleased(client=0, round=0, noise=2.0, clip=1.0)
    assert e.compositions() == [(1.0, 1.0, 1)]
    eps1 = accountant_for("rdp").epsilon([e], delta=1e-5)
    eps4 = accountant_for("rdp").epsilon([e] * 4, delta=1e-5)
    assert 0 < eps1 < eps4 < 4 * eps1
