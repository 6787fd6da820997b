"""The pass plan computes exactly what torch.svd_lowrank computes on the explicit S_j."""

import pytest
import torch

from fedhft_secure.algorithm.aggregate import ClientFactors, dense_cluster_sums, explicit_refactor
from fedhft_secure.algorithm.lowrank import client_product, plan_layer
from fedhft_secure.model.lora import LayerFactors


def random_clients(gen, n, out, inp, r, keep=0.6):
    clients = []
    for _ in range(n):
        m = torch.rand(out, generator=gen) < keep
        B = torch.randn(out, r, generator=gen) * m.unsqueeze(1)
        A = torch.randn(r, inp, generator=gen)
        clients.append(ClientFactors(layers={"l": LayerFactors(B=B, A=A)}, masks={"l": m},
                                     head={"w": torch.randn(2, 3, generator=gen)}))
    return clients


def run_plan(clients, probs, j, G, *, out, inp, q, niter, seed):
    plan = plan_layer(out=out, inp=inp, q=q, niter=niter, G=G)
    plan.counts = sum(float(probs[i, j]) * c.masks["l"].float() for i, c in enumerate(clients))
    for p in range(plan.num_passes):
        req = plan.request(p, seed)
        if req is None:
            continue
        op, X = req
        plan.absorb(sum(float(probs[i, j]) * client_product(op, c.layers["l"].B, c.layers["l"].A, X)
                        for i, c in enumerate(clients)))
    return plan


@pytest.mark.parametrize("out,inp", [(24, 24), (40, 16), (16, 40)])
@pytest.mark.parametrize("niter", [0, 1, 2])
@pytest.mark.parametrize("with_g", [False, True])
def test_pass_plan_equals_svd_lowrank(out, inp, niter, with_g):
    gen = torch.Generator().manual_seed(out * 100 + inp + niter)
    r, q, K, seed = 4, 6, 3, 1234
    clients = random_clients(gen, 5, out, inp, r)
    probs = torch.distributions.Dirichlet(torch.ones(K)).sample((5,))
    G = [{"l": torch.randn(out, inp, generator=gen)} if with_g else None for _ in range(K)]
    S = dense_cluster_sums(clients, probs, G)
    for j in range(K):
        plan = run_plan(clients, probs, j, G[j]["l"] if with_g else None, out=out, inp=inp, q=q,
                        niter=niter, seed=seed)
        # torch.svd_lowrank on the explicit S_j, its Gaussian drawn after manual_seed(seed)
        torch.manual_seed(seed)
        U, s, V = torch.svd_lowrank(S[j]["l"], q=q, niter=niter)
        pU, ps, pV = plan.result
        assert torch.allclose(ps, s, rtol=1e-5, atol=1e-6 * float(s[0]))
        full_ref = U @ torch.diag(s) @ V.T
        full_plan = pU @ torch.diag(ps) @ pV.T
        assert (full_plan - full_ref).norm() <= 1e-5 * full_ref.norm()
        B, A = plan.factors(r)
        ref = explicit_refactor(S[j]["l"], r=r, q=q, niter=niter, seed=seed)
        assert (B @ A - ref.delta()).norm() <= 1e-5 * ref.delta().norm()


def test_plan_is_rank_r_optimal_on_low_rank_input():
    """With enough power iterations, a rank-r S_j is recovered exactly."""
    gen = torch.Generator().manual_seed(0)
    clients = random_clients(gen, 1, 30, 20, 3, keep=1.0)
    probs = torch.ones(1, 1)
    plan = run_plan(clients, probs, 0, None, out=30, inp=20, q=5, niter=2, seed=7)
    B, A = plan.factors(3)
    target = clients[0].layers["l"].delta()
    assert (B @ A - target).norm() <= 1e-4 * target.norm()


def test_explicit_refactor_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    explicit_refactor(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)), r=2, q=3, niter=1, seed=99)
    assert torch.equal(torch.rand(3), expected)
