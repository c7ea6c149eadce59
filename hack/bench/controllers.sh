#!/usr/bin/env bash
# Controller figures: with BENCH_NODES simulated nodes, the time for a
# Deployment of BENCH_REPLICAS replicas to become fully available (from
# `kubectl create` to status.availableReplicas == replicas), then the time
# for a rolling update (`kubectl set image`, default 25% surge and
# unavailable) to finish (updated, ready and available == replicas, old
# ReplicaSets at 0), and the controller manager's RSS and work queue
# figures along the way.
#
# One `rkube up --simulated-nodes N --no-controllers` process (API server,
# scheduler, simulated kubelets) and one `rkube controller-manager`
# process, so the controller manager's RSS is its own (release build).
#
#   hack/bench/controllers.sh                              # 100 nodes, 1,000 replicas
#   BENCH_NODES=20 BENCH_REPLICAS=200 hack/bench/controllers.sh
#
# BENCH_RKUBE=<binary> skips the build. BENCH_KEEP=1 keeps the data dir and logs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

nodes="${BENCH_NODES:-100}"
replicas="${BENCH_REPLICAS:-1000}"
timeout_secs="${BENCH_TIMEOUT:-900}"

for tool in kubectl jq python3 curl; do
    command -v "$tool" >/dev/null || { log "$tool is required (hack/install-deps.sh)"; exit 1; }
done

if [[ -n "${BENCH_RKUBE:-}" ]]; then
    bin="$BENCH_RKUBE"
else
    log "building rkube (release)"
    cargo build --release -p rkube
    bin="$CARGO_TARGET_DIR/release/rkube"
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-controllers.XXXXXX")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
sched_port="$(free_port)"
cm_port="$(free_port)"
pid=""
cm=""
cleanup() {
    for p in $cm $pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [[ -n "${BENCH_KEEP:-}" ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

export KUBECONFIG="$dir/data/admin.conf"
k() { kubectl --request-timeout=120s "$@"; }
rss_of() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
deadline=$(( $(date +%s) + timeout_secs ))
check_deadline() {
    if (( $(date +%s) > deadline )); then log "timed out ($1)"; tail -n 20 "$dir/data/controller-manager.log" >&2; exit 1; fi
    kill -0 "$pid" 2>/dev/null || { log "rkube up died"; tail -n 20 "$dir/data/rkube.log" >&2; exit 1; }
    kill -0 "$cm" 2>/dev/null || { log "the controller manager died"; tail -n 20 "$dir/data/controller-manager.log" >&2; exit 1; }
}
# Peak RSS of the controller manager, sampled by a background loop.
peak_file="$dir/cm-peak-kib"
sample_rss() {
    local peak=0 v
    while kill -0 "$cm" 2>/dev/null; do
        v=$(awk '/VmRSS/ {print $2}' "/proc/$cm/status" 2>/dev/null || echo 0)
        (( v > peak )) && { peak=$v; echo "$peak" >"$peak_file"; }
        sleep 0.2
    done
}

log "starting rkube up --simulated-nodes $nodes --no-controllers (data dir $dir)"
mkdir -p "$dir/data"
"$bin" up --data-dir "$dir/data" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --scheduler-secure-port "$sched_port" \
    --simulated-nodes "$nodes" 2>"$dir/data/rkube.log" &
pid=$!
for _ in $(seq 300); do
    [[ -f "$dir/data/controller-manager.conf" ]] && break
    sleep 0.1
done
"$bin" controller-manager --kubeconfig "$dir/data/controller-manager.conf" \
    --root-ca-file "$dir/data/pki/ca.crt" --secure-port "$cm_port" --bind-address 127.0.0.1 \
    2>"$dir/data/controller-manager.log" &
cm=$!
sample_rss &

ready_nodes() {
    k get --raw /api/v1/nodes 2>/dev/null |
        jq '[.items[] | select(.status.conditions[]? | .type == "Ready" and .status == "True")] | length' 2>/dev/null || echo 0
}
while (( $(ready_nodes) < nodes )); do check_deadline "nodes Ready"; sleep 1; done
# The controllers are up once the default ServiceAccount exists.
until k get serviceaccount default -o name >/dev/null 2>&1; do check_deadline "controllers"; sleep 0.5; done
rss_idle=$(rss_of "$cm")
log "$nodes nodes Ready; controller manager RSS $rss_idle"

deploy_status() {
    k get deployment bench -o json 2>/dev/null | jq -r \
        '[.status.replicas // 0, .status.updatedReplicas // 0, .status.readyReplicas // 0, .status.availableReplicas // 0, .status.observedGeneration // 0, .metadata.generation] | @tsv'
}

log "creating a Deployment of $replicas replicas"
t0=$(now)
k create deployment bench --image=busybox --replicas="$replicas" >/dev/null
while true; do
    st=$(deploy_status) || st=""
    read -r total updated ready available observed generation <<<"${st:-0 0 0 0 0 1}"
    (( available >= replicas && observed >= generation )) && break
    check_deadline "available $available of $replicas"
    sleep 0.25
done
t_available=$(since "$t0")
rss_available=$(rss_of "$cm")
log "$replicas replicas available after ${t_available}s"

log "rolling update (kubectl set image)"
t1=$(now)
k set image deployment/bench busybox=busybox:1.36 >/dev/null
while true; do
    st=$(deploy_status) || st=""
    read -r total updated ready available observed generation <<<"${st:-0 0 0 0 0 1}"
    if (( observed >= generation && updated == replicas && total == replicas && available == replicas )); then
        old=$(k get rs -l app=bench -o json | jq '[.items[] | select(.spec.replicas > 0)] | length')
        (( old == 1 )) && break
    fi
    check_deadline "rollout: updated $updated, total $total, available $available"
    sleep 0.25
done
t_rollout=$(since "$t1")
rss_rollout=$(rss_of "$cm")
log "rolling update finished after ${t_rollout}s"

metrics=$(curl -s "http://127.0.0.1:$cm_port/metrics")
sample() { echo "$metrics" | awk -v s="$1" '$1 == s {print $2}'; }
peak=$(awk '{printf "%.0f MiB", $1/1024}' "$peak_file" 2>/dev/null || echo "?")
pods=$(k get --raw "/api/v1/namespaces/default/pods?labelSelector=app%3Dbench" | jq '.items | length')

printf '\n%-52s %s\n' "simulated nodes" "$nodes"
printf '%-52s %s\n' "Deployment replicas" "$replicas"
printf '%-52s %s s\n' "kubectl create to all replicas available" "$t_available"
printf '%-52s %s s\n' "kubectl set image to rollout complete" "$t_rollout"
printf '%-52s %s\n' "pods left after the rollout" "$pods"
printf '%-52s %s\n' "controller manager RSS, idle (nodes Ready)" "$rss_idle"
printf '%-52s %s\n' "controller manager RSS, all available" "$rss_available"
printf '%-52s %s\n' "controller manager RSS, after the rollout" "$rss_rollout"
printf '%-52s %s\n' "controller manager RSS, peak (0.2 s samples)" "$peak"
printf '%-52s %s\n' "rkube up RSS (API server, scheduler, kubelets)" "$(rss_of "$pid")"
for q in deployment replicaset; do
    printf '%-52s %s syncs, %s s total\n' "$q work queue" \
        "$(sample "workqueue_work_duration_seconds_count{name=\"$q\"}")" \
        "$(sample "workqueue_work_duration_seconds_sum{name=\"$q\"}")"
done
