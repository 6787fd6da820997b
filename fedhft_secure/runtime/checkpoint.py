"""Atomic checkpoints: one safetensors file, tensors + a JSON header, no pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..exceptions import ConfigError
from ..fl.server import RoundRecord, ServerState
from ..model.lora import LayerFactors

__all__ = ["save_checkpoint", "load_checkpoint", "write_json", "finished_run", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def finished_run(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir``'s results if the run there got to its end, else None.

    results.json is rewritten after every round, so its presence says little: a finished run holds every
    configured round (or stopped on a spent privacy budget) and has its reports, which are written last.
    Scripts that build results over several invocations reuse only these.
    """
    path = Path(run_dir) / "results.json"
    if not path.exists() or not (Path(run_dir) / "epsilon_report.json").exists():
        return None
    res = json.loads(path.read_text())
    done = res.get("final", {}).get("rounds_completed", 0) >= res["config"]["fed"]["rounds"]
    return res if done or "stopped" in res else None


def save_checkpoint(run_dir: Path, state: ServerState, results: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {"probs": torch.from_numpy(np.ascontiguousarray(state.probs))}
    for j, h in enumerate(state.heads):
        tensors.update({f"head/{j}/{k}": v.contiguous() for k, v in h.items()})
    for j, a in enumerate(state.adapters):
        for n, f in a.items():
            tensors[f"adapter/{j}/{n}/B"] = f.B.contiguous()
            tensors[f"adapter/{j}/{n}/A"] = f.A.contiguous()
    for j, g in enumerate(state.G):
        for n, t in (g or {}).items():
            tensors[f"G/{j}/{n}"] = t.contiguous()
    for rec in state.log:  # ckks: the server's model state is these ciphertexts
        for k, per in enumerate(rec.sums):
            for j, blob in enumerate(per):
                if blob is not None:
                    tensors[f"log/{rec.round}/{k}/{j}"] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    log_meta = [{"round": r.round, "epoch": r.epoch, "totals": r.totals, "passes": len(r.sums)} for r in state.log]
    meta = {"round": str(state.round), "clusters": str(state.probs.shape[1]), "results": json.dumps(results),
            "log": json.dumps(log_meta), "synced": json.dumps({str(k): v for k, v in state.synced.items()})}
    tmp = run_dir / (CHECKPOINT + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, run_dir / CHECKPOINT)


def load_checkpoint(run_dir: Path) -> tuple[ServerState, dict[str, Any]]:
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise ConfigError("--resume", f"{run_dir} has no {CHECKPOINT}", "a run folder of a run that completed a round")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    t = load_file(str(path))
    K = int(meta["clusters"])
    heads: list[dict[str, torch.Tensor]] = [{} for _ in range(K)]
    adapters: list[dict[str, dict[str, torch.Tensor]]] = [{} for _ in range(K)]
    G: list[dict[str, torch.Tensor] | None] = [None] * K
    for key, v in t.items():
        kind, _, rest = key.partition("/")
        j_s, _, name = rest.partition("/")
        if kind == "head":
            heads[int(j_s)][name] = v
        elif kind == "adapter":
            layer, part = name.rsplit("/", 1)
            adapters[int(j_s)].setdefault(layer, {})[part] = v
        elif kind == "log":
            continue
        elif kind == "G":
            G[int(j_s)] = {**(G[int(j_s)] or {}), name: v}
    log = [RoundRecord(round=m["round"], epoch=m["epoch"], totals=m["totals"],
                       sums=[[t[f"log/{m['round']}/{k}/{j}"].numpy().tobytes() if f"log/{m['round']}/{k}/{j}" in t
                              else None for j in range(K)] for k in range(m["passes"])])
           for m in json.loads(meta.get("log", "[]"))]
    synced = {int(k): v for k, v in json.loads(meta.get("synced", "{}")).items()}
    state = ServerState(round=int(meta["round"]), probs=t["probs"].numpy().copy(), heads=[h for h in heads if h],
                        log=log, synced=synced,
                        adapters=[{n: LayerFactors(B=p["B"], A=p["A"]) for n, p in a.items()}
                                  for a in adapters] if any(adapters) else [],
                        G=G)
    return state, json.loads(meta["results"])
