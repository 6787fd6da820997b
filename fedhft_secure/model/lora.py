"""peft LoRA on a base model, and the factors a client extracts from it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TaskType, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import PreTrainedModel

__all__ = ["LayerFactors", "inject_lora", "lora_modules", "lora_factors", "head_state",
           "peft_config", "HEAD"]

HEAD = "classifier"


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerFactors:
    """One adapted layer's update ΔW = B @ A, with LoRA's alpha/r scaling folded into B."""

    B: torch.Tensor  # out x r
    A: torch.Tensor  # r x in

    def delta(self) -> torch.Tensor:
        return self.B @ self.A


def peft_config(r: int, alpha: float, dropout: float, targets: list[str]) -> PeftLoraConfig:
    return PeftLoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                          target_modules=list(targets), modules_to_save=[HEAD])


def inject_lora(model: PreTrainedModel, *, r: int, alpha: float, dropout: float,
                targets: list[str]) -> PeftModel:
    """Fresh LoRA (A kaiming from the torch RNG, B = 0) + a trainable copy of the head."""
    return get_peft_model(model, peft_config(r, alpha, dropout, targets))


def lora_modules(model: PeftModel) -> dict[str, LoraLayer]:
    """Adapted layers keyed by their name in the base model (e.g. ``bert.encoder...query``)."""
    prefix = "base_model.model."
    return {name[len(prefix):] if name.startswith(prefix) else name: mod
            for name, mod in model.named_modules() if isinstance(mod, LoraLayer)}


def lora_factors(model: PeftModel) -> dict[str, LayerFactors]:
    out = {}
    for name, mod in lora_modules(model).items():
        scale = float(mod.scaling["default"])
        out[name] = LayerFactors(B=mod.lora_B["default"].weight.detach().clone() * scale,
                                 A=mod.lora_A["default"].weight.detach().clone())
    return out


def head_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The classifier head's tensors (the trained copy when ``model`` is a PeftModel)."""
    module = model
    if isinstance(model, PeftModel):
        module = model.base_model.model
    head = getattr(module, HEAD)
    if hasattr(head, "modules_to_save"):
        head = head.modules_to_save["default"]
    return {k: v.detach().clone() for k, v in head.state_dict().items()}
