"""SecureSum: per-cluster sums of client vectors under public cluster weights."""

from . import masking
from .api import ClientSession, Contribution, Expected, SecureSum, ServerSession, SessionInfo, backend_for
from .masking import MaskingSum
from .plaintext import PlaintextSum

__all__ = ["Contribution", "Expected", "SecureSum", "ServerSession", "ClientSession", "SessionInfo",
           "PlaintextSum", "MaskingSum", "backend_for", "masking"]
