"""Per-cluster aggregation against a literal reading of DESIGN §1, and the server around it."""

import numpy as np
import torch

from fedhft_secure.algorithm.aggregate import ClientFactors, dense_cluster_sums, weighted_heads
from fedhft_secure.model.lora import LayerFactors


def literal_reference(clients, probs, G):
    """Row by row, as the formula reads: S_j = G_j + D_j^{-1} Σ_i p_ij diag(m_i) B_i A_i."""
    n, K = probs.shape
    out = []
    for j in range(K):
        res = {}
        for name in clients[0].layers:
            rows, cols = clients[0].layers[name].delta().shape
            S = np.zeros((rows, cols))
            for row in range(rows):
                num = np.zeros(cols)
                den = 0.0
                for i, c in enumerate(clients):
                    if bool(c.masks[name][row]):
                        num += float(probs[i, j]) * (c.layers[name].B[row] @ c.layers[name].A).numpy()
                        den += float(probs[i, j])
                S[row] = num / den if den > 0 else 0.0
            if G[j] is not None:
                S += G[j][name].numpy()
            res[name] = S
        out.append(res)
    return out


def make_clients(seed, n=4, out=10, inp=7, r=3):
    gen = torch.Generator().manual_seed(seed)
    clients = []
    for i in range(n):
        m = torch.rand(out, generator=gen) < 0.5 + 0.1 * i
        B = torch.randn(out, r, generator=gen) * m.unsqueeze(1)
        clients.append(ClientFactors(
            layers={"a": LayerFactors(B=B, A=torch.randn(r, inp, generator=gen))},
            masks={"a": m}, head={"w": torch.randn(2, 4, generator=gen)}))
    return clients


def test_dense_sums_match_literal_formula():
    clients = make_clients(0)
    probs = torch.distributions.Dirichlet(torch.ones(3)).sample((4,))
    G = [None, {"a": torch.randn(10, 7)}, None]
    got = dense_cluster_sums(clients, probs, G)
    want = literal_reference(clients, probs, G)
    for j in range(3):
        np.testing.assert_allclose(got[j]["a"].numpy(), want[j]["a"], rtol=1e-5, atol=1e-5)


def test_clusters_get_different_sums():
    """The official code's ``[x] * K`` shares one buffer: every cluster would get the same sum."""
    clients = make_clients(1)
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9], [0.3, 0.3, 0.4]])
    got = dense_cluster_sums(clients, probs, [None] * 3)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not torch.allclose(got[a]["a"], got[b]["a"])


def test_row_counts_are_weighted_not_counted():
    """A row held by one client with p = 0.1 equals that client's row (weighted mean), not 0.1 x it."""
    out, inp, r = 4, 3, 2
    m = torch.tensor([True, False, False, False])
    B = torch.randn(out, r) * m.unsqueeze(1)
    c = ClientFactors(layers={"a": LayerFactors(B=B, A=torch.randn(r, inp))}, masks={"a": m},
                      head={"w": torch.ones(1)})
    S = dense_cluster_sums([c], torch.tensor([[0.1, 0.9]]), [None, None])
    torch.testing.assert_close(S[0]["a"][0], c.layers["a"].delta()[0])
    assert float(S[0]["a"][1:].abs().sum()) == 0.0


def test_heads_are_divided_by_weight_sums():
    clients = make_clients(2)
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.25, 0.75]])
    heads = weighted_heads(clients, probs)
    for j in range(2):
        want = sum(float(probs[i, j]) * c.head["w"] for i, c in enumerate(clients)) / float(probs[:, j].sum())
        torch.testing.assert_close(heads[j]["w"], want)
