"""Everything a run is built from: data, partition, base model, clients."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..algorithm.cluster import SketchProjector, flatten
from ..config import RunConfig
from ..data.partition import ClientSplit, assign_levels, dirichlet_partition, split_clients
from ..data.sources import TextDataset, load_dataset, train_test_split
from ..exceptions import ConfigError, DataError
from ..fl.baselines import SUM_METHODS
from ..fl.client import Client, ClientData
from ..fl.member import AverageMember, Member
from ..model.base import Encoded, encode_texts, load_base_model, load_tokenizer
from ..model.lora import head_state, inject_lora, lora_modules
from ..crypto.sign import IdentityKey
from ..secure.api import SecureSum, backend_for
from ..secure.ckks import derive_params, generate_keys, tightest_precision
from ..secure.ckks.sum import CkksSum
from .keyfiles import PUBLIC_NAME, SECRET_NAME, keygen, read_public, read_secret
from ..privacy.ledger import ClientLedger
from ..seeds import derive_seed

__all__ = ["World", "build_world", "make_backend", "ckks_backends", "client_ledger"]


@dataclass(slots=True, kw_only=True)
class World:
    cfg: RunConfig
    dataset: TextDataset
    test: Encoded
    majority_label: int
    base: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    clients: list[Client]
    layer_shapes: dict[str, tuple[int, int]]
    initial_head: dict[str, torch.Tensor]
    backend: SecureSum  # the server's (under ckks: the public bundle only)


def make_backend(cfg: RunConfig) -> SecureSum:
    s = cfg.secure
    if s.backend == "plaintext":
        return backend_for("plaintext")
    identities = {i: IdentityKey.generate() for i in range(cfg.fed.num_clients)} if s.signed_keys else None
    return backend_for(s.backend, threat=s.threat, degree=s.neighbours, threshold=s.threshold,
                       bits=s.modulus_bits, clip=s.clip, seed=cfg.seed, max_bytes=s.max_message_bytes,
                       identities=identities, sparsity=s.sparsity,
                       **({"distributed_noise": (cfg.privacy.distributed_clip, cfg.privacy.distributed_noise)}
                          if cfg.privacy.distributed_noise > 0 else {}))


def ckks_backends(cfg: RunConfig, keys_dir: Path | None = None) -> tuple[CkksSum, list[CkksSum]]:
    """The server's keyless CkksSum and one member CkksSum per client.

    Keys: ``secure.ckks_keys`` (a keygen folder), else a fresh consortium key
    written to ``keys_dir`` (kept for --resume) or, without one, held in memory.
    """
    s, n = cfg.secure, cfg.fed.num_clients
    folder = Path(s.ckks_keys) if s.ckks_keys else keys_dir
    sizing = dict(max_clients=n, value_bound=s.ckks_value_bound, flood_bits=s.ckks_flood_bits)
    precision = s.ckks_precision or tightest_precision(**sizing)
    if folder is not None and not s.ckks_keys and not (folder / PUBLIC_NAME).exists():
        keygen(n, folder, derive_params(precision=precision, **sizing))
    if folder is None:
        bundle = generate_keys(derive_params(precision=precision, **sizing))
        public, members = bundle.public(), [bundle] * n
    else:
        paths = [folder / SECRET_NAME.format(i=i) for i in range(n)]
        if not (folder / PUBLIC_NAME).exists() or not all(p.exists() for p in paths):
            raise ConfigError("secure.ckks_keys", f"{folder} lacks {PUBLIC_NAME} or a member file for "
                              f"each of the {n} clients", "a folder from `fedhft-secure keygen --members N`")
        public, members = read_public(folder / PUBLIC_NAME), [read_secret(p) for p in paths]
    if public.params.max_clients < n:
        raise ConfigError("secure.ckks_keys", f"keys sized for {public.params.max_clients} clients, the run "
                          f"has {n}", f"keys from keygen with max_clients >= {n}")
    return CkksSum(public=public), [CkksSum(secret=b) for b in members]


def _layer_shapes(base: PreTrainedModel, cfg: RunConfig) -> dict[str, tuple[int, int]]:
    import copy

    probe = inject_lora(copy.deepcopy(base), r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=0.0,
                        targets=cfg.lora.targets)
    shapes = {}
    for name, mod in lora_modules(probe).items():
        w = mod.get_base_layer().weight
        shapes[name] = (int(w.shape[0]), int(w.shape[1]))
    if not shapes:
        raise DataError(f"lora.targets {cfg.lora.targets} match no module of the model")
    return shapes


def build_world(cfg: RunConfig, only: Collection[int] | None = None, *, keys_dir: Path | None = None) -> World:
    """``only``: build just these clients (a Flower node builds its own; the Flower server none)."""
    torch.set_num_threads(cfg.threads)
    d = cfg.data
    ds = load_dataset(d.name, d.path, d.text_column, d.label_column)
    pool, test = train_test_split(ds, d.test_size, cfg.seed)
    rng = np.random.default_rng(derive_seed(cfg.seed, "partition"))
    if d.train_size and d.train_size < len(pool):
        pool = pool.subset(np.sort(rng.permutation(len(pool))[: d.train_size]))
    parts = dirichlet_partition(pool.labels, cfg.fed.num_clients, d.dirichlet_alpha, rng)
    splits = split_clients(parts, d.val_fraction, rng)
    levels = assign_levels(cfg.fed.num_clients, cfg.fed.levels, cfg.fed.level_ratios, rng)
    if cfg.method == "central":  # the upper bound: one trainer holds every client's data
        splits = [ClientSplit(train=np.sort(np.concatenate([s.train for s in splits])),
                              val=np.sort(np.concatenate([s.val for s in splits])))]
        levels = [1.0]

    tok = load_tokenizer(cfg.model.name, cfg.model.path)
    base = load_base_model(cfg.model.name, cfg.model.path, ds.num_labels, derive_seed(cfg.seed, "head"))
    for p in base.parameters():
        p.requires_grad_(False)
    shapes = _layer_shapes(base, cfg)
    head = head_state(base)
    projector = SketchProjector(seed=derive_seed(cfg.seed, "sketch"), n=flatten(head).numel(),
                                d=cfg.fed.sketch_dim)
    if cfg.secure.backend == "ckks":
        backend, member_backends = ckks_backends(cfg, keys_dir)
    else:
        backend = make_backend(cfg)
        member_backends = [backend] * cfg.fed.num_clients

    def enc(sub: TextDataset) -> Encoded:
        return encode_texts(tok, sub.texts, sub.labels, d.max_length)

    clients = []
    for i, sp in enumerate(splits):
        if only is not None and i not in only:
            continue
        train = pool.subset(sp.train)
        data = ClientData(id=i, level=levels[i], train=enc(train), val=enc(pool.subset(sp.val)),
                          weight_unit=len(pool) / cfg.fed.num_clients,
                          majority_label=int(np.bincount(train.labels, minlength=ds.num_labels).argmax()))
        mb = member_backends[i]
        kind = AverageMember if cfg.method in SUM_METHODS else Member  # a comparison method: one sum per round
        member = kind(backend=mb, cfg=cfg, shapes=shapes, head=head, count_floor=mb.error_bound) \
            if isinstance(mb, CkksSum) else None
        clients.append(Client(data=data, cfg=cfg, base=base, backend=mb, projector=projector,
                              ledger=client_ledger(cfg, i, len(data.train)), member=member))
    majority = int(np.bincount(pool.labels, minlength=ds.num_labels).argmax())
    return World(cfg=cfg, dataset=ds, test=enc(test), majority_label=majority, base=base, tokenizer=tok,
                 clients=clients, layer_shapes=shapes, initial_head=head, backend=backend)


def client_ledger(cfg: RunConfig, client: int, n: int) -> ClientLedger:
    """The client's privacy ledger; its noise seed is secret unless privacy.secure_rng is off."""
    def noise_seed(round: int) -> int:
        if cfg.privacy.secure_rng:
            return secrets.randbits(63)
        return derive_seed(cfg.seed, round, client, "dp-noise")

    return ClientLedger(client=client, cfg=cfg.privacy, num_examples=n, batch_size=cfg.train.batch_size,
                        epochs=cfg.train.local_epochs, planned_rounds=cfg.fed.rounds, noise_seed=noise_seed)
