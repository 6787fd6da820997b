"""``fedhft-secure``: the command line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .config import describe_options, load_config
from .exceptions import ConfigError, FedHFTError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedhft-secure", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run FedHFT in-process (default: bundled MiniLM + Rotten Tomatoes)",
        description="Run FedHFT with every client in this process. Writes DIR/results.json, "
                    "DIR/checkpoint.safetensors after every round and DIR/adapters/cluster_<j>/.",
        epilog="config keys (TOML sections, or --set section.key=value):\n" + describe_options())
    run.add_argument("--config", metavar="FILE.toml", help="TOML config; keys as listed below")
    run.add_argument("--out", metavar="DIR", default="runs/default", help="run folder (default: %(default)s)")
    run.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                     help="override one config key, e.g. --set fed.rounds=2 (repeatable)")
    run.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last completed round")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--engine", choices=("local", "flower-sim"), default="local",
                     help="local: every client in this process (default); flower-sim: the Flower "
                          "ServerApp/ClientApp on Flower's simulation engine (same results.json)")
    run.add_argument("--threat-model", metavar="FILE.toml",
                     help="refuse to run unless the config fits this threat model (see threat_models/)")
    kg = sub.add_parser("keygen", help="CKKS consortium keys: one secret file per member, a public one for the server",
                        description="Writes DIR/member_<i>.ckks-secret (mode 0600, the same secret for every "
                                    "member) and DIR/server.ckks-public (parameters only, no key).")
    kg.add_argument("--members", type=int, required=True, help="number of member (secret) key files")
    kg.add_argument("--out", metavar="DIR", required=True, help="folder for the key files (must not hold any)")
    kg.add_argument("--max-clients", type=int, default=None, help="most ciphertexts in one sum")
    kg.add_argument("--value-bound", type=float, default=None, help="largest |p_ij * value| a client encrypts")
    kg.add_argument("--precision", type=float, default=None,
                    help="largest error of a released sum value (default: the finest one 60-bit data prime "
                         "allows, as `run` without key files)")
    kg.add_argument("--flood-bits", type=int, default=None,
                    help="flooding noise = 2^bits x the decryption error bound (IND-CPA^D)")
    rep = sub.add_parser("report", help="rebuild DIR/epsilon_report.json and DIR/report.html from a run folder")
    rep.add_argument("dir", metavar="DIR")
    aud = sub.add_parser("audit", help="one-run canary audit (Steinke, Nasr, Jagielski 2023) -> DIR/audit.json",
                         description="Run once with m canaries in client 0's data (each included w.p. 1/2) and "
                                     "bound epsilon from below; writes DIR/audit.json and the reports.",
                         epilog="config keys as for `run` (see `fedhft-secure run --help`)")
    aud.add_argument("--config", metavar="FILE.toml")
    aud.add_argument("--out", metavar="DIR", required=True)
    aud.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides")
    aud.add_argument("--canaries", type=int, default=60, help="number of canaries m (default: %(default)s)")
    aud.add_argument("--guesses", type=int, default=20, help="guesses r, half in, half out (default: %(default)s)")
    aud.add_argument("--no-progress", action="store_true")
    bench = sub.add_parser("bench", help="security benchmark: attacks against every mode, PASS/FAIL per "
                                         "threat-model claim")
    bench.add_argument("suite", choices=["security"])
    bench.add_argument("--threat-model", metavar="FILE.toml", action="append", default=[],
                       help="threat model(s) whose claims to check (default: threat_models/*.toml)")
    bench.add_argument("--quick", action="store_true",
                       help="550 fuzz inputs per target instead of 10,000, one reference federation for the "
                            "likelihood-ratio membership attack instead of 8 (within 15 minutes on 2 cores)")
    bench.add_argument("--json", metavar="PATH", help="write the figures here")
    bench.add_argument("--out", metavar="DIR", default="experiments/results",
                       help="where security[_quick].{json,md,html} go (default: %(default)s)")
    return p


def _bench(args: argparse.Namespace, argv: list[str] | None) -> None:
    from .bench.security import markdown, page, run_suite

    models = [Path(m) for m in args.threat_model] or sorted(Path("threat_models").glob("*.toml"))
    if not models:
        raise ConfigError("--threat-model", "no threat model given and none in ./threat_models",
                          "one or more TOML files")
    command = "fedhft-secure " + " ".join(argv if argv is not None else sys.argv[1:])
    result = run_suite(models, quick=args.quick)
    result["command"] = command
    md = markdown(result, command)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "security_quick" if args.quick else "security"
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.html").write_text(page(result, command))
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        if args.command == "bench":
            _bench(args, argv)
        elif args.command == "keygen":
            from .runtime.keyfiles import describe, keygen
            from .secure.ckks.params import derive_params, tightest_precision

            opts = {k: v for k, v in {"max_clients": args.max_clients, "value_bound": args.value_bound,
                                      "flood_bits": args.flood_bits}.items() if v is not None}
            # as a run without key files does: the finest precision one data prime allows for this sizing
            precision = args.precision if args.precision is not None else tightest_precision(**opts)
            print(describe(keygen(args.members, Path(args.out), derive_params(precision=precision, **opts))))

        elif args.command == "report":
            from .runtime.report import write_reports

            write_reports(Path(args.dir))
            print(json.dumps({"epsilon_report": str(Path(args.dir) / "epsilon_report.json"),
                              "report": str(Path(args.dir) / "report.html")}, indent=1))
        elif args.command == "audit":
            from .runtime.audit import run_audit

            audit = run_audit(load_config(args.config, args.overrides), Path(args.out), canaries=args.canaries,
                              guesses=args.guesses, progress=not args.no_progress)
            print(json.dumps({k: audit[k] for k in ("epsilon_lower_bound", "epsilon_accounted", "canaries",
                                                    "guesses", "correct")}, indent=1))
        elif args.command == "run":
            from .runtime.local import run

            if args.resume:
                cfg = load_config(args.config, args.overrides) if (args.config or args.overrides) else None
                results = run(cfg, Path(args.resume), resume=True, progress=not args.no_progress)
                out = Path(args.resume)
            else:
                cfg = load_config(args.config, args.overrides)
                if args.threat_model:
                    from .threat import check_config, load_threat_model

                    check_config(cfg, load_threat_model(args.threat_model))
                out = Path(args.out)
                if args.engine == "flower-sim":
                    from .runtime.flower.sim import run_flower_sim

                    results = run_flower_sim(cfg, out, progress=not args.no_progress)
                else:
                    results = run(cfg, out, progress=not args.no_progress)
            final = results.get("final", {})
            print(json.dumps({"results": str(out / "results.json"), "test_accuracy": final.get("test_accuracy"),
                              "majority_accuracy": final.get("majority_accuracy"),
                              "cluster_test_accuracy": final.get("cluster_test_accuracy"),
                              "stopped": results.get("stopped")}, indent=1))
    except FedHFTError as exc:
        print(f"fedhft-secure: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
