"""bench_comm's counts are the counts of a real run (same messages, same sizes)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_overrides
from fedhft_secure.config import load_config
from fedhft_secure.runtime import run
from fedhft_secure.runtime.world import build_world

ROOT = Path(__file__).resolve().parents[1]


def bench():
    spec = importlib.util.spec_from_file_location("bench_comm", ROOT / "experiments" / "bench_comm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("server", ["passplan", "explicit"])
def test_bench_counts_equal_a_real_round(tmp_path, server):
    overrides = tiny_overrides(**{"fed.rounds": "1", "fed.server": f'"{server}"'})
    cfg = load_config(None, overrides)
    real = run(cfg, tmp_path, progress=False)["rounds"][0]["clients"]
    world = build_world(cfg)
    n, K = cfg.fed.num_clients, cfg.fed.clusters
    counted = bench().one_round(world, cfg, np.full((n, K), 1 / K), with_adapters=False)
    assert {c["id"]: [c["bytes_up"], c["bytes_down"]] for c in real} == counted


def test_bench_cli_writes_json(tmp_path):
    out = tmp_path / "b.json"
    assert bench().main(["--quick", "--json", str(out), *[f"--set={o}" for o in tiny_overrides()]]) == 0
    data = json.loads(out.read_text())
    assert data["upload_full_over_fedhft"] > 1
    assert data["full_model_upload"] > max(r["upload_mean"] for r in data["rows"])
