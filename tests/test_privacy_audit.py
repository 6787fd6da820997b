"""The one-run canary audit: it sees the leak without DP and stays below the accounted epsilon with DP."""

import json

import numpy as np
import pytest

from fedhft_secure.cli import main
from fedhft_secure.privacy.audit import count_guesses, epsilon_lower_bound, p_value

# One client that memorizes: no dropout, no weight decay, many epochs on few examples
# (one client: nothing to sum securely, so the plaintext backend).
AUDIT = ['secure.backend="plaintext"', "fed.num_clients=1", "fed.clusters=1", "data.train_size=40", "fed.levels=[1.0]",
         "fed.level_ratios=[1.0]", "lora.r=8", "lora.dropout=0.0", "train.weight_decay=0.0",
         "train.local_epochs=30", "train.lr=1e-2", "train.batch_size=8", "fed.rounds=1"]


def test_bound_math():
    # all of 20 guesses right, delta = 0: the binomial tail q^20 = 0.05 at eps = -ln(0.05^(-1/20) - 1)
    exact = -np.log(0.05 ** (-1 / 20) - 1)
    assert epsilon_lower_bound(1000, 20, 20, delta=0.0) == pytest.approx(exact, abs=1e-6)
    assert epsilon_lower_bound(1000, 20, 10, delta=0.0) == 0.0  # chance level proves nothing
    assert epsilon_lower_bound(100, 20, 20, delta=1e-3) < epsilon_lower_bound(100, 20, 20, delta=0.0)
    assert p_value(100, 20, 15, 1.0, 0.0) > p_value(100, 20, 18, 1.0, 0.0)
    r, v = count_guesses(np.array([5.0, 4.0, 0.0, -1.0]), np.array([1, 0, 1, 0], bool), k_pos=1, k_neg=1)
    assert (r, v) == (2, 2)


def run_audit_cli(tmp_path, name, *extra):
    out = tmp_path / name
    args = ["audit", "--out", str(out), "--no-progress", "--canaries", "60", "--guesses", "20"]
    for o in [*TINY, *AUDIT, *extra]:
        args += ["--set", o]
    assert main(args) == 0
    audit = json.loads((out / "audit.json").read_text())
    assert {"epsilon_lower_bound", "epsilon_accounted", "canaries"} <= audit.keys()
    assert audit["canaries"] == 60
    assert json.loads((out / "epsilon_report.json").read_text())["audit"] == audit
    assert "canary audit" in (out / "report.html").read_text()
    return audit


TINY = ['model.name="tiny-random"', "data.test_size=120", "lora.r=8"]


def test_audit_sees_the_leak_without_dp(tmp_path):
    audit = run_audit_cli(tmp_path, "plain")
    assert audit["epsilon_accounted"] is None  # no DP-SGD: nothing accounted
    assert audit["epsilon_lower_bound"] > 1.2, audit


def test_audit_stays_below_the_accounted_epsilon_with_dp(tmp_path):
    audit = run_audit_cli(tmp_path, "dp", "privacy.dp_sgd=true", "privacy.target_epsilon=4.0")
    assert 3.5 < audit["epsilon_accounted"] <= 4.02
    assert audit["epsilon_lower_bound"] <= audit["epsilon_accounted"]


def test_two_sample_bound():
    from fedhft_secure.privacy.audit import epsilon_cap, epsilon_from_scores

    rng = np.random.default_rng(0)
    same = epsilon_from_scores(rng.normal(0, 1, 2000), rng.normal(0, 1, 2000), delta=1e-5)
    assert same < 0.3  # one distribution: nothing to see
    apart = epsilon_from_scores(rng.normal(10, 1, 2000), rng.normal(0, 1, 2000), delta=1e-5)
    assert apart == pytest.approx(epsilon_cap(2000, 2000, delta=1e-5))  # perfect separation hits the cap
    # Gaussian mechanism with mu = 1 (eps ~ 4.4 at delta 1e-5): found, and below the truth
    mid = epsilon_from_scores(rng.normal(1, 1, 5000), rng.normal(0, 1, 5000), delta=1e-5)
    assert 0.5 < mid < 4.4
