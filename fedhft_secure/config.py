"""Typed run configuration: TOML file + ``--set key=value`` overrides.

Every key is a field of a frozen dataclass with a one-line help text and,
where it matters, its allowed values; errors name the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .exceptions import ConfigError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "LoraConfig",
    "TrainConfig",
    "FedConfig",
    "SecureConfig",
    "PrivacyConfig",
    "RunConfig",
    "load_config",
    "read_toml",
    "apply_overrides",
    "config_to_dict",
    "config_from_dict",
    "describe_options",
    "modulus_problem",
]


def opt(default: Any, help: str, *, choices: tuple[Any, ...] | None = None,
        min: float | None = None, max: float | None = None) -> Any:
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


FROZEN = dict(frozen=True, slots=True, kw_only=True)

#: federated methods (fl/baselines.py says what each one sends)
METHODS = ("fedhft", "fedavg-lora", "ffa-lora", "fedsa-lora", "hetlora", "flexlora", "local", "central")


@dataclass(**FROZEN)
class DataConfig:
    name: str = opt("rotten_tomatoes", "dataset",
                    choices=("rotten_tomatoes", "tweets", "csv", "jsonl", "hf_disk"))
    path: str = opt("", "file or folder for csv / jsonl / hf_disk")
    text_column: str = opt("text", "text column of a user dataset")
    label_column: str = opt("label", "label column of a user dataset")
    test_size: int = opt(1000, "examples held out as the global test split", min=1)
    train_size: int = opt(2000, "examples of the rest shared among clients (0 = all)", min=0)
    val_fraction: float = opt(0.2, "fraction of each client's data kept for validation",
                              min=0.0, max=0.9)
    dirichlet_alpha: float = opt(10.0, "label skew: Dirichlet concentration is alpha / #classes",
                                 min=1e-6)
    max_length: int = opt(64, "token limit per example", min=8, max=512)


@dataclass(**FROZEN)
class ModelConfig:
    name: str = opt("minilm", "base model: bundled MiniLM-L6, a tiny random BERT, or a local HF folder",
                    choices=("minilm", "tiny-random", "path"))
    path: str = opt("", "local Hugging Face model folder when model.name = 'path'")


@dataclass(**FROZEN)
class LoraConfig:
    r: int = opt(8, "LoRA rank", min=1)
    alpha: float = opt(16.0, "LoRA alpha (scaling alpha / r)", min=0.0)
    dropout: float = opt(0.1, "LoRA dropout", min=0.0, max=0.9)
    targets: list[str] = opt(["query", "value"], "modules that get LoRA adapters")


@dataclass(**FROZEN)
class TrainConfig:
    local_epochs: int = opt(2, "local epochs per round", min=1)
    batch_size: int = opt(32, "local batch size", min=1)
    lr: float = opt(3e-3, "AdamW learning rate in round 0", min=0.0)
    lr_decay: float = opt(0.9, "learning rate factor per round (lr * decay^t)", min=0.0, max=1.0)
    weight_decay: float = opt(0.01, "AdamW weight decay", min=0.0)
    eval_batch_size: int = opt(128, "batch size for evaluation", min=1)


@dataclass(**FROZEN)
class FedConfig:
    num_clients: int = opt(8, "clients (all take part in every round)", min=1)
    rounds: int = opt(4, "federated rounds", min=1)
    warmup_rounds: int = opt(1, "rounds before clustering starts", min=0)
    clusters: int = opt(2, "number of client clusters K (1 = no clustering)", min=1)
    levels: list[float] = opt([1.0, 0.5], "resource levels: fraction of adapter rows a client keeps")
    level_ratios: list[float] = opt([0.5, 0.5], "fraction of clients at each level")
    mask: str = opt("post-norm", "row mask policy", choices=("post-norm", "pre-fisher"))
    fisher_batches: int = opt(2, "batches scored for pre-fisher masks", min=1)
    server: str = opt("passplan", "server algorithm", choices=("passplan", "explicit"))
    oversampling: int = opt(0, "extra columns of the randomized SVD (q = r + oversampling)", min=0)
    power_iters: int = opt(2, "power iterations of the randomized SVD (torch.svd_lowrank's niter)",
                           min=0)
    sketch_dim: int = opt(64, "dimension of the per-client clustering sketch", min=1)
    gmm_covariance: str = opt("full", "Gaussian mixture covariance",
                              choices=("full", "diag", "spherical", "tied"))


@dataclass(**FROZEN)
class SecureConfig:
    backend: str = opt("masking", "SecureSum backend: what the server may see of a client's vectors "
                       "(masking: only per-cluster sums; plaintext: every vector, for comparisons)",
                       choices=("plaintext", "masking", "ckks"))
    threat: str = opt("honest-but-curious", "adversary the masking threshold is sized for",
                      choices=("honest-but-curious", "semi-malicious"))
    neighbours: int = opt(0, "masking: neighbours per client (0 = n-1 up to 20 clients, else ~4 log2 n)", min=0)
    threshold: int = opt(0, "masking: Shamir threshold t of the k + 1 share holders (the neighbours and the client; "
                            "0 = from the threat model)", min=0)
    modulus_bits: int = opt(32, "masking: integers modulo 2^bits carry the fixed-point sums; a masked coordinate "
                            "travels bit-packed in bits/8 bytes (20 bits: 2.5 bytes)", min=16, max=64)
    clip: float = opt(64.0, "masking: public clip bound of every weighted coordinate", min=1e-6)
    signed_keys: bool = opt(False, "masking: clients sign advertised keys with Ed25519 identity keys")
    sparsity: str = opt("dense", "masking: dense hides row masks; reveal-rows sends only kept rows (the server "
                        "learns every row mask; rows fewer than t clients hold are withheld)",
                        choices=("dense", "reveal-rows"))
    ckks_keys: str = opt("", "ckks: folder written by `fedhft-secure keygen` (member_<i>.ckks-secret, "
                         "server.ckks-public); empty = a fresh consortium key in the run folder's keys/")
    ckks_precision: float = opt(0.0, "ckks: largest error of an opened sum value (decryption + flooding); "
                                "0 = the finest one 60-bit prime allows for fed.num_clients (8 clients: 4.2e-7)",
                                min=0.0)
    ckks_flood_bits: int = opt(20, "ckks: flooding of opened values, 2^-bits statistical distance (IND-CPA^D)",
                               min=0, max=40)
    ckks_value_bound: float = opt(4.0, "ckks: largest |p_ij x| a client encrypts (sizes the modulus)", min=1e-6)
    max_message_bytes: int = opt(64 * 2**20, "largest message a decoder accepts", min=1024)


@dataclass(**FROZEN)
class PrivacyConfig:
    dp_sgd: bool = opt(False, "train each client with DP-SGD (Opacus, Poisson sampling)")
    target_epsilon: float = opt(8.0, "per-client DP-SGD budget over fed.rounds; noise is calibrated "
                                "to it unless privacy.noise_multiplier > 0", min=0.0)
    delta: float = opt(1e-5, "delta of every (epsilon, delta) figure", min=0.0, max=1.0)
    noise_multiplier: float = opt(0.0, "DP-SGD noise multiplier (0 = calibrate to target_epsilon); "
                                  "with a value, target_epsilon is only the budget", min=0.0)
    max_grad_norm: float = opt(1.0, "DP-SGD per-example gradient clip", min=0.0)
    accountant: str = opt("rdp", "accountant for budgets and calibration", choices=("rdp", "prv"))
    secure_rng: bool = opt(False, "noise from OS randomness and Opacus secure_mode "
                           "(not reproducible; off = noise seeded from the run seed, for tests)")
    on_budget_exhausted: str = opt("skip-client", "what happens when a client's budget is spent",
                                   choices=("skip-client", "stop-run"))
    sketch_clip: float = opt(0.05, "L2 clip C of the clustering sketch", min=0.0)
    sketch_noise: float = opt(0.0, "Gaussian noise of the sketch, std = sketch_noise * sketch_clip "
                              "(0 = sketch sent in clear, unaccounted)", min=0.0)
    distributed_noise: float = opt(0.0, "distributed DP inside the masked sum: every cluster sum carries discrete "
                                   "Gaussian noise of std distributed_noise * distributed_clip per coordinate, "
                                   "split over its contributors (0 = off; needs secure.backend = masking)",
                                   min=0.0)
    distributed_clip: float = opt(1.0, "L2 clip of a client's weighted pass vector for one cluster sum "
                                  "when distributed_noise > 0", min=0.0)


@dataclass(**FROZEN)
class RunConfig:
    method: str = opt("fedhft", "federated method: fedhft, or a comparison method (one global model: "
                      "fed.clusters is set to 1)", choices=METHODS)
    seed: int = opt(0, "seed for data split, partition, initialization and public randomness")
    threads: int = opt(2, "torch CPU threads", min=1)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fed: FedConfig = field(default_factory=FedConfig)
    secure: SecureConfig = field(default_factory=SecureConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:
        if self.method != "fedhft" and self.fed.clusters != 1:  # single-model methods
            object.__setattr__(self, "fed", dataclasses.replace(self.fed, clusters=1))
        fed = self.fed
        if len(fed.levels) != len(fed.level_ratios):
            raise ConfigError("fed.level_ratios", "needs one ratio per entry of fed.levels",
                              f"a list of {len(fed.levels)} numbers")
        if any(not 0.0 < s <= 1.0 for s in fed.levels):
            raise ConfigError("fed.levels", f"{fed.levels} has a value outside (0, 1]",
                              "numbers in (0, 1]")
        if abs(sum(fed.level_ratios) - 1.0) > 1e-6 or any(x < 0 for x in fed.level_ratios):
            raise ConfigError("fed.level_ratios", f"{fed.level_ratios} must be >= 0 and sum to 1")
        if fed.clusters > fed.num_clients:
            raise ConfigError("fed.clusters", f"{fed.clusters} clusters for {fed.num_clients} clients",
                              f"1..{fed.num_clients}")
        if self.model.name == "path" and not self.model.path:
            raise ConfigError("model.path", "is empty but model.name = 'path'", "a local HF model folder")
        if self.data.name in ("csv", "jsonl", "hf_disk") and not self.data.path:
            raise ConfigError("data.path", f"is empty but data.name = '{self.data.name}'",
                              "a file or folder path")
        if self.secure.threat == "semi-malicious" and not self.secure.signed_keys:
            raise ConfigError("secure.signed_keys", "must be true against a semi-malicious server "
                              "(else it can substitute keys)", "true")
        pv = self.privacy
        if pv.dp_sgd and (pv.delta <= 0 or pv.delta >= 1):
            raise ConfigError("privacy.delta", f"{pv.delta} with DP-SGD on", "a number in (0, 1)")
        if pv.dp_sgd and pv.noise_multiplier == 0 and pv.target_epsilon <= 0:
            raise ConfigError("privacy.target_epsilon", "is 0 and no noise multiplier is given",
                              "> 0, or set privacy.noise_multiplier")
        if pv.dp_sgd and pv.max_grad_norm <= 0:
            raise ConfigError("privacy.max_grad_norm", "must be > 0 with DP-SGD on")
        if pv.sketch_noise > 0 and pv.sketch_clip <= 0:
            raise ConfigError("privacy.sketch_clip", "must be > 0 when privacy.sketch_noise > 0")
        if pv.distributed_noise > 0:
            if self.secure.backend != "masking":
                raise ConfigError("secure.backend", f"{self.secure.backend!r} with privacy.distributed_noise > 0 "
                                  "(the noise lives inside the masked integer sum)", "masking")
            if self.secure.sparsity != "dense":
                raise ConfigError("secure.sparsity", f"{self.secure.sparsity!r} with privacy.distributed_noise > 0 "
                                  "(a row held by fewer clients would carry less of the split noise)", "dense")
            if pv.distributed_clip <= 0:
                raise ConfigError("privacy.distributed_clip", "must be > 0 when privacy.distributed_noise > 0")
            # Headroom of the modulus for the noise tail, at the smallest cohort (2 clients); the same
            # bound as secure.noise.headroom_ok with TAIL = 9 standard deviations, whatever the modulus.
            c, clip_inf = pv.distributed_clip, self.secure.clip
            if _TAIL * pv.distributed_noise * c > 2 * (clip_inf + 1 - min(c, clip_inf)):
                raise ConfigError("privacy.distributed_noise", f"{pv.distributed_noise} x distributed_clip {c}: "
                                  f"the noise tail overflows sums encoded for secure.clip {clip_inf}",
                                  f"<= {2 * (clip_inf + 1 - min(c, clip_inf)) / (_TAIL * c):.4g}, "
                                  "or raise secure.clip")
        if self.secure.backend == "masking" and fed.num_clients >= 2:
            self._check_modulus()
        if not self.lora.targets:
            raise ConfigError("lora.targets", "is empty", "module names such as query, value")

    def _check_modulus(self) -> None:
        """Refuse a modulus too small for the cohort, the clips and the noise, before any round runs
        (else a client finds out mid-round)."""
        s, pv, n = self.secure, self.privacy, self.fed.num_clients
        noise = pv.distributed_noise
        args = dict(clients=n, clip=s.clip, dp_clip=pv.distributed_clip, noise=noise)
        problem = modulus_problem(bits=s.modulus_bits, **args)
        if problem is None:
            return
        enough = next((b for b in range(s.modulus_bits + 1, 65) if modulus_problem(bits=b, **args) is None), None)
        cure = "a smaller secure.clip" + (" or privacy.distributed_noise" if noise > 0 else "")
        raise ConfigError("secure.modulus_bits", problem, f">= {enough} (16..64), or {cure}" if enough
                          else f"no modulus up to 2^64 fits: {cure}")


#: standard deviations of summed noise a modulus must hold: secure.noise.TAIL, repeated (this layer is below it)
_TAIL = 9.0


def modulus_problem(*, bits: int, clients: int, clip: float, dp_clip: float = 1.0, noise: float = 0.0) -> str | None:
    """Why sums mod 2^bits cannot carry every masked cluster sum of 2..``clients`` clients, or None.

    Repeats, because config sits below those layers (tests check they agree): FixedPoint's scale
    floor((2^(bits-1) - 1) / (n (clip + 1))) >= 1 (crypto/encoding.py); with distributed noise,
    secure.noise.headroom_ok (n clipped vectors plus _TAIL sum-noise stds stay below 2^(bits-1)) and a
    local std noise·dp_clip·scale/sqrt(n) >= 1/2 integer levels, below which Kairouz-Liu-Steinke's
    bound (privacy/ddp.py) makes no claim.
    """
    limit = (1 << (bits - 1)) - 1
    for m in (range(2, clients + 1) if noise > 0 else (clients,)):  # without noise the largest sum binds
        scale = limit // (m * (clip + 1.0))
        if scale < 1:
            return f"2^{bits} leaves no fixed-point level for sums of {m} clients within ±{clip} (secure.clip)"
        if noise <= 0:
            continue
        if m * (min(dp_clip, clip) * scale + 1) + _TAIL * noise * dp_clip * scale > limit:
            return (f"sums of {m} clients plus a {_TAIL:g}-sigma tail of noise {noise} x {dp_clip} overflow "
                    f"2^{bits} at {scale:g} levels per unit")
        if noise * dp_clip * scale / m ** 0.5 < 0.5:
            return (f"at 2^{bits} the scale for {m} clients within ±{clip} is {scale:g} levels per unit: each client's "
                    f"share of noise {noise} x {dp_clip} would have std below 1/2 level (no DP claim there)")
    return None


_SECTIONS = {f.name: f for f in fields(RunConfig)
             if dataclasses.is_dataclass(f.default_factory)}  # type: ignore[arg-type]


def _coerce(key: str, value: Any, typ: Any) -> Any:
    origin = get_origin(typ)
    if origin is list:
        (item,) = get_args(typ)
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.strip("[]").split(",")) if v]
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {value!r}")
        return [_coerce(key, v.strip("'\"") if isinstance(v, str) else v, item) for v in value]
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError
                return value.lower() == "true"
            return bool(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        raise ConfigError(key, f"cannot read {value!r} as {typ.__name__}") from None
    raise ConfigError(key, f"unsupported type {typ}")


def _check(key: str, value: Any, meta: Any) -> None:
    choices, lo, hi = meta.get("choices"), meta.get("min"), meta.get("max")
    if choices is not None and value not in choices:
        raise ConfigError(key, f"{value!r} is not allowed", ", ".join(map(str, choices)))
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f"{'' if lo is None else lo}..{'' if hi is None else hi}"
        raise ConfigError(key, f"{value!r} is out of range", rng)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in known:
            raise ConfigError(key, "unknown key", ", ".join(f"{prefix}{k}" for k in known))
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise ConfigError(key, "must be a table/section")
            kwargs[name] = _build(typ, value, f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, typ)
            _check(key, kwargs[name], known[name].metadata)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    return _build(RunConfig, data, "")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Merge ``key.sub=value`` strings into a raw config dict (TOML syntax for values)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "an override must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in _SECTIONS or not isinstance(node, dict):
                raise ConfigError(key, "unknown key", ", ".join(_SECTIONS))
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def read_toml(path: str | Path, key: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing or broken file is a ConfigError naming ``key``."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(key, f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"{path} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    data = read_toml(path, "--config") if path is not None else {}
    return config_from_dict(apply_overrides(data, overrides or []))


def describe_options() -> str:
    """One line per key, for ``--help``."""
    lines = []

    def walk(cls: type, prefix: str) -> None:
        hints = get_type_hints(cls)
        for f in fields(cls):
            typ = hints[f.name]
            if dataclasses.is_dataclass(typ):
                walk(typ, f"{prefix}{f.name}.")
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            meta = f.metadata
            extra = ""
            if meta.get("choices"):
                extra = f" [{' | '.join(map(str, meta['choices']))}]"
            elif meta.get("min") is not None or meta.get("max") is not None:
                lo = "" if meta.get("min") is None else meta["min"]
                hi = "" if meta.get("max") is None else meta["max"]
                extra = f" [{lo}..{hi}]"
            lines.append(f"  {prefix}{f.name} = {json.dumps(default)}{extra}\n      {meta.get('help', '')}")

    walk(RunConfig, "")
    return "\n".join(lines)
