"""Attacks on the noise of the DP threat models (``distributed-dp-server``, ``dp-sgd-local``).

* ``distributed_noise_std``: how much noise the server really finds in an
  opened masked sum with distributed discrete Gaussian noise (a real masking
  session), against the target std z C.
* ``distinguishing_game``: the worst case of client-level DP toward the
  server. The server knows every other client's vector exactly and must tell
  whether the victim sent v0 or v1 (||v0 - v1|| = 2C: replace-one-client) from
  the noisy sum. Each trial runs the clients' own encoding (clip, fixed point,
  their share of the discrete Gaussian) and the integer sum mod 2^bits, which
  is exactly what the masked sum opens to (the masks cancel; ``test_masking``).
  Figure: the empirical epsilon lower bound of the best threshold test
  (``privacy.audit.epsilon_from_scores``) over the epsilon the ledger accounts
  for that one release: above 1 would refute the accounting.
* ``colluders_remove_noise``: c colluding clients tell the server their own
  noise shares; what is left in the sum is (n - c)/n of the target variance
  (the threat model states this and does not charge it).
* ``noise_from_seed``: with ``privacy.secure_rng = false`` a client's noise
  generator is seeded from the run seed (public in results.json); an attacker
  who replays it removes the sketch noise exactly. The same generator drives
  that client's DP-SGD noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import load_config
from ..crypto.encoding import FixedPoint
from ..privacy.audit import epsilon_cap, epsilon_from_scores
from ..privacy.ddp import ddp_epsilon
from ..privacy.sketch import clip_sketch, protect_sketch
from ..runtime.world import client_ledger
from ..secure.masking import MaskingSum
from ..secure.noise import DistributedNoise
from ..seeds import derive_seed
from .attacks import cosine
from .session import MaskingRun

__all__ = ["distributed_noise_std", "distinguishing_game", "colluders_remove_noise", "noise_from_seed"]


def distributed_noise_std(*, n: int = 5, d: int = 4000, clip: float = 1.0, noise: float = 0.5,
                          seed: int = 0) -> dict[str, float]:
    """Std of (opened sum - true sum) per coordinate over the target ``noise * clip``."""
    rng = np.random.default_rng(seed)
    vecs = {i: rng.standard_normal(d) * 0.3 / np.sqrt(d) for i in range(n)}  # inside the L2 clip
    sums = MaskingRun(vecs, MaskingSum(distributed_noise=(clip, noise))).run()
    assert sums is not None
    err = sums[0]["v"].double().numpy() - sum(vecs.values())
    return {"ratio": float(err.std() / (noise * clip)), "std": float(err.std()), "target": noise * clip,
            "clients": n, "dim": d}


def distinguishing_game(*, n: int = 5, d: int = 16, clip: float = 1.0, noise: float = 3.0, trials: int = 2000,
                        delta: float = 1e-5, secure_clip: float = 64.0, seed: int = 0) -> dict[str, Any]:
    """The server's likelihood-ratio test between v0 = C e_1 and v1 = -C e_1 for the victim (client 0)."""
    rng = np.random.default_rng(seed)
    codec = FixedPoint(n=n, clip=secure_clip, bits=32)
    others = {i: rng.standard_normal(d) * clip / (2 * np.sqrt(d)) for i in range(1, n)}
    known = sum(others.values())
    v0 = np.zeros(d)
    v0[0] = clip
    client_noise = DistributedNoise(clip=clip, noise=noise)

    def statistic(victim: np.ndarray) -> float:
        total = np.zeros(d, dtype=codec.dtype)
        for x in (victim, *others.values()):
            total = total + client_noise.encode(codec, x, rng.random(d), cluster=0, cohort=n)
        opened = codec.decode_sum(total)
        return float(-(opened - known)[0])  # projection on (v1 - v0) / ||v1 - v0||

    s0 = np.array([statistic(v0) for _ in range(trials)])
    s1 = np.array([statistic(-v0) for _ in range(trials)])
    eps_lb = epsilon_from_scores(s1, s0, delta=delta)
    eps = ddp_epsilon(clip=clip, noise=noise, scale=codec.scale, cohort=n, contributors=n, dim=d, releases=1,
                      delta=delta, bound="third")
    return {"ratio": eps_lb / eps, "epsilon_lower_bound": eps_lb, "epsilon_accounted": eps,
            "epsilon_cap": epsilon_cap(trials, trials, delta=delta), "trials_per_hypothesis": trials,
            "separation_in_noise_stds": float((s1.mean() - s0.mean()) / np.sqrt((s0.var() + s1.var()) / 2)),
            "noise": noise, "clip": clip, "clients": n, "dim": d}


def colluders_remove_noise(*, n: int = 5, colluders: int = 4, d: int = 4000, clip: float = 1.0, noise: float = 0.5,
                           secure_clip: float = 64.0, seed: int = 0) -> dict[str, float]:
    """Variance left in the opened sum after ``colluders`` clients hand the server their noise shares,
    over the target variance (noise * clip)^2."""
    rng = np.random.default_rng(seed)
    codec = FixedPoint(n=n, clip=secure_clip, bits=32)
    vecs = [rng.standard_normal(d) * 0.3 / np.sqrt(d) for _ in range(n)]
    total, told = np.zeros(d, dtype=codec.dtype), np.zeros(d, dtype=codec.dtype)
    for i, x in enumerate(vecs):
        u = rng.random(d)
        y = DistributedNoise(clip=clip, noise=noise).encode(codec, x, u, cluster=0, cohort=n)
        total = total + y
        if i < colluders:  # a colluder knows its noise: its encoding minus its rounded vector
            told = told + (y - codec.encode(x, u))
    left = codec.decode_sum(total - told) - sum(vecs)
    return {"variance_left": float(left.var() / (noise * clip) ** 2), "expected": (n - colluders) / n,
            "clients": n, "colluders": colluders}


def noise_from_seed(*, secure_rng: bool, client: int = 3, round: int = 2, seed: int = 0,
                    dim: int = 64) -> dict[str, float]:
    """Replay the client's noise generator from the run seed and subtract it from a released sketch.

    Figure: cosine between the attacker's denoised sketch and the clipped sketch before noise."""
    cfg = load_config(None, [f"seed={seed}", "privacy.sketch_noise=1.0",
                             f"privacy.secure_rng={str(secure_rng).lower()}"])
    ledger = client_ledger(cfg, client, 40)
    ledger.begin_round(round)
    v = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal(dim)).float()
    released = ledger.release_sketch(v, round)
    # the attacker: the public seed and code, nothing of the client's
    replay = torch.Generator().manual_seed(derive_seed(seed, round, client, "dp-noise"))
    guess = protect_sketch(torch.zeros(dim), clip=cfg.privacy.sketch_clip, noise=1.0, generator=replay)
    clean = clip_sketch(v, cfg.privacy.sketch_clip).double().numpy()
    return {"cosine": cosine((released - guess).double().numpy(), clean),
            "cosine_of_released": cosine(released.double().numpy(), clean)}
