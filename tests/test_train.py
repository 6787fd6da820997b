"""Local training: pre-fisher row masks really freeze the other rows; predictions are the logits' argmax."""

import copy

import torch

from fedhft_secure.model.base import Encoded, encode_texts, load_base_model, load_tokenizer
from fedhft_secure.model.lora import inject_lora, lora_modules
from fedhft_secure.model.masks import top_fraction
from fedhft_secure.model.train import fisher_row_scores, logits, predict, train_local


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


def test_predict_is_the_argmax_of_logits_in_input_order_and_empty_splits_have_none():
    tok = load_tokenizer("tiny-random")
    texts = tuple("word " * (1 + i % 7) for i in range(20))  # lengths differ: rows are scored out of order
    data = encode_texts(tok, texts, [i % 2 for i in range(20)], 32)
    torch.manual_seed(0)
    model = load_base_model("tiny-random", "", 2, 0)
    with torch.no_grad():  # a random model's rows barely differ: a large head makes a mix-up of rows show
        model.classifier.weight.normal_(0, 300.0)
    z = logits(model, data, batch_size=6)
    one = [model(**{k: v for k, v in data.batch([i]).items() if k != "labels"}).logits[0].detach().numpy()
           for i in range(len(data))]
    spread = float((z[:, 1] - z[:, 0]).max() - (z[:, 1] - z[:, 0]).min())
    assert z.shape == (20, 2) and max(float(abs(z[i] - one[i]).max()) for i in range(20)) < 1e-3 * spread
    assert (predict(model, data, batch_size=6) == z.argmax(-1)).all()
    empty = Encoded(ids=(), labels=torch.empty(0, dtype=torch.long), pad_id=0)
    assert predict(model, empty, batch_size=6).shape == (0,)
