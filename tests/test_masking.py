"""The masking backend: exact sums under dropouts, typed aborts, and what an attacker cannot do."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhft_secure.crypto.encoding import FixedPoint
from fedhft_secure.crypto.kex import KeyPair, agree
from fedhft_secure.crypto.shamir import reconstruct
from fedhft_secure.crypto.sign import IdentityKey
from fedhft_secure.exceptions import (ConfigError, LocalProtocolError, MalformedMessage, PolicyViolation,
                                      ReplayedMessage, WrongRound, WrongSender)
from fedhft_secure.secure.masking import MaskingSum, derive_params, neighbour_graph, participation
from fedhft_secure.secure.masking.masks import pair_seed, stream
from fedhft_secure.secure.masking.messages import UnmaskRequest
from fedhft_secure.wire import encode
from masking_harness import run_pass


def vecs(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return {i: rng.uniform(-2, 2, d) for i in range(n)}


def ones(n, k=1):
    return {i: [1.0] * k for i in range(n)}


def test_sum_without_dropouts():
    v = vecs(6, 50)
    sums, server, _, errors = run_pass(v, ones(6))
    assert not errors
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v.values()), atol=server.codec.resolution * 2)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(3, 12), d=st.integers(1, 40), data=st.data())
def test_sum_is_exact_under_random_dropouts(n, d, data):
    v = vecs(n, d, seed=data.draw(st.integers(0, 1000)))
    k = derive_params(n, threat="honest-but-curious")
    stages = ["setup", "directory", "forward", "input", "unmask"]
    # drop at most h - t = (degree + 1 - threshold) clients: on the complete graph (n <= 20) every live
    # client then keeps t live holders (itself included) and every dropped one t live neighbours
    drops = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=max(0, k.holders - k.threshold)))
    drop = {c: data.draw(st.sampled_from(stages)) for c in drops}
    sums, server, _, errors = run_pass(v, ones(n), drop=drop)
    assert sums is not None, errors
    contributed = [c for c in range(n) if c not in drop or drop[c] == "unmask"]
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v[c] for c in contributed),
                               atol=server.codec.resolution * 2)


def test_too_many_dropouts_abort_with_nothing_opened():
    v = vecs(6, 10)
    p = derive_params(6, threat="honest-but-curious")
    drop = {c: "unmask" for c in range(6 - p.threshold + 1)}  # fewer than t answer the unmask stage
    sums, server, _, errors = run_pass(v, ones(6), drop=drop)
    assert sums is None and server.sums() is None
    assert "AggregationAborted" in type(errors[-1][1]).__name__


def test_weights_and_clusters():
    v = vecs(5, 8)
    w = {0: [1.0, 0.0], 1: [0.5, 0.5], 2: [0.0, 1.0], 3: [0.2, 0.8], 4: [0.9, 0.1]}
    sums, server, _, _ = run_pass(v, w, clusters=2)
    for j in range(2):
        want = sum(w[i][j] * v[i] for i in v)
        np.testing.assert_allclose(sums[j]["v"].numpy(), want, atol=server.codec.resolution * 2)


def test_small_clusters_are_padded_to_the_minimum_cohort():
    w = {i: [1.0, 0.0] for i in range(6)}
    w[5] = [0.0, 1.0]
    part = participation(w, 2, 4)
    assert sum(1 in p for p in part.values()) == 4  # cluster 1 is never summed over one client
    assert part[5] == [1]


def test_colluding_server_and_t_minus_1_clients_learn_nothing():
    """The server holds every message; t-1 neighbours of an honest client give it all their secrets.
    Recovering the honest client's input needs its self mask (t shares of b) or all its pairwise
    seeds; with t-1 shares and an honest survivor's b never released alone, the attack fails."""
    n = 6
    v = vecs(n, 20, seed=4)
    sums, server, clients, _ = run_pass(v, ones(n))
    t = server.params.threshold
    victim = 0
    colluders = [u for u in server.graph[victim]][: t - 1]
    # everything the colluders hold about the victim: t-1 shares of its self seed and mask key
    b_shares = {w + 1: clients[w].held[victim][1][0] for w in colluders}
    s_shares = {w + 1: clients[w].held[victim][0][0] for w in colluders}
    with pytest.raises(LocalProtocolError):
        reconstruct(b_shares, t)
    with pytest.raises(LocalProtocolError):
        reconstruct(s_shares, t)
    # with t-1 shares and a random guess for the missing one, the reconstructed self seed is wrong
    guess = dict(b_shares)
    guess[99] = b"\x01" * 66
    try:
        wrong = reconstruct(guess, t)
    except LocalProtocolError:
        wrong = None
    assert wrong != clients[victim].selfs[0]
    # unmasking the victim's input with everything the coalition has still leaves noise
    y = server.inputs[victim][0].copy()
    for u in colluders:  # pairwise masks with colluders are known to them
        seed = pair_seed(agree(clients[u].masks[0].secret, clients[victim].masks[0].public), 3, 0, 0, 0)
        pm = stream(seed, y.size, 32)
        y = y - pm if victim < u else y + pm
    decoded = server.codec.decode_sum(y)
    assert np.abs(decoded - v[victim]).max() > 1.0  # honest neighbours' masks and the self mask remain
    # the sum, which the server may learn, is right
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v.values()), atol=server.codec.resolution * 2)


def test_client_never_reveals_both_shares_of_a_peer():
    v = vecs(5, 4)
    sums, server, clients, _ = run_pass(v, ones(5))
    c = clients[1]
    peer = c.neighbours[0]
    both = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[peer], survivors=[])
    with pytest.raises(ReplayedMessage):  # one unmask per slot: b of `peer` was revealed already
        c.handle(encode(both))
    assert c.revealed[(0, peer)] == "b"
    _, _, clients, _ = run_pass(v, ones(5), until="input")
    mixed = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[peer], survivors=[peer])
    with pytest.raises(PolicyViolation):
        clients[1].handle(encode(mixed))
    assert not clients[1].revealed


def test_declared_dropped_stays_dropped():
    v = vecs(5, 4)
    _, server, clients, _ = run_pass(v, ones(5), drop={2: "input"}, passes=2)
    c = next(clients[w] for w in server.graph[2] if w != 2 and w in server.alive)
    revive = UnmaskRequest(round=3, pass_idx=2, epoch=0, slot=1, dropped=[], survivors=[2])
    with pytest.raises(PolicyViolation, match="declared dropped"):  # the next slot cannot bring 2 back
        c.handle(encode(revive))


def test_substituted_keys_are_caught_with_signatures():
    ids = {i: IdentityKey.generate() for i in range(4)}
    backend = MaskingSum(identities=ids, threat="semi-malicious")

    def swap_keys(stage, i, reply):
        if stage == "setup" and i == 2:  # the server replaces client 2's advertised keys
            from fedhft_secure.secure.masking.messages import KeyAdvert
            from fedhft_secure.wire import decode
            msg = decode(reply, KeyAdvert)
            keys = dict(msg.keys, enc=torch.frombuffer(bytearray(KeyPair.generate().public), dtype=torch.uint8))
            return encode(KeyAdvert(round=msg.round, sender=msg.sender, epoch=msg.epoch, keys=keys))
        return reply

    _, _, _, errors = run_pass(vecs(4, 3), ones(4), backend=backend, tamper=swap_keys)
    assert any(isinstance(e, MalformedMessage) and "signature" in str(e) for _, e in errors)


def test_replayed_forged_and_stale_session_messages():
    v = vecs(4, 3)

    def replay(stage, i, reply):
        return replay.first.setdefault(i, reply) if stage in ("setup", "directory") else reply
    replay.first = {}
    _, _, _, errors = run_pass(v, ones(4), tamper=replay)
    assert any(isinstance(e, MalformedMessage) for _, e in errors)  # an advert replayed as a share bundle

    def forge(stage, i, reply):
        if stage == "directory" and i == 1:
            return reply[:12] + (3).to_bytes(4, "little") + reply[16:]  # claims to be client 3
        return reply
    _, _, _, errors = run_pass(v, ones(4), tamper=forge)
    assert any(isinstance(e, WrongSender) for _, e in errors)

    _, server, clients, _ = run_pass(v, ones(4))
    stale = UnmaskRequest(round=2, pass_idx=1, epoch=0, slot=0, dropped=[], survivors=[0])
    with pytest.raises(WrongRound):
        clients[1].handle(encode(stale))


def test_a_reply_sent_twice_is_a_replay():
    from fedhft_secure.secure.api import SessionInfo

    backend = MaskingSum()
    info = SessionInfo(round=1, epoch=0, cohort=(0, 1, 2), clusters=1, passes=1, weights=ones(3))
    server = backend.server_session(info)
    clients = {i: backend.client_session(i, 1) for i in range(3)}
    for i, blob in server.next_messages().items():
        server.receive(i, clients[i].handle(blob))
    msgs = server.next_messages()
    reply = clients[0].handle(msgs[0])
    server.receive(0, reply)
    with pytest.raises(ReplayedMessage):
        server.receive(0, reply)


def test_wrong_shape_input_is_rejected_and_sum_goes_on():
    v = vecs(5, 6)

    def bad(stage, i, payload):
        if stage == "input" and i == 4:
            return {"c0": torch.zeros(3, dtype=torch.int32)}
        return payload
    sums, server, _, errors = run_pass(v, ones(5), tamper=bad)
    assert any(i == 4 for i, _ in errors)
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v[i] for i in range(4)), atol=server.codec.resolution * 2)


def test_overflow_is_a_typed_error_before_anything_leaves():
    with pytest.raises(LocalProtocolError, match="overflow"):
        FixedPoint(n=10**9, clip=1e3, bits=32)


def test_params_and_graph():
    p = derive_params(50, threat="honest-but-curious")
    assert p.holders == p.degree + 1
    assert p.threshold > p.holders / 2 and p.degree < 49
    assert derive_params(50, threat="semi-malicious").threshold > 2 * p.holders / 3
    with pytest.raises(ConfigError):
        derive_params(10, threat="honest-but-curious", degree=6, threshold=2)
    # t is sized against the h = k + 1 holders: 3 clients keep room for one dropout
    assert [(q.degree, q.threshold) for q in (derive_params(3, threat="honest-but-curious"),
                                              derive_params(4, threat="honest-but-curious"),
                                              derive_params(4, threat="semi-malicious"))] == [(2, 2), (3, 3), (3, 3)]
    assert derive_params(3, threat="semi-malicious").threshold == 3  # t = h: no dropout tolerated
    assert derive_params(3, threat="honest-but-curious", threshold=3).threshold == 3  # t = h is allowed
    with pytest.raises(ConfigError, match=r"secure\.threshold.*allowed: 1\.\.3"):
        derive_params(3, threat="honest-but-curious", threshold=4)
    with pytest.raises(ConfigError, match=r"secure\.threshold.*allowed: > 2"):
        derive_params(4, threat="semi-malicious", threshold=2)
    g = neighbour_graph(list(range(50)), p.degree, seed=1)
    assert all(p.degree <= len(v) <= p.degree + 1 for v in g.values())
    assert all(u in g[v] for u in g for v in g[u])  # symmetric


def test_reveal_rows_sums_held_rows_and_withholds_rare_ones():
    n, d = 6, 12
    rng = np.random.default_rng(3)
    rows = {i: rng.random(d) < 0.5 for i in range(n)}
    rows[0][:] = True  # client 0 holds every row
    v = {i: np.where(rows[i], rng.uniform(-1, 1, d), 0.0) for i in range(n)}
    backend = MaskingSum(sparsity="reveal-rows")
    sums, server, clients, errors = run_pass(v, ones(n), backend=backend, rows=rows, drop={5: "input"})
    assert not [e for _, e in errors if not isinstance(e, Exception)]
    holders = sum(rows[i].astype(int) for i in range(n))
    kept = holders >= server.params.threshold
    want = sum(v[i] for i in range(5))
    got = sums[0]["v"].numpy()
    np.testing.assert_allclose(got[kept], want[kept], atol=server.codec.resolution * 2)
    assert np.all(got[~kept] == 0) and (~kept).any()  # some rows withheld, and they come back empty
    sizes = {i: server.inputs[i][0].size for i in server.inputs}
    assert sizes[0] == int(kept.sum()) and all(sizes[i] == int((rows[i] & kept).sum()) for i in sizes)


def test_reveal_rows_refuses_adverts_without_rows():
    from fedhft_secure.exceptions import ShapeMismatch

    backend = MaskingSum(sparsity="reveal-rows")
    info = __import__("fedhft_secure.secure.api", fromlist=["SessionInfo"]).SessionInfo(
        round=1, epoch=0, cohort=(0, 1, 2), clusters=1, passes=1, weights=ones(3))
    server = backend.server_session(info)
    dense_client = MaskingSum().client_session(0, 1)
    with pytest.raises(ShapeMismatch, match="row sets"):
        server.receive(0, dense_client.handle(server.next_messages()[0]))


# -- the consistency check (signed keys: the semi-malicious threat model) ----------------------------

def signed_backend(n):
    return MaskingSum(identities={i: IdentityKey.generate() for i in range(n)}, threat="semi-malicious")


def test_consistency_check_runs_with_signed_keys_and_survives_a_dropout_there():
    v = vecs(6, 7)
    sums, server, _, errors = run_pass(v, ones(6), backend=signed_backend(6), drop={5: "check"})
    assert server.consistency and any("check" in why for c, why in server.errors if c == 5)
    # client 5 sent its masked input, so it is in the sum although it never signed
    np.testing.assert_allclose(sums[0]["v"].numpy(), sum(v.values()), atol=server.codec.resolution * 2)


def _signatures(clients, ids, slot, survivors, pass_idx=1):
    from fedhft_secure.secure.masking.messages import SurvivorList, SurvivorSignature
    from fedhft_secure.wire import decode
    ask = encode(SurvivorList(round=3, pass_idx=pass_idx, epoch=0, slot=slot, survivors=sorted(survivors)))
    return {str(i): decode(clients[i].handle(ask), SurvivorSignature).sig["sig"] for i in ids}


def test_server_cannot_tell_two_dropout_stories():
    """The dropout lie of issue 9: the server has the victim's masked input, tells some neighbours
    it dropped (to collect shares of its mask key) and others it survived (shares of its self mask).
    Each group signs only its own list; neither list gets t signatures, so nobody unmasks."""
    n = 6
    _, server, clients, _ = run_pass(vecs(n, 5), ones(n), backend=signed_backend(n), until="input")
    t, victim = server.params.threshold, 0
    everyone = set(range(n))
    told_dropped, told_alive = [1, 2, 3], [0, 4, 5]
    assert len(told_dropped) < t and len(told_alive) < t
    sig_a = _signatures(clients, told_dropped, 0, everyone - {victim})
    sig_b = _signatures(clients, told_alive, 0, everyone)
    for i in told_dropped:
        req = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[victim],
                            # B's signatures are of another list: worthless here
                            survivors=sorted(everyone - {victim}), signatures={**sig_b, **sig_a})
        with pytest.raises(PolicyViolation, match="valid signatures"):
            clients[i].handle(encode(req))
    for i in told_alive:
        req = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[], survivors=sorted(everyone),
                            signatures={**sig_a, **sig_b})
        with pytest.raises(PolicyViolation, match="valid signatures"):
            clients[i].handle(encode(req))
    assert all(not c.revealed for c in clients.values())  # not one share left a client


def test_consistency_rules_of_the_client():
    n = 5
    _, server, clients, _ = run_pass(vecs(n, 4), ones(n), backend=signed_backend(n), until="input")
    everyone = set(range(n))
    sigs = _signatures(clients, range(n), 0, everyone)
    c = clients[1]
    with pytest.raises(PolicyViolation, match="second, different"):  # one list per slot
        _signatures(clients, [1], 0, everyone - {4})
    with pytest.raises(PolicyViolation, match="leaves out this client"):
        _signatures(clients, [2], 0, everyone - {2})
    skipped = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[], survivors=sorted(everyone))
    with pytest.raises(PolicyViolation, match="valid signatures"):  # a server that skips the check
        c.handle(encode(skipped))
    forged = {k: torch.randint(0, 256, (64,), dtype=torch.uint8) for k in sigs}
    with pytest.raises(PolicyViolation, match="valid signatures"):
        c.handle(encode(UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[], survivors=sorted(everyone),
                                      signatures=forged)))
    other = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[4], survivors=sorted(everyone - {4}),
                          signatures=sigs)
    with pytest.raises(PolicyViolation, match="not the list this client signed"):
        c.handle(encode(other))
    good = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[], survivors=sorted(everyone),
                         signatures=sigs)
    assert c.handle(encode(good))  # the honest request, countersigned by everyone, is answered


# -- share holders: the neighbours and the client itself (h = k + 1) -----------------------------------

@pytest.mark.parametrize("signed,n,stage", [(False, 3, s) for s in ("setup", "directory", "forward", "input",
                                                                    "unmask")]
                         + [(True, 3, "check"), (True, 4, "check"), (True, 4, "unmask")])
def test_three_clients_survive_one_dropout_at_every_stage(signed, n, stage):
    """With k = 2 neighbours a survivor whose neighbour died still has 2 = t live holders of its self
    mask: itself and the other survivor. Signed keys run the consistency check; with n = 3 that is the
    honest-but-curious t = 2 (the semi-malicious t is 3 = h there: no dropout survives it), with n = 4
    the semi-malicious t = 3 of h = 4."""
    v = vecs(n, 9, seed=n)
    ids = {i: IdentityKey.generate() for i in range(n)} if signed else None
    threat = "semi-malicious" if signed and n == 4 else "honest-but-curious"
    backend = MaskingSum(identities=ids, threat=threat)
    victim = 1
    sums, server, _, errors = run_pass(v, ones(n), drop={victim: stage}, backend=backend)
    assert sums is not None, errors
    assert server.params.threshold == (3 if n == 4 else 2) and server.consistency == signed
    assert any(c == victim for c, _ in server.errors)  # it was dropped, at that stage
    # after its masked input the dropout is in the sum; before it, not
    sent = stage in ("check", "unmask")
    want = sum(x for c, x in v.items() if c != victim or sent)
    np.testing.assert_allclose(sums[0]["v"].numpy(), want, atol=server.codec.resolution * 2)


def test_three_clients_do_not_survive_two_dropouts():
    v = vecs(3, 4)
    sums, server, _, errors = run_pass(v, ones(3), drop={1: "unmask", 2: "unmask"})
    assert sums is None and server.sums() is None
    assert "AggregationAborted" in type(errors[-1][1]).__name__


def _interpolate(points: dict[int, bytes], x: int) -> bytes:
    """The share at ``x`` of the polynomial through ``points`` (Lagrange over GF(2^521 - 1))."""
    from fedhft_secure.crypto.shamir import PRIME, SHARE_BYTES

    acc = 0
    for i, yi in points.items():
        num = den = 1
        for j in points:
            if j != i:
                num, den = num * (x - j) % PRIME, den * (i - j) % PRIME
        acc = (acc + int.from_bytes(yi, "big") * num * pow(den, PRIME - 2, PRIME)) % PRIME
    return acc.to_bytes(SHARE_BYTES, "big")


def test_holders_are_the_neighbours_and_the_client_itself():
    n = 4
    _, server, clients, _ = run_pass(vecs(n, 3), ones(n), until="input")
    t = server.params.threshold
    assert server.params.holders == server.params.degree + 1 == 4 and t == 3
    for me, c in clients.items():
        peers = [w for w in c.neighbours if me in clients[w].held]
        assert sorted(peers) == sorted(server.graph[me])  # every neighbour holds a share
        # the own share (point me + 1) and t - 1 neighbours' shares open the self-mask seed
        points = {me + 1: c.own_b[0]} | {w + 1: clients[w].held[me][1][0] for w in peers[: t - 1]}
        assert reconstruct(points, t) == c.selfs[0]
        # and it lies on the same polynomial as all the neighbours' shares
        assert _interpolate({w + 1: clients[w].held[me][1][0] for w in peers[:t]}, me + 1) == c.own_b[0]


def test_own_share_never_goes_on_the_wire():
    """A client's own shares travel in no message of the share stages, the check or the masked input;
    its mask-key share never, its self-mask share only in its unmask reply, and only as a survivor."""
    from fedhft_secure.secure.masking.messages import ShareBundle, UnmaskReply
    from fedhft_secure.wire import decode

    n = 4
    sent: dict[int, list[tuple[str, bytes]]] = {i: [] for i in range(n)}

    def record(stage, i, reply):
        blob = reply if isinstance(reply, bytes) else b"".join(t.numpy().tobytes() for t in reply.values())
        sent[i].append((stage, blob))
        return reply

    backend = MaskingSum(identities={i: IdentityKey.generate() for i in range(n)}, threat="semi-malicious")
    sums, server, clients, errors = run_pass(vecs(n, 5), ones(n), backend=backend, tamper=record,
                                             drop={3: "input"})
    assert sums is not None, errors
    t = server.params.threshold
    for me, c in clients.items():
        peers = [w for w in c.neighbours if me in clients[w].held][:t]
        own_s = _interpolate({w + 1: clients[w].held[me][0][0] for w in peers}, me + 1)
        own_b = c.own_b[0]
        assert own_s != own_b
        stages = [stage for stage, _ in sent[me]]
        assert stages == ["setup", "directory", "forward"] + (["input", "check", "unmask"] if me != 3 else [])
        for stage, blob in sent[me]:
            assert own_s not in blob, stage
            if stage == "directory":  # sealed shares for the neighbours only: none addressed to itself
                assert set(decode(blob, ShareBundle).shares) == {str(w) for w in c.neighbours}
            if stage == "unmask":
                shares = decode(blob, UnmaskReply).shares
                assert bytes(shares[f"b/{me}"].numpy()) == own_b and f"s/{me}" not in shares
                assert own_b not in blob.replace(own_b, b"", 1)  # once, under its own name
            else:
                assert own_b not in blob, stage


def test_own_share_rules():
    """A client reveals its own self-mask share only when listed as a survivor, never its mask-key share;
    listed as dropped it reveals nothing of its own (it is alive: a server that says otherwise lies)."""
    from fedhft_secure.secure.masking.messages import UnmaskReply
    from fedhft_secure.wire import decode

    n = 3
    _, _, clients, _ = run_pass(vecs(n, 3), ones(n), until="input")
    lie = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[0], survivors=[1, 2])
    shares = decode(clients[0].handle(encode(lie)), UnmaskReply).shares
    assert set(shares) == {"b/1", "b/2"}  # nothing of its own
    honest = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[2], survivors=[0, 1])
    shares = decode(clients[1].handle(encode(honest)), UnmaskReply).shares
    assert set(shares) == {"b/0", "b/1", "s/2"} and clients[1].revealed[(0, 1)] == "b"
    # still one kind per peer: asking client 2 for both shares of 0 is refused, and nothing leaves
    both = UnmaskRequest(round=3, pass_idx=1, epoch=0, slot=0, dropped=[0], survivors=[0, 2])
    with pytest.raises(PolicyViolation):
        clients[2].handle(encode(both))
    assert not clients[2].revealed


def test_client_refuses_a_threshold_its_threat_model_does_not_allow():
    """The server picks t; a client that accepted any t would give a curious server its secrets
    (t = 1: every share is the secret itself). Checked against the client's own share holders."""
    import dataclasses

    from fedhft_secure.secure.api import SessionInfo
    from fedhft_secure.secure.masking.messages import KeySetup
    from fedhft_secure.wire import decode

    info = SessionInfo(round=1, epoch=0, cohort=(0, 1, 2), clusters=1, passes=1, weights=ones(3))
    setup = decode(MaskingSum().server_session(info).next_messages()[0], KeySetup)
    assert (setup.degree, setup.threshold) == (2, 2)
    for threat, bad, good in [("honest-but-curious", (1, 4), 2), ("semi-malicious", (2,), 3)]:
        backend = MaskingSum(threat=threat)
        for t in bad:
            with pytest.raises(MalformedMessage, match=f"threshold {t} of 3"):
                backend.client_session(0, 1).handle(encode(dataclasses.replace(setup, threshold=t)))
        backend.client_session(0, 1).handle(encode(dataclasses.replace(setup, threshold=good)))


def test_odd_degree_on_an_odd_cohort_counts_the_extra_neighbour():
    """The circulant graph gives every client k + 1 neighbours when k and n are odd: t is sized for those."""
    for n, k in [(7, 3), (9, 5), (5, 1)]:
        for threat, frac in [("honest-but-curious", 1 / 2), ("semi-malicious", 2 / 3)]:
            p = derive_params(n, threat=threat, degree=k)
            holders = {len(v) + 1 for v in neighbour_graph(list(range(n)), p.degree, seed=3).values()}
            assert holders == {p.holders} and p.threshold > frac * p.holders, (n, k, threat, p)
