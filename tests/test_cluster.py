import numpy as np
import torch

from fedhft_secure.algorithm.cluster import SketchProjector, align_clusters, soft_clusters


def test_alignment_keeps_cluster_identity():
    prev = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    new = prev[:, [2, 0, 1]]  # the same grouping, components renumbered
    np.testing.assert_array_equal(align_clusters(prev, new), prev)


def test_alignment_from_uniform_is_a_permutation():
    prev = np.full((4, 2), 0.5)
    new = np.array([[0.9, 0.1], [0.2, 0.8], [1, 0], [0, 1.0]])
    out = align_clusters(prev, new)
    assert sorted(map(tuple, out.T.tolist())) == sorted(map(tuple, new.T.tolist()))


def test_mixture_separates_two_groups():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (5, 8)) + 3
    b = rng.normal(0, 0.1, (5, 8)) - 3
    p = soft_clusters(np.vstack([a, b]), 2, covariance="diag", seed=0)
    hard = p.argmax(1)
    assert len(set(hard[:5])) == 1 and len(set(hard[5:])) == 1 and hard[0] != hard[5]
    np.testing.assert_allclose(p.sum(1), 1.0)


def test_projection_is_public_and_seeded():
    p1, p2 = SketchProjector(seed=3, n=10, d=4), SketchProjector(seed=3, n=10, d=4)
    v = torch.randn(10)
    assert torch.equal(p1(v), p2(v)) and p1(v).shape == (4,)
