"""The ServerApp: ``runtime.local.run`` (rounds, evaluation, results.json) with Flower as transport.

Each stage of ``fl.server``'s state machine (RoundStart, every secure-sum stage, every pass)
is one Flower message round (``Grid.send_and_receive``); a node that does not answer within
the stage's timeout, answers with an error, or refuses, is simply absent from the replies and
the state machine treats it as a dropout. Run config keys (``[tool.flwr.app.config]``):

- ``config``: a FedHFT TOML file ("" = defaults); ``set``: overrides ``key=value`` separated by ``;``
- ``out-dir``: the run folder (``{run_id}`` is replaced; relative paths are relative to the
  ServerApp's working directory)
- ``wait-nodes``, ``hello-timeout``, ``train-timeout``, ``stage-timeout``: seconds
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

from ...config import RunConfig, config_to_dict, load_config
from ...exceptions import ConfigError
from ...fl.client import LocalReport
from ...privacy.events import event_from_dict
from ..local import Fault, deliver_reply, run
from ..world import World, build_world
from .records import HELLO, STEP, pack, unpack

__all__ = ["app", "Timeouts", "FlowerTransport", "serve", "check_flower", "config_from_run_config"]

log = logging.getLogger("fedhft_secure.flower")


@dataclass(frozen=True, slots=True)
class Timeouts:
    wait_nodes: float = 60.0  # for the nodes to connect before the first round
    hello: float = 300.0  # a node builds its partition (a SuperNode's worker starts)
    train: float = 600.0  # RoundStart: local training
    stage: float = 120.0  # every other stage

    @classmethod
    def from_run_config(cls, rc: dict[str, Any]) -> "Timeouts":
        d = cls()
        return cls(wait_nodes=float(rc.get("wait-nodes", d.wait_nodes)), hello=float(rc.get("hello-timeout", d.hello)),
                   train=float(rc.get("train-timeout", d.train)), stage=float(rc.get("stage-timeout", d.stage)))


class _Data:
    __slots__ = ("id", "level")

    def __init__(self, id: int, level: float | None) -> None:
        self.id, self.level = id, level


class _Ledger:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def settle_distributed(self, round: int, *, dropped: int) -> None:
        """Nothing to settle here: ``serve`` refuses distributed noise on Flower (the nodes' ledgers
        would need each round's dropouts, which they do not receive yet)."""


class RemoteClient:
    """The server's stand-in for a node's client: what it reported, nothing it holds."""

    def __init__(self, id: int, level: float | None) -> None:
        self.data = _Data(id, level)
        self.report: LocalReport | None = None
        self.ledger = _Ledger()
        self.trainable = True

    def may_train(self, round: int) -> bool:
        return self.trainable


def _message(content: Any, node: int, group: str) -> Message:
    return Message(content=content, dst_node_id=node, message_type="query", group_id=group)


class FlowerTransport:
    def __init__(self, grid: Grid, timeouts: Timeouts = Timeouts()) -> None:
        self.grid = grid
        self.t = timeouts
        self.nodes: dict[int, int] = {}  # client id -> Flower node id
        self.clients: dict[int, int] = {}  # Flower node id -> client id
        self.stages = 0
        self.poll = 0.1

    def send_and_receive(self, msgs: list[Message], timeout: float) -> list[Message]:
        """``Grid.send_and_receive``, polling every ``poll`` s (Flower's own waits 3 s between pulls)."""
        if not msgs:
            return []
        waiting = set(self.grid.push_messages(msgs))
        end = time.monotonic() + timeout
        out: list[Message] = []
        while True:
            got = list(self.grid.pull_messages(waiting))
            out += got
            waiting -= {m.metadata.reply_to_message_id for m in got}
            if not waiting or time.monotonic() >= end:
                return out
            time.sleep(self.poll)

    # -- who is there -------------------------------------------------------------------
    def discover(self, cfg: RunConfig) -> dict[int, float]:
        n = cfg.fed.num_clients
        deadline = time.monotonic() + self.t.wait_nodes
        while len(list(self.grid.get_node_ids())) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        config = json.dumps(config_to_dict(cfg))
        msgs = [_message(pack({"op": HELLO, "config": config}), node, "hello") for node in self.grid.get_node_ids()]
        levels: dict[int, float] = {}
        for rep in self.send_and_receive(msgs, self.t.hello):
            if rep.has_error():
                continue
            try:
                f = unpack(rep.content)
                cid, level = int(f["client"]), float(f["level"])
            except (KeyError, ValueError, TypeError):
                continue
            if 0 <= cid < n and cid not in self.nodes:  # one node per client id, first come
                self.nodes[cid] = rep.metadata.src_node_id
                self.clients[rep.metadata.src_node_id] = cid
                levels[cid] = level
        log.info("fedhft: %d of %d clients answered (nodes %s)", len(self.nodes), n, self.nodes)
        return levels

    def make_world(self, cfg: RunConfig) -> World:
        world = build_world(cfg, only=())  # the public parts: base model, test split, backend
        levels = self.discover(cfg)
        return dataclasses.replace(world, clients=[RemoteClient(i, levels.get(i))  # type: ignore[misc]
                                                   for i in range(cfg.fed.num_clients)])

    # -- one round: every stage one Flower message round ------------------------------------
    def exchange(self, server: Any, clients: dict[int, RemoteClient], first: dict[int, bytes],
                 traffic: dict[int, list[int]], fault: Fault | None, rnd: int, on_reply: Any = None) -> float:
        out: dict[int, bytes] | None = first
        busy = 0.0  # seconds inside the server's own steps, as the in-process runner reports
        while out is not None:
            stage = server.stage
            msgs: list[Message] = []
            for i, blob in out.items():
                traffic[i][1] += len(blob)
                if fault is not None:
                    blob = fault(f"{stage}>", rnd, i, blob)
                if blob is None or i not in self.nodes:
                    continue
                msgs.append(_message(pack({"op": STEP, "blob": blob}), self.nodes[i], f"{rnd}:{stage}"))
            timeout = self.t.train if stage == "round_start" else self.t.stage
            self.stages += 1
            for rep in self.send_and_receive(msgs, timeout):
                i = self.clients.get(rep.metadata.src_node_id)
                if i is None or rep.has_error():
                    continue  # no reply: a dropout for the state machine
                try:
                    f = unpack(rep.content)
                except ValueError:
                    continue
                if on_reply:
                    on_reply(i)
                if "report" in f:
                    c = clients[i]
                    c.report = LocalReport(**json.loads(f["report"]))
                    c.ledger.events = [event_from_dict(e) for e in json.loads(f.get("events", "[]"))]
                    c.trainable = bool(f.get("may-train", True))
                reply = f.get("blob")
                if reply is None:
                    continue  # the client refused
                busy += deliver_reply(server, i, bytes(reply), traffic, fault, stage, rnd)
            t0 = time.perf_counter()
            out = server.advance()
            busy += time.perf_counter() - t0
        return busy


def check_flower(cfg: RunConfig) -> None:
    """What the Flower engine cannot run yet, refused before anything starts."""
    if cfg.privacy.distributed_noise > 0:
        raise ConfigError("privacy.distributed_noise", "is not supported on Flower yet", "0, or --engine local")
    if cfg.secure.backend == "ckks":  # every method: members' keys are made per run, in-process
        raise ConfigError("secure.backend", f"ckks (method {cfg.method!r}) runs in-process only for now",
                          "plaintext, masking, or --engine local")


def serve(grid: Grid, cfg: RunConfig, out_dir: Path, timeouts: Timeouts = Timeouts(), *,
          progress: bool = False, fault: Fault | None = None) -> dict[str, Any]:
    """One FedHFT run over ``grid``: the in-process runner's loop and output, Flower's transport."""
    check_flower(cfg)
    t = FlowerTransport(grid, timeouts)
    return run(cfg, out_dir, progress=progress, fault=fault, make_world=t.make_world, exchange_fn=t.exchange)


def config_from_run_config(rc: dict[str, Any]) -> RunConfig:
    sets = [s.strip() for s in str(rc.get("set", "")).replace("\n", ";").split(";") if s.strip()]
    return load_config(str(rc["config"]) if rc.get("config") else None, sets)


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    cfg = config_from_run_config(rc)
    out = Path(str(rc.get("out-dir", "runs/flower/run-{run_id}")).replace("{run_id}", str(context.run_id)))
    res = serve(grid, cfg, out, Timeouts.from_run_config(rc))
    log.warning("fedhft: %d rounds -> %s", len(res["rounds"]), out.resolve() / "results.json")
