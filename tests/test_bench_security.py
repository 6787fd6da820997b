"""Smoke test of `fedhft-secure bench security --quick`: the output contract of issue 9."""

import json
import os
from pathlib import Path

from fedhft_secure.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_security_bench_quick(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # threat_models/ is found relative to the working directory
    out = tmp_path / "s.json"
    assert main(["bench", "security", "--quick", "--out", str(tmp_path), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["claims"] and data["fuzz"]["inputs"] >= 5000
    for c in data["claims"]:
        assert {"threat_model", "claim", "attack", "mode", "measured", "pass"} <= set(c)
        assert c["pass"], c  # every claim of every threat model holds
    assert data["fuzz"]["crashes"] == 0 and data["fuzz"]["accepted"] == 0
    models = {p.stem for p in (ROOT / "threat_models").glob("*.toml")}
    assert {c["threat_model"] for c in data["claims"]} == models  # every threat model backs its claims
    modes = {c["mode"] for c in data["claims"]}
    assert {"plaintext", "masking-dense", "masking-reveal-rows", "ckks", "plaintext+dp-sgd"} <= modes
    assert {"membership-loss", "membership-lira"} <= {c["attack"] for c in data["claims"]}
    assert (tmp_path / "security_quick.md").read_text().startswith("<!-- made by: fedhft-secure bench security")
    assert os.path.getsize(tmp_path / "security_quick.html") > 1000
