"""The federated LoRA methods FedHFT is compared with, each written as one weighted sum.

Every method below sends, once per round, a vector that is linear in the
client's own factors and pre-multiplied by a client weight w_i (its example
count, or HetLoRA's update norm), plus w_i itself. The server only needs
Σ_i w_i x_i and Σ_i w_i, so the weights stay private and every SecureSum
backend runs these methods unchanged: with plaintext and masking the server
computes ``aggregate`` on the sums it opens; with ckks it forwards the sum's
ciphertext and every member opens it and computes ``aggregate`` itself
(fl/average.py ``CkksAverageServer``, fl/member.py ``AverageMember``).

- ``fedavg-lora`` (FedIT): average A and B separately.
- ``ffa-lora``: A frozen at a shared, public random init; only B is averaged.
- ``fedsa-lora``: only A is averaged; each client keeps its own B.
- ``hetlora``: client rank r_i = level·r; factors zero-padded to r,
  weighted by the update norm ||B_i A_i||_F, truncated back at the client.
- ``flexlora``: the server averages full ΔW_i = B_i A_i and redistributes
  its rank-r SVD; each client takes its top r_i components.

``local`` (no federation) and ``central`` (data pooled) send nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ..config import METHODS
from ..model.lora import LayerFactors, lora_modules
from ..model.merge import truncated
from ..seeds import derive_seed

__all__ = ["METHODS", "SUM_METHODS", "SHARES_A", "SHARES_B", "LEVELED", "uses_levels", "client_rank", "frozen_A",
           "load_factors", "client_weight", "contribution", "expected_shapes", "aggregate", "plain_sum_note"]

SUM_METHODS = ("fedavg-lora", "ffa-lora", "fedsa-lora", "hetlora", "flexlora")
SHARES_A = ("fedavg-lora", "fedsa-lora", "hetlora")
SHARES_B = ("fedavg-lora", "ffa-lora", "hetlora")
#: the baselines whose clients' rank follows their resource level; the others train rank r at every level
LEVELED = ("hetlora", "flexlora")


def plain_sum_note(method: str) -> str:
    """For the docs and results: can a secure sum run this method?"""
    if method == "fedhft":
        return "yes: the pass plan is a sequence of plain sums"
    if method in SUM_METHODS:
        return "yes: one weighted sum per round"
    return "nothing is aggregated"


def uses_levels(method: str) -> bool:
    """FedHFT masks adapter rows by level, HetLoRA and FlexLoRA size the rank by it; to the other methods a
    client's level means nothing: their runs at two level settings are the same computation (as two runs at one
    setting are: up to a secure sum's fresh random rounding)."""
    return method == "fedhft" or method in LEVELED


def client_rank(method: str, level: float, r: int) -> int:
    """HetLoRA and FlexLoRA size the rank by resource level; the others train rank r everywhere."""
    return max(1, round(level * r)) if method in LEVELED else r


def frozen_A(seed: int, name: str, r: int, inp: int) -> torch.Tensor:
    """FFA-LoRA's shared A: peft's kaiming-uniform init from a public seed (client and server agree)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "ffa-A", name))
    bound = 1.0 / math.sqrt(inp)  # kaiming_uniform_(a=sqrt(5)) on an r x in weight
    return (torch.rand(r, inp, generator=gen) * 2 - 1) * bound


@torch.no_grad()
def load_factors(peft: torch.nn.Module, *, A: Mapping[str, torch.Tensor] | None = None,
                 B: Mapping[str, torch.Tensor] | None = None) -> None:
    """Set LoRA weights from factors (B with LoRA's scaling folded in), truncated to each layer's rank."""
    for name, mod in lora_modules(peft).items():  # type: ignore[arg-type]
        a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
        rank = a.shape[0]
        if A is not None and name in A:
            a.copy_(A[name][:rank])
        if B is not None and name in B:
            b.copy_(B[name][:, :rank] / float(mod.scaling["default"]))


def _pad_rows(t: torch.Tensor, r: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(r - t.shape[0], t.shape[1])]) if t.shape[0] < r else t


def client_weight(method: str, factors: Mapping[str, LayerFactors], examples: int) -> float:
    if method == "hetlora":  # sparsity-weighted aggregation: larger updates count more
        return max(float(sum(f.delta().norm() ** 2 for f in factors.values())) ** 0.5, 1e-12)
    return float(examples)


def contribution(method: str, factors: Mapping[str, LayerFactors], head: Mapping[str, torch.Tensor], *,
                 weight: float, r: int) -> dict[str, torch.Tensor]:
    out = {"weight": torch.tensor([weight], dtype=torch.float32)}
    for n, f in factors.items():
        if method in SHARES_A:
            out[f"A/{n}"] = weight * _pad_rows(f.A, r)
        if method in SHARES_B:
            out[f"B/{n}"] = weight * _pad_rows(f.B.T, r).T
        if method == "flexlora":
            out[f"W/{n}"] = weight * f.delta()
    out.update({f"head/{k}": weight * v.float() for k, v in head.items()})
    return out


def expected_shapes(method: str, shapes: Mapping[str, tuple[int, int]],
                    head_shapes: Mapping[str, tuple[int, ...]], r: int) -> dict[str, tuple[int, ...]]:
    """The names and shapes of a client's vector (public: server and members derive the same)."""
    out: dict[str, tuple[int, ...]] = {"weight": (1,)}
    for n, (o, i) in shapes.items():
        if method in SHARES_A:
            out[f"A/{n}"] = (r, i)
        if method in SHARES_B:
            out[f"B/{n}"] = (o, r)
        if method == "flexlora":
            out[f"W/{n}"] = (o, i)
    out.update({f"head/{k}": tuple(s) for k, s in head_shapes.items()})
    return out


def aggregate(method: str, sums: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, int]], *,
              r: int, seed: int) -> tuple[dict[str, LayerFactors], dict[str, torch.Tensor]]:
    """Σ w x / Σ w -> the new global factors (fedsa-lora: B = 0, the B's stay with the clients) and head."""
    w = float(sums["weight"].reshape(-1)[0])
    if not w > 0:
        raise ValueError("aggregate of an empty cohort")
    out = {}
    for n, (o, i) in shapes.items():
        if method == "flexlora":
            out[n] = truncated(sums[f"W/{n}"].double() / w, r)
            out[n] = LayerFactors(B=out[n].B.float(), A=out[n].A.float())
            continue
        A = sums[f"A/{n}"] / w if method in SHARES_A else frozen_A(seed, n, r, i)
        B = sums[f"B/{n}"] / w if method in SHARES_B else torch.zeros(o, r)
        out[n] = LayerFactors(B=B.float(), A=A.float())
    head = {k[len("head/"):]: v / w for k, v in sums.items() if k.startswith("head/")}
    return out, head
