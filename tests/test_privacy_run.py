"""DP-SGD in a run: accounting, budgets, private pre-fisher rows, the epsilon report and its page."""

import json
import math
import shutil
import subprocess

import pytest
import torch

from fedhft_secure.cli import main
from fedhft_secure.privacy.accountant import ACCOUNTANTS, accountant_for, calibrate_noise
from fedhft_secure.privacy.events import DpSgdTrained, event_from_dict, event_to_dict
from fedhft_secure.privacy.ledger import private_row_scores
from fedhft_secure.model.lora import LayerFactors
from fedhft_secure.runtime import run

DP = {"privacy.dp_sgd": "true", "privacy.target_epsilon": "3.0"}


@pytest.mark.parametrize("name", sorted(ACCOUNTANTS))
def test_accountant_contract(name):
    """Every accountant: 0 for nothing, monotone in steps, finite with noise, inf without."""
    acc = accountant_for(name)
    ev = DpSgdTrained(client=0, round=0, noise_multiplier=1.0, sample_rate=0.1, steps=20, max_grad_norm=1.0)
    assert acc.epsilon([], delta=1e-5) == 0.0
    one, two = acc.epsilon([ev], delta=1e-5), acc.epsilon([ev, ev], delta=1e-5)
    assert 0 < one < two < math.inf
    zero = DpSgdTrained(client=0, round=0, noise_multiplier=0.0, sample_rate=0.1, steps=20, max_grad_norm=1.0)
    assert acc.epsilon([zero], delta=1e-5) == math.inf
    assert event_from_dict(json.loads(json.dumps(event_to_dict(ev)))) == ev


@pytest.mark.parametrize("name", sorted(ACCOUNTANTS))
def test_calibration_meets_the_target(name):
    sigma = calibrate_noise(target_epsilon=3.0, delta=1e-5, sample_rate=0.2, steps=40, accountant=name)
    ev = DpSgdTrained(client=0, round=0, noise_multiplier=sigma, sample_rate=0.2, steps=40, max_grad_norm=1.0)
    eps = accountant_for(name).epsilon([ev], delta=1e-5)
    assert 2.9 <= eps <= 3.02


def test_dp_run_spends_what_it_planned_and_reports_it(tmp_path, tiny_cfg):
    cfg = tiny_cfg(**DP)
    res = run(cfg, tmp_path, progress=False)
    eps = [c["dp_epsilon"] for c in res["rounds"][-1]["clients"]]
    assert all(2.5 < e <= 3.02 for e in eps), eps  # calibrated over the planned rounds
    first = [c["dp_epsilon"] for c in res["rounds"][0]["clients"]]
    assert all(a < b for a, b in zip(first, eps))
    rep = json.loads((tmp_path / "epsilon_report.json").read_text())
    assert isinstance(rep["schema"], int)
    for c, e in zip(rep["clients"], eps):
        assert isinstance(c["id"], int)
        (m,) = c["mechanisms"]
        assert m["name"] == "dp_sgd" and m["accountant"] == "rdp" and m["delta"] == 1e-5
        assert m["epsilon"] == pytest.approx(e) and 0 < m["sample_rate"] <= 1 and m["steps"] > 0
        assert 0 < m["other_accountants"]["prv"] <= m["epsilon"] + 0.05  # PRV is tighter than RDP
    assert any("sketch" in u for u in rep["unprotected"])


def test_spent_budget_skips_the_client(tmp_path, tiny_cfg):
    """A fixed noise multiplier and a small budget: clients stop training, and results say so."""
    cfg = tiny_cfg(**{**DP, "privacy.noise_multiplier": "1.2", "privacy.target_epsilon": "6.0",
                      "fed.rounds": "3", "train.batch_size": "16"})  # clients of 30..57 examples
    res = run(cfg, tmp_path, progress=False)
    last = res["rounds"][-1]["clients"]
    assert "stopped" not in res and len(res["rounds"]) == 3
    assert any(c["budget_spent"] and not c["completed"] for c in last)
    assert any(c["completed"] for c in last)  # larger clients (smaller sample rate) still afford it
    assert not any(c["budget_spent"] for c in res["rounds"][0]["clients"])
    for r in res["rounds"]:
        for c in r["clients"]:
            if c.get("dp_epsilon") is not None:
                assert c["dp_epsilon"] <= 6.02


def test_stop_run_policy_stops_the_run(tmp_path, tiny_cfg):
    cfg = tiny_cfg(**{**DP, "privacy.noise_multiplier": "1.2", "privacy.target_epsilon": "6.0",
                      "fed.rounds": "3", "privacy.on_budget_exhausted": '"stop-run"'})
    res = run(cfg, tmp_path, progress=False)
    assert res["stopped"]["reason"] == "privacy budget spent"
    assert len(res["rounds"]) == res["stopped"]["round"] < 3
    assert json.loads((tmp_path / "epsilon_report.json").read_text())["stopped"] == res["stopped"]


def test_private_pre_fisher_rows_do_not_depend_on_the_data(tmp_path, tiny_cfg):
    """Under DP, pre-fisher rows come from the personalized start (post-processing), never the data."""
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    start = {"l": LayerFactors(B=torch.randn(6, 2), A=torch.randn(2, 4))}
    a = private_row_scores(start, {"l": (6, 2), "m": (6, 2)}, g1)
    b = private_row_scores(start, {"l": (6, 2), "m": (6, 2)}, g2)
    assert torch.equal(a["l"].argsort(), b["l"].argsort()) and torch.equal(a["m"], b["m"])
    assert torch.equal(a["l"].argsort(), (start["l"].B @ start["l"].A).pow(2).sum(1).argsort())
    # In a run: each client's masks are identical when its training labels are flipped.
    from fedhft_secure.runtime.world import build_world
    from fedhft_secure.fl.server import ServerState, make_server
    from fedhft_secure.secure.api import backend_for
    import dataclasses

    cfg = tiny_cfg(**{**DP, "fed.mask": '"pre-fisher"', "fed.rounds": "1"})
    world = build_world(cfg)
    state = ServerState.initial(num_clients=cfg.fed.num_clients, clusters=2, head=world.initial_head)
    server = make_server(cfg=cfg, state=state, layer_shapes=world.layer_shapes, backend=backend_for("plaintext"))
    starts = server.begin_round([0])
    c = next(c for c in world.clients if c.data.level < 1.0)
    starts = server.begin_round([c.data.id])
    c.start_round(starts[c.data.id], round=0)
    masks = {k: v.clone() for k, v in c.factors.masks.items()}
    c.data = dataclasses.replace(c.data, train=dataclasses.replace(c.data.train, labels=1 - c.data.train.labels))
    report = c.start_round(starts[c.data.id], round=0)[1]
    assert all(torch.equal(masks[k], c.factors.masks[k]) for k in masks)
    assert report.kept_rows == pytest.approx(c.data.level, abs=0.05)


def test_report_cli_rebuilds_and_chromium_renders_it(tmp_path, tiny_cfg):
    run(tiny_cfg(**DP), tmp_path, progress=False)
    before = json.loads((tmp_path / "epsilon_report.json").read_text())
    (tmp_path / "epsilon_report.json").unlink()
    (tmp_path / "report.html").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "epsilon_report.json").read_text()) == before
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") == 3 and "epsilon per client vs round" in html
    assert "src=\"http" not in html and "href=\"http" not in html  # self-contained
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup.sh"
    shot = tmp_path / "report.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1100,1600", (tmp_path / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
    # the page is not blank: many distinct colours from the plot lines
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
