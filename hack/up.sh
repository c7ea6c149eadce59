#!/usr/bin/env bash
# Brings a cluster up: installs what is missing, builds rkube (release) and
# runs `rkube up`. Extra arguments go to `rkube up` (e.g. --secure-port 7443).
# RKUBE_DATA_DIR sets where the cluster keeps its state (default
# /var/lib/rkube); a second run on the same directory reuses PKI and data.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/hack/install-deps.sh"
log "building rkube (release)"
cargo build --release -p rkube --quiet
exec "$CARGO_TARGET_DIR/release/rkube" up --data-dir "${RKUBE_DATA_DIR:-/var/lib/rkube}" "$@"
