"""``fedhft-secure bench security``: run the attacks each threat model cites, print PASS/FAIL per claim.

A threat model backs its claims with ``[[attacks]]`` tables::

    [[attacks]]
    claim = "the server alone cannot estimate a client's pass vector"
    attack = "reconstruction"
    mode = "masking-dense"
    pass_if = "abs < 0.15"

The suite runs every (attack, mode) once (``registry.ATTACKS``), and shows the
measured figure next to each claim, whatever the outcome. An entry may name a
``figure`` among the attack's details instead of its main figure (e.g. the
empirical epsilon of a membership attack beside its AUC).
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..threat import load_threat_model
from .registry import ATTACKS

__all__ = ["ATTACKS", "run_suite", "markdown", "page", "holds"]


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
    seconds: dict[str, float] = {}
    claims = []
    for path in models:
        model = load_threat_model(path)
        for item in model.get("attacks", []):
            key = (item["attack"], item["mode"])
            if key not in ATTACKS:
                raise ConfigError(f"{path.name}: attacks.attack", f"{key} has no implementation",
                                  ", ".join(f"{a}/{m}" for a, m in ATTACKS))
            if key not in cache:
                t1 = time.perf_counter()
                cache[key] = ATTACKS[key](quick)
                seconds[f"{key[0]}/{key[1]}"] = time.perf_counter() - t1
            value, details = cache[key]
            figure = item.get("figure")
            if figure is not None and figure not in details:
                raise ConfigError(f"{path.name}: attacks.figure", f"{figure!r} is not a figure of {key}",
                                  ", ".join(k for k, v in details.items() if isinstance(v, (int, float))))
            measured = float(details[figure]) if figure is not None else value
            claims.append({"threat_model": model["name"], "claim": item["claim"], "attack": item["attack"],
                           "mode": item["mode"], "figure": figure or "main", "measured": measured,
                           "pass_if": item["pass_if"], "pass": holds(item["pass_if"], measured)})
    fuzz = cache[("fuzz", "all")][1] if ("fuzz", "all") in cache else ATTACKS[("fuzz", "all")](quick)[1]
    details = {f"{a}/{m}": d for (a, m), (_, d) in cache.items() if d and a != "fuzz"}
    return {"quick": quick, "seconds": time.perf_counter() - t0, "claims": claims, "fuzz": fuzz,
            "details": details, "attack_seconds": seconds}


def _attack(c: dict[str, Any]) -> str:
    return c["attack"] if c.get("figure", "main") == "main" else f"{c['attack']} ({c['figure']})"


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [f"<!-- made by: {command} -->", "", "| threat model | claim | attack | mode | measured | pass if | "
             "result |", "|---|---|---|---|---|---|---|"]
    for c in result["claims"]:
        lines.append(f"| {c['threat_model']} | {c['claim']} | {_attack(c)} | {c['mode']} | {c['measured']:.4g} | "
                     f"{c['pass_if']} | {'PASS' if c['pass'] else 'FAIL'} |")
    f = result["fuzz"]
    lines += ["", f"fuzz: {f['inputs']:,} inputs, {f['crashes']} crashes, {f['accepted']} invalid messages "
              f"accepted ({f['value_mutants_accepted']:,} value-only mutants accepted: a sender picks its values)"]
    return "\n".join(lines) + "\n"


def page(result: dict[str, Any], command: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(c['threat_model'])}</td><td>{html.escape(c['claim'])}</td>"
                   f"<td>{html.escape(_attack(c))}</td><td>{c['mode']}</td><td>{c['measured']:.4g}</td>"
                   f"<td>{html.escape(c['pass_if'])}</td><td style='color:{'green' if c['pass'] else 'red'}'>"
                   f"{'PASS' if c['pass'] else 'FAIL'}</td></tr>" for c in result["claims"])
    return (f"<!doctype html><meta charset='utf-8'><title>fedhft-secure security bench</title>"
            f"<p><code>{html.escape(command)}</code></p><table border=1 cellpadding=4><tr><th>threat model</th>"
            f"<th>claim</th><th>attack</th><th>mode</th><th>measured</th><th>pass if</th><th>result</th></tr>"
            f"{rows}</table><pre>{html.escape(json.dumps(result['fuzz'], indent=1)[:20000])}</pre>")
