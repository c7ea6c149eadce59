#!/usr/bin/env bash
# Storage figures: the embedded store, the etcd backend, and raw etcd-client
# calls against the same etcd, side by side (see apiserver/storage/benches).
# BENCH_SECONDS sets each write run's length; BENCH_TARGETS picks rows.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
"$ROOT/hack/install-deps.sh"
cargo bench -p rkube-storage --bench storage
