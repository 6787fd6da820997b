"""Bit-packed masked-input frames (crypto/packing.py): round trips, sizes, and the frames a decoder refuses."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fedhft_secure.crypto.packing import pack, packed_size, unpack, word_dtype
from fedhft_secure.exceptions import MalformedMessage, ShapeMismatch


def reference(values, bits):
    """The frame by its definition: sum of v_i * 2^(i*bits), little-endian, ceil(d*bits/8) bytes."""
    stream = sum(int(v) << (i * bits) for i, v in enumerate(values))
    return stream.to_bytes((len(values) * bits + 7) // 8, "little")


@st.composite
def vectors(draw, bits=st.integers(1, 64), size=st.integers(0, 97)):
    b, d = draw(bits), draw(size)
    values = draw(st.lists(st.integers(0, 2**b - 1), min_size=d, max_size=d))
    return b, np.array(values, dtype=np.uint64)


@settings(max_examples=300, deadline=None)
@given(vectors())
def test_round_trip_over_widths_and_lengths(case):
    bits, values = case
    frame = pack(values, bits)
    assert frame.dtype == np.uint8 and frame.size == packed_size(values.size, bits)
    assert bytes(frame) == reference(values, bits)
    back = unpack(frame, values.size, bits)
    assert back.dtype == word_dtype(bits) and back.tolist() == values.tolist()


@settings(max_examples=60, deadline=None)
@given(vectors(bits=st.sampled_from([17, 19, 20, 21, 23, 33]), size=st.integers(1, 97)))
def test_widths_that_leave_padding(case):
    """d·b not a multiple of 8: the last byte's spare high bits are zero, and exactly those."""
    bits, values = case
    assume(values.size * bits % 8)
    frame = pack(values, bits)
    spare = frame.size * 8 - values.size * bits
    assert 0 < spare < 8
    assert int(frame[-1]) >> (8 - spare) == 0
    assert unpack(frame, values.size, bits).tolist() == values.tolist()


@pytest.mark.parametrize("bits,dtype", [(16, "<u2"), (32, "<u4"), (64, "<u8")])
def test_byte_aligned_widths_are_plain_little_endian_arrays(bits, dtype):
    values = np.random.default_rng(bits).integers(0, 2**bits - 1, 50, dtype=np.uint64, endpoint=True)
    assert bytes(pack(values, bits)) == values.astype(dtype).tobytes()


def test_sizes():
    assert packed_size(1000, 20) == 2500 and packed_size(5, 20) == 13 and packed_size(3, 17) == 7
    assert packed_size(0, 20) == 0 and packed_size(1000, 32) == 4000


@pytest.mark.parametrize("bits,d", [(20, 5), (20, 4), (17, 3), (32, 3), (64, 2)])
def test_wrong_length_is_a_shape_mismatch(bits, d):
    frame = pack(np.arange(d, dtype=np.uint64), bits)
    for bad in (frame[:-1], np.concatenate([frame, np.zeros(1, np.uint8)]), np.zeros(0, np.uint8)):
        with pytest.raises(ShapeMismatch, match="bytes"):
            unpack(bad, d, bits)
    with pytest.raises(ShapeMismatch, match="uint8"):
        unpack(frame.view(np.int8), d, bits)


@pytest.mark.parametrize("bits,d", [(20, 5), (17, 3), (20, 1), (33, 3)])
def test_nonzero_padding_is_malformed(bits, d):
    frame = pack(np.zeros(d, dtype=np.uint64), bits)
    spare = frame.size * 8 - d * bits
    for bit in range(8 - spare, 8):  # each padding bit on its own
        bad = frame.copy()
        bad[-1] |= np.uint8(1 << bit)
        with pytest.raises(MalformedMessage, match="padding"):
            unpack(bad, d, bits)
    ok = frame.copy()
    ok[-1] |= np.uint8(1 << (7 - spare))  # the highest bit that belongs to the last value is data
    assert unpack(ok, d, bits)[-1] == 1 << (bits - 1)


def test_values_too_wide_are_refused_when_packing():
    with pytest.raises(ValueError, match="20 bits"):
        pack(np.array([2**20], dtype=np.uint64), 20)
    with pytest.raises(ValueError):
        pack(np.array([-1]), 20)
    with pytest.raises(ValueError):
        packed_size(3, 65)
