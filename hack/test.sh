#!/usr/bin/env bash
# Runs every test: formatting, lints, and the whole workspace's tests
# (unit, storage behaviour on the embedded store and a real etcd, crash
# safety, end-to-end). With CI=true a missing dependency fails the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/hack/install-deps.sh"
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo nextest run"
cargo nextest run --workspace --no-fail-fast "$@"
