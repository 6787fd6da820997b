"""Base model (offline), peft LoRA, row masks, merges and the local training loop."""

from .base import Encoded, encode_texts, load_base_model, load_tokenizer
from .lora import LayerFactors, head_state, inject_lora, lora_factors, lora_modules
from .masks import post_norm_mask, top_fraction
from .merge import lowrank_merge, merge_into_base

__all__ = [
    "Encoded",
    "encode_texts",
    "load_base_model",
    "load_tokenizer",
    "LayerFactors",
    "head_state",
    "inject_lora",
    "lora_factors",
    "lora_modules",
    "post_norm_mask",
    "top_fraction",
    "lowrank_merge",
    "merge_into_base",
]
