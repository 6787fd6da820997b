"""Do the secure backends change the model? The default run once per backend, same seed, side by side.

Each backend in ``--backends`` runs the same config and seed; the first one is
the reference. Per cluster adapter (cluster j, LoRA layer): the relative
Frobenius difference of the product B·A from the reference's, and the
difference in final test accuracy. Naming a backend twice (``masking`` is
randomized: its stochastic rounding draws from the OS) gives the spread of the
backend against itself, the control that tells quantization noise that is
amplified by training and the truncated SVD apart from a systematic error.

    python experiments/backend_agreement.py [--quick] [--json PATH] [--backends plaintext,masking,masking]
                                            [--rounds 1,4] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

from safetensors.torch import load_file  # noqa: E402

from fedhft_secure.config import load_config  # noqa: E402
from fedhft_secure.runtime.checkpoint import finished_run  # noqa: E402
from fedhft_secure.runtime.local import run  # noqa: E402

QUICK = ['model.name="tiny-random"', "data.train_size=320", "data.test_size=120", "fed.num_clients=6",
         "lora.r=4", "train.local_epochs=1"]


def relative_diffs(ref: Path, other: Path) -> dict[str, float]:
    """||ΔW - ΔW_ref|| / ||ΔW_ref|| per (cluster, layer), ΔW = B·A of the adapters two runs exported.

    The exported adapters, not the server's checkpoint: with ``ckks`` the server holds
    only ciphertexts, and what a run releases is what the members derived.
    """
    out = {}
    for j, cdir in enumerate(sorted((ref / "adapters").glob("cluster_*"))):
        a = load_file(cdir / "adapter_model.safetensors")
        b = load_file(other / "adapters" / cdir.name / "adapter_model.safetensors")
        for name in sorted(k for k in a if k.endswith("lora_A.weight")):
            key = name.removesuffix(".lora_A.weight")
            bname = f"{key}.lora_B.weight"
            d = a[bname].double() @ a[name].double()
            e = b[bname].double() @ b[name].double()
            out[f"{j}:{key.split('encoder.')[-1]}"] = float((e - d).norm() / d.norm().clamp_min(1e-30))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random BERT (checks the machinery in seconds)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--backends", default="plaintext,masking,masking")
    ap.add_argument("--rounds", default="1,4", help="comma-separated fed.rounds values, one set of runs each")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--workdir", metavar="DIR", help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    backends = args.backends.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        for rounds in [int(r) for r in args.rounds.split(",")]:
            states, finals = [], []
            for i, backend in enumerate(backends):
                sets = (QUICK if args.quick else []) + args.set + [f"fed.rounds={rounds}",
                                                                   f'secure.backend="{backend}"']
                out = work / f"r{rounds}-{i}-{backend}"
                res = finished_run(out)
                if res is None:
                    if out.exists():
                        shutil.rmtree(out)  # an interrupted run: start it again
                    res = run(load_config(None, sets), out, progress=False)
                states.append(out)
                finals.append(res["final"]["test_accuracy"])
            pairs = [(0, i, backends[0], backends[i]) for i in range(1, len(backends))]
            if len(backends) > 2:  # the second vs the third: a backend against itself
                pairs.append((1, 2, f"{backends[1]}#1", f"{backends[2]}#2"))
            for a, b, ref_name, name in pairs:
                diffs = relative_diffs(states[a], states[b])
                values = sorted(diffs.values())
                rows.append({"rounds": rounds, "reference": ref_name, "backend": name, "max_rel_diff": values[-1],
                             "median_rel_diff": values[len(values) // 2], "adapters": len(values),
                             "adapters_within_1e-3": sum(v <= 1e-3 for v in values),
                             "accuracy_ref": finals[a], "accuracy": finals[b],
                             "accuracy_diff_points": 100 * abs(finals[b] - finals[a]), "per_adapter": diffs})
    print(f"{'rounds':>6} {'reference':>12} {'backend':>12} {'max rel':>9} {'median':>9} {'<=1e-3':>8} "
          f"{'acc ref':>8} {'acc':>7} {'diff pt':>8}")
    for r in rows:
        print(f"{r['rounds']:>6} {r['reference']:>12} {r['backend']:>12} {r['max_rel_diff']:>9.2e} "
              f"{r['median_rel_diff']:>9.2e} {r['adapters_within_1e-3']:>4}/{r['adapters']:<3} "
              f"{r['accuracy_ref']:>8.3f} {r['accuracy']:>7.3f} {r['accuracy_diff_points']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "quick": args.quick,
                                               "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
