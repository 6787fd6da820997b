"""One client's side of a round: personalize, train, mask, answer passes.

Driven by bytes: ``start_round(bytes)`` trains and keeps the masked factors;
``answer_pass(bytes)`` returns the reply bytes. Nothing here knows how bytes
travel (in-process or Flower).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel

from ..algorithm.aggregate import ClientFactors
from ..algorithm.cluster import SketchProjector, flatten
from ..algorithm.lowrank import Op, client_product, omega
from ..config import RunConfig
from ..exceptions import MalformedMessage, ReplayedMessage, ShapeMismatch, WrongRound
from ..model.base import Encoded
from ..model.lora import LayerFactors, head_state, inject_lora, lora_factors, lora_modules
from ..model.masks import post_norm_mask, top_fraction
from ..model.merge import lowrank_merge, merged_model, mix_heads
from ..model.train import fisher_row_scores, predict, score, train_local
from ..privacy.dpsgd import train_private
from ..privacy.events import DpSgdTrained
from ..privacy.ledger import ClientLedger, private_row_scores
from ..secure.api import ClientSession, Contribution, Expected, SecureSum
from ..seeds import derive_seed
from ..wire import kind_of
from .baseline_client import answer_baseline, start_baseline
from .member import Member
from .messages import (SERVER, ExplicitUpload, PassReply, PassRequest, Ready, RoundLog, RoundStart, Synced, decode,
                       encode)

__all__ = ["ClientData", "LocalReport", "Client", "parse_clusters"]

_KEY = re.compile(r"^c(\d+)/(.+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientData:
    id: int
    level: float
    train: Encoded
    val: Encoded
    majority_label: int  # of its own training labels
    #: the pool's examples per client if split evenly: public, the same for every client, so the comparison
    #: methods can scale example-count weights to about 1 (the secure sum's clip bound) and still average
    weight_unit: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalReport:
    """What a client measured on its own data this round (reported, not aggregated)."""

    val_accuracy: float
    val_macro_f1: float
    val_majority_accuracy: float
    train_loss: float
    kept_rows: float  # fraction of adapter rows that left the client
    dp_epsilon: float | None = None  # DP-SGD epsilon spent so far (None: no DP-SGD)


def parse_clusters(tensors: dict[str, torch.Tensor], k: int) -> list[dict[str, torch.Tensor]]:
    """``c{j}/rest`` keys -> one dict per cluster keyed by ``rest``."""
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(k)]
    for key, t in tensors.items():
        m = _KEY.match(key)
        if not m or int(m.group(1)) >= k:
            raise MalformedMessage(f"tensor {key!r} names no cluster below {k}", sender=SERVER)
        out[int(m.group(1))][m.group(2)] = t
    return out


def _expected(shared: dict[str, torch.Tensor], per: dict[int, dict[str, torch.Tensor]],
              row_layers: dict[str, str]) -> Expected:
    any_cluster = next(iter(per.values()), {})
    return Expected(shared={n: tuple(t.shape) for n, t in shared.items()},
                    per_cluster={n: tuple(t.shape) for n, t in any_cluster.items()}, row_layers=row_layers)


class Client:
    def __init__(self, *, data: ClientData, cfg: RunConfig, base: PreTrainedModel, backend: SecureSum,
                 projector: SketchProjector, ledger: ClientLedger | None = None,
                 member: Member | None = None) -> None:
        self.data = data
        #: ``ckks``: this client's copy of the cluster state (the server holds only ciphertexts)
        self.member = member
        self.ledger = ledger
        self.cfg = cfg
        self.base = base
        self.backend = backend
        self.projector = projector
        self.round = -1
        self.factors: ClientFactors | None = None
        self.sketch: torch.Tensor | None = None
        self.last_pass = -1
        self.session: ClientSession | None = None
        self.report: LocalReport | None = None
        self.own: dict[str, dict[str, torch.Tensor]] = {}  # comparison methods: what stays on the client

    # -- round start: the expensive part -------------------------------------------------
    def handle(self, blob: bytes) -> bytes:
        """Any server message -> this client's reply (a RemoteProtocolError if it must refuse)."""
        kind = kind_of(blob)
        if kind == RoundStart.KIND:
            msg = decode(blob, RoundStart, sender=SERVER, max_bytes=self.cfg.secure.max_message_bytes)
            if msg.round <= self.round:
                raise WrongRound(f"round {msg.round} after round {self.round}", sender=SERVER)
            reply, self.report = self.start_round(blob, round=msg.round)
            return reply
        if kind == PassRequest.KIND:
            return self.answer_pass(blob)
        if kind == RoundLog.KIND:
            if self.member is None:
                raise MalformedMessage("a round log, but this client's backend has the server open sums",
                                       sender=SERVER)
            log = decode(blob, RoundLog, sender=SERVER, max_bytes=self.cfg.secure.max_message_bytes)
            self.member.apply(log)
            return encode(Synced(round=log.round, sender=self.data.id), self.cfg.secure.max_message_bytes)
        if self.session is None:
            raise WrongRound("a secure-sum message before RoundStart", sender=SERVER)
        return self.session.handle(blob)

    def start_round(self, blob: bytes, *, round: int) -> tuple[bytes, LocalReport]:
        cfg, d = self.cfg, self.data
        msg = decode(blob, RoundStart, round=round, sender=SERVER, max_bytes=cfg.secure.max_message_bytes)
        k = cfg.fed.clusters
        if len(msg.probs) != k or any(not 0.0 <= p <= 1.0 for p in msg.probs):
            raise MalformedMessage(f"cluster weights {msg.probs} are not {k} values in [0, 1]",
                                   sender=SERVER)
        if cfg.method != "fedhft":
            return start_baseline(self, msg, round)
        heads, adapters = self.cluster_state(msg)
        start_head = mix_heads(heads, msg.probs)
        deltas: dict[str, LayerFactors] = {}
        if adapters:
            deltas = lowrank_merge(adapters, msg.probs, cfg.lora.r)

        if self.ledger is not None:
            self.ledger.begin_round(round)
        model = merged_model(self.base, deltas, start_head)
        torch.manual_seed(derive_seed(cfg.seed, round, d.id, "lora-init"))
        peft = inject_lora(model, r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                           targets=cfg.lora.targets)
        layers = lora_modules(peft)
        masks: dict[str, torch.Tensor] = {}
        row_masks = None
        dp = self.ledger if cfg.privacy.dp_sgd else None
        if cfg.fed.mask == "pre-fisher" and d.level < 1.0:
            getters = {n: (lambda m=m: m.lora_B["default"].weight) for n, m in layers.items()}
            if dp is not None:  # DP: score rows without touching the data (post-processing)
                shapes = {n: tuple(g().shape) for n, g in getters.items()}
                scores = private_row_scores(deltas, shapes, dp.generator)
            else:
                scores = fisher_row_scores(peft, d.train, batches=cfg.fed.fisher_batches,
                                           batch_size=cfg.train.batch_size,
                                           seed=derive_seed(cfg.seed, round, d.id, "fisher"), params=getters)
            masks = {n: top_fraction(s, d.level) for n, s in scores.items()}
            pnames = {id(p): n for n, p in peft.named_parameters()}
            row_masks = {pnames[id(layers[n].lora_B["default"].weight)]: m for n, m in masks.items()}
        if dp is not None:
            res = train_private(peft, d.train, epochs=cfg.train.local_epochs, batch_size=cfg.train.batch_size,
                                lr=msg.lr, weight_decay=cfg.train.weight_decay,
                                noise_multiplier=dp.noise_multiplier, max_grad_norm=cfg.privacy.max_grad_norm,
                                generator=dp.generator, secure_mode=cfg.privacy.secure_rng, row_masks=row_masks)
            dp.record(DpSgdTrained(client=d.id, round=round, noise_multiplier=dp.noise_multiplier,
                                   sample_rate=res.sample_rate, steps=res.steps,
                                   max_grad_norm=cfg.privacy.max_grad_norm))
            losses = res.losses
        else:
            losses = train_local(peft, d.train, epochs=cfg.train.local_epochs, batch_size=cfg.train.batch_size,
                                 lr=msg.lr, weight_decay=cfg.train.weight_decay,
                                 seed=derive_seed(cfg.seed, round, d.id, "train"), row_masks=row_masks)
        raw = lora_factors(peft)
        if not masks:
            masks = {n: post_norm_mask(f.B, f.A, d.level) for n, f in raw.items()}
        kept = {n: LayerFactors(B=f.B * masks[n].unsqueeze(1).to(f.B.dtype), A=f.A) for n, f in raw.items()}
        head = head_state(peft)
        self.factors = ClientFactors(layers=kept, masks=masks, head=head)
        self.sketch = self.projector(flatten(head) - flatten(start_head))
        if self.ledger is not None:
            self.sketch = self.ledger.release_sketch(self.sketch, round)
        self.round = round
        self.last_pass = -1
        self.session = self.backend.client_session(d.id, round, rows={n: m.numpy() for n, m in masks.items()})

        val = score(predict(peft, d.val, cfg.train.eval_batch_size), d.val.labels.numpy(), d.majority_label)
        report = LocalReport(val_accuracy=val["accuracy"], val_macro_f1=val["macro_f1"],
                             val_majority_accuracy=val["majority_accuracy"], train_loss=losses[-1],
                             kept_rows=float(np.mean([float(m.float().mean()) for m in masks.values()])),
                             dp_epsilon=dp.dp_epsilon() if dp is not None else None)
        if cfg.fed.server == "explicit":
            return self._explicit_upload(), report
        return encode(Ready(round=round, sender=d.id), cfg.secure.max_message_bytes), report

    def cluster_state(self, msg: RoundStart) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, LayerFactors]]]:
        """The cluster heads and adapters this round starts from: sent in clear, or the member's own."""
        k = self.cfg.fed.clusters
        if self.member is not None:
            if msg.adapters or msg.heads:
                raise MalformedMessage("cluster state in clear under a backend that keeps it on clients",
                                       sender=SERVER)
            st = self.member.state
            if st.round != msg.round:
                raise WrongRound(f"round {msg.round} starts, this member's state is after round {st.round - 1}",
                                 sender=SERVER)
            return st.heads, st.adapters
        adapter_t = parse_clusters(msg.adapters, k)
        adapters = [{name[:-2]: LayerFactors(B=a[name], A=a[name[:-2] + "/A"])
                     for name in a if name.endswith("/B")} for a in adapter_t] if any(adapter_t) else []
        return parse_clusters(msg.heads, k), adapters

    def _explicit_upload(self) -> bytes:
        f = self.factors
        assert f is not None and self.sketch is not None
        rows = {n: torch.nonzero(m).flatten().to(torch.int32) for n, m in f.masks.items()}
        msg = ExplicitUpload(round=self.round, sender=self.data.id, rows=rows,
                             B={n: f.layers[n].B[rows[n].long()] for n in rows},
                             A={n: l.A for n, l in f.layers.items()}, head=dict(f.head),
                             sketch={"v": self.sketch})
        return encode(msg, self.cfg.secure.max_message_bytes)

    def may_train(self, round: int) -> bool:
        """False once this client's DP-SGD budget cannot pay for another round."""
        return self.ledger is None or self.ledger.may_train(round)

    # -- passes: cheap products with the kept factors ---------------------------------------
    def answer_pass(self, blob: bytes) -> bytes:
        # A request for a round this client did not train in is WrongRound.
        req = decode(blob, PassRequest, round=self.round, sender=SERVER,
                     max_bytes=self.cfg.secure.max_message_bytes)
        f = self.factors
        assert f is not None
        if req.pass_idx <= self.last_pass:
            raise ReplayedMessage(f"pass {req.pass_idx} after pass {self.last_pass}", sender=SERVER)
        self.last_pass = req.pass_idx
        if self.cfg.method != "fedhft":
            return answer_baseline(self, req)
        assert self.sketch is not None
        first = req.plan_pass == 0
        k = self.cfg.fed.clusters
        if len(req.probs) != k:
            raise MalformedMessage(f"{len(req.probs)} cluster weights for {k} clusters", sender=SERVER)
        shared: dict[str, torch.Tensor] = {}
        per: dict[int, dict[str, torch.Tensor]] = {j: {} for j in range(k) if req.probs[j] > 0}
        row_layers: dict[str, str] = {}
        if first:
            row_layers.update({f"counts/{n}": n for n in f.masks})
            shared.update({f"counts/{n}": m.to(torch.float32) for n, m in f.masks.items()})
            shared.update({f"head/{n}": t for n, t in f.head.items()})
        if self.member is not None:
            self._member_products(req, shared, per, row_layers)
        else:
            self._request_products(req, shared, per, row_layers)
        assert self.session is not None
        payload = self.session.payload(Contribution(shared=shared, per_cluster=per), slot=req.plan_pass,
                                       weights=req.probs, expected=_expected(shared, per, row_layers))
        noise = getattr(self.session, "noise", None)  # distributed DP: what went into the sums, for the ledger
        if noise is not None and self.ledger is not None:
            self.ledger.record_distributed(noise.take(), self.round)
        reply = PassReply(round=self.round, pass_idx=req.pass_idx, sender=self.data.id, payload=payload,
                          sketch={"v": self.sketch} if first else {})
        return encode(reply, self.cfg.secure.max_message_bytes)

    def _member_products(self, req: PassRequest, shared: dict[str, torch.Tensor],
                         per: dict[int, dict[str, torch.Tensor]], row_layers: dict[str, str]) -> None:
        """``ckks``: the inputs come from this member's own plan (the request carries encrypted sums)."""
        assert self.member is not None and self.factors is not None
        requested, gauss = self.member.requests(req, self.round)
        for (j, layer), (op, X) in requested.items():
            if layer not in self.factors.layers:
                raise MalformedMessage(f"the plan asks for unknown layer {layer!r}", sender=SERVER)
            if op is Op.LEFT:
                row_layers[layer] = layer
            f = self.factors.layers[layer]
            if layer in gauss:
                if layer not in shared:
                    shared[layer] = client_product(op, f.B, f.A, X)
            elif j in per:
                per[j][layer] = client_product(op, f.B, f.A, X)

    def _request_products(self, req: PassRequest, shared: dict[str, torch.Tensor],
                          per: dict[int, dict[str, torch.Tensor]], row_layers: dict[str, str]) -> None:
        """The server's plan: the request names each op and carries each X (or the Gaussian's seed)."""
        f = self.factors
        assert f is not None
        inputs = parse_clusters(req.inputs, self.cfg.fed.clusters)
        for layer, op_code in req.ops.items():
            if layer not in f.layers or op_code not in ("L", "R"):
                raise MalformedMessage(f"request for unknown layer {layer!r} or op {op_code!r}",
                                       sender=SERVER)
            op = Op(op_code)
            if op is Op.LEFT:
                row_layers[layer] = layer
            B, A = f.layers[layer].B, f.layers[layer].A
            rows = A.shape[1] if op is Op.LEFT else B.shape[0]
            if layer in req.omega:
                seed_cols = req.omega[layer]
                if len(seed_cols) != 2 or not 0 < seed_cols[1] <= rows:
                    raise MalformedMessage(f"bad Gaussian request {seed_cols} for {layer!r}", sender=SERVER)
                shared[layer] = client_product(op, B, A, omega(seed_cols[0], rows, seed_cols[1]))
                continue
            for j in per:
                X = inputs[j].get(layer)
                if X is None or X.dim() != 2 or X.shape[0] != rows or X.shape[1] > rows:
                    raise ShapeMismatch(f"cluster {j} layer {layer!r}: input of shape "
                                        f"{None if X is None else tuple(X.shape)}", sender=SERVER)
                per[j][layer] = client_product(op, B, A, X.to(torch.float32))
