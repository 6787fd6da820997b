"""FedHFT against the federated LoRA methods people would pick instead, on one engine and the same data.

Every method runs through `fedhft_secure.runtime.local.run` (same data split,
partition, model and seeds); methods that are a plain sum run with the
`masking` backend, `local` and `central` send nothing. Per run: each
client's model on its own held-out data (personalized accuracy, mean over
clients, last round), the global test split (global accuracy), upload bytes
per client per round and server seconds per round. Beside them, measured in
the same invocation: peak training memory of full fine-tuning vs FedHFT's
LoRA at each level (a child process per kind), and full-model FedAvg upload
vs FedHFT's.

Runs are stored under ``--runs DIR`` and reused when complete, so the full
grid can be built up over several invocations; ``--reuse JSON`` also takes
the rows of an earlier JSON whose folders are gone (a new machine).

    python experiments/compare.py [--quick] [--json PATH] [--runs DIR] [--reuse JSON] [--seeds 0,1,2]
        [--methods M,..] [--datasets D,..] [--settings default,alpha0.1,..] [--set KEY=VALUE ...]

``--set`` runs a variant beyond the grid (e.g. more local epochs) in folders and files of its own.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import math
import resource
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

from fedhft_secure.config import METHODS as CONFIG_METHODS  # noqa: E402
from fedhft_secure.config import RunConfig, config_from_dict, config_to_dict, load_config  # noqa: E402
from fedhft_secure.fl.baselines import SUM_METHODS, plain_sum_note, uses_levels  # noqa: E402
from fedhft_secure.privacy.svg import line_chart  # noqa: E402
from fedhft_secure.runtime.checkpoint import finished_run  # noqa: E402
from fedhft_secure.runtime.local import run  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: label -> overrides; the FedHFT variants first
METHODS: dict[str, dict[str, str]] = {
    "fedhft": {"fed.clusters": "2", "fed.mask": '"post-norm"'},
    "fedhft-k1": {"fed.clusters": "1", "fed.mask": '"post-norm"'},
    "fedhft-prefisher": {"fed.clusters": "2", "fed.mask": '"pre-fisher"'},
    **{m: {"method": f'"{m}"'} for m in CONFIG_METHODS if m != "fedhft"},
}
#: the methods that send nothing (no secure sum): the rest are the federated rows
NOT_FEDERATED = ("local", "central")
DATASETS = ("rotten_tomatoes", "tweets")
DEFAULT_ALPHA, DEFAULT_LEVELS = 10.0, (1.0, 0.5)
#: data heterogeneity at the default levels, resource heterogeneity at the default alpha
#: (the default setting first, then the strongest heterogeneity: the grid is built over several invocations)
SETTINGS: dict[str, tuple[float, tuple[float, ...]]] = {
    "default": (DEFAULT_ALPHA, DEFAULT_LEVELS), "alpha0.1": (0.1, DEFAULT_LEVELS),
    "levels3": (DEFAULT_ALPHA, (1.0, 0.5, 0.25)), "alpha1": (1.0, DEFAULT_LEVELS), "levels1": (DEFAULT_ALPHA, (1.0,))}
#: the quick grid: the tiny random BERT (learns nothing; it checks the machinery) and one setting
QUICK = {"model.name": '"tiny-random"', "data.train_size": "240", "data.test_size": "80", "fed.num_clients": "4",
         "fed.rounds": "1", "lora.r": "4", "train.local_epochs": "1"}


def overrides(method: str, dataset: str, alpha: float, levels: tuple[float, ...], seed: int,
              quick: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """``extra``: settings beyond the grid's (``--set``), applied last to every run."""
    o = dict(QUICK) if quick else {}
    o.update(METHODS[method])
    backend = "plaintext" if method in NOT_FEDERATED else "masking"
    o.update({"data.name": f'"{dataset}"', "data.dirichlet_alpha": str(alpha), "seed": str(seed),
              "fed.levels": "[" + ", ".join(map(str, levels)) + "]",
              "fed.level_ratios": "[" + ", ".join(str(1 / len(levels)) for _ in levels) + "]",
              "secure.backend": f'"{backend}"'})
    grid_keys = ({k for m in METHODS.values() for k in m} | set(o)) - set(QUICK)
    if clash := sorted(set(extra or {}) & grid_keys):
        raise SystemExit(f"--set: {', '.join(clash)} is the grid's to set (--methods, --datasets, --settings, --seeds)")
    return {**o, **(extra or {})}


def run_key(method: str, dataset: str, alpha: float, levels: tuple[float, ...], seed: int, quick: bool,
            extra: dict[str, str] | None = None) -> str:
    """The run's folder name; ``--set`` settings are part of it, so such runs never mix with the grid's."""
    tail = set_tag(extra, "-")
    return f"{'quick-' if quick else ''}{method}-{dataset}-a{alpha:g}-l{'_'.join(map(str, levels))}-s{seed}{tail}"


def set_tag(extra: dict[str, str] | None, sep: str) -> str:
    """``--set`` settings as a name part: ``<sep>KEY=VALUE`` each, sorted, TOML quotes dropped."""
    return "".join(f"{sep}{k}={v.strip(chr(34))}" for k, v in sorted((extra or {}).items()))


def stale_keys(stored: dict[str, Any], want: RunConfig) -> list[str]:
    """The settings in which a stored run differs from the one this command would start (empty: reuse it).

    The grid is built over sessions: a default changed in between would otherwise mix two configurations in one
    table. Keys added since the run was stored take their defaults; the ckks settings are not read by a run that
    does not use ckks."""
    def flat(d: dict[str, Any], pre: str = "") -> dict[str, Any]:
        return {k2: v2 for k, v in d.items()
                for k2, v2 in (flat(v, f"{pre}{k}.").items() if isinstance(v, dict) else [(pre + k, v)])}
    have, need = flat(config_to_dict(config_from_dict(stored))), flat(config_to_dict(want))
    ckks = want.secure.backend == "ckks" or have.get("secure.backend") == "ckks"
    return sorted(k for k in have.keys() | need.keys()
                  if have.get(k) != need.get(k) and (ckks or not k.startswith("secure.ckks_")))


def one_run(runs: Path, method: str, dataset: str, alpha: float, levels: tuple[float, ...], seed: int,
            quick: bool, start: bool = True, extra: dict[str, str] | None = None,
            reuse: dict[str, dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The figures of one run: reused when its folder holds a finished run of the same configuration, or
    ``reuse`` (run folder name -> row of an earlier JSON) holds its row, else run (None if not ``start``).

    A method to which levels mean nothing (``fl.baselines.uses_levels``) runs at the default levels only: that
    run stands for it at every level setting, marked ``ran_at_levels`` (running it again would repeat it)."""
    o = overrides(method, dataset, alpha, levels, seed, quick, extra)
    cfg = load_config(None, [f"{k}={v}" for k, v in o.items()])
    if levels != DEFAULT_LEVELS and not uses_levels(cfg.method):
        r = one_run(runs, method, dataset, alpha, DEFAULT_LEVELS, seed, quick, start, extra, reuse)
        return None if r is None else {**r, "levels": list(levels), "ran_at_levels": list(DEFAULT_LEVELS)}
    out = runs / run_key(method, dataset, alpha, levels, seed, quick, extra)
    # an interrupted run is started again, not resumed: fedsa-lora's and local's client state is not checkpointed
    res = finished_run(out)
    if res is None and (row := (reuse or {}).get(out.name)) is not None:
        if stale := stale_keys(row["config"], cfg):
            raise SystemExit(f"--reuse: the row of {out.name} is of another configuration ({', '.join(stale)} "
                             "differ); leave that file out to run it again")
        return row
    if res is not None and (stale := stale_keys(res["config"], cfg)):
        raise SystemExit(f"{out}: a finished run of another configuration ({', '.join(stale)} differ); "
                         "move it away to run this one again")
    if res is None:
        if not start:
            return None
        if out.exists():
            import shutil

            shutil.rmtree(out)  # an unfinished run: start it again
        res = run(cfg, out, progress=False)
    rounds = res["rounds"]
    own = [c["val_majority_accuracy"] for c in rounds[-1]["clients"] if c.get("val_accuracy") is not None]
    ups = [c["bytes_up"] for r in rounds for c in r["clients"]]
    stored = res["config"]
    return {"method": method, "dataset": dataset, "alpha": alpha, "levels": list(levels), "seed": seed,
            **({"set": dict(extra)} if extra else {}),
            "secure_backend": stored["secure"]["backend"] if method not in NOT_FEDERATED else "none",
            "plain_sum": plain_sum_note(stored["method"]),
            "personalized_accuracy": res["final"]["personalized_accuracy"],
            "global_accuracy": res["final"]["test_accuracy"],
            "majority_accuracy": res["final"]["majority_accuracy"],
            # each client always answering its own training majority label, on its own held-out data: what
            # personalized accuracy means under label skew (at alpha 0.1 most clients hold one label)
            "personalized_majority_accuracy": statistics.mean(own) if own else None,
            "bytes_up_per_round": statistics.mean(ups),
            "server_seconds_per_round": statistics.mean(r["seconds"].get("server", float("nan")) for r in rounds),
            "round_seconds": statistics.mean(r["seconds"]["round"] for r in rounds),
            "run_dir": str(out), "config": stored}


# -- memory: one child process per client kind ------------------------------------------------------------
def measure_memory(kind: str, level: float, quick: bool) -> None:
    """Child: train a few steps of ``kind`` (full | fedhft) at ``level``; print peak RSS growth in MiB."""
    import copy

    import torch

    from fedhft_secure.model.base import encode_texts, load_base_model, load_tokenizer
    from fedhft_secure.model.lora import inject_lora, lora_modules
    from fedhft_secure.model.masks import top_fraction
    from fedhft_secure.model.train import train_local

    cfg = load_config(None, [f"{k}={v}" for k, v in (QUICK if quick else {}).items()])
    torch.set_num_threads(cfg.threads)
    tok = load_tokenizer(cfg.model.name, cfg.model.path)
    model = load_base_model(cfg.model.name, cfg.model.path, 2, 0)
    texts = ["a quietly moving film about people who are not what they seem"] * (cfg.train.batch_size * 3)
    data = encode_texts(tok, texts, [i % 2 for i in range(len(texts))], cfg.data.max_length)
    import threading

    page = resource.getpagesize()

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    peak, stop = [rss()], threading.Event()
    before = peak[0]

    def sample() -> None:  # the high-water mark of resident memory while training
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            stop.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    row_masks = None
    if kind == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        model = inject_lora(copy.deepcopy(model), r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                            targets=cfg.lora.targets)
        pnames = {id(p): n for n, p in model.named_parameters()}
        row_masks = {pnames[id(b)]: top_fraction(torch.rand(b.shape[0]), level)
                     for b in (m.lora_B["default"].weight for m in lora_modules(model).values())}
    before = rss()  # the model is loaded (and, for LoRA, wrapped): what training adds is measured
    peak[0] = before
    sampler.start()
    train_local(model, data, epochs=1, batch_size=cfg.train.batch_size, lr=1e-4, weight_decay=0.0, seed=0,
                row_masks=row_masks)
    stop.set()
    sampler.join()
    mib = 2**20
    print(json.dumps({"kind": kind, "level": level, "peak_mib": peak[0] / mib,
                      "train_mib": (peak[0] - before) / mib}))


def memory_table(levels: tuple[float, ...], quick: bool) -> list[dict[str, Any]]:
    rows = []
    for kind, level in [("full", 1.0)] + [("fedhft", lv) for lv in levels]:
        cmd = [sys.executable, __file__, "--measure-memory", kind, str(level)] + (["--quick"] if quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def full_model_upload(quick: bool) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_comm import full_model_upload as measure  # the same count bench_comm.py reports

    from fedhft_secure.runtime.world import build_world

    return measure(build_world(load_config(None, [f"{k}={v}" for k, v in (QUICK if quick else {}).items()])))


# -- output --------------------------------------------------------------------------------------------------
def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["alpha"], tuple(r["levels"]), r["method"]), []).append(r)
    out = []
    for (ds, a, lv, m), rs in groups.items():
        def ms(key: str) -> tuple[float, float]:
            xs = [r[key] for r in rs if r[key] is not None]
            # one seed has no spread: None, shown as no "±" (not as ± 0)
            return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else None) if xs else (float("nan"), None)
        out.append({"dataset": ds, "alpha": a, "levels": list(lv), "method": m, "seeds": len(rs),
                    "personalized": ms("personalized_accuracy"), "global": ms("global_accuracy"),
                    "own_majority": ms("personalized_majority_accuracy")[0],
                    "global_majority": ms("majority_accuracy")[0],
                    "bytes_up_per_round": ms("bytes_up_per_round")[0],
                    "server_seconds_per_round": ms("server_seconds_per_round")[0],
                    **({"ran_at_levels": rs[0]["ran_at_levels"]} if "ran_at_levels" in rs[0] else {})})
    return out


#: the rows a federated method is ranked among; FedHFT is ranked against the methods people would pick instead
FEDERATED = tuple(m for m in METHODS if m not in NOT_FEDERATED)
OTHERS = SUM_METHODS


def standings(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting, FedHFT (K = 2, post-norm: the paper's method) against the other federated rows, over the seeds at
    which all of them finished: a mean over other seeds would compare other partitions."""
    by: dict[tuple, dict[str, dict[int, dict[str, Any]]]] = {}
    for r in runs:
        by.setdefault((r["dataset"], r["alpha"], tuple(r["levels"])), {}).setdefault(r["method"], {})[r["seed"]] = r
    out = []
    for (ds, a, lv), ms in sorted(by.items()):
        seeds = sorted(set.intersection(*(set(ms.get(m, {})) for m in FEDERATED)))
        if not seeds:
            continue
        # what each client answering its own training majority label scores, and the majority label globally:
        # under label skew a high personalized accuracy may be no more than that
        row: dict[str, Any] = {"dataset": ds, "alpha": a, "levels": list(lv), "seeds": seeds,
                               **{k: statistics.mean(ms["fedhft"][s][f] for s in seeds) for k, f in (
                                   ("own_majority", "personalized_majority_accuracy"),
                                   ("global_majority", "majority_accuracy"))}}
        for key, name in (("personalized_accuracy", "personalized"), ("global_accuracy", "global")):
            mean = {m: statistics.mean(ms[m][s][key] for s in seeds) for m in FEDERATED}
            best = max(OTHERS, key=lambda m: mean[m])
            row[name] = {"fedhft": mean["fedhft"], "rank": 1 + sum(mean[m] > mean["fedhft"] for m in FEDERATED),
                         "of": len(FEDERATED), "best_other": best, "best_other_mean": mean[best]}
        out.append(row)
    return out


def standings_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [f"FedHFT (K = 2, post-norm) among the {len(FEDERATED)} federated rows (rank 1 = best; a tie takes the "
             f"better rank), and the best of {', '.join(OTHERS)}: means over the seeds at which all "
             f"{len(FEDERATED)} finished.", "",
             "| dataset | alpha | levels | seeds | personalized: FedHFT (rank) | best other | own majority | "
             "global: FedHFT (rank) | best other | majority |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, g = r["personalized"], r["global"]
        lines.append(f"| {r['dataset']} | {r['alpha']:g} | {r['levels']} | {', '.join(map(str, r['seeds']))} | "
                     f"{p['fedhft']:.3f} ({p['rank']} of {p['of']}) | {p['best_other']} {p['best_other_mean']:.3f} | "
                     f"{r['own_majority']:.3f} | {g['fedhft']:.3f} ({g['rank']} of {g['of']}) | "
                     f"{g['best_other']} {g['best_other_mean']:.3f} | {r['global_majority']:.3f} |")
    return lines + [""]


#: marks a method's row at other levels that its default-levels runs stand for (``one_run``)
MARK = " †"


def _pm(mean_std: tuple[float, float | None]) -> str:
    m, sd = mean_std
    return f"{m:.3f}" if sd is None else f"{m:.3f} ± {sd:.3f}"


def markdown(summary: list[dict[str, Any]], eff: dict[str, Any], memory: list[dict[str, Any]], command: str,
             coverage: str = "", standing: list[dict[str, Any]] | None = None) -> str:
    lines = [f"<!-- made by: {command} -->", "", *([coverage, ""] if coverage else []),
             *standings_markdown(standing or []),
             "| dataset | alpha | levels | method | personalized acc (own majority) | global acc (majority) | "
             "upload B/client/round | server s/round | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        mark = MARK if "ran_at_levels" in s else ""
        lines.append(f"| {s['dataset']} | {s['alpha']:g} | {s['levels']} | {s['method']}{mark} | "
                     f"{_pm(s['personalized'])} ({s['own_majority']:.3f}) | "
                     f"{_pm(s['global'])} ({s['global_majority']:.3f}) | "
                     f"{s['bytes_up_per_round']:,.0f} | "
                     f"{s['server_seconds_per_round']:.3f} | {s['seeds']} |")
    if any("ran_at_levels" in s for s in summary):
        lines += ["", f"{MARK} trains rank r whatever a client's level: its runs at the default levels "
                  f"{list(DEFAULT_LEVELS)}, the same computation, stand for it at the other level settings."]
    lines += ["", "| client kind | level | peak RSS MiB | training growth MiB |", "|---|---|---|---|"]
    lines += [f"| {m['kind']} | {m['level']} | {m['peak_mib']:.0f} | {m['train_mib']:.0f} |" for m in memory]
    up = eff["upload_full_over_fedhft"]
    lines += ["", f"upload full-model FedAvg / FedHFT = "
              f"{'n/a (no FedHFT run on the default setting of ' + DATASETS[0] + ')' if up is None else f'{up:.1f}'}; "
              f"training memory full fine-tuning / FedHFT (lowest level) = {eff['memory_full_over_fedhft']:.2f}"]
    return "\n".join(lines) + "\n"


def plot(summary: list[dict[str, Any]], command: str) -> str:
    """Personalized and global accuracy per method: vs data heterogeneity (log10 alpha, default levels) and vs
    resource heterogeneity (number of levels, default alpha)."""
    charts = []
    for ds, kind in itertools.product(sorted({s["dataset"] for s in summary}), ("personalized", "global")):
        for xlabel, x_of, keep in (
                ("log10 Dirichlet alpha (smaller: more skewed labels)", lambda s: math.log10(s["alpha"]),
                 lambda s: tuple(s["levels"]) == DEFAULT_LEVELS),
                ("number of resource levels (1; 1, 0.5; 1, 0.5, 0.25)", lambda s: len(s["levels"]),
                 lambda s: s["alpha"] == DEFAULT_ALPHA)):
            series = []
            for m in METHODS:
                pts = sorted((x_of(s), s[kind][0]) for s in summary if s["dataset"] == ds and s["method"] == m
                             and keep(s) and not math.isnan(s[kind][0]))
                if pts:
                    series.append((m, [x for x, _ in pts], [y for _, y in pts]))
            charts.append(line_chart(series, title=f"{ds}: {kind} accuracy", xlabel=xlabel, ylabel="accuracy"))
    head = f"<p>made by: <code>{html.escape(command)}</code></p>"
    return "<html><body>" + head + "".join(charts) + "</body></html>"


README_BEGIN, README_END = "<!-- compare.py: begin -->", "<!-- compare.py: end -->"


def write_section(path: Path, md: str) -> None:
    """Replace the text between the markers of ``path`` with ``md`` (the README's comparison is generated)."""
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{path}: needs the lines {README_BEGIN} and {README_END} around the generated section")
    head, rest = text.split(README_BEGIN, 1)
    path.write_text(head + README_BEGIN + "\n" + md + rest[rest.index(README_END):])


def _no_nan(x: Any) -> Any:
    """NaN (a mean over no figures) as null: NaN is not JSON, and strict readers refuse the file."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return x


def _fmt(x: float | None) -> str:
    """An accuracy, or "n/a" where the method has no such model (local: no global model)."""
    return "n/a" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random model, one seed, one setting")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--runs", type=Path, default=RESULTS / "compare_runs", help="run folders (reused when complete)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"which settings of the grid (alpha, levels): {', '.join(SETTINGS)}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config setting for every run beyond the grid's (e.g. train.local_epochs=4); it is part "
                    "of the run folders' names and the figures' file names, so such runs never mix with the grid's "
                    "(the efficiency figures are measured on the default configuration all the same)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where compare.{md,html} go")
    ap.add_argument("--reuse", type=Path, action="append", default=[], metavar="JSON",
                    help="also reuse the runs of an earlier --json (e.g. the committed one) whose folders are gone; "
                    "each row carries its run's configuration, checked like a folder's")
    ap.add_argument("--finished-only", action="store_true",
                    help="start no run: report the finished runs of the grid (it is built over several invocations)")
    ap.add_argument("--readme", type=Path, help="also write the Markdown into this file between "
                    f"{README_BEGIN!r} and {README_END!r}")
    ap.add_argument("--measure-memory", nargs=2, metavar=("KIND", "LEVEL"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.measure_memory:
        measure_memory(a.measure_memory[0], float(a.measure_memory[1]), a.quick)
        return 0
    command = "python experiments/compare.py " + " ".join(shlex.quote(x) for x in (argv if argv is not None
                                                                                  else sys.argv[1:]))
    seeds = [0] if a.quick else [int(s) for s in a.seeds.split(",")]
    unknown = [n for n in a.settings.split(",") if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"--settings: unknown {', '.join(unknown)}; allowed: {', '.join(SETTINGS)}")
    settings = [(DEFAULT_ALPHA, DEFAULT_LEVELS)] if a.quick else [SETTINGS[n] for n in a.settings.split(",")]
    if bad := [x for x in a.set if "=" not in x]:
        raise SystemExit(f"--set: each must look like KEY=VALUE, got {bad}")
    extra = {k.strip(): v for k, v in (x.split("=", 1) for x in a.set)}
    if len(extra) != len(a.set):
        raise SystemExit(f"--set: a key given twice in {a.set}")
    reuse = {Path(r["run_dir"]).name: r for f in a.reuse for r in json.loads(f.read_text())["runs"]
             if "ran_at_levels" not in r}  # a row standing for its default-levels run at other levels
    t0 = time.perf_counter()
    runs, planned = [], 0
    # every seed gives a whole comparison before the next seed starts
    for seed, (alpha, levels), ds, method in itertools.product(seeds, settings, a.datasets.split(","),
                                                              a.methods.split(",")):
        r = one_run(a.runs, method, ds, alpha, levels, seed, a.quick, start=not a.finished_only, extra=extra,
                    reuse=reuse)
        planned += 1
        if r is None:
            continue
        runs.append(r)
        print(f"{ds:16} a={alpha:<4g} levels={str(list(levels)):16} {method:17} seed {seed}: personalized "
              f"{_fmt(r['personalized_accuracy'])} global {_fmt(r['global_accuracy'])} "
              f"up {r['bytes_up_per_round']:,.0f} B", flush=True)
    memory = memory_table((1.0, 0.5, 0.25), a.quick)
    # the full model's upload is counted on the default configuration, so FedHFT's is its default-setting run's
    ups = [r["bytes_up_per_round"] for r in runs if r["method"] == "fedhft" and r["dataset"] == DATASETS[0]
           and r["alpha"] == DEFAULT_ALPHA and tuple(r["levels"]) == DEFAULT_LEVELS]
    lowest = min(memory[1:], key=lambda m: m["level"])
    # None: this invocation holds no such FedHFT run (e.g. --datasets tweets)
    eff = {"upload_full_over_fedhft": full_model_upload(a.quick) / statistics.mean(ups) if ups else None,
           "memory_full_over_fedhft": memory[0]["train_mib"] / max(lowest["train_mib"], 1e-9),
           "memory_full_over_fedhft_peak": memory[0]["peak_mib"] / lowest["peak_mib"]}
    summary = summarize(runs)
    coverage = (f"Runs finished: {len(runs)} of the {planned} this command covers "
                f"(seeds {', '.join(map(str, seeds))}); "
                "a cell without a figure has not run yet.") if len(runs) < planned else ""
    standing = standings(runs)
    md = markdown(summary, eff, memory, command, coverage, standing)
    if a.readme:
        write_section(a.readme, md)
    print("\n" + md)
    stem = ("compare_quick" if a.quick else "compare") + set_tag(extra, "_")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{stem}.md").write_text(md)
    (a.out / f"{stem}.html").write_text(plot(summary, command))
    out = {"command": command, "set": extra, "seconds": time.perf_counter() - t0, "runs_planned": planned,
           "runs": runs, "summary": summary, "standings": standing, "memory": memory, "efficiency": eff}
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(_no_nan(out), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
