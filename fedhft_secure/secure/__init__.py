"""SecureSum: per-cluster sums of client vectors under public cluster weights."""

from . import masking
from .api import ClientSession, Contribution, Expected, SecureSum, ServerSession, SessionInfo, backend_for
from .ckks.sum import CkksSum
from .masking import MaskingSum
from .opened import ClientOpenedSum, opens_on_client
from .plaintext import PlaintextSum

__all__ = ["Contribution", "Expected", "SecureSum", "ServerSession", "ClientSession", "SessionInfo",
           "PlaintextSum", "MaskingSum", "CkksSum", "ClientOpenedSum", "opens_on_client", "backend_for", "masking"]
