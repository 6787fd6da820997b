"""The ckks backend in the round: members derive the model, the server keeps ciphertexts only."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fedhft_secure.exceptions import MissingKey, RemoteProtocolError, ReplayedMessage, WrongRound
from fedhft_secure.fl.messages import PassReply, RoundLog, decode, encode
from fedhft_secure.fl.server_ckks import CkksPassServer
from fedhft_secure.runtime import run
from fedhft_secure.runtime.checkpoint import CHECKPOINT, load_checkpoint
from fedhft_secure.runtime.local import member_view
from fedhft_secure.runtime.world import build_world
from fedhft_secure.secure import PlaintextSum
from fedhft_secure.secure.api import Contribution, Expected, SessionInfo
from fedhft_secure.secure.ckks import derive_params, generate_keys
from fedhft_secure.secure.ckks.sum import CkksSum

CKKS = {"secure.backend": '"ckks"'}


def same_state(a, b):
    return all(torch.equal(x[n].B, y[n].B) and torch.equal(x[n].A, y[n].A) for x, y in zip(a.adapters, b.adapters)
               for n in x) and all(torch.equal(x[k], y[k]) for x, y in zip(a.heads, b.heads) for k in x)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """One two-round run per backend on the tiny model, same seed (shared by the tests below)."""
    from conftest import tiny_overrides
    from fedhft_secure.config import load_config

    out = tmp_path_factory.mktemp("ckks-round")
    worlds, res = [], {}
    res["ckks"] = run(load_config(None, tiny_overrides(**CKKS)), out / "ckks", progress=False,
                      prepare=worlds.append)
    res["plaintext"] = run(load_config(None, tiny_overrides()), out / "plain", progress=False)
    return out, worlds[0], res


def test_members_agree_bit_for_bit_and_match_plaintext(runs):
    out, world, res = runs
    state, _ = load_checkpoint(out / "ckks")
    members = [c.member for c in world.clients]
    assert len(members) >= 3 and all(m.state.round == state.round == 2 for m in members)
    for m in members[1:]:
        assert same_state(m.state, members[0].state)
    view = member_view(world, state)
    plain, _ = load_checkpoint(out / "plain")
    for j in range(2):
        for n, f in plain.adapters[j].items():
            ref = f.delta()
            assert (view.adapters[j][n].delta() - ref).norm() <= 1e-3 * ref.norm(), (j, n)
        for k, v in plain.heads[j].items():
            torch.testing.assert_close(view.heads[j][k], v, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(state.probs, plain.probs, atol=1e-3)
    assert abs(res["ckks"]["final"]["test_accuracy"] - res["plaintext"]["final"]["test_accuracy"]) <= 0.001


def test_server_state_is_ciphertext_only_and_server_cannot_decrypt(runs):
    out, world, _ = runs
    state, _ = load_checkpoint(out / "ckks")
    assert state.heads == [] and state.adapters == [] and all(g is None for g in state.G)
    assert len(state.log) == 2 and all(len(r.sums) > 0 for r in state.log)
    tensors = load_file(str(out / "ckks" / CHECKPOINT))
    assert {k.split("/")[0] for k in tensors} == {"probs", "log"}
    assert all(v.dtype == torch.uint8 for k, v in tensors.items() if k != "probs")
    server = world.backend
    assert isinstance(server, CkksSum) and server.client is None
    assert not server.server.ctx.has_secret_key()
    blob = state.log[0].sums[0][0]
    with pytest.raises(MissingKey):
        server.open_sum({"ckks/sum": torch.frombuffer(bytearray(blob), dtype=torch.uint8)},
                        expected=Expected(shared={}, per_cluster={}), cluster=0)


def test_a_member_that_missed_everything_replays_the_log(runs):
    """A fresh member (e.g. after a restart) derives the same state from the server's ciphertexts."""
    out, world, _ = runs
    state, _ = load_checkpoint(out / "ckks")
    fresh = build_world(world.cfg, keys_dir=out / "ckks" / "keys").clients[3].member
    with pytest.raises(WrongRound):  # logs must come in order
        fresh.apply(decode(encode(CkksPassServer.log_message(state.log[1], 0)), RoundLog))
    for rec in state.log:
        fresh.apply(decode(encode(CkksPassServer.log_message(rec, 0)), RoundLog))
    assert same_state(fresh.state, world.clients[0].member.state)
    fresh.apply(decode(encode(CkksPassServer.log_message(state.log[0], 0)), RoundLog))  # a repeat: no-op
    assert fresh.state.round == 2


def dropper(stage, client, rnd=0):
    def fault(s, r, i, blob):
        return None if (i == client and s.startswith(stage) and r == rnd) else blob
    return fault


@pytest.mark.parametrize("stage", ["round_start>", "pass:0<", "pass:3>", "pass:5<"])
def test_dropout_needs_no_recovery_and_result_is_exact_over_survivors(tmp_path, tiny_cfg, stage):
    cfg = tiny_cfg(**CKKS, **{"fed.rounds": "1"})
    wa, wb = [], []
    res = run(cfg, tmp_path / "a", progress=False, fault=dropper(stage, 1), prepare=wa.append)
    rnd = res["rounds"][0]
    assert [c["completed"] for c in rnd["clients"]] == [i != 1 for i in range(cfg.fed.num_clients)]
    run(cfg, tmp_path / "b", progress=False, fault=dropper("round_start>", 1), prepare=wb.append)
    a, b = (member_view(w, load_checkpoint(p)[0]) for w, p in ((wa[0], tmp_path / "a"), (wb[0], tmp_path / "b")))
    for j in range(cfg.fed.clusters):  # two runs, two keys: equal up to the CKKS precision
        for n in a.adapters[j]:
            ref = b.adapters[j][n].delta()
            assert (a.adapters[j][n].delta() - ref).norm() <= 1e-3 * ref.norm(), (stage, j, n)


def test_a_member_that_missed_the_result_catches_up_next_round(tmp_path, tiny_cfg):
    cfg = tiny_cfg(**CKKS)
    worlds = []
    res = run(cfg, tmp_path, progress=False, fault=dropper("result>", 1), prepare=worlds.append)
    assert res["rounds"][0]["clients"][1]["completed"]  # its input is in round 0's sums
    members = [c.member for c in worlds[0].clients]
    assert all(m.state.round == 2 for m in members)
    assert all(same_state(m.state, members[0].state) for m in members)
    assert res["rounds"][1]["clients"][1]["completed"]


def tamper(kinds):
    """Client -> kind of misbehaviour in its pass replies of round 0 (pass 2 onwards)."""
    first, honest = {}, {}
    other = generate_keys(derive_params(max_clients=8, precision=1e-6))

    def fault(stage, rnd, i, blob):
        kind = kinds.get(i)
        if rnd == 0 and stage == "pass:2<" and i == 0:
            honest[stage] = decode(blob, PassReply)  # client 0 answers first
        if kind is None or rnd != 0 or not (stage.startswith("pass:") and stage.endswith("<")):
            return blob
        first.setdefault(i, blob)
        if stage != "pass:2<":
            return blob
        msg = decode(blob, PassReply)
        key = sorted(msg.payload)[0]
        if kind == "replay":
            return first[i]
        if kind == "copied":  # another member's ciphertexts of this pass, under its own sender id
            return encode(PassReply(round=0, pass_idx=msg.pass_idx, sender=i, payload=honest[stage].payload))
        if kind == "forged":
            return encode(PassReply(round=0, pass_idx=msg.pass_idx, sender=0, payload=msg.payload))
        if kind == "oversized":
            return blob + bytes(70 * 2**20)
        if kind == "missing":
            payload = {k: v for k, v in msg.payload.items() if k != key}
        elif kind == "garbage":
            raw = msg.payload[key].clone()
            raw[len(raw) // 2:] = 7
            payload = dict(msg.payload, **{key: raw})
        elif kind == "other-key":
            c = CkksSum(secret=other)
            layout_shapes = {"x": (3,)}
            payload = dict(msg.payload, **{key: torch.frombuffer(bytearray(c.client.encrypt(
                {"x": torch.zeros(3)}, layout=c.client.layout(layout_shapes))), dtype=torch.uint8)})
        return encode(PassReply(round=0, pass_idx=msg.pass_idx, sender=i, payload=payload))
    return fault


def test_deviating_clients_are_dropped_with_typed_errors(tmp_path, tiny_cfg):
    cfg = tiny_cfg(**CKKS, **{"fed.rounds": "1", "fed.num_clients": "9"})
    kinds = {1: "replay", 2: "forged", 3: "oversized", 4: "missing", 5: "garbage", 6: "other-key", 7: "copied"}
    res = run(cfg, tmp_path, progress=False, fault=tamper(kinds))
    why = {d["client"]: d["reason"].split(":")[0] for d in res["rounds"][0]["dropped"]}
    assert why == {1: "WrongRound", 2: "WrongSender", 3: "OversizedMessage", 4: "ShapeMismatch",
                   5: "MalformedCiphertext", 6: "WrongKey", 7: "ReplayedMessage"}
    assert [c["completed"] for c in res["rounds"][0]["clients"]] == [i in (0, 8) for i in range(9)]
    assert all(np.isfinite(res["rounds"][0]["test_accuracy"]))


# ---- the session contract every SecureSum backend passes ---------------------------------------

def _backends():
    bundle = generate_keys(derive_params(max_clients=8, precision=1e-6))
    return {"plaintext": (PlaintextSum(), PlaintextSum(), lambda s, e, j: s),
            "ckks": (CkksSum(public=bundle.public()), CkksSum(secret=bundle),
                     lambda s, e, j, m=CkksSum(secret=bundle): m.open_sum(s, expected=e, cluster=j))}


@pytest.mark.parametrize("name", ["plaintext", "ckks"])
def test_session_contract_sums_dropouts_and_bad_payloads(name):
    server_b, client_b, opened = _backends()[name]
    g = torch.Generator().manual_seed(5)
    weights = {i: [0.7, 0.3] if i % 2 else [0.0, 1.0] for i in range(5)}
    info = SessionInfo(round=0, epoch=0, cohort=tuple(range(5)), clusters=2, passes=1, weights=weights)
    expected = Expected(shared={"s": (6, 2)}, per_cluster={"v": (4,)})
    server = server_b.server_session(info)
    server.begin_pass(1, slot=0, expected=expected)
    vecs = {i: Contribution(shared={"s": torch.rand(6, 2, generator=g)},
                            per_cluster={j: {"v": torch.rand(4, generator=g)} for j in range(2)}) for i in range(5)}
    for i in (0, 1, 2):  # 3 sends garbage, 4 drops out
        server.add_payload(i, client_b.client_session(i, 0).payload(vecs[i], slot=0, weights=weights[i],
                                                                     expected=expected))
    bad = client_b.client_session(3, 0).payload(vecs[3], slot=0, weights=weights[3], expected=expected)
    bad = {k: v[: len(v) // 2] if v.dtype == torch.uint8 else v[:1] for k, v in bad.items()}
    with pytest.raises(RemoteProtocolError) as info_:
        server.add_payload(3, bad)
    assert info_.value.sender == 3
    server.end_inputs()
    assert server.contributors == {0, 1, 2} and server.alive == {0, 1, 2}
    sums = server.sums()
    for j in range(2):
        got = opened(sums[j], expected, j)
        for key in ("s", "v"):
            ref = sum(weights[i][j] * {**vecs[i].shared, **vecs[i].per_cluster[j]}[key] for i in (0, 1, 2))
            torch.testing.assert_close(got[key], ref.float(), rtol=0, atol=1e-5)


def test_resume_replays_the_log_into_restarted_members(tmp_path, tiny_cfg):
    """--resume restarts every member empty: the sync stage replays round 0 before round 1 starts."""
    cfg = tiny_cfg(**CKKS)

    class Stop(Exception):
        pass

    def stop(rnd):
        if rnd == 0:
            raise Stop

    with pytest.raises(Stop):
        run(cfg, tmp_path, progress=False, on_round_end=stop)
    worlds = []
    res = run(None, tmp_path, resume=True, progress=False, prepare=worlds.append)
    assert len(res["rounds"]) == 2 and all(c["completed"] for c in res["rounds"][1]["clients"])
    members = [c.member for c in worlds[0].clients]
    assert all(m.state.round == 2 and same_state(m.state, members[0].state) for m in members)
    state, _ = load_checkpoint(tmp_path)
    assert state.synced == {i: 1 for i in range(cfg.fed.num_clients)} and len(state.log) == 2


def test_a_chunk_accepted_before_a_restart_is_a_replay_after_it():
    """A plan restart opens a new session in the same round: the replay check spans the round."""
    server_b, client_b, _ = _backends()["ckks"]
    weights = {i: [1.0] for i in range(3)}
    expected = Expected(shared={"s": (4,)}, per_cluster={})
    payload = client_b.client_session(0, 7).payload(Contribution(shared={"s": torch.ones(4)}), slot=0,
                                                    weights=[1.0], expected=expected)
    sessions = [server_b.server_session(SessionInfo(round=r, epoch=e, cohort=(0, 1, 2), clusters=1, passes=1,
                                                    weights=weights)) for r, e in ((7, 0), (7, 1), (8, 0))]
    for s in sessions:
        s.begin_pass(1, slot=0, expected=expected)
    sessions[0].add_payload(0, payload)
    with pytest.raises(ReplayedMessage):
        sessions[1].add_payload(1, payload)  # epoch 1 of the same round, another sender
    sessions[2].add_payload(0, payload)  # a new round starts a new set (fresh encryptions never repeat anyway)
