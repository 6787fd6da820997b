"""The CKKS noise and size models that parameter derivation rests on hold for the TenSEAL/SEAL installed.

``experiments/ckks_noise.py --quick`` measures them through the backend's own encryption path. If a
fresh ciphertext's error grew past ``FRESH_SIGMA`` (or a sum's past its bound E), the precision and the
flooding (IND-CPA^D) guarantees of ``derive_params`` would no longer hold, so this fails loudly.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import ckks_noise  # noqa: E402


def test_noise_and_size_models_hold(tmp_path):
    out = tmp_path / "n.json"
    assert ckks_noise.main(["--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {(r["N"], r["summands"]) for r in data["noise"]} == {(2048, 1), (2048, 8), (4096, 1), (4096, 8)}
    for r in data["noise"]:
        # --quick measured 2.22-2.40 (TenSEAL 0.3.18; 2,048-4,096 values a row, std error ~0.04); a float32 cast
        # anywhere on the path would show as >> 2.5
        assert 1.5 < r["sigma"] < r["model_sigma"] and 0 < r["max_over_bound"] < 1, r
    for r in data["sizes"]:
        assert abs(r["bytes_per_coeff"] - r["model_bytes_per_coeff"]) < 0.5, r
