"""CKKS secure sum: seconds and bytes for one pass of the default model, beside plaintext
and the common TenSEAL configuration, all measured in this run.

    python experiments/bench_ckks.py [--quick] [--json PATH]

Vectors: the default run's pass-0 message per client and cluster -- 12 adapted
layers (MiniLM-L6, LoRA r = 8 on query, value) x a 384 x 8 product, 12 row-count
vectors of 384, the 2 x 384 + 2 classifier head: 42,242 values -- drawn
uniform in [-1, 1] and multiplied by a weight p in (0, 1]. One cluster is summed.

Rows `ckks-run*`: n = 8 at the run's defaults (secure.ckks_precision 0: the finest a 60-bit q0
allows, secure.ckks_flood_bits; `-noflood`: the same precision without flooding).
Rows: `ckks` (derived parameters: |value| <= 4, precision 1e-4 on a released sum,
20 flood bits, max_clients = n), `ckks-noflood` (same, flood_bits = 0: the
flooding noise equals the error bound), `plaintext` (the reference backend,
float32 frames), `common` (N = 8192, [60, 40, 40, 60], scale 2^40, public-key
encryption, one CKKSVector per layer: its product and counts; one for the head).
bytes_per_fp32 = upload bytes per value / 4 (ckks uploads: seeded symmetric
ciphertexts, c0 and a seed); sum_bytes_per_fp32 the same for the sum the
server sends back (full ciphertexts). `model` = the size model of params.py.
--quick encrypts 10 distinct clients and reuses their ciphertexts to make up n
(the server refuses a repeated ciphertext, so --quick sums them with
``CkksServer.add`` after loading each once per summand).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tenseal as ts
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedhft_secure.config import RunConfig, SecureConfig  # noqa: E402
from fedhft_secure.secure.api import Contribution, Expected, SessionInfo  # noqa: E402
from fedhft_secure.secure.ckks import (CkksClient, CkksServer, derive_params, generate_keys, pack,  # noqa: E402
                                       tightest_precision)
from fedhft_secure.secure.plaintext import PlaintextSum  # noqa: E402

LAYERS, OUT, Q = 12, 384, 8


def shapes() -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        s[f"s/layer.{layer}"] = (OUT, Q)
        s[f"counts/layer.{layer}"] = (OUT,)
    s["head/classifier.weight"] = (2, OUT)
    s["head/classifier.bias"] = (2,)
    return s


def clients(n: int, distinct: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    base = []
    for _ in range(min(n, distinct)):
        p = float(torch.rand(1, generator=g).clamp_min(1e-3))
        base.append({k: p * (torch.rand(s, generator=g, dtype=torch.float64) * 2 - 1) for k, s in shapes().items()})
    return [base[i % len(base)] for i in range(n)]


def bench_ckks(name: str, xs: list[dict[str, torch.Tensor]], distinct: int, precision: float = 1e-4,
               **kw) -> dict:
    n = len(xs)
    params = derive_params(max_clients=n, value_bound=4.0, precision=precision, **kw)
    sk = generate_keys(params)
    client, server = CkksClient(sk), CkksServer(sk.public())
    layout = client.layout(shapes())
    t = time.perf_counter()
    fresh = [client.encrypt(x, layout=layout) for x in xs[:distinct]]
    enc = (time.perf_counter() - t) / len(fresh)
    t = time.perf_counter()
    if distinct >= n:
        summed = server.weighted_sum(dict(enumerate(fresh)), layout=layout)
    else:  # a repeated ciphertext is refused as a replay: load each summand, then add
        summed = server.add({i: server.load(fresh[i % len(fresh)], layout=layout, sender=i) for i in range(n)},
                            layout=layout)
    agg = time.perf_counter() - t
    t = time.perf_counter()
    out = client.decrypt(summed, layout=layout)
    dec = time.perf_counter() - t
    raw = client.open_values(summed, layout=layout, flood=False)  # float64: the error is below float32's grain
    want = {k: sum(x[k].double() for x in xs) for k in layout_names(layout)}
    err = max((out[k].double() - want[k]).abs().max().item() for k in want)
    err_raw = float(np.abs(raw - pack(layout, want)).max())
    values = layout.total
    return {"backend": name, "n": n, "values": values, "ciphertexts": layout.num_ciphertexts,
            "params": params.to_dict(), "security_bits": params.security_bits,
            "encrypt_s_per_client": enc, "aggregate_s": agg, "decrypt_s": dec,
            "upload_bytes_per_client": len(fresh[0]), "sum_bytes": len(summed),
            "bytes_per_fp32": len(fresh[0]) / values / 4, "sum_bytes_per_fp32": len(summed) / values / 4,
            "model_bytes_per_fp32": params.upload_bytes_per_value / 4,
            "model_sum_bytes_per_fp32": params.sum_bytes_per_value / 4, "max_abs_error": err,
            "max_abs_error_unflooded": err_raw, "precision_bound": params.precision}


def layout_names(layout) -> list[str]:  # noqa: ANN001
    return [e.name for e in layout.entries]


def bench_plaintext(xs: list[dict[str, torch.Tensor]]) -> dict:
    backend, sh = PlaintextSum(), shapes()
    expected = Expected(shared=sh, per_cluster={})
    t = time.perf_counter()
    payloads = {i: backend.client_session(i, 0).payload(Contribution(shared={k: v.float() for k, v in x.items()}),
                                                        slot=0, weights=[1.0], expected=expected)
                for i, x in enumerate(xs)}
    enc = (time.perf_counter() - t) / len(xs)
    t = time.perf_counter()
    server = backend.server_session(SessionInfo(round=0, epoch=0, cohort=tuple(payloads), clusters=1, passes=1,
                                                weights={i: (1.0,) for i in payloads}))
    server.begin_pass(1, slot=0, expected=expected)
    for i, p in payloads.items():
        server.add_payload(i, p)
    server.end_inputs()
    agg = time.perf_counter() - t
    up = sum(v.numel() * v.element_size() for v in payloads[0].values())
    values = sum(int(np.prod(s)) for s in sh.values())
    return {"backend": "plaintext", "n": len(xs), "values": values, "encrypt_s_per_client": enc,
            "aggregate_s": agg, "decrypt_s": 0.0, "upload_bytes_per_client": up, "sum_bytes": up,
            "bytes_per_fp32": up / values / 4, "sum_bytes_per_fp32": 1.0, "max_abs_error": 0.0}


def bench_common(xs: list[dict[str, torch.Tensor]], distinct: int) -> dict:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    ctx.global_scale = 2.0**40
    # one vector per layer (its product and its counts), one for the head
    groups = [[f"s/layer.{i}", f"counts/layer.{i}"] for i in range(LAYERS)] + \
        [["head/classifier.bias", "head/classifier.weight"]]

    def flat(x: dict[str, torch.Tensor], names: list[str]) -> np.ndarray:
        return np.concatenate([x[k].reshape(-1).numpy() for k in names])

    t = time.perf_counter()
    fresh = [[ts.ckks_vector(ctx, flat(x, g).tolist()).serialize() for g in groups] for x in xs[:distinct]]
    enc = (time.perf_counter() - t) / len(fresh)
    t = time.perf_counter()
    acc = [ts.ckks_vector_from(ctx, b) for b in fresh[0]]
    for i in range(1, len(xs)):
        for a, b in zip(acc, fresh[i % len(fresh)], strict=True):
            a.add_(ts.ckks_vector_from(ctx, b))
    summed = [a.serialize() for a in acc]
    agg = time.perf_counter() - t
    t = time.perf_counter()
    out = [np.array(a.decrypt()) for a in acc]
    dec = time.perf_counter() - t
    err = max(np.abs(o - sum(flat(x, g) for x in xs)).max() for o, g in zip(out, groups, strict=True))
    values = sum(x.numel() for x in xs[0].values())
    up = sum(len(b) for b in fresh[0])
    return {"backend": "common", "n": len(xs), "values": values, "ciphertexts": len(groups),
            "encrypt_s_per_client": enc, "aggregate_s": agg, "decrypt_s": dec, "upload_bytes_per_client": up,
            "sum_bytes": sum(len(b) for b in summed), "bytes_per_fp32": up / values / 4,
            "sum_bytes_per_fp32": sum(len(b) for b in summed) / values / 4, "max_abs_error": float(err)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for n in (10, 50):
        distinct = 10 if args.quick else n
        xs = clients(n, distinct)
        rows.append(bench_ckks("ckks", xs, distinct))
        rows.append(bench_ckks("ckks-noflood", xs, distinct, flood_bits=0))
        rows.append(bench_plaintext(xs))
        rows.append(bench_common(xs, distinct))
    # what `fedhft-secure run --set secure.backend=ckks` uses by default: 8 clients
    run, n_run = SecureConfig(), RunConfig().fed.num_clients
    xs = clients(n_run, n_run)
    precision = run.ckks_precision or tightest_precision(max_clients=n_run, value_bound=run.ckks_value_bound,
                                                         flood_bits=run.ckks_flood_bits)
    rows.append(bench_ckks("ckks-run", xs, n_run, precision=precision, flood_bits=run.ckks_flood_bits))
    rows.append(bench_ckks("ckks-run-noflood", xs, n_run, precision=precision, flood_bits=0))
    head = f"{'backend':16} {'n':>3} {'values':>7} {'N':>5} {'q0':>3} {'enc s/cl':>9} {'agg s':>7} {'dec s':>7} " \
           f"{'up B/cl':>9} {'xfp32':>6} {'model':>6} {'sum xfp32':>9} {'max err':>9}"
    print(head)
    for r in rows:
        p = r.get("params", {})
        model = f"{r['model_bytes_per_fp32']:.2f}" if "model_bytes_per_fp32" in r else "-"
        print(f"{r['backend']:16} {r['n']:>3} {r['values']:>7} {p.get('poly_modulus_degree', '-'):>5} "
              f"{(p.get('coeff_mod_bit_sizes') or ['-'])[0]:>3} {r['encrypt_s_per_client']:>9.4f} "
              f"{r['aggregate_s']:>7.3f} {r['decrypt_s']:>7.3f} {r['upload_bytes_per_client']:>9} "
              f"{r['bytes_per_fp32']:>6.2f} {model:>6} {r['sum_bytes_per_fp32']:>9.2f} {r['max_abs_error']:>9.2e}")
    main_row = next(r for r in rows if r["backend"] == "ckks" and r["n"] == 50)
    common = next(r for r in rows if r["backend"] == "common" and r["n"] == 50)
    run_row = next(r for r in rows if r["backend"] == "ckks-run")
    summary = {"bytes_per_fp32": main_row["bytes_per_fp32"],
               "bytes_per_fp32_common_config": common["bytes_per_fp32"],
               "sum_bytes_per_fp32": main_row["sum_bytes_per_fp32"],
               "bytes_per_fp32_run_default": run_row["bytes_per_fp32"],
               "run_default_params": run_row["params"],
               "bytes_per_fp32_noflood": next(r for r in rows if r["backend"] == "ckks-noflood"
                                              and r["n"] == 50)["bytes_per_fp32"],
               "target_bytes_per_fp32": 6.0, "quick": args.quick, "rows": rows}
    print(f"bytes_per_fp32 (ckks, n=50): {summary['bytes_per_fp32']:.2f}  "
          f"without flooding: {summary['bytes_per_fp32_noflood']:.2f}  "
          f"run default: {summary['bytes_per_fp32_run_default']:.2f}  "
          f"sum (server -> members): {summary['sum_bytes_per_fp32']:.2f}  "
          f"common config: {summary['bytes_per_fp32_common_config']:.2f}  target <= 6")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
