"""The in-process runner: every client in this process, every message as bytes.

Writes ``results.json`` (the output contract), a checkpoint after every
round (``--resume`` continues from it) and ``adapters/cluster_<j>/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import RunConfig, config_from_dict, config_to_dict
from ..exceptions import ConfigError, LocalProtocolError, RemoteProtocolError
from ..fl.client import Client
from ..model.lora import LayerFactors
from ..privacy.events import event_from_dict, event_to_dict
from ..fl.explicit import ExplicitServer
from ..fl.server import PassPlanServer, ServerState, make_server
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint, write_json
from .evaluate import evaluate_adapter, global_model, same_adapter
from .export import save_adapter
from .report import write_reports
from .world import World, build_world

__all__ = ["run", "exchange", "deliver_reply", "Fault", "Exchange", "member_view"]

#: A test hook between sender and receiver: (stage, round, client, bytes) -> bytes to
#: deliver, or None for a message that never arrives (a dropout).
Fault = Callable[[str, int, int, bytes], bytes | None]


def _deliver(fault: Fault | None, stage: str, rnd: int, client: int, blob: bytes) -> bytes | None:
    return blob if fault is None else fault(stage, rnd, client, blob)


def deliver_reply(server: Any, client: int, reply: bytes, traffic: dict[int, list[int]], fault: Fault | None,
                  stage: str, rnd: int) -> float:
    """Count one reply, pass it through the fault hook, hand it to the server; the server's seconds on it.
    Shared by every transport (in-process, Flower)."""
    traffic[client][0] += len(reply)
    delivered = _deliver(fault, f"{stage}<", rnd, client, reply)
    if delivered is None:
        return 0.0
    t0 = time.perf_counter()
    try:
        server.receive(client, delivered)
    except RemoteProtocolError:
        pass  # recorded in server.errors
    return time.perf_counter() - t0


def exchange(server: PassPlanServer | ExplicitServer, clients: dict[int, Client], first: dict[int, bytes],
             traffic: dict[int, list[int]], fault: Fault | None, rnd: int,
             on_reply: Callable[[int], None] | None = None) -> float:
    """Deliver every stage's messages and replies until the server closes the round.

    Returns the seconds spent inside the server's own steps (receive and advance)."""
    out: dict[int, bytes] | None = first
    busy = 0.0
    while out is not None:
        stage = server.stage
        for i, blob in out.items():
            traffic[i][1] += len(blob)
            blob = _deliver(fault, f"{stage}>", rnd, i, blob)
            if blob is None:
                continue
            try:
                reply = clients[i].handle(blob)
            except RemoteProtocolError:
                continue  # the client refuses (e.g. a stale or forbidden request): no reply
            finally:
                if on_reply:
                    on_reply(i)
            busy += deliver_reply(server, i, reply, traffic, fault, stage, rnd)
        t0 = time.perf_counter()
        out = server.advance()
        busy += time.perf_counter() - t0
    return busy


#: How a round's messages travel: ``exchange`` (in-process) or another runtime's (e.g. Flower).
Exchange = Callable[..., float]  # returns the seconds spent in the server's own steps


def _round(world: World, server: PassPlanServer | ExplicitServer, fault: Fault | None,
           progress: Progress | None, skip: set[int] = frozenset(),  # type: ignore[assignment]
           exchange_fn: Exchange = exchange) -> tuple[dict[int, Any], dict[int, list[int]], dict[str, float]]:
    rnd = server.state.round
    ids = [c.data.id for c in world.clients if c.data.id not in skip]  # skip: privacy budget spent
    traffic = {c.data.id: [0, 0] for c in world.clients}  # up, down
    t0 = time.perf_counter()
    task = progress.add_task(f"round {rnd}: clients", total=len(ids)) if progress else None
    trained: set[int] = set()

    def tick(i: int) -> None:
        if progress and task is not None and i not in trained:
            trained.add(i)
            progress.advance(task)

    for c in world.clients:
        c.report = None
    t1 = time.perf_counter()
    first = server.begin_round(ids)
    busy = time.perf_counter() - t1
    busy += exchange_fn(server, {c.data.id: c for c in world.clients}, first, traffic, fault, rnd, tick)
    if progress and task is not None:
        progress.remove_task(task)
    reports = {c.data.id: c.report for c in world.clients if c.report is not None}
    return reports, traffic, {"round": time.perf_counter() - t0, "server": busy}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    if all(isinstance(v, LayerFactors) for v in a.values()):
        return same_adapter(a, b)
    return all(torch.equal(a[k], b[k]) for k in a)


def _evaluate(world: World, state: ServerState, *, last: bool) -> dict[str, Any]:
    cfg = world.cfg
    kw = dict(majority_label=world.majority_label, batch_size=cfg.train.eval_batch_size)
    if cfg.method in OWN_MODELS:
        return _evaluate_own(world, last=last, **kw)
    models = [(state.adapters[j] if state.adapters else {}, state.heads[j]) for j in range(cfg.fed.clusters)]
    if cfg.fed.clusters > 1:
        models.append(global_model(state, cfg.fed.clusters, cfg.lora.r))
    scores: list[Any] = []
    for adapter, head in models:
        # Identical models (every cluster, during warm-up) are scored once.
        twin = next((k for k, (a, h) in enumerate(models[:len(scores)])
                     if _same(a, adapter) and _same(h, head)), None)
        scores.append(scores[twin] if twin is not None
                      else evaluate_adapter(world.base, adapter, head, world.test, **kw))
    per, glob = scores[:cfg.fed.clusters], scores[-1]
    return {"test_accuracy": [s["accuracy"] for s in per], "test_macro_f1": [s["macro_f1"] for s in per],
            "global_test_accuracy": glob["accuracy"], "global_test_macro_f1": glob["macro_f1"],
            "majority_accuracy": glob["majority_accuracy"]}


#: methods with no global model: each client's own model is scored on the test split (last round only)
OWN_MODELS = ("fedsa-lora", "local", "central")


def _evaluate_own(world: World, *, last: bool, **kw: Any) -> dict[str, Any]:
    if not last:
        return {"test_accuracy": [None], "test_macro_f1": [None], "global_test_accuracy": None,
                "global_test_macro_f1": None, "majority_accuracy": None}
    scores = []
    for c in world.clients:
        adapter = {n: LayerFactors(B=c.own["B"][n], A=c.own["A"][n]) for n in c.own["A"]}
        scores.append(evaluate_adapter(world.base, adapter, c.own["head"], world.test, **kw))
    acc = float(np.mean([s["accuracy"] for s in scores]))
    f1 = float(np.mean([s["macro_f1"] for s in scores]))
    return {"test_accuracy": [acc], "test_macro_f1": [f1], "global_test_accuracy": acc,
            "global_test_macro_f1": f1, "majority_accuracy": scores[0]["majority_accuracy"]}


def run(cfg: RunConfig | None, out_dir: Path, *, resume: bool = False, progress: bool = True,
        fault: Fault | None = None, on_round_end: Callable[[int], None] | None = None,
        prepare: Callable[[World], None] | None = None,
        make_world: Callable[[RunConfig], World] = build_world, exchange_fn: Exchange = exchange,
        ) -> dict[str, Any]:
    """``make_world``/``exchange_fn``: another runtime (Flower) supplies stand-ins for the clients
    and its own transport; everything else (rounds, evaluation, results.json) is this code."""
    out_dir = Path(out_dir)
    if resume:
        state, results = load_checkpoint(out_dir)
        stored = config_from_dict(results["config"])
        if cfg is not None and config_to_dict(cfg) != results["config"]:
            raise ConfigError("--resume", "a resumed run keeps its stored config; drop --config/--set")
        cfg = stored
    else:
        assert cfg is not None
        out_dir.mkdir(parents=True, exist_ok=True)
        if (out_dir / CHECKPOINT).exists():
            raise ConfigError("--out", f"{out_dir} already holds a run", "a new folder, or --resume DIR")
        results = {"config": config_to_dict(cfg), "seed": cfg.seed, "rounds": []}
        state = None
    ckks = cfg.secure.backend == "ckks"
    if ckks and make_world is not build_world:
        raise ConfigError("secure.backend", "ckks runs in-process only for now (its keys are made per run)",
                          "plaintext, masking")
    world = build_world(cfg, keys_dir=out_dir / "keys") if ckks else make_world(cfg)
    if prepare is not None:  # e.g. the audit inserts its canaries
        prepare(world)
    for c in world.clients:  # a resumed client's ledger holds what it already spent
        if c.ledger is not None:
            c.ledger.events = [event_from_dict(e) for e in results.get("privacy_events", [])
                               if e["client"] == c.data.id]
    if state is None:
        state = ServerState.initial(num_clients=cfg.fed.num_clients, clusters=cfg.fed.clusters,
                                    head=world.initial_head, plain=not ckks)
    else:
        state.synced.clear()  # the members restart with no state: they replay the server's log
    server = make_server(cfg=cfg, state=state, layer_shapes=world.layer_shapes,
                         backend=world.backend, head_shapes={k: tuple(v.shape) for k, v in world.initial_head.items()})
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   disable=not progress)
    with bar:
        rounds = bar.add_task("rounds", total=cfg.fed.rounds, completed=state.round)
        while state.round < cfg.fed.rounds:
            rnd = state.round
            spent = {c.data.id for c in world.clients if not c.may_train(rnd)}
            if spent and (cfg.privacy.on_budget_exhausted == "stop-run" or len(spent) == len(world.clients)):
                results["stopped"] = {"round": rnd, "reason": "privacy budget spent", "clients": sorted(spent)}
                write_json(out_dir / "results.json", results)
                break
            t0 = time.perf_counter()
            reports, traffic, seconds = _round(world, server, fault, bar if progress else None, spent, exchange_fn)
            left = len({c for c, _ in server.errors if c >= 0})  # distributed noise: fewer contributors
            for c in world.clients:
                if c.ledger is not None:
                    c.ledger.settle_distributed(rnd, dropped=left)
            t1 = time.perf_counter()
            model = member_view(world, state) if ckks else state
            scores = _evaluate(world, model, last=state.round >= cfg.fed.rounds)
            seconds.update(eval=time.perf_counter() - t1, total=time.perf_counter() - t0)
            results["rounds"].append({
                "round": rnd, "seconds": seconds,
                "clients": [{"id": c.data.id, "level": c.data.level, "bytes_up": traffic[c.data.id][0],
                             "bytes_down": traffic[c.data.id][1], "completed": c.data.id in server.cohort,
                             "budget_spent": c.data.id in spent,
                             **({k: getattr(reports[c.data.id], k) for k in reports[c.data.id].__slots__}
                                if c.data.id in reports else {"val_accuracy": None})}
                            for c in world.clients],
                "dropped": [{"client": i, "reason": why} for i, why in server.errors],
                "cluster_probs": state.probs.tolist(),
                **scores,
            })
            done = [c for c in results["rounds"][-1]["clients"] if c.get("val_accuracy") is not None]
            results["final"] = {
                "method": cfg.method,
                "personalized_accuracy": float(np.mean([c["val_accuracy"] for c in done])) if done else None,
                "test_accuracy": scores["global_test_accuracy"], "test_macro_f1": scores["global_test_macro_f1"],
                "majority_accuracy": scores["majority_accuracy"], "cluster_probs": state.probs.tolist(),
                "cluster_test_accuracy": scores["test_accuracy"], "rounds_completed": state.round,
            }
            results["privacy_events"] = [event_to_dict(e) for c in world.clients if c.ledger is not None
                                         for e in c.ledger.events]
            save_checkpoint(out_dir, state, results)
            write_json(out_dir / "results.json", results)
            bar.advance(rounds)
            if on_round_end:
                on_round_end(rnd)
    _export(world, member_view(world, state) if ckks else state, out_dir)
    write_reports(out_dir)
    return results


def member_view(world: World, state: ServerState) -> ServerState:
    """``ckks``: the cluster model as the members derived it (the server holds only ciphertexts).

    This is the release point of the run (evaluation, export). Every member that
    is up to date must hold bit-identical state; anything else is a bug.
    """
    members = [c.member for c in world.clients if c.member is not None and c.member.state.round == state.round]
    if not members:  # nobody took the last result: bring one member up to date from the log
        m = world.clients[0].member
        assert m is not None
        from ..fl.messages import RoundLog, decode, encode
        from ..fl.server_ckks import CkksPassServer

        for rec in state.log[m.state.round:]:
            m.apply(decode(encode(CkksPassServer.log_message(rec, 0)), RoundLog))
        members = [m]
    ref = members[0].state
    for m in members[1:]:
        if not _same_state(m.state, ref):
            raise LocalProtocolError("members derived different cluster states from the same sums")
    return ServerState(round=state.round, probs=state.probs, heads=ref.heads, adapters=ref.adapters, G=ref.G)


def _same_state(a: Any, b: Any) -> bool:
    return (len(a.adapters) == len(b.adapters) and all(_same(x, y) for x, y in zip(a.adapters, b.adapters))
            and all(_same(x, y) for x, y in zip(a.heads, b.heads)))


def _export(world: World, state: ServerState, out_dir: Path) -> None:
    for j in range(world.cfg.fed.clusters):
        save_adapter(world.base, world.cfg, state.adapters[j] if state.adapters else {}, state.heads[j],
                     out_dir / "adapters" / f"cluster_{j}")
