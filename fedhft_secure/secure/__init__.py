"""SecureSum: per-cluster sums of client vectors under public cluster weights."""

from .api import Contribution, SecureSum, backend_for
from .plaintext import PlaintextSum

__all__ = ["Contribution", "SecureSum", "PlaintextSum", "backend_for"]
