"""The attacks of the security bench do what they claim: they succeed exactly where the threat model says."""

from fedhft_secure.bench import attacks as A
from fedhft_secure.secure.masking import derive_params


def test_server_reconstruction():
    assert A.reconstruction_plaintext() > 0.999  # plaintext: the vector itself
    got = A.reconstruction_masking()
    assert abs(got["cosine"]) < 0.15  # masking: noise, far below what the sum alone gives
    assert got["cosine_from_sum_alone"] > 0.3


def test_collusion_threshold_is_real():
    p = derive_params(8, threat="honest-but-curious")
    t = p.threshold
    assert t == 5 and t > p.holders / 2  # t of h = k + 1 = 8 holders (the victim holds one share itself)
    assert abs(A.collusion(t - 1)) < 0.15  # even with the self mask the server opened
    assert A.collusion(t) > 0.999


def test_dropout_lie_needs_the_consistency_check():
    hbc = derive_params(6, threat="honest-but-curious")
    sm = derive_params(6, threat="semi-malicious")
    # without signed keys nothing stops a split story: 2t - h colluders suffice (h = k + 1: the victim gives
    # its own self-mask share when told it survived, never a mask-key share), one fewer does not
    assert A.dropout_lie(signed=False, colluders=2 * hbc.threshold - hbc.holders) > 0.999
    assert abs(A.dropout_lie(signed=False, colluders=2 * hbc.threshold - hbc.holders - 1)) < 0.15
    # with the consistency check, t - 1 colluders are not enough
    assert abs(A.dropout_lie(signed=True, colluders=sm.threshold - 1)) < 0.15


def test_ckks_server_learns_nothing_but_a_member_or_a_replay_does():
    from fedhft_secure.bench import ckks_attacks as C

    got = C.reconstruction_ckks()
    assert got["decrypt_refused"] and not got["server_context_has_secret_key"]
    assert abs(got["cosine"]) < 0.15  # the ciphertext bytes are noise
    assert C.member_decrypts() > 0.999  # one consortium key: any member reads any client's ciphertext
    assert C.replayed_ciphertext()["cosine"] > 0.999  # no integrity: an old ciphertext goes through
    flood = C.flooding()
    assert flood["cosine_without_flooding"] > 0.999 and abs(flood["cosine"]) < 0.15
    assert flood["released_error_std"] > 100 * flood["raw_error_std"]
    assert C.key_material() == {"failed": 0, "failures": [], "checks": 6}


def test_distributed_noise_attacks():
    from fedhft_secure.bench import dp_attacks as D

    assert D.distributed_noise_std()["ratio"] > 0.95
    game = D.distinguishing_game(trials=400)
    assert 0 < game["epsilon_accounted"] < game["epsilon_cap"]  # the check could fail: a leak would show
    assert game["ratio"] <= 1
    assert D.colluders_remove_noise(colluders=4)["variance_left"] < 0.3
    assert D.noise_from_seed(secure_rng=False)["cosine"] > 0.999  # the seed removes the noise
    assert abs(D.noise_from_seed(secure_rng=True)["cosine"]) < 0.5


def test_membership_scores_calibrate_example_difficulty():
    import numpy as np

    from fedhft_secure.bench.membership import membership_scores

    rng = np.random.default_rng(0)
    n = 400
    hardness = rng.normal(0, 3, n)  # per-example difficulty: it swamps the membership signal in the loss
    member = np.arange(n) < n // 2
    conf = hardness + 0.8 * member + rng.normal(0, 0.3, n)
    refs = hardness + rng.normal(0, 0.3, (4, n))  # reference models trained without any candidate
    r = membership_scores(conf, member, refs)
    assert r["auc_lira"] > 0.9 > 0.65 > r["auc_loss"] > 0.5
    assert 0 < r["epsilon_lower_bound"] <= r["epsilon_cap"]
    null = membership_scores(hardness + rng.normal(0, 0.3, n), member, refs)
    assert abs(null["auc_lira"] - 0.5) < 4 * null["auc_std_error"] and null["epsilon_lower_bound"] < 1


def test_key_substitution_needs_signed_keys():
    from fedhft_secure.bench.key_substitution import key_substitution

    plain = key_substitution(signed=False)
    assert plain["cosine"] > 0.999 and plain["sum_max_error"] < 1e-3  # recovered, and nobody can tell
    assert key_substitution(signed=True)["cosine"] == 0.0
