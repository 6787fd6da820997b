"""SEAL ciphertexts to and from bytes, through TenSEAL's raw SEAL binding.

Why raw SEAL (``tenseal.sealapi``): SEAL can save a symmetric encryption
*seeded* -- the uniformly random polynomial c1 replaced by the seed of the
PRNG that drew it -- which halves an upload. TenSEAL's ``CKKSVector`` drops
the seed, and its own encryptor binding cannot return SEAL's
``Serializable<Ciphertext>``; the sealapi ``Encryptor`` can, built from the
``SEALContext`` and secret key of a member's TenSEAL context (the two
bindings share the SEAL types). The receiver's ``Ciphertext.load`` expands
the seed; it needs the parameters only, no key.

Why files: the binding's ``save``/``load`` take a path, no byte stream, and
neither TenSEAL nor sealapi offers another way out. Each call works in a
fresh private directory (``tempfile``, mode 0700) that is deleted before the
call returns. Only ciphertexts ever pass through it, never a key.

Why received bytes are inflated here: SEAL writes a 16-byte header and a
zstd frame. Its own on-demand inflater aborts the whole process on some
corrupted zstd input (found by fuzzing: one flipped bit inside a compressed
block -> ``std::terminate``, "basic_ios::clear: iostream error", TenSEAL
0.3.18), so a hostile peer could kill the server or a member. ``canonical``
therefore inflates the frame with ``zstandard`` -- bounded by the size the
parameters allow, one frame, nothing after it -- and SEAL only ever loads the
uncompressed form (compression mode "none"), which also gives one byte
string per ciphertext however it was framed (replays are named by it).
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable

import zstandard
from tenseal import sealapi

from ...exceptions import MalformedCiphertext, OversizedMessage

__all__ = ["seeded_bytes", "ciphertext_bytes", "canonical", "load_ciphertext", "HEADER", "SEAL_MAGIC"]

SEAL_MAGIC = 0xA15E
HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, version major, minor, compression, reserved, size
_NONE, _ZSTD = 0, 2


def _through_file(write: Callable[[str], None]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fedhft-ckks-") as d:  # created 0700
        path = os.path.join(d, "ct")
        write(path)
        with open(path, "rb") as fh:
            blob = fh.read()
        os.unlink(path)
    return blob


def seeded_bytes(encryptor: sealapi.Encryptor, plain: sealapi.Plaintext) -> bytes:
    """A fresh symmetric encryption of ``plain``, serialized with c1 as its seed."""
    return _through_file(encryptor.encrypt_symmetric(plain).save)


def ciphertext_bytes(ct: sealapi.Ciphertext) -> bytes:
    """A full ciphertext (e.g. a sum: its c1 is no longer a PRNG's output)."""
    return _through_file(ct.save)


def canonical(blob: bytes, *, max_content: int, sender: int | None = None) -> bytes:
    """A received SEAL blob in SEAL's uncompressed form; at most ``max_content`` bytes after the header."""
    who = "" if sender is None else f"sender {sender}: "
    if len(blob) < HEADER.size:
        raise MalformedCiphertext(f"{who}SEAL ciphertext truncated ({len(blob)} bytes)", sender=sender)
    magic, hsize, major, minor, mode, reserved, size = HEADER.unpack_from(blob)
    if magic != SEAL_MAGIC or hsize != HEADER.size or major != 4 or reserved or size != len(blob):
        raise MalformedCiphertext(f"{who}not a SEAL 4 ciphertext, or its header's size is wrong", sender=sender)
    body = bytes(blob[HEADER.size:])
    if mode == _ZSTD:
        try:
            declared = zstandard.frame_content_size(body)  # -1: not declared
            if declared > max_content:
                raise OversizedMessage(f"{who}SEAL ciphertext declares {declared} bytes, at most "
                                       f"{max_content} here", sender=sender)
            body = zstandard.ZstdDecompressor().decompress(body, max_output_size=max_content,
                                                           allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise MalformedCiphertext(f"{who}SEAL ciphertext does not inflate: {exc}", sender=sender) from None
    elif mode != _NONE:
        raise MalformedCiphertext(f"{who}SEAL compression mode {mode} (SEAL writes zstd)", sender=sender)
    if len(body) > max_content:
        raise OversizedMessage(f"{who}SEAL ciphertext of {len(body)} bytes, at most {max_content} here",
                               sender=sender)
    return HEADER.pack(magic, hsize, major, minor, _NONE, 0, HEADER.size + len(body)) + body


def load_ciphertext(context: sealapi.SEALContext, canon: bytes, *,
                    sender: int | None = None) -> sealapi.Ciphertext:
    """``canonical`` bytes -> a ciphertext SEAL has checked against ``context``; typed errors, never SEAL's."""
    if len(canon) < HEADER.size or HEADER.unpack_from(canon)[4] != _NONE:
        raise MalformedCiphertext("load_ciphertext takes canonical (uncompressed) bytes only", sender=sender)
    ct = sealapi.Ciphertext()
    with tempfile.TemporaryDirectory(prefix="fedhft-ckks-") as d:
        path = os.path.join(d, "ct")
        with open(path, "wb") as fh:
            fh.write(canon)
        try:
            ct.load(context, path)  # SEAL checks metadata and every coefficient against the moduli
        except Exception as exc:  # noqa: BLE001 - SEAL raises assorted C++ errors
            who = "" if sender is None else f"sender {sender}: "
            raise MalformedCiphertext(f"{who}SEAL refuses the ciphertext: {exc}", sender=sender) from None
        finally:
            os.unlink(path)
    return ct
