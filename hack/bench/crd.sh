#!/usr/bin/env bash
# CustomResourceDefinition figures: CRD create -> Established -> discovery,
# and create/get/list of 1,000 custom resources (a 50-field schema) against
# ConfigMaps with the same data, from the official Python client
# (hack/bench/crd/bench.py); then the issue's figure, custom resource
# creates/s against ConfigMap creates/s, from a Rust driver
# (hack/bench/crd/src/main.rs) with enough concurrent clients that the
# server, not the client, is the limit (it prints both CPU shares). Starts
# `rkube up` (API server only) in a temporary directory and stops it on exit.
#
#   hack/bench/crd.sh                      # release build
#   RKUBE_BIN=path/to/rkube BENCH_CRD_BIN=path/to/rkube-bench-crd hack/bench/crd.sh
#
# Knobs: BENCH_OBJECTS (1000), BENCH_CLIENTS (8) for Python;
# BENCH_RUST_OBJECTS (2000), BENCH_RUST_CLIENTS (32), BENCH_ROUNDS (4) for
# the driver.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

if [[ -z "${RKUBE_BIN:-}" || -z "${BENCH_CRD_BIN:-}" ]]; then
    log "building rkube and the driver (release)"
    cargo build --release -p rkube -p rkube-bench-crd
    RKUBE_BIN="${RKUBE_BIN:-$CARGO_TARGET_DIR/release/rkube}"
    BENCH_CRD_BIN="${BENCH_CRD_BIN:-$CARGO_TARGET_DIR/release/rkube-bench-crd}"
fi
python3 -c 'import kubernetes' 2>/dev/null || { log "needs the Python client: pip install kubernetes"; exit 1; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-crd.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$RKUBE_BIN" up --data-dir "$dir" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --no-scheduler >"$dir/rkube.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

export KUBECONFIG="$dir/admin.conf"
for _ in $(seq 1 300); do
    [[ -f "$KUBECONFIG" ]] && kubectl get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.1
done
log "running against $RKUBE_BIN"
python3 hack/bench/crd/bench.py
log "custom resource vs ConfigMap creates from the Rust driver"
BENCH_SERVER_PID="$pid" "$BENCH_CRD_BIN"
