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
