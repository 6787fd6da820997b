"""Named threat models (TOML in threat_models/) and the check that a run config fits one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import RunConfig, read_toml
from .exceptions import ConfigError

__all__ = ["load_threat_model", "check_config"]


def load_threat_model(path: str | Path) -> dict[str, Any]:
    model = read_toml(path, "--threat-model")
    if "name" not in model or "requires" not in model:
        raise ConfigError("--threat-model", f"{path} needs 'name' and a [requires] table")
    return model


def check_config(cfg: RunConfig, model: dict[str, Any]) -> None:
    """Refuse a configuration the threat model does not allow, naming the key."""
    req, name = model["requires"], model["name"]
    backends = req.get("backends")
    if backends is not None and cfg.secure.backend not in backends:
        raise ConfigError("secure.backend", f"{cfg.secure.backend!r} is not allowed by threat model {name!r}",
                          ", ".join(backends))
    if "threat" in req and cfg.secure.threat != req["threat"]:
        raise ConfigError("secure.threat", f"{cfg.secure.threat!r} does not match threat model {name!r}",
                          req["threat"])
    if req.get("distributed_noise") and cfg.privacy.distributed_noise <= 0:
        raise ConfigError("privacy.distributed_noise", f"threat model {name!r} requires distributed noise", "> 0")
    if req.get("signed_keys") and not cfg.secure.signed_keys:
        raise ConfigError("secure.signed_keys", f"threat model {name!r} requires signed key adverts", "true")
    servers = req.get("servers")
    if servers is not None and cfg.fed.server not in servers:
        raise ConfigError("fed.server", f"{cfg.fed.server!r} is not allowed by threat model {name!r}",
                          ", ".join(servers))
    if req.get("dp_sgd") and not cfg.privacy.dp_sgd:
        raise ConfigError("privacy.dp_sgd", f"threat model {name!r} requires DP-SGD on every client", "true")
