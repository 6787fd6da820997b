"""``fedhft-secure run --engine flower-sim``: the ServerApp and ClientApp on Flower's simulation engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ...config import RunConfig
from .server_app import Timeouts, check_flower, serve

__all__ = ["run_flower_sim"]


def run_flower_sim(cfg: RunConfig, out_dir: Path, *, timeouts: Timeouts | None = None, progress: bool = False,
                   num_supernodes: int | None = None, verbose: bool = False) -> dict[str, Any]:
    """One run with ``num_supernodes`` (default fed.num_clients) simulated SuperNodes.

    The clients live in one Ray actor (one CPU for the whole backend): a node's messages always
    reach the process that holds its client, and the CPU budget is the in-process runner's.
    """
    check_flower(cfg)  # before the simulation engine starts
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from .client_app import app as client_app

    if not verbose:
        logging.getLogger("flwr").setLevel(logging.WARNING)
    box: dict[str, Any] = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid, context) -> None:  # noqa: ANN001
        try:
            box["results"] = serve(grid, cfg, Path(out_dir), timeouts or Timeouts(), progress=progress)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    run_simulation(server_app=server_app, client_app=client_app,
                   num_supernodes=num_supernodes or cfg.fed.num_clients, verbose_logging=verbose,
                   backend_config={"client_resources": {"num_cpus": 1},
                                   "init_args": {"num_cpus": 1, "_node_ip_address": "127.0.0.1",
                                                 "include_dashboard": False}})
    if "error" in box:
        raise box["error"]
    if "results" not in box:
        raise RuntimeError("the Flower simulation ended without running the ServerApp")
    return box["results"]
