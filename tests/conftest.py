import warnings

import pytest

from fedhft_secure.config import load_config

warnings.filterwarnings("ignore", category=FutureWarning)


def tiny_overrides(**extra: str) -> list[str]:
    base = {
        "model.name": '"tiny-random"',
        "data.train_size": "320",
        "data.test_size": "120",
        "fed.num_clients": "6",
        "fed.rounds": "2",
        "fed.clusters": "2",
        "lora.r": "4",
        "train.local_epochs": "1",
        "secure.backend": '"plaintext"',  # deterministic; masking tests say so explicitly
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny_cfg():
    def make(**extra: str):
        return load_config(None, tiny_overrides(**extra))

    return make
