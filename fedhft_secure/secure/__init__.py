"""SecureSum: per-cluster sums of client vectors under public cluster weights."""

from .api import Contribution, SecureSum, backend_for
from .ckks.sum import CkksSum
from .opened import ClientOpenedSum, opens_on_client
from .plaintext import PlaintextSum

__all__ = ["Contribution", "SecureSum", "PlaintextSum", "CkksSum", "ClientOpenedSum", "opens_on_client",
           "backend_for"]
