"""A consortium on loopback: SuperLink (TLS + SuperNode auth) + N SuperNodes, one FedHFT run.

Tries a SuperNode whose key is not on the allow list, SIGKILLs one SuperNode once it has
answered a given stage (default: round 1's first pass), and compares the result with the
in-process runner under the same seed and the same dropout. Used by
``experiments/flower_loopback.py`` and ``tests/test_flower.py``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from ...config import load_config
from ..local import run
from .compare import max_abs_diff
from .deploy import Consortium
from .relay import PROGRESS

__all__ = ["consortium_run"]


def _online(c: Consortium) -> list[dict[str, Any]]:
    r = c.flwr("supernode", "list", "consortium", "--format", "json", timeout=60)
    try:
        return [n for n in json.loads(r.stdout).get("nodes", []) if n.get("status") == "online"]
    except ValueError:
        return []


def _close(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-4) -> bool:
    """A client's row of results.json, up to traffic (which stages it saw) and float noise (the
    masked sums' stochastic rounding reaches the next round's starting adapters)."""
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        if k.startswith("bytes"):
            continue
        w = b[k]
        if isinstance(v, float) and isinstance(w, float):
            if abs(v - w) > tol:
                return False
        elif v != w:
            return False
    return True


def consortium_run(workdir: Path, overrides: list[str], *, kill: int | None = 2, kill_after: str = "1:pass:0",
                   rogue: bool = True, stage_timeout: float = 90.0, timeout: float = 1200.0) -> dict[str, Any]:
    workdir = Path(workdir).resolve()
    cfg = load_config(None, overrides)
    n = cfg.fed.num_clients
    out = workdir / "flower"
    t0 = time.perf_counter()
    report: dict[str, Any] = {"nodes": n, "rounds": cfg.fed.rounds, "killed_node": kill, "kill_after": kill_after}
    with Consortium(workdir / "consortium") as c:
        c.start_superlink()
        for i in range(n):
            c.start_supernode(f"node{i}", i, n)
        rogue_proc = c.start_supernode("rogue", 0, n, register=False) if rogue else None
        deadline = time.monotonic() + 120
        while len(_online(c)) < n and time.monotonic() < deadline:
            time.sleep(1)
        if rogue_proc is not None:
            try:
                rogue_proc.wait(timeout=60)
            except Exception:  # noqa: BLE001 - still running: not refused
                pass
            log = (c.workdir / "rogue.log").read_text(errors="replace")
            report["unknown_node_refused"] = (rogue_proc.poll() not in (None, 0)
                                              and "Failed to activate SuperNode" in log and len(_online(c)) == n)
        report["online_nodes"] = len(_online(c))
        sets = ";".join(overrides)
        rc = (f"set='{sets}' out-dir='{out}' stage-timeout={stage_timeout} train-timeout=600.0 "
              f"hello-timeout=300.0 wait-nodes=60.0")
        box: dict[str, Any] = {}
        th = threading.Thread(target=lambda: box.update(proc=c.run_app(rc, timeout=timeout)), daemon=True)
        t1 = time.perf_counter()
        th.start()
        killed_at = None
        progress = c.workdir / "state" / f"node{kill}" / PROGRESS if kill is not None else None
        while th.is_alive():
            if progress is not None and killed_at is None and progress.exists() and \
                    f" {kill_after} ok" in progress.read_text():
                c.kill(f"node{kill}")
                killed_at = time.perf_counter() - t1
            th.join(0.2)
        report["run_seconds"] = time.perf_counter() - t1
        proc = box.get("proc")
        report["flwr_run_returncode"] = None if proc is None else proc.returncode
        if proc is not None:
            (workdir / "flwr-run.log").write_text(proc.stdout + proc.stderr)
    report["killed_at_seconds"] = killed_at
    results_file = out / "results.json"
    res = json.loads(results_file.read_text()) if results_file.exists() else {"rounds": []}
    report["rounds_completed"] = res.get("final", {}).get("rounds_completed", 0)
    report["round_seconds"] = [r["seconds"]["round"] for r in res["rounds"]]
    report["completed"] = [[cl["id"] for cl in r["clients"] if cl["completed"]] for r in res["rounds"]]
    if kill is not None:
        last = res["rounds"][-1] if res["rounds"] else {"clients": []}
        report["survived_node_kill"] = bool(
            killed_at is not None and report["rounds_completed"] == cfg.fed.rounds
            and [cl["id"] for cl in last["clients"] if cl["completed"]] == [i for i in range(n) if i != kill])

    # the in-process runner, same seed, the same client gone after RoundStart of the kill round
    kill_round = int(kill_after.split(":")[0])

    def fault(stage: str, rnd: int, client: int, blob: bytes) -> bytes | None:
        gone = kill is not None and client == kill and rnd == kill_round and not stage.startswith("round_start")
        return None if gone else blob

    t2 = time.perf_counter()
    local = run(cfg, workdir / "inprocess", progress=False, fault=fault if kill is not None else None)
    report["inprocess_seconds"] = time.perf_counter() - t2
    report["inprocess_round_seconds"] = [r["seconds"]["round"] for r in local["rounds"]]
    report["max_abs_diff_vs_inprocess"] = (max_abs_diff(out, workdir / "inprocess")
                                           if res["rounds"] else float("inf"))
    report["same_local_reports"] = len(res["rounds"]) == len(local["rounds"]) and all(
        _close(x, y) for a, b in zip(res["rounds"], local["rounds"]) for x, y in zip(a["clients"], b["clients"]))
    report["total_seconds"] = time.perf_counter() - t0
    return report
