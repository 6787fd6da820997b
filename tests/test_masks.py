"""Row masks against the official code's rule."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhft_secure.model.masks import post_norm_mask, top_fraction


def reference_compute_mask(B, A, scale):
    """The official ``compute_masks`` body for one layer, verbatim in logic."""
    dw = B @ A
    vals = (dw * dw).sum(dim=1)
    thr = vals.sort()[0][int(len(vals) * (1 - scale))]
    return vals >= thr


@settings(max_examples=60, deadline=None)
@given(out=st.integers(2, 40), inp=st.integers(1, 20), r=st.integers(1, 6),
       scale=st.sampled_from([0.25, 0.5, 0.75, 0.3, 0.9]), seed=st.integers(0, 10_000))
def test_post_norm_equals_reference(out, inp, r, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    B, A = torch.randn(out, r, generator=gen), torch.randn(r, inp, generator=gen)
    got = post_norm_mask(B, A, scale)
    assert torch.equal(got, reference_compute_mask(B, A, scale))
    # it keeps (at least) the top fraction, and with distinct scores exactly that many rows
    assert int(got.sum()) == out - int(out * (1 - scale))


def test_full_level_keeps_every_row():
    assert bool(top_fraction(torch.randn(10), 1.0).all())


def test_top_rows_are_the_largest():
    scores = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])
    assert top_fraction(scores, 0.5).tolist() == [True, False, True, False, True, False]
