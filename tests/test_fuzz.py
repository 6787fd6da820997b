"""Malformed, replayed, forged and stale messages at every decoder and masking stage: typed errors only."""

from fedhft_secure.bench.fuzz import INVALID, fuzz_all


def test_no_crash_and_no_invalid_message_accepted_anywhere():
    results = fuzz_all(per_target=2 * (len(INVALID) + 1) * 8, seed=1)
    targets = {r.target for r in results}
    for stage in ("setup", "directory", "forward", "check", "unmask"):
        assert {f"client:{stage}", f"server:{stage}"} <= targets
    assert {"decoder:RoundStart", "decoder:PassRequest", "decoder:Ready", "decoder:PassReply"} <= targets
    bad = [(r.target, r.crashes, r.accepted, r.examples) for r in results if r.crashes or r.accepted]
    assert not bad, bad
    assert sum(r.inputs for r in results) >= 14 * 176


def test_ckks_ciphertexts_no_crash_and_none_accepted():
    from fedhft_secure.bench.fuzz_ckks import CKKS_INVALID, fuzz_ckks

    results = fuzz_ckks(per_target=3 * (len(CKKS_INVALID) + 1), seed=1)
    assert {r.target for r in results} == {"ckks:server:fresh", "ckks:member:sum"}
    bad = [(r.target, r.crashes, r.accepted, r.examples) for r in results if r.crashes or r.accepted]
    assert not bad, bad
