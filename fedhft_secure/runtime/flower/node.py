"""A node's side: its own ``Client`` for a run, built from the run config the server sent.

Used in-process by the ClientApp in Flower's simulation engine and by ``worker`` on a
SuperNode. A node builds only its own partition (``build_world(cfg, only={partition})``).
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

from ...config import config_from_dict
from ...exceptions import FedHFTError, RemoteProtocolError
from ...fl.client import Client
from ...fl.messages import RoundStart
from ...privacy.events import event_to_dict
from ...wire import kind_of
from ..world import build_world
from .records import HELLO, STEP

__all__ = ["NodeState", "handle"]

warnings.filterwarnings("ignore", category=FutureWarning)


class NodeState:
    """The clients this process holds, one per (run, partition); only the newest run is kept."""

    def __init__(self) -> None:
        self.clients: dict[tuple[int, int], Client] = {}
        self.lock = threading.Lock()

    def client(self, run_id: int, partition: int, config_json: str | None) -> Client | None:
        key = (run_id, partition)
        if key in self.clients or config_json is None:
            return self.clients.get(key)
        cfg = config_from_dict(json.loads(config_json))
        if not 0 <= partition < cfg.fed.num_clients:
            raise FedHFTError(f"partition-id {partition} is not below fed.num_clients={cfg.fed.num_clients}")
        (client,) = build_world(cfg, only={partition}).clients
        for old in [k for k in self.clients if k[0] != run_id]:  # a new run: forget the old one
            del self.clients[old]
        self.clients[key] = client
        return client


STATE = NodeState()


def handle(run_id: int, partition: int, fields: dict[str, Any], state: NodeState = STATE) -> dict[str, Any]:
    """One server message (its ConfigRecord fields) -> the reply's fields."""
    op = fields.get("op")
    with state.lock:
        if op == HELLO:
            c = state.client(run_id, partition, str(fields["config"]))
            assert c is not None
            return {"client": c.data.id, "level": float(c.data.level)}
        if op != STEP:
            return {"refused": f"unknown op {op!r}"}
        c = state.client(run_id, partition, None)
        if c is None:
            return {"refused": f"no client for run {run_id} here (no hello, or the node restarted)"}
        blob = bytes(fields["blob"])
        try:
            reply = c.handle(blob)
        except RemoteProtocolError as exc:  # refuses: no reply reaches the state machine
            return {"refused": f"{type(exc).__name__}: {exc}"}
        out: dict[str, Any] = {"blob": reply}
        if kind_of(blob) == RoundStart.KIND and c.report is not None:
            out["report"] = json.dumps({k: getattr(c.report, k) for k in c.report.__slots__})
            out["events"] = json.dumps([event_to_dict(e) for e in c.ledger.events] if c.ledger else [])
            out["may-train"] = bool(c.may_train(c.round + 1))
        return out
