"""The byte codec every message uses (wire format v1, see protocols/wire.md).

Scalar fields of a message travel in a JSON header; each ``dict[str, Tensor]``
field travels as frames named ``field/key``. Decoding checks every length
against the buffer and the size limit before reading, and the result against
the expected kind, round, pass and sender. Message classes live with the
protocol that uses them (``fl.messages``, ``secure.masking.messages``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .exceptions import (LocalProtocolError, MalformedMessage, OversizedMessage, ReplayedMessage,
                          WrongRound, WrongSender, WrongVersion)

__all__ = ["VERSION", "SERVER", "Tensors", "message", "encode", "decode", "kind_of", "Intake", "DEFAULT_MAX_BYTES"]

VERSION = 1
SERVER = 0xFFFFFFFF
MAGIC = b"FHSM"
DEFAULT_MAX_BYTES = 64 * 2**20
_HEAD = struct.Struct("<4sBBIHII")
_DTYPES = {1: torch.float32, 2: torch.float64, 3: torch.int64, 4: torch.int32, 5: torch.bool,
           6: torch.uint8, 7: torch.int16}
_CODES = {v: k for k, v in _DTYPES.items()}
Tensors = dict[str, torch.Tensor]


def message(cls):  # noqa: ANN001 - class decorator
    """A wire message: frozen, keyword-only; needs KIND, round, pass_idx, sender."""
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


def kind_of(blob: bytes) -> int:
    """The header's message kind, read before decoding (to dispatch); -1 for bytes too short to hold one."""
    return blob[5] if len(blob) > 5 else -1


M = TypeVar("M")
_ENVELOPE = ("round", "pass_idx", "sender")


def _tensor_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.type in ("Tensors", Tensors)]


def encode(msg: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    cls = type(msg)
    tfields = _tensor_fields(cls)
    meta = {f.name: getattr(msg, f.name) for f in dataclasses.fields(cls)
            if f.name not in tfields and f.name not in _ENVELOPE}
    meta_b = json.dumps(meta, separators=(",", ":")).encode()
    parts = [_HEAD.pack(MAGIC, VERSION, cls.KIND, msg.round, msg.pass_idx, msg.sender, len(meta_b)),
             meta_b]
    frames = [(f"{tf}/{k}", v) for tf in tfields for k, v in getattr(msg, tf).items()]
    parts.append(struct.pack("<I", len(frames)))
    for name, t in frames:
        t = t.detach().contiguous().cpu()
        if t.dtype not in _CODES:
            raise LocalProtocolError(f"frame {name}: dtype {t.dtype} is not encodable")
        nb = name.encode()
        parts.append(struct.pack("<HBB", len(nb), _CODES[t.dtype], t.dim()) + nb)
        parts.append(struct.pack(f"<{t.dim()}I", *t.shape))
        parts.append(t.numpy().tobytes())
    out = b"".join(parts)
    if len(out) > max_bytes:
        raise LocalProtocolError(f"{cls.__name__} is {len(out)} bytes, over the limit {max_bytes}")
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedMessage(f"truncated: need {n} bytes at offset {self.pos} of {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        s = struct.Struct(fmt)
        return s.unpack(self.take(s.size))


def decode(data: bytes, expect: type[M], *, round: int | None = None, pass_idx: int | None = None,
           sender: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """Bytes -> message, or a RemoteProtocolError subclass saying what is wrong."""
    if len(data) > max_bytes:
        raise OversizedMessage(f"{len(data)} bytes, over the limit {max_bytes}")
    r = _Reader(data)
    magic, version, kind, rnd, pss, snd, meta_len = r.unpack(_HEAD.format)
    if magic != MAGIC:
        raise MalformedMessage("not a fedhft-secure message (bad magic)")
    if version != VERSION:
        raise WrongVersion(f"wire version {version}, this peer speaks {VERSION}")
    if kind != expect.KIND:
        raise MalformedMessage(f"expected {expect.__name__}, got kind {kind}")
    if sender is not None and snd != sender:
        raise WrongSender(f"message claims sender {snd} on the channel of {sender}")
    if round is not None and rnd != round:
        raise WrongRound(f"message for round {rnd}, round {round} is in progress")
    if pass_idx is not None and pss != pass_idx:
        raise WrongRound(f"message for pass {pss}, pass {pass_idx} is in progress")
    try:
        meta = json.loads(bytes(r.take(meta_len)).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"header is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise MalformedMessage("header is not a JSON object")
    tfields = _tensor_fields(expect)
    tensors: dict[str, Tensors] = {tf: {} for tf in tfields}
    (n_frames,) = r.unpack("<I")
    if n_frames > len(data):
        raise MalformedMessage(f"{n_frames} frames cannot fit in {len(data)} bytes")
    for _ in range(n_frames):
        name_len, code, ndim = r.unpack("<HBB")
        try:
            name = bytes(r.take(name_len)).decode()
        except UnicodeDecodeError:
            raise MalformedMessage("frame name is not UTF-8") from None
        if code not in _DTYPES:
            raise MalformedMessage(f"frame {name!r}: unknown dtype code {code}")
        shape = r.unpack(f"<{ndim}I")
        if math.prod(d for d in shape if d) > max_bytes:
            # An empty frame carries no data, so only this bound keeps a forged shape like
            # (2**30, 2**30, 0) from overflowing torch's storage-size arithmetic.
            raise MalformedMessage(f"frame {name!r}: shape {shape} is larger than any message")
        dtype = _DTYPES[code]
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        raw = r.take(nbytes)
        tf, _, key = name.partition("/")
        if tf not in tensors or not key:
            raise MalformedMessage(f"frame {name!r} belongs to no field of {expect.__name__}")
        if key in tensors[tf]:
            raise MalformedMessage(f"frame {name!r} appears twice")
        tensors[tf][key] = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape) if nbytes \
            else torch.empty(shape, dtype=dtype)
    if r.pos != len(data):
        raise MalformedMessage(f"{len(data) - r.pos} trailing bytes")
    scalar = {f.name for f in dataclasses.fields(expect)} - set(tfields) - set(_ENVELOPE)
    if set(meta) != scalar:
        raise MalformedMessage(f"header fields {sorted(meta)}, expected {sorted(scalar)}")
    for f in dataclasses.fields(expect):
        if f.name in meta and not _conforms(meta[f.name], str(f.type)):
            raise MalformedMessage(f"header field {f.name!r} is not a {f.type}")
    return expect(round=rnd, pass_idx=pss, sender=snd, **meta, **tensors)


_SCALARS = {"int": (int,), "float": (int, float), "str": (str,)}


def _conforms(value: Any, annotation: str) -> bool:
    """Checks a JSON value against the simple annotations messages use."""
    if annotation in _SCALARS:
        return isinstance(value, _SCALARS[annotation]) and not isinstance(value, bool)
    if annotation.startswith("list[") and annotation.endswith("]"):
        inner = annotation[5:-1]
        return isinstance(value, list) and all(_conforms(v, inner) for v in value)
    if annotation.startswith("dict[str, ") and annotation.endswith("]"):
        inner = annotation[10:-1]
        return isinstance(value, dict) and all(_conforms(v, inner) for v in value.values())
    return False


class Intake:
    """Accepts each sender at most once per (round, pass); everything else is an error.

    Pure state: the runtime feeds it (channel sender, bytes) and gets a
    message or a typed RemoteProtocolError to record against that sender.
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.seen: set[tuple[int, int, int]] = set()

    def accept(self, data: bytes, expect: type[M], *, round: int, pass_idx: int, sender: int,
               allowed: Mapping[int, Any] | set[int]) -> M:
        if sender not in allowed:
            raise WrongSender(f"sender {sender} is not in this round's cohort")
        msg = decode(data, expect, round=round, pass_idx=pass_idx, sender=sender,
                     max_bytes=self.max_bytes)
        key = (round, pass_idx, sender)
        if key in self.seen:
            raise ReplayedMessage(f"sender {sender} already answered round {round} pass {pass_idx}")
        self.seen.add(key)
        return msg
