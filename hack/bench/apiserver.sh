#!/usr/bin/env bash
# API server figures: creates/s and latency at 1/16/64 clients and while the
# store grows, LIST of 10,000 configmaps (watch cache and consistent read),
# watch delivery latency with 1,000 watchers, RSS against the stored JSON,
# and spawn-to-/readyz time. Builds rkube and the load generator
# (hack/bench/apiserver) in release; the generator starts
# `rkube up --data-dir <tmp> --secure-port <free port> --bind-address 127.0.0.1`
# itself, talks HTTPS/HTTP2 with the admin client certificate, prints a
# table and kills the server on every exit path.
#
#   hack/bench/apiserver.sh               # ~1 minute: 10,000 objects
#   BENCH_LARGE=1 hack/bench/apiserver.sh # grow to 100,000 objects
#
# Knobs (see hack/bench/apiserver/src/main.rs): BENCH_OBJECTS,
# BENCH_GROWTH_CLIENTS, BENCH_CLIENTS, BENCH_SWEEP_SECS, BENCH_PAYLOAD,
# BENCH_LIST_RUNS, BENCH_WATCHERS, BENCH_WATCH_RATE, BENCH_WATCH_SECS,
# BENCH_WATCH_PAYLOAD, BENCH_TIMEOUT. BENCH_KEEP=1 keeps the data dir
# (and the server log, rkube.log, in it).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
"$ROOT/hack/install-deps.sh"

log "building rkube and the load generator (release)"
cargo build --release -p rkube -p rkube-bench-apiserver
bin="$CARGO_TARGET_DIR/release"

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench.XXXXXX")"
cleanup() {
    if [[ -n "${BENCH_KEEP:-}" ]]; then
        log "kept $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT

# The generator enforces BENCH_TIMEOUT itself; this is a backstop. The
# server dies with the generator (PR_SET_PDEATHSIG).
if [[ -n "${BENCH_LARGE:-}" && "${BENCH_LARGE}" != 0 ]]; then limit=1200; else limit=240; fi
limit=$(( ${BENCH_TIMEOUT:-$limit} + 60 ))
log "running (data dir $dir)"
status=0
timeout --kill-after=10 "$limit" \
    "$bin/rkube-bench-apiserver" --rkube "$bin/rkube" --data-dir "$dir/data" || status=$?
if [[ $status -ne 0 ]]; then
    log "failed ($status); last lines of the server log:"
    tail -n 20 "$dir/data/rkube.log" >&2 || true
fi
exit $status
