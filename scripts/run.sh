#!/usr/bin/env bash
# Quickstart 1: set up, then run FedHFT on the bundled model and data.
# Extra arguments go to `fedhft-secure run` (e.g. --set fed.rounds=2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/fedhft-secure" run --out "${FEDHFT_OUT:-runs/default}" "$@"
