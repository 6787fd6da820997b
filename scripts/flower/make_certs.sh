#!/usr/bin/env bash
# A CA and a SuperLink TLS certificate for 127.0.0.1, ::1, localhost (+ --host NAME ...).
# Usage: bash scripts/flower/make_certs.sh DIR [--host link.example.org]...
# Writes DIR/ca.crt, DIR/ca.key (keep offline), DIR/server.pem, DIR/server.key (0600).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
exec "$py" -m fedhft_secure.runtime.flower.deploy certs "$@"
