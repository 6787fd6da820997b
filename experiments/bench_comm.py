"""Bytes uploaded per client per round: full-model FedAvg vs FedHFT (explicit) vs FedHFT (pass plan).

Every figure is the length of real encoded messages from this project's
codec, exchanged by the real client and server steps for one round on the
default config's model and shapes. Client factors hold random values with
the trained shapes and masks (a client's level decides its kept rows):
message sizes depend on values only through which rows are zero, so local
training is skipped to keep this fast. ``tests/test_bench_comm.py`` checks
that these counts equal what a real training run records.

    python experiments/bench_comm.py [--quick] [--json PATH] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

warnings.filterwarnings("ignore")

from fedhft_secure.algorithm.aggregate import ClientFactors  # noqa: E402
from fedhft_secure.config import RunConfig, load_config, config_to_dict, config_from_dict  # noqa: E402
from fedhft_secure.fl.messages import PassReply, Ready, RoundStart, decode, encode  # noqa: E402
from fedhft_secure.fl.server import ServerState, make_server  # noqa: E402
from fedhft_secure.model.lora import LayerFactors  # noqa: E402
from fedhft_secure.model.masks import post_norm_mask  # noqa: E402
from fedhft_secure.runtime.local import exchange  # noqa: E402
from fedhft_secure.runtime.world import World, build_world, make_backend  # noqa: E402


def _fake_start(world: World, c, gen: torch.Generator):  # noqa: ANN001, ANN202
    """Stands in for Client.start_round: factors of the trained shapes, masked at the client's level."""
    r = world.cfg.lora.r

    def start_round(blob: bytes, *, round: int):  # noqa: ANN202
        decode(blob, RoundStart, round=round)
        layers, masks = {}, {}
        for name, (o, i) in world.layer_shapes.items():
            B, A = torch.randn(o, r, generator=gen), torch.randn(r, i, generator=gen)
            m = post_norm_mask(B, A, c.data.level)
            layers[name] = LayerFactors(B=B * m.unsqueeze(1), A=A)
            masks[name] = m
        head = {k: torch.randn(v.shape, generator=gen) for k, v in world.initial_head.items()}
        c.factors = ClientFactors(layers=layers, masks=masks, head=head)
        c.sketch = torch.randn(world.cfg.fed.sketch_dim, generator=gen)
        c.round, c.last_pass = round, -1
        c.session = c.backend.client_session(c.data.id, round, rows={n: m.numpy() for n, m in masks.items()})
        if world.cfg.fed.server == "explicit":
            return c._explicit_upload(), None
        return encode(Ready(round=round, sender=c.data.id)), None
    return start_round


def one_round(world: World, cfg: RunConfig, probs: np.ndarray, with_adapters: bool) -> dict[int, list[int]]:
    """Bytes (up, down) per client for one round with the given cluster weights."""
    K = cfg.fed.clusters
    state = ServerState.initial(num_clients=cfg.fed.num_clients, clusters=K, head=world.initial_head)
    state.probs = probs.copy()
    gen = torch.Generator().manual_seed(0)
    if with_adapters:  # a round after the first: RoundStart carries K adapters
        state.adapters = [{n: LayerFactors(B=torch.randn(o, cfg.lora.r, generator=gen),
                                           A=torch.randn(cfg.lora.r, i, generator=gen))
                           for n, (o, i) in world.layer_shapes.items()} for _ in range(K)]
        state.G = [{n: f.delta() for n, f in a.items()} for a in state.adapters]
    backend = make_backend(cfg)
    server = make_server(cfg=cfg, state=state, layer_shapes=world.layer_shapes, backend=backend)
    world.cfg = cfg
    for c in world.clients:
        c.cfg, c.backend, c.round = cfg, backend, -1
        c.start_round = _fake_start(world, c, gen)
    ids = [c.data.id for c in world.clients]
    traffic = {i: [0, 0] for i in ids}
    exchange(server, {c.data.id: c for c in world.clients}, server.begin_round(ids), traffic, None, 0)
    assert len(server.cohort) == len(ids), server.errors
    return traffic


def full_model_upload(world: World) -> int:
    """FedAvg of the whole model: every parameter, float32, in one reply."""
    state = {k: v.to(torch.float32) for k, v in world.base.state_dict().items() if v.is_floating_point()}
    return len(encode(PassReply(round=1, pass_idx=1, sender=0, payload=state), max_bytes=2**40))


def hard_probs(n: int, K: int) -> np.ndarray:
    p = np.zeros((n, K))
    p[np.arange(n), np.arange(n) % K] = 1.0
    return p


def measure(base_cfg: RunConfig, variants: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    world = build_world(base_cfg)
    full = full_model_upload(world)
    n, K = base_cfg.fed.num_clients, base_cfg.fed.clusters
    levels = {c.data.id: c.data.level for c in world.clients}
    rows = []
    for label, over in variants:
        d = config_to_dict(base_cfg)
        for key, value in over.items():
            sec, k = key.split(".")
            d[sec][k] = value
        cfg = config_from_dict(d)
        for phase, probs, adapters in (("warm-up (p uniform)", np.full((n, K), 1 / K), False),
                                       ("clustered (p one-hot)", hard_probs(n, K), True)):
            t = one_round(world, cfg, probs, adapters)
            by_level = {lv: statistics.mean(t[i][0] for i in t if levels[i] == lv)
                        for lv in sorted(set(levels.values()))}
            rows.append({"method": label, "phase": phase, "upload_mean": statistics.mean(v[0] for v in t.values()),
                         "download_mean": statistics.mean(v[1] for v in t.values()),
                         "upload_by_level": {str(k): v for k, v in by_level.items()}})
    return {"full_model_upload": full, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="only the default pass plan and the explicit server")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                    help="config override for the measured setting (as fedhft-secure run --set)")
    args = ap.parse_args(argv)
    cfg = load_config(None, args.overrides)
    # FedHFT's own cost is measured in the clear (plaintext sends kept rows only); what the
    # secure sum adds on top is in the masking rows
    plain = {"secure.backend": "plaintext"}
    variants: list[tuple[str, dict[str, Any]]] = [
        ("FedHFT explicit (official server)", {**plain, "fed.server": "explicit"}),
        (f"FedHFT pass plan (niter={cfg.fed.power_iters}, default)", plain),
    ]
    if not args.quick:
        variants += [("FedHFT pass plan (niter=1)", {**plain, "fed.power_iters": 1}),
                     ("FedHFT pass plan (niter=0, q=r+4)", {**plain, "fed.power_iters": 0, "fed.oversampling": 4}),
                     ("FedHFT pass plan + masking (dense)", {"secure.backend": "masking", "secure.sparsity": "dense"}),
                     ("FedHFT pass plan + masking (reveal-rows)",
                      {"secure.backend": "masking", "secure.sparsity": "reveal-rows"})]
    out = measure(cfg, variants)
    full = out["full_model_upload"]
    default_rows = [r for r in out["rows"] if r["method"].endswith("default)")]
    explicit_rows = [r for r in out["rows"] if "explicit" in r["method"]]
    fedhft = max(r["upload_mean"] for r in default_rows)  # the costlier phase: a conservative ratio
    out.update(upload_full_over_fedhft=full / fedhft,
               upload_full_over_fedhft_explicit=full / max(r["upload_mean"] for r in explicit_rows),
               upload_passplan_over_explicit=fedhft / max(r["upload_mean"] for r in explicit_rows),
               config={"model": cfg.model.name, "lora_r": cfg.lora.r, "targets": cfg.lora.targets,
                       "clients": cfg.fed.num_clients, "clusters": cfg.fed.clusters, "levels": cfg.fed.levels})
    print(f"bytes uploaded per client per round ({cfg.model.name}, LoRA r={cfg.lora.r} on "
          f"{','.join(cfg.lora.targets)}, {cfg.fed.num_clients} clients, K={cfg.fed.clusters})")
    header = f"{'method':44} {'phase':22} {'upload':>12} {'full/this':>10} {'download':>12}  upload by level"
    print(header)
    print("-" * len(header))
    print(f"{'full-model FedAvg':44} {'any':22} {full:12,d} {1.0:10.1f} {full:12,d}")
    for r in out["rows"]:
        lv = ", ".join(f"{k}: {v:,.0f}" for k, v in r["upload_by_level"].items())
        print(f"{r['method']:44} {r['phase']:22} {r['upload_mean']:12,.0f} {full / r['upload_mean']:10.1f} "
              f"{r['download_mean']:12,.0f}  {lv}")
    print(f"\nupload_full_over_fedhft = {out['upload_full_over_fedhft']:.1f} (pass plan, costlier phase)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
