"""Drives a masking session for one pass without a model: server and clients as state machines."""

from __future__ import annotations

import numpy as np
import torch

from fedhft_secure.exceptions import AggregationAborted, RemoteProtocolError
from fedhft_secure.secure.api import Contribution, Expected, SessionInfo
from fedhft_secure.secure.masking import MaskingSum

STAGES = ("setup", "directory", "forward", "input", "check", "unmask")


def run_pass(vectors: dict[int, np.ndarray], weights: dict[int, list[float]], *, drop: dict[int, str] | None = None,
             backend: MaskingSum | None = None, tamper=None, clusters: int = 1,
             rows: dict[int, np.ndarray] | None = None, until: str | None = None, passes: int = 1):
    """One key set-up and one pass. ``drop[c] = stage``: c sends nothing from that stage on;
    ``until="input"`` stops once the masked inputs are in (for tests that play the server).

    Returns (sums per cluster or None if aborted, server session, client sessions, errors).
    """
    backend = backend or MaskingSum()
    drop = drop or {}
    ids = sorted(vectors)
    info = SessionInfo(round=3, epoch=0, cohort=tuple(ids), clusters=clusters, passes=passes,
                       weights={i: tuple(weights[i]) for i in ids})
    server = backend.server_session(info)
    clients = {i: backend.client_session(i, 3, rows=None if rows is None else {"L": rows[i]}) for i in ids}
    d = len(next(iter(vectors.values())))
    # with rows: "v" is a (rows x 1) row-structured vector of layer "L"
    expected = Expected(shared={"v": (d,)}, per_cluster={}, row_layers={"v": "L"} if rows is not None else {})
    errors = []

    def gone(i, stage):
        return i in drop and STAGES.index(drop[i]) <= STAGES.index(stage)

    def exchange(msgs, stage):
        for i, blob in msgs.items():
            if gone(i, stage):
                continue
            try:
                reply = clients[i].handle(blob)
                if tamper:
                    reply = tamper(stage, i, reply)
                server.receive(i, reply)
            except RemoteProtocolError as exc:
                errors.append((i, exc))

    try:
        for stage in ("setup", "directory", "forward"):
            exchange(server.next_messages(), stage)
        assert server.next_messages() == {}
        server.begin_pass(1, slot=0, expected=expected)
        for i in ids:
            if gone(i, "input") or i not in server.alive:
                continue
            c = Contribution(shared={"v": torch.from_numpy(vectors[i])})
            payload = clients[i].payload(c, slot=0, weights=weights[i], expected=expected)
            try:
                server.add_payload(i, payload if not tamper else tamper("input", i, payload))
            except RemoteProtocolError as exc:
                errors.append((i, exc))
        server.end_inputs()
        if until == "input":
            return None, server, clients, errors
        while msgs := server.next_messages():  # [check,] unmask
            exchange(msgs, server.stage)
    except AggregationAborted as exc:
        return None, server, clients, errors + [(-1, exc)]
    return server.sums(), server, clients, errors
