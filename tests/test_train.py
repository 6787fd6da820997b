"""Local training: pre-fisher row masks really freeze the other rows."""

import copy

import torch

from fedhft_secure.model.base import encode_texts, load_base_model, load_tokenizer
from fedhft_secure.model.lora import inject_lora, lora_modules
from fedhft_secure.model.masks import top_fraction
from fedhft_secure.model.train import fisher_row_scores, train_local


def test_only_kept_rows_of_b_train():
    tok = load_tokenizer("tiny-random")
    texts = tuple(f"sample sentence number {i} with words" for i in range(40))
    data = encode_texts(tok, texts, [i % 2 for i in range(40)], 32)
    torch.manual_seed(0)
    model = inject_lora(copy.deepcopy(load_base_model("tiny-random", "", 2, 0)), r=4, alpha=8, dropout=0.0,
                        targets=["query", "value"])
    layers = lora_modules(model)
    getters = {n: (lambda m=m: m.lora_B["default"].weight) for n, m in layers.items()}
    scores = fisher_row_scores(model, data, batches=2, batch_size=8, seed=0, params=getters)
    assert set(scores) == set(layers) and all(float(s.sum()) > 0 for s in scores.values())
    masks = {n: top_fraction(s, 0.5) for n, s in scores.items()}
    names = {id(p): n for n, p in model.named_parameters()}
    row_masks = {names[id(layers[n].lora_B["default"].weight)]: m for n, m in masks.items()}
    train_local(model, data, epochs=2, batch_size=8, lr=1e-2, weight_decay=0.01, seed=0, row_masks=row_masks)
    for n, mod in layers.items():
        B = mod.lora_B["default"].weight.detach()
        assert float(B[~masks[n]].abs().sum()) == 0.0  # frozen rows never moved from 0
        assert float(B[masks[n]].abs().sum()) > 0.0  # kept rows trained
