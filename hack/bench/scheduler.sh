#!/usr/bin/env bash
# Scheduler figures in the spirit of upstream's scheduler_perf: 5,000 Node
# objects (no kubelet), 10,000 pods, pods/s from the first creation to the
# last binding, and the scheduler's RSS (a separate `rkube scheduler`
# process). Variants: SchedulingBasic, pod anti-affinity, topology spread.
#
#   hack/bench/scheduler.sh                      # all three variants
#   BENCH_VARIANTS=basic hack/bench/scheduler.sh # just SchedulingBasic
#   BENCH_NODES=500 BENCH_PODS=1000 hack/bench/scheduler.sh
#   BENCH_BACKLOG=true hack/bench/scheduler.sh   # pods created first, then
#                                                # the scheduler is timed alone
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

log "building rkube and the bench (release)"
cargo build --release -p rkube -p rkube-scheduler --example bench
bin="$CARGO_TARGET_DIR/release"

for variant in ${BENCH_VARIANTS:-basic anti-affinity topology-spread}; do
    dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-sched-bench.XXXXXX")"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$bin/rkube" up --data-dir "$dir" --secure-port "$port" --bind-address 127.0.0.1 \
        --no-controllers --no-scheduler 2>"$dir/rkube.log" &
    server=$!
    trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
    for _ in $(seq 100); do
        [[ -f "$dir/scheduler.conf" ]] && break
        sleep 0.1
    done
    sleep 1
    log "variant $variant"
    status=0
    timeout 900 "$bin/examples/bench" --rkube "$bin/rkube" --dir "$dir" \
        --nodes "${BENCH_NODES:-5000}" --pods "${BENCH_PODS:-10000}" --variant "$variant" \
        --backlog "${BENCH_BACKLOG:-false}" || status=$?
    if [[ $status -ne 0 ]]; then
        log "failed ($status); last scheduler log lines:"
        tail -n 20 "$dir/scheduler.log" >&2 || true
    fi
    kill $server 2>/dev/null || true
    wait $server 2>/dev/null || true
    rm -rf "$dir"
    trap - EXIT
    [[ $status -eq 0 ]] || exit $status
done
