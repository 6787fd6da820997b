"""Secure-sum cost: our masking backend vs plaintext vs Flower's SecAgg+, measured in one run.

For each n (clients), d (values per client) and dropout rate: our masking
session (key set-up, one masked pass, unmask) driven in-process as pure state
machines — client seconds (mean per client), server seconds, bytes uploaded
per client — beside Flower 1.42's SecAgg+ (SecAggPlusWorkflow +
secaggplus_mod) on the same n, d and dropout through Flower's simulation
engine, whose server unmask stage is timed from inside the workflow.

    python experiments/bench_secagg.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from fedhft_secure.secure.api import Contribution, Expected, SessionInfo  # noqa: E402
from fedhft_secure.secure.masking import MaskingSum, derive_params  # noqa: E402


def ours(n: int, d: int, dropout: float, seed: int = 0, bits: int = 32) -> dict:
    """``bits``: secure.modulus_bits; a masked coordinate travels bit-packed in bits/8 bytes."""
    rng = np.random.default_rng(seed)
    ids = list(range(n))
    dropped = set(rng.choice(n, int(round(dropout * n)), replace=False).tolist())
    vectors = {i: rng.uniform(-1, 1, d).astype(np.float32) for i in ids}
    backend = MaskingSum(bits=bits)
    info = SessionInfo(round=1, epoch=0, cohort=tuple(ids), clusters=1, passes=1,
                       weights={i: (1.0,) for i in ids})
    client_s = {i: 0.0 for i in ids}
    up = {i: 0 for i in ids}
    t = time.perf_counter()
    server = backend.server_session(info)
    server_s = time.perf_counter() - t
    clients = {i: backend.client_session(i, 1) for i in ids}

    def stage(msgs):
        nonlocal server_s
        for i, blob in msgs.items():
            t = time.perf_counter()
            reply = clients[i].handle(blob)
            client_s[i] += time.perf_counter() - t
            up[i] += len(reply)
            t = time.perf_counter()
            server.receive(i, reply)
            server_s += time.perf_counter() - t

    def next_messages():
        nonlocal server_s
        t = time.perf_counter()
        out = server.next_messages()
        server_s += time.perf_counter() - t
        return out

    for _ in range(3):
        stage(next_messages())
    next_messages()
    expected = Expected(shared={"v": (d,)}, per_cluster={})
    server.begin_pass(1, slot=0, expected=expected)
    from fedhft_secure.wire import encode
    from fedhft_secure.fl.messages import PassReply
    for i in ids:
        if i in dropped:
            continue
        t = time.perf_counter()
        payload = clients[i].payload(Contribution(shared={"v": torch.from_numpy(vectors[i])}), slot=0,
                                     weights=[1.0], expected=expected)
        blob = encode(PassReply(round=1, pass_idx=1, sender=i, payload=payload))
        client_s[i] += time.perf_counter() - t
        up[i] += len(blob)
        masked_bytes = len(blob)
        t = time.perf_counter()
        server.add_payload(i, payload)
        server_s += time.perf_counter() - t
    t = time.perf_counter()
    server.end_inputs()
    server_s += time.perf_counter() - t
    stage(next_messages())
    next_messages()
    total = server.sums()[0]["v"].numpy()
    err = float(np.abs(total - sum(vectors[i] for i in ids if i not in dropped)).max())
    live = [i for i in ids if i not in dropped]
    return {"client_s": statistics.mean(client_s[i] for i in live), "server_s": server_s,
            "bytes_up": statistics.mean(up[i] for i in live), "bytes_up_masked_input": masked_bytes,
            "max_abs_error": err, "bits": bits,
            "degree": server.params.degree, "threshold": server.params.threshold}


def flower(n: int, d: int, dropout: float, seed: int = 0) -> dict:
    """Flower's SecAgg+ on the same workload: one round, each client's vector of d float32."""
    import logging

    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.CRITICAL)
    rng = np.random.default_rng(seed)
    drop = set(rng.choice(n, int(round(dropout * n)), replace=False).tolist())
    timing: dict[str, float] = {}

    class Timed(SecAggPlusWorkflow):
        def __call__(self, grid, context):  # noqa: ANN001, ANN204
            t = time.perf_counter()
            super().__call__(grid, context)
            timing["round_s"] = time.perf_counter() - t

        def unmask_stage(self, grid, context, state):  # noqa: ANN001, ANN201
            t = time.perf_counter()
            ok = super().unmask_stage(grid, context, state)
            timing["unmask_s"] = time.perf_counter() - t
            return ok

    class Vec(NumPyClient):
        def __init__(self, pid: int) -> None:
            self.pid = pid

        def fit(self, parameters, config):  # noqa: ANN001, ANN201
            if self.pid in drop:
                raise RuntimeError("dropped out")
            return [np.random.default_rng(self.pid).uniform(-1, 1, d).astype(np.float32)], 1, {}

    def client_fn(context: Context):  # noqa: ANN202
        return Vec(int(context.node_config["partition-id"])).to_client()

    # the same share holders and threshold as ours: Flower's num_shares counts the client itself (h = k + 1)
    p = derive_params(n, threat="honest-but-curious")
    server_app = ServerApp()

    @server_app.main()
    def main(grid, context):  # noqa: ANN001, ANN202
        strategy = FedAvg(fraction_fit=1.0, min_fit_clients=n, min_available_clients=n, fraction_evaluate=0.0,
                          initial_parameters=ndarrays_to_parameters([np.zeros(d, dtype=np.float32)]))
        ctx = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=strategy)
        DefaultWorkflow(fit_workflow=Timed(num_shares=p.holders, reconstruction_threshold=p.threshold))(grid, ctx)

    run_simulation(server_app=server_app, client_app=ClientApp(client_fn=client_fn, mods=[secaggplus_mod]),
                   num_supernodes=n,
                   # Ray on loopback only
                   backend_config={"client_resources": {"num_cpus": 1},
                                    "init_args": {"_node_ip_address": "127.0.0.1", "include_dashboard": False}})
    return {"round_s": timing.get("round_s", float("nan")), "server_unmask_s": timing.get("unmask_s", float("nan")),
            "bytes_up_masked_vector": 8 * (d + 1)}


def local_training_round_seconds() -> float:
    """One client's local training in the default config: 8 steps x 2 epochs at the measured step time."""
    from fedhft_secure.config import load_config
    from fedhft_secure.runtime.world import build_world
    from fedhft_secure.model.lora import inject_lora
    from fedhft_secure.model.train import train_local
    import copy

    cfg = load_config(None, [])
    w = build_world(cfg)
    c = w.clients[0].data
    m = inject_lora(copy.deepcopy(w.base), r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                    targets=cfg.lora.targets)
    t = time.perf_counter()
    train_local(m, c.train, epochs=cfg.train.local_epochs, batch_size=cfg.train.batch_size, lr=cfg.train.lr,
                weight_decay=cfg.train.weight_decay, seed=0)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--quick", action="store_true", help="n in {10, 50, 200}, Flower only up to n=50")
    ap.add_argument("--no-flower", action="store_true", help="skip Flower's SecAgg+ (e.g. where Ray cannot start)")
    args = ap.parse_args(argv)
    ns = [10, 50, 200] if args.quick else [10, 50, 100, 200, 1000]
    # Flower's simulation engine starts Ray per run (tens of seconds): fewer cells in --quick
    flower_cells = ({(10, 10_000, 0.0), (10, 10_000, 0.1), (50, 10_000, 0.0), (50, 100_000, 0.0)} if args.quick
                    else {(n, d, p) for n in (10, 50, 100) for d in (10_000, 100_000) for p in (0.0, 0.1)})
    rows = []
    for n in ns:
        for d in (10_000, 100_000):
            for dropout in (0.0, 0.1):
                r = {"n": n, "d": d, "dropout": dropout, **ours(n, d, dropout)}
                if (n, d, dropout) in flower_cells and not args.no_flower:
                    f = flower(n, d, dropout)
                    r.update(flower_round_s=f["round_s"], flower_unmask_s=f["server_unmask_s"],
                             flower_bytes_up=f["bytes_up_masked_vector"])
                rows.append(r)
                print(f"n={n:5d} d={d:7d} drop={dropout:.1f} ours: client {r['client_s']:.3f}s server "
                      f"{r['server_s']:.3f}s up {r['bytes_up']:,.0f}B"
                      + (f" | flower: round {r['flower_round_s']:.2f}s unmask {r['flower_unmask_s']:.3f}s"
                         if "flower_round_s" in r else ""), flush=True)
    # the same masked pass at secure.modulus_bits = 20 (bit-packed: 2.5 bytes per coordinate), n = 50
    rows20 = [{"n": 50, "d": d, "dropout": 0.0, **ours(50, d, 0.0, bits=20)} for d in (10_000, 100_000)]
    train_s = local_training_round_seconds()
    # A default round masks 6 passes x up to 2 clusters of ~42k values (bench_comm's layout); the n=10,
    # d=1e5 client time (key set-up included) for each of those 12 vectors is a conservative stand-in.
    d1e5 = [r for r in rows if r["n"] == 10 and r["d"] == 100_000 and r["dropout"] == 0.0][0]
    out = {
        "rows": rows,
        "upload_vs_fp32": statistics.mean(r["bytes_up"] / (4 * r["d"]) for r in rows),
        # the masked vector's own message; key set-up is paid once per round for all its passes
        "upload_masked_input_vs_fp32": statistics.mean(r["bytes_up_masked_input"] / (4 * r["d"]) for r in rows),
        "rows_20_bits": rows20,
        "upload_vs_fp32_20_bits": statistics.mean(r["bytes_up"] / (4 * r["d"]) for r in rows20),
        "upload_masked_input_vs_fp32_20_bits": statistics.mean(r["bytes_up_masked_input"] / (4 * r["d"])
                                                               for r in rows20),
        "local_training_round_s": train_s,
        "client_secure_sum_round_s": 12 * d1e5["client_s"],
        "client_overhead_vs_local_training": 12 * d1e5["client_s"] / train_s,
    }
    with_flower = [r for r in rows if "flower_unmask_s" in r]
    if with_flower:
        out["server_speedup_vs_flower"] = statistics.median(r["flower_unmask_s"] / r["server_s"] for r in with_flower)
        out["flower_upload_vs_fp32"] = statistics.mean(r["flower_bytes_up"] / (4 * r["d"]) for r in with_flower)
    big = {n: [r for r in rows if r["n"] == n and r["d"] == 100_000 and r["dropout"] == 0.0] for n in (100, 1000)}
    if big[100] and big[1000]:
        out["server_growth_1000_vs_100"] = big[1000][0]["server_s"] / big[100][0]["server_s"]
    print()
    print(f"{'n':>5} {'d':>7} {'drop':>5} {'bits':>4} {'client s':>9} {'server s':>9} {'up B/fp32':>9} "
          f"{'k':>3} {'t':>3} {'flower unmask s':>15} {'speedup':>8}")
    for r in rows + rows20:
        fl = r.get("flower_unmask_s")
        print(f"{r['n']:5d} {r['d']:7d} {r['dropout']:5.1f} {r['bits']:4d} {r['client_s']:9.4f} {r['server_s']:9.4f} "
              f"{r['bytes_up'] / (4 * r['d']):9.3f} {r['degree']:3d} {r['threshold']:3d} "
              f"{fl if fl is not None else float('nan'):15.3f} "
              f"{(fl / r['server_s']) if fl is not None else float('nan'):8.1f}")
    print()
    for k, v in out.items():
        if not k.startswith("rows"):
            print(f"{k} = {v:.3f}")
    if args.json:
        out["command"] = " ".join(["python", *sys.argv])
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
