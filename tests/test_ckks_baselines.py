"""The comparison methods under ckks: the server forwards one sum ciphertext per round, members aggregate it."""

from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from fedhft_secure.exceptions import ConfigError, MalformedMessage
from fedhft_secure.fl.average import AverageServer, CkksAverageServer
from fedhft_secure.fl.baselines import SUM_METHODS, client_weight, expected_shapes, frozen_A
from fedhft_secure.fl.member import AverageMember
from fedhft_secure.fl.messages import RoundLog, decode, encode
from fedhft_secure.fl.server_ckks import CkksPassServer
from fedhft_secure.runtime import run
from fedhft_secure.runtime.checkpoint import CHECKPOINT, load_checkpoint
from fedhft_secure.runtime.local import exchange, member_view

HET = {"fed.rounds": "1", "fed.levels": "[1.0, 0.5]", "fed.level_ratios": "[0.5, 0.5]"}


def same_state(a, b):
    return all(torch.equal(x[n].B, y[n].B) and torch.equal(x[n].A, y[n].A) for x, y in zip(a.adapters, b.adapters)
               for n in x) and all(torch.equal(x[k], y[k]) for x, y in zip(a.heads, b.heads) for k in x)


def dropper(stage, client, rnd=0):
    def fault(s, r, i, blob):
        return None if (i == client and s == stage and r == rnd) else blob
    return fault


def one_run(cfg, out, fault=None):
    """A run that also hands back its world and its server object (to look inside them afterwards)."""
    seen = {}

    def recorded(server, *args, **kw):
        seen["server"] = server
        return exchange(server, *args, **kw)

    res = run(cfg, out, progress=False, fault=fault, prepare=lambda w: seen.setdefault("world", w),
              exchange_fn=recorded)
    return SimpleNamespace(res=res, world=seen["world"], server=seen["server"], state=load_checkpoint(out)[0],
                           out=out)


def cfg_for(tiny_cfg, method, backend, **extra):
    return tiny_cfg(method=f'"{method}"', **{**HET, "secure.backend": f'"{backend}"', **extra})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """method -> the same one-round run under plaintext and under ckks (made on first use)."""
    from conftest import tiny_overrides
    from fedhft_secure.config import load_config

    cache = {}

    def get(method):
        if method not in cache:
            out = tmp_path_factory.mktemp(method)
            mk = lambda **kw: load_config(None, tiny_overrides(**kw))  # noqa: E731
            cache[method] = {b: one_run(cfg_for(mk, method, b), out / b) for b in ("plaintext", "ckks")}
        return cache[method]
    return get


def total_weight(method, world, clients=None):
    """Σ_i w_i as the clients computed it (baseline_client.answer_baseline)."""
    return sum(client_weight(method, c.factors.layers, len(c.data.train)) if method == "hetlora"
               else len(c.data.train) / c.data.weight_unit for c in world.clients if clients is None or c.data.id in clients)


def assert_close_to(view, plain, method, world, W):
    """The opened sums S', W' are within e of S, W per value, so |S'/W' - S/W| <= e (1 + |S/W|) / (W - e)."""
    e = world.backend.error_bound

    def near(got, ref, what):
        m = ref.abs().max().item()
        assert (got - ref).abs().max().item() <= e * (1 + m) / (W - e) + 1e-6 * m, what  # + float32 rounding

    for name, f in plain.adapters[0].items():
        g = view.adapters[0][name]
        if method == "flexlora":  # the rank-r SVD of the opened mean: compare the products
            assert (g.delta() - f.delta()).norm() <= 1e-3 * f.delta().norm(), name
            continue
        near(g.A, f.A, (name, "A"))
        near(g.B, f.B, (name, "B"))
    for k, v in plain.heads[0].items():
        near(view.heads[0][k], v, k)


@pytest.mark.parametrize("method", SUM_METHODS)
def test_ckks_global_model_matches_plaintext_and_the_server_holds_none(pair, method):
    runs = pair(method)
    ck, pl = runs["ckks"], runs["plaintext"]
    assert all(c["completed"] for c in ck.res["rounds"][0]["clients"]) and not ck.res["rounds"][0]["dropped"]
    members = [c.member for c in ck.world.clients]  # every member derived the same model, bit for bit
    assert all(isinstance(m, AverageMember) and m.state.round == 1 for m in members)
    assert all(same_state(m.state, members[0].state) for m in members[1:])
    # round 0 starts from the same model on both sides: the same training, the same client vectors
    for a, b in zip(ck.world.clients, pl.world.clients):
        assert all(torch.equal(a.factors.layers[n].B, f.B) for n, f in b.factors.layers.items())
    view = member_view(ck.world, ck.state)
    assert_close_to(view, pl.state, method, ck.world, total_weight(method, pl.world))
    g = view.adapters[0]
    if method == "ffa-lora":
        assert all(torch.equal(f.A, frozen_A(ck.world.cfg.seed, n, f.A.shape[0], f.A.shape[1])) for n, f in g.items())
    if method == "fedsa-lora":  # only A and the head are shared; each client keeps the B it trained
        shapes = expected_shapes(method, ck.world.layer_shapes, {}, ck.world.cfg.lora.r)
        assert not any(k.startswith("B/") for k in shapes) and all(f.B.abs().sum() == 0 for f in g.values())
        name = next(iter(g))
        for c in ck.world.clients:
            assert torch.equal(c.own["B"][name], c.factors.layers[name].B)
        assert not torch.equal(ck.world.clients[0].own["B"][name], ck.world.clients[1].own["B"][name])
    # the server: ciphertexts only, and no key to open them
    assert type(pl.server) is AverageServer and isinstance(ck.server, CkksAverageServer)
    assert ck.state.heads == [] and ck.state.adapters == [] and ck.state.G == [None]
    assert getattr(ck.server, "_sums", None) is None and all(isinstance(b, bytes) for b in ck.server.pass_sums[0])
    assert len(ck.state.log) == 1 and len(ck.state.log[0].sums) == 1
    assert ck.state.synced == {i: 0 for i in range(ck.world.cfg.fed.num_clients)}
    tensors = load_file(str(ck.out / CHECKPOINT))
    assert {k.split("/")[0] for k in tensors} == {"probs", "log"}
    assert all(v.dtype == torch.uint8 for k, v in tensors.items() if k != "probs")
    assert ck.world.backend.client is None and not ck.world.backend.server.ctx.has_secret_key()


def test_a_member_replays_the_log_and_refuses_a_sum_without_weight(pair):
    ck = pair("fedavg-lora")["ckks"]
    w, c0 = ck.world, ck.world.clients[0]

    def fresh():
        return AverageMember(backend=c0.backend, cfg=w.cfg, shapes=w.layer_shapes, head=w.initial_head,
                             count_floor=c0.backend.error_bound)

    m = fresh()
    m.apply(decode(encode(CkksPassServer.log_message(ck.state.log[0], 0)), RoundLog))
    assert same_state(m.state, c0.member.state)
    empty = RoundLog(round=0, epoch=0, totals=[6.0], passes=1, first_pass=0, sums={})
    with pytest.raises(MalformedMessage, match="weight"):
        fresh().apply(empty)


def test_a_client_that_drops_before_its_upload_is_left_out(tmp_path, tiny_cfg):
    """Its request never arrives: the round is the exact sum over the others, under either backend."""
    got = {b: one_run(cfg_for(tiny_cfg, "fedavg-lora", b), tmp_path / b, fault=dropper("pass:0>", 1))
           for b in ("plaintext", "ckks")}
    for r in got.values():
        assert [c["completed"] for c in r.res["rounds"][0]["clients"]] == [i != 1 for i in range(6)]
    ck, pl = got["ckks"], got["plaintext"]
    assert all(m.state.round == 1 for c in ck.world.clients if (m := c.member) and c.data.id != 1)
    assert ck.world.clients[1].member.state.round == 0  # it was sent no result
    W = total_weight("fedavg-lora", pl.world, clients=set(range(6)) - {1})
    assert_close_to(member_view(ck.world, ck.state), pl.state, "fedavg-lora", ck.world, W)


def test_a_client_that_drops_after_its_upload_catches_up(tmp_path, tiny_cfg):
    """It misses the result of round 0 (its vector is in the sum): the sync stage replays it in round 1."""
    ck = one_run(cfg_for(tiny_cfg, "fedavg-lora", "ckks", **{"fed.rounds": "2"}), tmp_path,
                 fault=dropper("result>", 1))
    assert all(c["completed"] for r in ck.res["rounds"] for c in r["clients"])
    members = [c.member for c in ck.world.clients]
    assert all(m.state.round == 2 and same_state(m.state, members[0].state) for m in members)
    assert ck.state.synced == {i: 1 for i in range(6)} and len(ck.state.log) == 2


def test_local_runs_under_ckks(tmp_path, tiny_cfg):
    """Nothing is aggregated: the start is the initial head (it used to load an empty one)."""
    res = run(cfg_for(tiny_cfg, "local", "ckks"), tmp_path, progress=False)
    assert all(c["completed"] for c in res["rounds"][0]["clients"])


@pytest.mark.parametrize("method", ["fedavg-lora", "fedhft"])
def test_flower_refuses_ckks_before_it_starts(tmp_path, tiny_cfg, method):
    from fedhft_secure.runtime.flower.sim import run_flower_sim

    cfg = cfg_for(tiny_cfg, method, "ckks")
    with pytest.raises(ConfigError, match="secure.backend") as err:
        run_flower_sim(cfg, tmp_path)
    assert "plaintext, masking" in str(err.value) and not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="secure.backend"):  # and the runner's own guard
        run(cfg, tmp_path / "x", progress=False, make_world=lambda cfg: None)
