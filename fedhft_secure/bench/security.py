"""``fedhft-secure bench security``: run the attacks each threat model cites, print PASS/FAIL per claim.

A threat model backs its claims with ``[[attacks]]`` tables::

    [[attacks]]
    claim = "the server alone cannot estimate a client's pass vector"
    attack = "reconstruction"
    mode = "masking-dense"
    pass_if = "abs < 0.15"

The suite runs every (attack, mode) once, and shows the measured figure next
to each claim, whatever the outcome.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..secure.masking import derive_params
from ..threat import load_threat_model
from . import attacks as A
from .fuzz import fuzz_all

__all__ = ["ATTACKS", "run_suite", "markdown", "page"]


def _fuzz(quick: bool) -> tuple[float, dict[str, Any]]:
    res = fuzz_all(per_target=550 if quick else 10_000, seed=0)
    out = {"inputs": sum(r.inputs for r in res), "crashes": sum(r.crashes for r in res),
           "accepted": sum(r.accepted for r in res),
           "value_mutants_accepted": sum(r.value_mutants_accepted for r in res),
           "targets": {r.target: {"inputs": r.inputs, "crashes": r.crashes, "accepted": r.accepted,
                                  "examples": r.examples} for r in res}}
    return float(out["crashes"] + out["accepted"]), out


def _t(n: int, threat: str) -> tuple[int, int]:
    """(h, t): share holders (the k neighbours and the client) and the threshold."""
    p = derive_params(n, threat=threat)
    return p.holders, p.threshold


_OBS: dict[tuple[str, str, float], object] = {}


def _observed(backend: str, sparsity: str = "dense", sketch_noise: float = 0.0):  # noqa: ANN202
    """One small training run per mode, shared by the attacks on it."""
    from .inference import observe

    key = (backend, sparsity, sketch_noise)
    if key not in _OBS:
        _OBS[key] = observe(backend, sparsity=sparsity, extra={"privacy.sketch_noise": str(sketch_noise)})
    return _OBS[key]


def _sketches(noise: float) -> tuple[float, dict[str, Any]]:
    from .inference import sketch_inference

    r = sketch_inference(_observed("masking", sketch_noise=noise))  # type: ignore[arg-type]
    return r["advantage"], r


def _labels(backend: str) -> tuple[float, dict[str, Any]]:
    from .inference import label_inference

    r = label_inference(_observed(backend))  # type: ignore[arg-type]
    return r["advantage"], r


def _rows(sparsity: str) -> tuple[float, dict[str, Any]]:
    from .inference import row_mask_leakage

    r = row_mask_leakage(_observed("masking", sparsity))  # type: ignore[arg-type]
    return r["share_of_clients_with_rows"], r


#: (attack, mode) -> quick -> (measured, details). Figures are cosine similarities unless said otherwise.
ATTACKS: dict[tuple[str, str], Callable[[bool], tuple[float, dict[str, Any]]]] = {
    ("reconstruction", "plaintext"): lambda q: (A.reconstruction_plaintext(), {}),
    ("reconstruction", "masking-dense"): lambda q: (lambda r: (r["cosine"], r))(A.reconstruction_masking()),
    ("collusion-t-minus-1", "masking-dense"): lambda q: (A.collusion(_t(8, "honest-but-curious")[1] - 1), {}),
    ("collusion-t", "masking-dense"): lambda q: (A.collusion(_t(8, "honest-but-curious")[1]), {}),
    ("dropout-lie", "masking-signed"): lambda q: (A.dropout_lie(signed=True,
                                                                colluders=_t(6, "semi-malicious")[1] - 1), {}),
    # unsigned: 2t - h colluders (h = k + 1 holders) with the best split of the honest neighbours
    ("dropout-lie", "masking-unsigned"): lambda q: (A.dropout_lie(
        signed=False, colluders=2 * _t(6, "honest-but-curious")[1] - _t(6, "honest-but-curious")[0]), {}),
    ("fuzz", "all"): _fuzz,
    # label inference: accuracy of naming each client's majority label, minus chance
    ("label-inference", "plaintext"): lambda q: _labels("plaintext"),
    ("label-inference", "masking-dense"): lambda q: _labels("masking"),
    # row masks: the share of clients whose kept-row sets the server holds (details: what they predict)
    ("row-mask-leakage", "masking-dense"): lambda q: _rows("dense"),
    ("row-mask-leakage", "masking-reveal-rows"): lambda q: _rows("reveal-rows"),
    # sketches: linking a client to the one with the most similar sketch names its majority label
    ("sketch-inference", "clear"): lambda q: _sketches(0.0),
    ("sketch-inference", "noise-1.0"): lambda q: _sketches(1.0),
}

_RULE = re.compile(r"^\s*(abs\s+)?(<=|>=|<|>|==)\s*([-+0-9.eE]+)\s*$")


def holds(rule: str, x: float) -> bool:
    m = _RULE.match(rule)
    if not m:
        raise ConfigError("attacks.pass_if", f"{rule!r} is not understood", "e.g. 'abs < 0.15', '> 0.99', '== 0'")
    v, op, bound = (abs(x) if m.group(1) else x), m.group(2), float(m.group(3))
    return {"<": v < bound, "<=": v <= bound, ">": v > bound, ">=": v >= bound, "==": v == bound}[op]


def run_suite(models: list[Path], *, quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
    claims = []
    for path in models:
        model = load_threat_model(path)
        for item in model.get("attacks", []):
            key = (item["attack"], item["mode"])
            if key not in ATTACKS:
                raise ConfigError(f"{path.name}: attacks.attack", f"{key} has no implementation",
                                  ", ".join(f"{a}/{m}" for a, m in ATTACKS))
            if key not in cache:
                cache[key] = ATTACKS[key](quick)
            measured = cache[key][0]
            claims.append({"threat_model": model["name"], "claim": item["claim"], "attack": item["attack"],
                           "mode": item["mode"], "measured": measured, "pass_if": item["pass_if"],
                           "pass": holds(item["pass_if"], measured)})
    fuzz = cache[("fuzz", "all")][1] if ("fuzz", "all") in cache else ATTACKS[("fuzz", "all")](quick)[1]
    details = {f"{a}/{m}": d for (a, m), (_, d) in cache.items() if d and a != "fuzz"}
    return {"quick": quick, "seconds": time.perf_counter() - t0, "claims": claims, "fuzz": fuzz,
            "details": details}


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [f"<!-- made by: {command} -->", "", "| threat model | claim | attack | mode | measured | pass if | "
             "result |", "|---|---|---|---|---|---|---|"]
    for c in result["claims"]:
        lines.append(f"| {c['threat_model']} | {c['claim']} | {c['attack']} | {c['mode']} | {c['measured']:.4g} | "
                     f"{c['pass_if']} | {'PASS' if c['pass'] else 'FAIL'} |")
    f = result["fuzz"]
    lines += ["", f"fuzz: {f['inputs']:,} inputs, {f['crashes']} crashes, {f['accepted']} invalid messages "
              f"accepted ({f['value_mutants_accepted']:,} value-only mutants accepted: a sender picks its values)"]
    return "\n".join(lines) + "\n"


def page(result: dict[str, Any], command: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(c['threat_model'])}</td><td>{html.escape(c['claim'])}</td>"
                   f"<td>{c['attack']}</td><td>{c['mode']}</td><td>{c['measured']:.4g}</td>"
                   f"<td>{html.escape(c['pass_if'])}</td><td style='color:{'green' if c['pass'] else 'red'}'>"
                   f"{'PASS' if c['pass'] else 'FAIL'}</td></tr>" for c in result["claims"])
    return (f"<!doctype html><meta charset='utf-8'><title>fedhft-secure security bench</title>"
            f"<p><code>{html.escape(command)}</code></p><table border=1 cellpadding=4><tr><th>threat model</th>"
            f"<th>claim</th><th>attack</th><th>mode</th><th>measured</th><th>pass if</th><th>result</th></tr>"
            f"{rows}</table><pre>{html.escape(json.dumps(result['fuzz'], indent=1)[:20000])}</pre>")
