"""Extension of SecureSum for backends whose sums only clients can read.

``SecureSum.server_sum`` returns, for such a backend, per-cluster *ciphertexts*:
the server forwards them to the clients (e.g. in the next request), and each
client turns them into the per-cluster sums with ``open_sum``. Every client
gets bit-identical tensors from the same bytes, so clients that run the pass
plan's small linear algebra themselves stay in lock-step.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .api import Expected, Tensors

__all__ = ["ClientOpenedSum", "opens_on_client"]


@runtime_checkable
class ClientOpenedSum(Protocol):
    #: True: ``server_sum`` returns ciphertexts the server cannot read.
    opened_by_clients: bool

    def open_sum(self, summed: Tensors, *, expected: Expected, cluster: int) -> Tensors:
        """Client side: one cluster's entry of ``server_sum``'s result -> the sums, by name.

        Raises a RemoteProtocolError (sender None: the server) if the bytes are bad.
        """
        ...


def opens_on_client(backend: object) -> bool:
    return isinstance(backend, ClientOpenedSum) and bool(getattr(backend, "opened_by_clients", False))
