"""Thin, safe primitives on ``cryptography``: key agreement, PRG, AEAD, signatures, Shamir, encoding.

Keys come from the OS (``os.urandom`` via ``cryptography``/``secrets``);
nothing here logs, and deterministic inputs exist only for test vectors.
"""

from .aead import open_share, seal_share
from .encoding import FixedPoint
from .kex import KeyPair, agree, hkdf
from .prg import prg_uint
from .shamir import PRIME, reconstruct, split
from .sign import IdentityKey, verify

__all__ = ["open_share", "seal_share", "FixedPoint", "KeyPair", "agree", "hkdf", "prg_uint", "PRIME",
           "reconstruct", "split", "IdentityKey", "verify"]
