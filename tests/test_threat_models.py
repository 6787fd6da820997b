"""Every threat model loads, names tests that exist, and refuses configs it does not allow."""

import re
from pathlib import Path

import pytest

from fedhft_secure.cli import main
from fedhft_secure.config import load_config
from fedhft_secure.exceptions import ConfigError
from fedhft_secure.threat import check_config, load_threat_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "threat_models").glob("*.toml"))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_models_load_and_cite_real_tests(path):
    model = load_threat_model(path)
    assert model["name"] == path.stem
    for ref in model.get("claims", {}).get("tests", []):
        file, _, name = ref.partition("::")
        text = (ROOT / file).read_text()
        assert re.search(rf"def {re.escape(name)}\(", text), ref


def test_run_refuses_a_config_the_model_does_not_allow(capsys):
    hbc = str(ROOT / "threat_models" / "honest-but-curious-server.toml")
    # plaintext is not allowed by the model: refused before anything runs or is written
    assert main(["run", "--threat-model", hbc, "--set", 'secure.backend="plaintext"',
                 "--out", "/nonexistent/never-written"]) == 2
    err = capsys.readouterr().err
    assert "secure.backend" in err and "masking" in err
    semi = load_threat_model(ROOT / "threat_models" / "semi-malicious-server.toml")
    with pytest.raises(ConfigError, match="secure.threat"):
        check_config(load_config(None, ["secure.backend=masking"]), semi)
    check_config(load_config(None, ["secure.backend=masking", "secure.threat=semi-malicious",
                                    "secure.signed_keys=true"]), semi)
    check_config(load_config(None, ["secure.backend=masking"]), load_threat_model(hbc))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_model_backs_its_claims_with_attacks_the_bench_can_run(path):
    from fedhft_secure.bench.security import ATTACKS, holds

    model = load_threat_model(path)
    attacks = model.get("attacks", [])
    assert attacks, f"{path.name} lists no [[attacks]]"
    for item in attacks:
        assert (item["attack"], item["mode"]) in ATTACKS, item
        holds(item["pass_if"], 0.0)  # the rule parses
        assert item["claim"].strip()
    # every named claim of [claims] (beside the lists of tests and refusals) is quoted by an attack
    named = [k for k, v in model.get("claims", {}).items() if isinstance(v, str)]
    for key in named:
        assert any(item["claim"].startswith(key) for item in attacks), f"{path.name}: claim {key!r} unbacked"


def test_models_that_hide_updates_refuse_the_explicit_server_and_dp_sgd_local_requires_dp_sgd():
    """``fed.server = "explicit"`` sends each client's factors and head in clear, whatever the backend."""
    explicit = ['fed.server="explicit"']
    for stem, ok in [("honest-but-curious-server", ["secure.backend=masking"]),
                     ("semi-malicious-server", ["secure.backend=masking", "secure.threat=semi-malicious",
                                                "secure.signed_keys=true"]),
                     ("distributed-dp-server", ["secure.backend=masking", "privacy.distributed_noise=2.0"]),
                     ("consortium-ckks", ["secure.backend=ckks"])]:
        model = load_threat_model(ROOT / "threat_models" / f"{stem}.toml")
        check_config(load_config(None, ok), model)
        with pytest.raises(ConfigError, match="fed.server") as err:
            check_config(load_config(None, ok + explicit), model)
        assert "passplan" in str(err.value)
    dp = load_threat_model(ROOT / "threat_models" / "dp-sgd-local.toml")
    with pytest.raises(ConfigError, match="privacy.dp_sgd"):
        check_config(load_config(None, ["secure.backend=masking"]), dp)
    check_config(load_config(None, ["secure.backend=masking", "privacy.dp_sgd=true"]), dp)
