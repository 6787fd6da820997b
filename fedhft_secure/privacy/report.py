"""The epsilon report (versioned JSON) and the human page, both from a run's results.

Pure: ``epsilon_report(results, audit)`` recomputes every epsilon from the
recorded privacy events; ``render_html`` draws one self-contained page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from .accountant import ACCOUNTANTS, accountant_for
from .events import EVENT_TYPES, PrivacyEvent, event_from_dict
from .svg import line_chart

__all__ = ["SCHEMA", "epsilon_report", "render_html"]

SCHEMA = 1


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _mechanism(name: str, events: Sequence[PrivacyEvent], *, delta: float, accountant: str,
               rounds: list[int]) -> dict[str, Any]:
    sound = getattr(EVENT_TYPES[name], "accountants", tuple(ACCOUNTANTS))
    if accountant not in sound:  # e.g. PRV for the distributed discrete Gaussian: only RDP is proven
        accountant = sound[0]
    acc = accountant_for(accountant)
    comps = [c for e in events for c in e.compositions()]
    sigmas = sorted({c[0] for c in comps})
    rates = sorted({c[1] for c in comps})
    out: dict[str, Any] = {
        "name": name, "epsilon": acc.epsilon(events, delta=delta), "delta": delta, "accountant": accountant,
        "neighbouring": EVENT_TYPES[name].neighbouring,
        "noise_multiplier": sigmas[0] if len(sigmas) == 1 else sigmas,
        "sample_rate": rates[0] if len(rates) == 1 else rates,
        "steps": sum(c[2] for c in comps), "rounds": sorted({e.round for e in events}),
        "per_round": [{"round": t, "epsilon": acc.epsilon([e for e in events if e.round <= t], delta=delta)}
                      for t in rounds],
        "other_accountants": {},
    }
    for other in ACCOUNTANTS:
        if other != accountant and other not in sound:
            out["other_accountants"][other] = "not applicable: no bound of this mechanism in its terms"
        elif other != accountant:
            try:
                out["other_accountants"][other] = ACCOUNTANTS[other].epsilon(events, delta=delta)
            except Exception as exc:  # noqa: BLE001 - an accountant outside its numeric range
                out["other_accountants"][other] = f"not computed: {type(exc).__name__}"
    first = events[0]
    if hasattr(first, "max_grad_norm"):
        out["max_grad_norm"] = first.max_grad_norm  # type: ignore[union-attr]
    if hasattr(first, "clip"):
        out["clip"], out["noise_std"] = first.clip, first.noise * first.clip  # type: ignore[union-attr]
    if hasattr(first, "cohort"):  # distributed noise: the cohort it was split over and who was charged
        out["cohort_min"] = min(e.cohort for e in events)  # type: ignore[union-attr]
        out["contributors_min"] = min(e.contributors for e in events)  # type: ignore[union-attr]
        out["bound"] = "Kairouz-Liu-Steinke 2021 Prop. 14 (Gaussian-equivalent line), composed in RDP"
    return out


def epsilon_report(results: dict[str, Any], audit: dict[str, Any] | None = None) -> dict[str, Any]:
    pv = results["config"]["privacy"]
    delta, name = float(pv["delta"]), pv["accountant"]
    events = [event_from_dict(e) for e in results.get("privacy_events", [])]
    rounds = [r["round"] for r in results["rounds"]]
    ids = sorted({c["id"] for r in results["rounds"] for c in r["clients"]} | {e.client for e in events})
    clients = []
    for i in ids:
        mine = [e for e in events if e.client == i]
        mechs = [_mechanism(m, [e for e in mine if e.mechanism == m], delta=delta, accountant=name,
                            rounds=rounds)
                 for m in EVENT_TYPES if any(e.mechanism == m for e in mine)]
        took = [r["round"] for r in results["rounds"] for c in r["clients"] if c["id"] == i and c.get("completed")]
        spent = any(c.get("budget_spent") for r in results["rounds"] for c in r["clients"] if c["id"] == i)
        clients.append({"id": i, "mechanisms": mechs, "rounds_completed": took,
                        "budget": float(pv["target_epsilon"]) if pv["dp_sgd"] else None,
                        "budget_spent": spent or i in results.get("stopped", {}).get("clients", [])})
    unprotected = []
    if not pv["dp_sgd"]:
        unprotected.append("adapter and head updates (pass vectors): no DP-SGD, no record-level epsilon"
                           + (" (toward the server they carry distributed noise: see that mechanism)"
                              if float(pv.get("distributed_noise", 0.0)) > 0 else ""))
    if float(pv["sketch_noise"]) <= 0:
        unprotected.append("clustering sketches: sent without noise, no epsilon"
                           + ("" if not pv["dp_sgd"] else " at client level (record level: post-processing "
                              "of DP-SGD)"))
    return {"schema": SCHEMA, "accountant": name, "delta": delta, "rounds": rounds,
            "privacy_config": pv, "clients": clients, "unprotected": unprotected,
            "stopped": results.get("stopped"), "audit": audit}


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return "&infin;" if math.isinf(x) else f"{x:.3g}"
        return escape(str(x))
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{cell(x)}</td>" for x in r) + "</tr>" for r in rows) + "</table>")


def render_html(results: dict[str, Any], report: dict[str, Any]) -> str:
    rounds = results["rounds"]
    xs = [r["round"] for r in rounds]
    eps_series = [(f"client {c['id']} {m['name']}", xs, [_finite(p["epsilon"]) for p in m["per_round"]])
                  for c in report["clients"] for m in c["mechanisms"]]
    acc_series = [("global test", xs, [r.get("global_test_accuracy") for r in rounds]),
                  ("majority baseline", xs, [r.get("majority_accuracy") for r in rounds])]
    val = [[c["val_accuracy"] for c in r["clients"] if c.get("val_accuracy") is not None] for r in rounds]
    acc_series.append(("mean client val", xs, [sum(v) / len(v) if v else None for v in val]))
    bytes_series = [("up (all clients)", xs, [sum(c["bytes_up"] for c in r["clients"]) / 1e6 for r in rounds]),
                    ("down (all clients)", xs, [sum(c["bytes_down"] for c in r["clients"]) / 1e6 for r in rounds])]
    rows = [(c["id"], m["name"], m["epsilon"], m["delta"], m["accountant"], str(m["noise_multiplier"]),
             str(m["sample_rate"]), m["steps"], m["neighbouring"]) for c in report["clients"] for m in c["mechanisms"]]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>fedhft-secure privacy report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;font-size:12px}h2{margin-top:1.5em}</style></head><body>",
        "<h1>Privacy report</h1>",
        f"<p>accountant <b>{escape(report['accountant'])}</b>, &delta; = {report['delta']:g}, "
        f"rounds run: {len(rounds)}; final global test accuracy "
        f"{results.get('final', {}).get('test_accuracy', float('nan')):.4f} "
        f"(majority {results.get('final', {}).get('majority_accuracy', float('nan')):.4f}).</p>",
    ]
    if report.get("stopped"):
        parts.append(f"<p><b>Run stopped</b>: {escape(json.dumps(report['stopped']))}</p>")
    if report["unprotected"]:
        parts.append("<h2>Without an epsilon</h2><ul>"
                     + "".join(f"<li>{escape(u)}</li>" for u in report["unprotected"]) + "</ul>")
    parts += ["<h2>Epsilon per client and mechanism</h2>",
              _table(["client", "mechanism", "epsilon", "delta", "accountant", "noise multiplier",
                      "sample rate", "steps", "neighbouring relation"], rows) if rows else "<p>no privacy events</p>",
              line_chart(eps_series, title="epsilon per client vs round", xlabel="round", ylabel="epsilon"),
              line_chart(acc_series, title="accuracy vs round", xlabel="round", ylabel="accuracy"),
              line_chart(bytes_series, title="bytes per round", xlabel="round", ylabel="MB")]
    audit = report.get("audit")
    if audit:
        parts += ["<h2>One-run canary audit (Steinke, Nasr, Jagielski 2023)</h2>",
                  _table(["canaries", "guesses", "correct", "confidence", "epsilon lower bound",
                          "epsilon accounted"],
                         [(audit["canaries"], audit.get("guesses"), audit.get("correct"), audit.get("confidence"),
                           audit["epsilon_lower_bound"], audit["epsilon_accounted"])])]
    parts.append("</body></html>")
    return "\n".join(parts)
