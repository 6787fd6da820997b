"""Why a global model answers one label: its head or its body, and how far its inputs are pushed.

For each finished run folder (compare.py's, or `fedhft-secure run --out`), the global model is rebuilt
from the server checkpoint exactly as the run scored it, and on the global test split this prints: its
accuracy (it must equal the one results.json recorded, else the script stops), the share of inputs given
the most predicted label, the accuracy after subtracting the mean logit vector over the test inputs
(label-free: recentring), and for two labels the body's part: Δd = margin (logit 1 - logit 0) with this
model's body minus the margin with the base body, both under this model's head; its mean over all inputs
is the common shift, the mean for label 1 minus the mean for label 0 the class gap. A common shift larger
than the class gap pushes every input to one side even when the ranking is still good (AUC of the margin).
A body that learned little (both small) is another way to answer one label.

Methods without a global model in the checkpoint (fedsa-lora, local, central) and ckks runs (the
server holds ciphertexts only) are listed as skipped.

    python experiments/global_margin.py RUN_DIR [RUN_DIR ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from fedhft_secure.config import config_from_dict  # noqa: E402
from fedhft_secure.model.merge import merged_model  # noqa: E402
from fedhft_secure.model.train import logits  # noqa: E402
from fedhft_secure.runtime.checkpoint import finished_run, load_checkpoint  # noqa: E402
from fedhft_secure.runtime.evaluate import global_model  # noqa: E402
from fedhft_secure.runtime.local import OWN_MODELS  # noqa: E402
from fedhft_secure.runtime.world import build_world  # noqa: E402


def _logits(world: Any, adapter: Any, head: Any) -> np.ndarray:
    return logits(merged_model(world.base, adapter, head), world.test, world.cfg.train.eval_batch_size)


def diagnose(run_dir: Path, worlds: dict[str, Any]) -> dict[str, Any]:
    res = finished_run(run_dir)
    if res is None:
        return {"run": run_dir.name, "skipped": "not a finished run"}
    cfg = config_from_dict(res["config"])
    if cfg.method in OWN_MODELS:
        return {"run": run_dir.name, "method": cfg.method, "skipped": "no global model (each client's own)"}
    if cfg.secure.backend == "ckks":
        return {"run": run_dir.name, "method": cfg.method, "skipped": "ckks: the checkpoint holds ciphertexts"}
    key = json.dumps([res["config"][k] for k in ("data", "model", "fed", "seed")])  # the split and the clients
    if key not in worlds:
        worlds[key] = build_world(cfg)
    world = worlds[key]
    state, _ = load_checkpoint(run_dir)
    adapter, head = global_model(state, cfg.fed.clusters, cfg.lora.r)
    z, y = _logits(world, adapter, head), world.test.labels.numpy()
    pred = z.argmax(-1)
    acc = float((pred == y).mean())
    if acc != res["final"]["test_accuracy"]:
        raise SystemExit(f"{run_dir}: the rebuilt global model scores {acc}, the run "
                         f"recorded {res['final']['test_accuracy']}: not the model the run scored")
    out: dict[str, Any] = {
        "run": run_dir.name, "method": cfg.method, "accuracy": acc,
        "recorded_accuracy": res["final"]["test_accuracy"],
        "top_label_share": float(np.bincount(pred, minlength=z.shape[1]).max() / len(pred)),
        "recentred_accuracy": float(((z - z.mean(0)).argmax(-1) == y).mean()),
        "auc": None, "common_shift": None, "class_gap": None,
        # what each client trains on (the weights: fedhft counts clients, the other methods examples)
        "client_train_label_counts": [np.bincount(c.data.train.labels.numpy(), minlength=z.shape[1]).tolist()
                                      for c in world.clients]}
    if z.shape[1] == 2 and len(set(y.tolist())) == 2:
        d = z[:, 1] - z[:, 0]
        z0 = _logits(world, {}, head)  # the base body under the same head
        dd = d - (z0[:, 1] - z0[:, 0])
        out.update(auc=float(roc_auc_score(y, d)), common_shift=float(dd.mean()),
                   class_gap=float(dd[y == 1].mean() - dd[y == 0].mean()))
    return out


def _f(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    ap.add_argument("--json", type=Path, help="write the figures here")
    a = ap.parse_args(argv)
    worlds: dict[str, Any] = {}
    rows = [diagnose(r, worlds) for r in a.runs]
    print("| run | accuracy (recorded) | top label share | recentred accuracy | AUC | common shift | class gap |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['run']} | skipped: {r['skipped']} | | | | | |")
            continue
        print(f"| {r['run']} | {r['accuracy']:.3f} ({r['recorded_accuracy']:.3f}) | {r['top_label_share']:.3f} | "
              f"{r['recentred_accuracy']:.3f} | {_f(r['auc'])} | {_f(r['common_shift'], '+.2f')} | "
              f"{_f(r['class_gap'], '+.2f')} |")
    seen = set()
    for r in rows:
        counts = r.get("client_train_label_counts")
        if counts and str(counts) not in seen:
            seen.add(str(counts))
            print(f"\n{r['run']}: training examples per label, client by client: "
                  + " ".join(f"{i}:{c}" for i, c in enumerate(counts)))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"command": "python experiments/global_margin.py " + " ".join(
            shlex.quote(str(x)) for x in (argv if argv is not None else sys.argv[1:])), "runs": rows},
            indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
