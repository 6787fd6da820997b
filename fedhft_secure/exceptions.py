"""One error hierarchy. The class says whose fault it is.

``LocalProtocolError``: this process misused an API (a bug or a bad call).
``RemoteProtocolError``: a peer sent something it must not have; a
threat-model event that the round survives, never a crash.
"""

from __future__ import annotations

__all__ = [
    "FedHFTError",
    "ConfigError",
    "DataError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "MalformedMessage",
    "OversizedMessage",
    "WrongVersion",
    "WrongRound",
    "WrongSender",
    "ReplayedMessage",
    "ShapeMismatch",
    "AggregationAborted",
    "PolicyViolation",
    "MalformedCiphertext",
    "WrongKey",
    "ValueOutOfRange",
    "MissingKey",
]


class FedHFTError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(FedHFTError, ValueError):
    """A configuration key or value is not allowed; the message names both."""

    def __init__(self, key: str, problem: str, allowed: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.allowed = allowed
        text = f"config key '{key}': {problem}"
        if allowed:
            text += f" (allowed: {allowed})"
        super().__init__(text)


class DataError(FedHFTError, ValueError):
    """A dataset could not be read or does not have what the run needs."""


class LocalProtocolError(FedHFTError):
    """We drove a protocol or codec wrongly (e.g. encoding an over-limit message)."""


class RemoteProtocolError(FedHFTError):
    """A peer sent bytes or values that the protocol does not accept.

    ``sender`` names the peer when the raiser knows it, so the caller can
    drop exactly that peer and carry on.
    """

    def __init__(self, message: str, *, sender: int | None = None) -> None:
        self.sender = sender
        super().__init__(message)


class MalformedMessage(RemoteProtocolError):
    """Bytes that do not decode to a well-formed message."""


class OversizedMessage(RemoteProtocolError):
    """A message (or one of its frames) above the configured size limit."""


class WrongVersion(RemoteProtocolError):
    """A message of a wire version we do not speak."""


class WrongRound(RemoteProtocolError):
    """A message for another round or pass than the one in progress."""


class WrongSender(RemoteProtocolError):
    """A message whose sender id is not the expected peer."""


class ReplayedMessage(RemoteProtocolError):
    """A second message from the same sender for the same round and pass."""


class ShapeMismatch(RemoteProtocolError):
    """A contribution whose tensors do not have the shapes the pass asked for."""


class AggregationAborted(FedHFTError):
    """Too many dropouts for the secure sum to be opened: nothing is revealed, the sum is lost."""


class PolicyViolation(RemoteProtocolError):
    """The server asked for something the protocol forbids (e.g. both shares of one peer)."""


class MalformedCiphertext(MalformedMessage):
    """CKKS ciphertext bytes that do not load, or load as something the parameters forbid."""


class WrongKey(RemoteProtocolError):
    """A ciphertext made under another parameter set or key epoch than ours."""


class ValueOutOfRange(LocalProtocolError):
    """A value outside the bound the CKKS parameters were derived for (it would wrap around)."""


class MissingKey(LocalProtocolError):
    """An operation that needs key material this party does not (and must not) hold."""
