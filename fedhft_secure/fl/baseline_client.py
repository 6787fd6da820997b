"""A client's round under a comparison method (fl/baselines.py): load, train, send one weighted sum.

Unlike FedHFT, which folds the personalized start into the base weights and
trains a fresh LoRA each round, these methods keep LoRA factors across rounds
(FedIT's global A and B, FedSA's local B, ...), so the model here is the
frozen base plus a LoRA loaded from the global state or the client's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..algorithm.aggregate import ClientFactors
from ..exceptions import MalformedMessage, WrongRound
from ..model.lora import head_state, inject_lora, lora_factors, lora_modules
from ..model.merge import merged_model
from ..model.train import predict, score, train_local
from ..secure.api import Contribution, Expected
from ..seeds import derive_seed
from .baselines import SUM_METHODS, client_rank, client_weight, contribution, frozen_A, load_factors
from .messages import SERVER, PassReply, PassRequest, Ready, RoundStart, encode

if TYPE_CHECKING:
    from .client import Client, LocalReport

__all__ = ["start_baseline", "answer_baseline"]


def start_baseline(client: "Client", msg: RoundStart, round: int) -> tuple[bytes, "LocalReport"]:
    from .client import LocalReport  # the record lives with the client

    cfg, d, method = client.cfg, client.data, client.cfg.method
    own = client.own
    if method in SUM_METHODS or client.member is None:
        heads, adapters = client.cluster_state(msg)  # sent in clear, or (ckks) this member's own copy
    else:  # local, central under ckks: nothing is aggregated, the start is the initial head
        heads, adapters = client.member.state.heads, []
    glob = adapters[0] if adapters else {}
    A, B = {n: f.A for n, f in glob.items()} or None, {n: f.B for n, f in glob.items()} or None
    head = heads[0]
    if method in ("local", "central") and own:
        A, B, head = own["A"], own["B"], own["head"]
    if method == "fedsa-lora" and own:
        B = own["B"]  # B never leaves the client
    model = merged_model(client.base, {}, head)
    rank = client_rank(method, d.level, cfg.lora.r)
    torch.manual_seed(derive_seed(cfg.seed, "lora-init"))  # one shared start, as from a global model
    peft = inject_lora(model, r=rank, alpha=cfg.lora.alpha * rank / cfg.lora.r, dropout=cfg.lora.dropout,
                       targets=cfg.lora.targets)  # alpha/r kept constant across ranks
    layers = lora_modules(peft)
    if method == "ffa-lora":
        A = {n: frozen_A(cfg.seed, n, rank, m.lora_A["default"].weight.shape[1]) for n, m in layers.items()}
    load_factors(peft, A=A, B=B)
    if method == "ffa-lora":
        for m in layers.values():
            m.lora_A["default"].weight.requires_grad_(False)
    losses = train_local(peft, d.train, epochs=cfg.train.local_epochs, batch_size=cfg.train.batch_size,
                         lr=msg.lr, weight_decay=cfg.train.weight_decay,
                         seed=derive_seed(cfg.seed, round, d.id, "train"))
    factors = lora_factors(peft)
    trained_head = head_state(peft)
    if method == "fedsa-lora":
        client.own = {"B": {n: f.B for n, f in factors.items()}}
    if method in ("local", "central", "fedsa-lora"):  # no global model: the client's own is its result
        client.own.update(A={n: f.A for n, f in factors.items()}, B={n: f.B for n, f in factors.items()},
                          head=trained_head)
    client.factors = ClientFactors(layers=factors, masks={}, head=trained_head)
    client.round, client.last_pass = round, -1
    client.session = client.backend.client_session(d.id, round, rows=None) if method in SUM_METHODS else None
    val = score(predict(peft, d.val, cfg.train.eval_batch_size), d.val.labels.numpy(), d.majority_label)
    report = LocalReport(val_accuracy=val["accuracy"], val_macro_f1=val["macro_f1"],
                         val_majority_accuracy=val["majority_accuracy"], train_loss=losses[-1],
                         kept_rows=rank / cfg.lora.r)
    return encode(Ready(round=round, sender=d.id), cfg.secure.max_message_bytes), report


def answer_baseline(client: "Client", req: PassRequest) -> bytes:
    cfg, f = client.cfg, client.factors
    assert f is not None
    if client.session is None:
        raise WrongRound(f"{cfg.method} sends nothing, but a pass was requested", sender=SERVER)
    if req.ops or req.inputs or req.omega or req.plan_pass != 0 or list(req.probs) != [1.0]:
        raise MalformedMessage(f"{cfg.method} takes one plain pass, not a pass-plan request", sender=SERVER)
    # weights near 1 keep every weighted coordinate inside the masking clip bound
    w = client_weight(cfg.method, f.layers, len(client.data.train))
    if cfg.method != "hetlora":
        w /= client.data.weight_unit
    shared = contribution(cfg.method, f.layers, f.head, weight=w, r=cfg.lora.r)
    expected = Expected(shared={n: tuple(t.shape) for n, t in shared.items()}, per_cluster={}, row_layers={})
    payload = client.session.payload(Contribution(shared=shared, per_cluster={}), slot=0, weights=[1.0],
                                     expected=expected)
    noise = getattr(client.session, "noise", None)  # distributed DP: what went into the sum, for the ledger
    if noise is not None and client.ledger is not None:
        client.ledger.record_distributed(noise.take(), client.round)
    reply = PassReply(round=client.round, pass_idx=req.pass_idx, sender=client.data.id, payload=payload, sketch={})
    return encode(reply, cfg.secure.max_message_bytes)

