#!/usr/bin/env bash
# A SuperNode's authentication key pair (EC P-384, OpenSSH format, as Flower 1.42 reads it).
# Usage: bash scripts/flower/make_node_key.sh DIR NAME
# Writes DIR/NAME (private, 0600: stays on the member's machine) and DIR/NAME.pub (for
# `flwr supernode register DIR/NAME.pub <superlink>` on the SuperLink side: the allow list).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
exec "$py" -m fedhft_secure.runtime.flower.deploy node-key "$@"
