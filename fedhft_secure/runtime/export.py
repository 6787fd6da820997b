"""Cluster adapters as peft folders: ``PeftModel.from_pretrained(base, DIR)`` loads them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import PreTrainedModel

from ..config import RunConfig
from ..model.lora import HEAD, LayerFactors, inject_lora, lora_modules

__all__ = ["save_adapter"]


@torch.no_grad()
def save_adapter(base: PreTrainedModel, cfg: RunConfig, adapter: Mapping[str, LayerFactors],
                 head: Mapping[str, torch.Tensor], path: Path) -> None:
    model = inject_lora(copy.deepcopy(base), r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                        targets=cfg.lora.targets)
    for name, mod in lora_modules(model).items():
        scale = float(mod.scaling["default"])
        f = adapter.get(name)
        # Our factors carry alpha/r inside B; peft multiplies by it again.
        mod.lora_B["default"].weight.copy_(f.B / scale if f else 0.0)
        if f:
            mod.lora_A["default"].weight.copy_(f.A)
    getattr(model.base_model.model, HEAD).modules_to_save["default"].load_state_dict(dict(head))
    model.save_pretrained(str(path))
