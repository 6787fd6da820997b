import pytest

from fedhft_secure.config import RunConfig, config_from_dict, config_to_dict, describe_options, load_config
from fedhft_secure.exceptions import ConfigError


@pytest.mark.parametrize("override,key,allowed", [
    ("fed.mask=magic", "fed.mask", "post-norm, pre-fisher"),
    ("fed.server=cloud", "fed.server", "passplan, explicit"),
    ("secure.backend=rot13", "secure.backend", "plaintext"),
    ("fed.rounds=0", "fed.rounds", "1.."),
    ("fed.nonsense=1", "fed.nonsense", "fed.rounds"),
    ("nosection.key=1", "nosection.key", "fed"),
    ("lora.r=two", "lora.r", None),
    ("data.val_fraction=1.5", "data.val_fraction", "0.0..0.9"),
])
def test_errors_name_key_and_allowed(override, key, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert err.value.key == key
    assert key in str(err.value)
    if allowed:
        assert allowed in str(err.value)


def test_cross_field_errors():
    with pytest.raises(ConfigError, match="fed.level_ratios"):
        load_config(None, ["fed.levels=[1.0, 0.5, 0.25]"])
    with pytest.raises(ConfigError, match="fed.clusters"):
        load_config(None, ["fed.num_clients=2", "fed.clusters=3"])
    with pytest.raises(ConfigError, match="data.path"):
        load_config(None, ["data.name=csv"])


def test_toml_file_and_roundtrip(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('seed = 3\n[fed]\nrounds = 7\nlevels = [1.0, 0.25]\n[lora]\ntargets = ["query"]\n')
    cfg = load_config(p, ["fed.rounds=9"])
    assert (cfg.seed, cfg.fed.rounds, cfg.fed.levels, cfg.lora.targets) == (3, 9, [1.0, 0.25], ["query"])
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_help_lists_every_key():
    text = describe_options()
    d = config_to_dict(RunConfig())
    for section, values in d.items():
        keys = [section] if not isinstance(values, dict) else [f"{section}.{k}" for k in values]
        for k in keys:
            assert f"  {k} = " in text
