"""Flower's simulation engine at scale: seconds per round beside the in-process runner, same run.

N simulated clients (100 by default) on the tiny random BERT: the same config and seed once
in-process (``runtime.local``) and once through the Flower ServerApp/ClientApp on Flower's
simulation engine (every stage one Flower message round; all clients in one Ray actor, so the
CPU budget is the same). Per round: seconds of the round (training + every stage), and of
evaluation; the first Flower figure excludes Ray's start-up, which is reported apart.

    python experiments/bench_flower.py [--quick] [--json PATH] [--clients N] [--rounds R] [--backend B]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

from fedhft_secure.config import load_config  # noqa: E402
from fedhft_secure.runtime.flower.compare import max_abs_diff  # noqa: E402
from fedhft_secure.runtime.flower.sim import run_flower_sim  # noqa: E402
from fedhft_secure.runtime.local import run  # noqa: E402


def overrides(n: int, rounds: int, backend: str) -> list[str]:
    return ['model.name="tiny-random"', f"data.train_size={max(320, 20 * n)}", "data.test_size=120",
            f"fed.num_clients={n}", f"fed.rounds={rounds}", "fed.clusters=2", "lora.r=4", "train.local_epochs=1",
            f'secure.backend="{backend}"']


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--quick", action="store_true", help="20 clients, 2 rounds")
    ap.add_argument("--clients", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="masking", choices=("plaintext", "masking"))
    args = ap.parse_args(argv)
    n = args.clients or (20 if args.quick else 100)
    cfg = load_config(None, overrides(n, args.rounds, args.backend))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-flower-") as tmp:
        t = time.perf_counter()
        local = run(cfg, Path(tmp) / "local", progress=False)
        local_total = time.perf_counter() - t
        t = time.perf_counter()
        flower = run_flower_sim(cfg, Path(tmp) / "flower")
        flower_total = time.perf_counter() - t
        diff = max_abs_diff(Path(tmp) / "local", Path(tmp) / "flower")
    for a, b in zip(local["rounds"], flower["rounds"]):
        rows.append({"round": a["round"], "inprocess_round_s": a["seconds"]["round"],
                     "flower_round_s": b["seconds"]["round"], "inprocess_eval_s": a["seconds"]["eval"],
                     "flower_eval_s": b["seconds"]["eval"],
                     "overhead": b["seconds"]["round"] / a["seconds"]["round"],
                     "completed": sum(c["completed"] for c in b["clients"])})
    flower_rounds = sum(r["seconds"]["total"] for r in flower["rounds"])
    out = {"clients": n, "rounds": args.rounds, "backend": args.backend, "model": "tiny-random",
           "rows": rows, "inprocess_total_s": local_total, "flower_total_s": flower_total,
           "flower_startup_s": flower_total - flower_rounds,  # Ray, actor, node worlds, hello
           "max_abs_diff_flower_vs_inprocess": diff}
    print(f"{n} clients, tiny-random, backend {args.backend} (2 CPU cores; Flower: simulation engine, 1 actor)")
    print(f"{'round':>5} | {'in-process s':>12} | {'Flower sim s':>12} | {'ratio':>5} | {'completed':>9}")
    for r in rows:
        print(f"{r['round']:>5} | {r['inprocess_round_s']:12.2f} | {r['flower_round_s']:12.2f} | "
              f"{r['overhead']:5.2f} | {r['completed']:>9}")
    print(f"Flower start-up (Ray, worlds, hello): {out['flower_startup_s']:.1f} s; "
          f"max |model difference| vs in-process: {diff:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
