"""The comparison methods: each is one weighted sum, and the server's model is what the method defines."""

import pytest
import torch

from fedhft_secure.config import load_config
from fedhft_secure.exceptions import ConfigError
from fedhft_secure.fl.baselines import METHODS, aggregate, client_rank, contribution, frozen_A, uses_levels
from fedhft_secure.model.lora import LayerFactors
from fedhft_secure.runtime.checkpoint import load_checkpoint
from fedhft_secure.runtime.local import run

SHAPES = {"L": (6, 5)}
R = 4


def clients(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        rank = R if i % 2 == 0 else R // 2
        f = {"L": LayerFactors(B=torch.randn(6, rank, generator=g), A=torch.randn(rank, 5, generator=g))}
        out.append((f, {"w": torch.randn(2, 3, generator=g)}, float(i + 1)))
    return out


def summed(method, cs):
    parts = [contribution(method, f, h, weight=w, r=R) for f, h, w in cs]
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def test_fedavg_averages_A_and_B_separately():
    cs = [(f, h, w) for f, h, w in clients() if f["L"].A.shape[0] == R]
    model, head = aggregate("fedavg-lora", summed("fedavg-lora", cs), SHAPES, r=R, seed=0)
    W = sum(w for *_, w in cs)
    torch.testing.assert_close(model["L"].A, sum(w * f["L"].A for f, _, w in cs) / W)
    torch.testing.assert_close(model["L"].B, sum(w * f["L"].B for f, _, w in cs) / W)
    torch.testing.assert_close(head["w"], sum(w * h["w"] for _, h, w in cs) / W)


def test_ffa_keeps_the_public_A_and_fedsa_shares_no_B():
    cs = [(f, h, w) for f, h, w in clients() if f["L"].A.shape[0] == R]
    ffa, _ = aggregate("ffa-lora", summed("ffa-lora", cs), SHAPES, r=R, seed=7)
    torch.testing.assert_close(ffa["L"].A, frozen_A(7, "L", R, 5))
    assert "A/L" not in summed("ffa-lora", cs)
    sa = summed("fedsa-lora", cs)
    assert "B/L" not in sa
    fedsa, _ = aggregate("fedsa-lora", sa, SHAPES, r=R, seed=0)
    assert fedsa["L"].B.abs().sum() == 0


def test_hetlora_pads_and_flexlora_refactors_the_mean_update():
    cs = clients()
    het, _ = aggregate("hetlora", summed("hetlora", cs), SHAPES, r=R, seed=0)
    W = sum(w for *_, w in cs)
    pad = [torch.cat([f["L"].A, torch.zeros(R - f["L"].A.shape[0], 5)]) for f, _, _ in cs]
    torch.testing.assert_close(het["L"].A, sum(w * a for (_, _, w), a in zip(cs, pad)) / W)
    flex, _ = aggregate("flexlora", summed("flexlora", cs), SHAPES, r=R, seed=0)
    mean = sum(w * f["L"].delta() for f, _, w in cs) / W
    U, S, Vh = torch.linalg.svd(mean.double())
    best = (U[:, :R] * S[:R]) @ Vh[:R]
    torch.testing.assert_close(flex["L"].delta().double(), best, rtol=1e-4, atol=1e-5)
    assert client_rank("hetlora", 0.5, 8) == 4 and client_rank("fedavg-lora", 0.5, 8) == 8


def test_method_config(tiny_cfg):
    assert tiny_cfg(method='"fedavg-lora"').fed.clusters == 1  # one global model
    assert tiny_cfg().fed.clusters == 2
    with pytest.raises(ConfigError, match="hetlora"):
        tiny_cfg(method='"fedprox"')


@pytest.mark.parametrize("method", ["fedavg-lora", "ffa-lora", "fedsa-lora", "hetlora", "flexlora", "local",
                                    "central"])
def test_every_method_runs_a_round(tmp_path, tiny_cfg, method):
    cfg = tiny_cfg(method=f'"{method}"', **{"fed.rounds": "1", "fed.levels": "[1.0, 0.5]",
                                            "fed.level_ratios": "[0.5, 0.5]"})
    seen = {}
    res = run(cfg, tmp_path, progress=False, prepare=lambda w: seen.setdefault("world", w))
    world = seen["world"]
    final = res["final"]
    assert final["method"] == method and 0 <= final["personalized_accuracy"] <= 1
    assert 0 <= final["test_accuracy"] <= 1
    assert all(c["completed"] for c in res["rounds"][0]["clients"])
    up = [c["bytes_up"] for c in res["rounds"][0]["clients"]]
    if method in ("local", "central"):
        assert max(up) < 100  # a Ready message: nothing else leaves a client
        assert len(world.clients) == (1 if method == "central" else cfg.fed.num_clients)
        return
    state, _ = load_checkpoint(tmp_path)
    model = state.adapters[0]
    cs = world.clients
    if method in ("fedavg-lora", "ffa-lora"):
        n = torch.tensor([len(c.data.train) for c in cs], dtype=torch.float32)
        for name, f in model.items():
            B = sum(w * c.factors.layers[name].B for w, c in zip(n, cs)) / n.sum()
            torch.testing.assert_close(f.B, B, rtol=1e-4, atol=1e-6)
            if method == "ffa-lora":  # A never trained, never sent
                for c in cs:
                    torch.testing.assert_close(c.factors.layers[name].A, f.A)
    if method == "fedsa-lora":
        name = next(iter(model))
        assert not torch.equal(cs[0].own["B"][name], cs[1].own["B"][name])  # B stayed local
    if method in ("hetlora", "flexlora"):
        ranks = {c.data.level: next(iter(c.factors.layers.values())).A.shape[0] for c in cs}
        assert ranks == {1.0: cfg.lora.r, 0.5: cfg.lora.r // 2}


def test_example_count_weights_share_one_public_unit(tiny_cfg):
    """Weights are n_i / unit with one unit for all clients (the pool per client), also when the whole pool is
    used (data.train_size = 0): a unit taken from each client's own size would weight every client alike."""
    from fedhft_secure.runtime.world import build_world

    for size in ("0", "320"):
        world = build_world(tiny_cfg(method='"fedavg-lora"', **{"data.train_size": size}))
        units = {c.data.weight_unit for c in world.clients}
        pool = sum(len(c.data.train) + len(c.data.val) for c in world.clients)
        assert units == {pool / world.cfg.fed.num_clients}
        assert len({len(c.data.train) for c in world.clients}) > 1  # so equal weights would be wrong
        if size == "320":
            assert pool == 320


def test_fedavg_with_masking_matches_plaintext(tmp_path, tiny_cfg):
    states = {}
    for backend in ("plaintext", "masking"):
        cfg = tiny_cfg(method='"fedavg-lora"', **{"fed.rounds": "1", "secure.backend": f'"{backend}"'})
        run(cfg, tmp_path / backend, progress=False)
        states[backend], _ = load_checkpoint(tmp_path / backend)
    for name, f in states["plaintext"].adapters[0].items():
        g = states["masking"].adapters[0][name]
        torch.testing.assert_close(g.A, f.A, rtol=1e-3, atol=1e-5)
        torch.testing.assert_close(g.B, f.B, rtol=1e-3, atol=1e-5)


def test_levels_change_nothing_for_the_methods_that_do_not_use_them(tmp_path, tiny_cfg):
    """experiments/compare.py lets a method's default-levels run stand for it at other levels when
    ``uses_levels`` says levels mean nothing to it: the two runs must be the same computation."""
    assert [m for m in METHODS if uses_levels(m)] == ["fedhft", "hetlora", "flexlora"]
    assert all(client_rank(m, lv, 8) == 8 for m in METHODS if not uses_levels(m) for lv in (1.0, 0.5, 0.25))
    out = {}
    for levels, ratios in (("[1.0, 0.5]", "[0.5, 0.5]"), ("[1.0, 0.5, 0.25]", "[0.4, 0.3, 0.3]")):
        cfg = tiny_cfg(method='"fedavg-lora"', **{"fed.rounds": "1", "fed.levels": levels, "fed.level_ratios": ratios})
        res = run(cfg, tmp_path / levels, progress=False)
        out[levels] = res["final"], load_checkpoint(tmp_path / levels)[0].adapters[0]
    (f1, m1), (f3, m3) = out.values()
    assert f1["personalized_accuracy"] == f3["personalized_accuracy"] and f1["test_accuracy"] == f3["test_accuracy"]
    for name, f in m1.items():
        assert torch.equal(f.A, m3[name].A) and torch.equal(f.B, m3[name].B)
