"""Codecs round-trip, and every malformed input is a typed RemoteProtocolError."""

import struct

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedhft_secure.exceptions import (LocalProtocolError, MalformedMessage, OversizedMessage, RemoteProtocolError,
                                      ReplayedMessage, WrongRound, WrongSender, WrongVersion)
from fedhft_secure.fl.messages import (SERVER, ExplicitUpload, Intake, PassReply, PassRequest, RoundStart, decode,
                                       encode)

DTYPES = [torch.float32, torch.float64, torch.int64, torch.int32, torch.bool, torch.uint8, torch.int16]


@st.composite
def tensors(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    t = torch.randn(shape, generator=gen) * 100
    return t.to(dtype)


tensor_dicts = st.dictionaries(st.text(min_size=1, max_size=12), tensors(), max_size=4)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["start", "request", "reply", "upload"]))
    rnd, pss = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**16 - 1))
    floats = st.lists(st.floats(0, 1), max_size=4)
    if kind == "start":
        return RoundStart(round=rnd, probs=draw(floats), lr=draw(st.floats(0, 1)), adapters=draw(tensor_dicts),
                          heads=draw(tensor_dicts))
    if kind == "request":
        return PassRequest(round=rnd, pass_idx=pss, plan_pass=draw(st.integers(0, 9)), epoch=draw(st.integers(0, 3)),
                           ops=draw(st.dictionaries(st.text(max_size=8), st.sampled_from(["L", "R"]))),
                           omega=draw(st.dictionaries(st.text(max_size=8),
                                                      st.lists(st.integers(0, 2**31), max_size=2))),
                           probs=draw(floats), inputs=draw(tensor_dicts))
    sender = draw(st.integers(0, 2**32 - 2))
    if kind == "reply":
        return PassReply(round=rnd, pass_idx=pss, sender=sender, payload=draw(tensor_dicts),
                         sketch=draw(tensor_dicts))
    return ExplicitUpload(round=rnd, sender=sender, rows=draw(tensor_dicts), B=draw(tensor_dicts),
                          A=draw(tensor_dicts), head=draw(tensor_dicts), sketch=draw(tensor_dicts))


def same(a, b):
    assert type(a) is type(b)
    for f in a.__dataclass_fields__:
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, dict) and x and isinstance(next(iter(x.values())), torch.Tensor):
            assert x.keys() == y.keys()
            for k in x:
                assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k])
        else:
            assert x == y


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_roundtrip(msg):
    blob = encode(msg)
    same(decode(blob, type(msg)), msg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_truncation_and_corruption_are_typed_errors(msg, data):
    blob = encode(msg)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(RemoteProtocolError):
        decode(blob[:cut], type(msg))
    pos = data.draw(st.integers(0, len(blob) - 1))
    flipped = bytearray(blob)
    flipped[pos] ^= data.draw(st.integers(1, 255))
    try:
        decode(bytes(flipped), type(msg))
    except RemoteProtocolError:
        pass  # anything else (IndexError, RuntimeError, ...) fails the test


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_rejected(blob):
    with pytest.raises(RemoteProtocolError):
        decode(blob, PassReply)


def reply(**kw):
    base = dict(round=2, pass_idx=1, sender=3, payload={"x": torch.ones(4)}, sketch={})
    base.update(kw)
    return encode(PassReply(**base))


def test_envelope_checks():
    blob = reply()
    with pytest.raises(OversizedMessage):
        decode(blob, PassReply, max_bytes=len(blob) - 1)
    with pytest.raises(WrongVersion):
        decode(blob[:4] + bytes([9]) + blob[5:], PassReply)
    with pytest.raises(WrongRound):
        decode(blob, PassReply, round=3)
    with pytest.raises(WrongRound):
        decode(blob, PassReply, round=2, pass_idx=2)
    with pytest.raises(WrongSender):
        decode(blob, PassReply, sender=4)
    with pytest.raises(MalformedMessage):
        decode(blob, RoundStart)  # wrong kind
    with pytest.raises(LocalProtocolError):
        encode(PassReply(round=0, pass_idx=0, sender=1, payload={"x": torch.ones(1000)}), max_bytes=100)


def test_header_types_are_checked():
    good = encode(PassRequest(round=0, pass_idx=1, plan_pass=0, epoch=0, ops={"a": "L"}, omega={}, probs=[1.0]))
    meta_len = struct.unpack_from("<I", good, 16)[0]
    bad_meta = b'{"plan_pass":0,"epoch":0,"ops":{"a":"L"},"omega":{},"probs":"one"}'
    forged = good[:16] + struct.pack("<I", len(bad_meta)) + bad_meta + good[20 + meta_len:]
    with pytest.raises(MalformedMessage, match="probs"):
        decode(forged, PassRequest)


def test_intake_rejects_replays_and_strangers():
    intake = Intake()
    intake.accept(reply(), PassReply, round=2, pass_idx=1, sender=3, allowed={3, 4})
    with pytest.raises(ReplayedMessage):
        intake.accept(reply(), PassReply, round=2, pass_idx=1, sender=3, allowed={3, 4})
    with pytest.raises(WrongSender):  # forged sender id: claims 3 on 4's channel
        intake.accept(reply(), PassReply, round=2, pass_idx=1, sender=4, allowed={3, 4})
    with pytest.raises(WrongSender):  # not in the cohort
        intake.accept(reply(sender=9), PassReply, round=2, pass_idx=1, sender=9, allowed={3, 4})
    with pytest.raises(WrongRound):  # an old round's message
        intake.accept(reply(round=1, sender=4), PassReply, round=2, pass_idx=1, sender=4, allowed={3, 4})


def test_server_sender_constant():
    assert decode(encode(RoundStart(round=0, probs=[1.0], lr=0.1)), RoundStart).sender == SERVER


def test_forged_shape_of_an_empty_frame_is_a_typed_error():
    # Found by hypothesis in CI: an empty frame carries no bytes, so its other dimensions were
    # never bounded and torch's storage-size arithmetic overflowed (RuntimeError, not typed).
    msg = PassReply(round=0, pass_idx=0, sender=0, payload={"x": torch.empty(0, 3, 3, 3)}, sketch={})
    blob = encode(msg)
    real = struct.pack("<4I", 0, 3, 3, 3)
    assert blob.count(real) == 1
    forged = blob.replace(real, struct.pack("<4I", 2**30, 2**30, 2**30, 0))
    with pytest.raises(MalformedMessage):
        decode(forged, PassReply)


def test_a_backend_without_session_messages_refuses_any_as_malformed():
    """plaintext and ckks clients have no secure-sum messages: anything reaching their session is malformed."""
    from fedhft_secure.exceptions import MalformedMessage
    from fedhft_secure.secure.api import BACKENDS

    session = BACKENDS["plaintext"]().client_session(0, 1)
    with pytest.raises(MalformedMessage, match="kind 16"):
        session.handle(b"FHS\x01\x00\x10" + bytes(20))
    with pytest.raises(MalformedMessage):
        session.handle(b"")
