"""Client and server steps of a FedHFT round, and the messages between them."""

from .client import Client, ClientData, LocalReport
from .explicit import ExplicitServer
from .server import PassPlanServer, ServerState, make_server

__all__ = ["Client", "ClientData", "LocalReport", "ExplicitServer", "PassPlanServer",
           "ServerState", "make_server"]
