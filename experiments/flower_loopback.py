"""A consortium on loopback, for real: SuperLink + SuperNodes with TLS and SuperNode authentication.

Makes a CA, a SuperLink certificate and one EC key per SuperNode, registers their public
keys (the allow list), runs 2 FedHFT rounds with the ``masking`` backend through ``flwr run``,
tries a SuperNode with an unknown key (refused), SIGKILLs SuperNode 2 once it has answered round
1's first pass (the round completes through dropout recovery), stops every process it started,
and compares the model with the in-process runner under the same seed and the same dropout.

    python experiments/flower_loopback.py [--json PATH] [--workdir DIR] [--nodes N] [--no-kill]

3 SuperNodes by default: masking's degree is k=2 and each client's secrets have h=3 share holders,
its 2 neighbours and itself (as in SecAgg and Flower's SecAgg+), with threshold t=2 (t > h/2 for
an honest-but-curious server). After the kill, each survivor's self mask still has 2 live holders
(itself and the other survivor) and the killed node's mask key 2 live neighbours: the round
survives. With a semi-malicious threshold (t=3 of 3) no dropout is survivable: use 4 nodes there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

from fedhft_secure.runtime.flower.loopback import consortium_run  # noqa: E402

OVERRIDES = ['model.name="tiny-random"', "data.train_size=240", "data.test_size=120",
             "fed.rounds=2", "fed.clusters=2", "lora.r=4", "train.local_epochs=1", "fed.power_iters=0",
             'secure.backend="masking"']


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--workdir", metavar="DIR", help="keep certificates, keys, logs and runs here")
    ap.add_argument("--no-kill", action="store_true", help="no SuperNode is killed")
    ap.add_argument("--nodes", type=int, default=3, help="SuperNodes = clients (default: %(default)s)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedhft-loopback-") as tmp:
        wd = Path(args.workdir or tmp)
        rep = consortium_run(wd, OVERRIDES + [f"fed.num_clients={args.nodes}"] + args.set,
                             kill=None if args.no_kill else 2)
    keys = ("rounds_completed", "unknown_node_refused", "survived_node_kill", "max_abs_diff_vs_inprocess")
    out = {k: rep.get(k) for k in keys} | {k: v for k, v in rep.items() if k not in keys}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    ok = out["rounds_completed"] == 2 and out["unknown_node_refused"] and (args.no_kill or out["survived_node_kill"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
