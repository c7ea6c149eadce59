#!/usr/bin/env bash
# Simulated kubelet figures: how many simulated nodes and pods one
# `rkube up --simulated-nodes N` process sustains. Starts the cluster
# (release build, embedded store, no controllers), waits for every node to
# be Ready, creates BENCH_PODS pods bound round-robin to the nodes
# (kubectl create of List files, BENCH_CREATORS in parallel), waits until
# they all report Running, then watches the node Leases for
# BENCH_LEASE_SECS and prints the oldest renewTime seen (on time means
# below the 10 s renew interval plus a pass, and well under the 40 s lease
# duration) and the process RSS at each step.
#
#   hack/bench/kubelet.sh                              # 1,000 nodes, 30,000 pods
#   BENCH_NODES=200 BENCH_PODS=2000 hack/bench/kubelet.sh
#
# Note: the RSS is the whole `rkube up` process, API server (with its
# watch cache of every node, lease and pod) and the simulated kubelets
# together. BENCH_RKUBE=<binary> skips the build. BENCH_KEEP=1 keeps the data dir and rkube.log.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

nodes="${BENCH_NODES:-1000}"
pods="${BENCH_PODS:-30000}"
creators="${BENCH_CREATORS:-4}"
lease_secs="${BENCH_LEASE_SECS:-60}"
timeout_secs="${BENCH_TIMEOUT:-900}"

for tool in kubectl jq python3; do
    command -v "$tool" >/dev/null || { log "$tool is required (hack/install-deps.sh)"; exit 1; }
done

if [[ -n "${BENCH_RKUBE:-}" ]]; then
    bin="$BENCH_RKUBE" # a prebuilt binary (e.g. to try the script on a debug build)
else
    log "building rkube (release)"
    cargo build --release -p rkube
    bin="$CARGO_TARGET_DIR/release/rkube"
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-kubelet.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n "${BENCH_KEEP:-}" ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

export KUBECONFIG="$dir/data/admin.conf"
k() { kubectl --request-timeout=120s "$@"; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
deadline=$(( $(date +%s) + timeout_secs ))
check_deadline() {
    if (( $(date +%s) > deadline )); then log "timed out ($1)"; tail -n 20 "$dir/data/rkube.log" >&2; exit 1; fi
    kill -0 "$pid" 2>/dev/null || { log "rkube up died"; tail -n 20 "$dir/data/rkube.log" >&2; exit 1; }
}

log "starting rkube up --simulated-nodes $nodes (data dir $dir)"
mkdir -p "$dir/data"
t0=$(now)
"$bin" up --data-dir "$dir/data" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --simulated-nodes "$nodes" 2>"$dir/data/rkube.log" &
pid=$!

ready_nodes() {
    k get --raw /api/v1/nodes 2>/dev/null |
        jq '[.items[] | select(.status.conditions[]? | .type == "Ready" and .status == "True")] | length' 2>/dev/null || echo 0
}
while (( $(ready_nodes) < nodes )); do check_deadline "nodes Ready"; sleep 1; done
t_nodes=$(since "$t0")
rss_nodes=$(rss)
log "$nodes nodes Ready after ${t_nodes}s"

log "creating $pods pods"
python3 - "$dir/pods" "$nodes" "$pods" "$creators" <<'PY'
import json, os, sys
out, nodes, pods, creators = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out)
chunk = 500
for start in range(0, pods, chunk):
    items = [{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-{i}", "namespace": "default"},
        "spec": {"nodeName": f"sim-node-{i % nodes}",
                 "containers": [{"name": "app", "image": "busybox",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    } for i in range(start, min(pods, start + chunk))]
    with open(f"{out}/pods-{start:06d}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
PY
t1=$(now)
ls "$dir"/pods/*.json | xargs -P "$creators" -I{} kubectl --request-timeout=120s create --validate=false -f {} -o name >/dev/null
t_create=$(since "$t1")
log "created in ${t_create}s"

running() {
    k get --raw "/api/v1/pods?fieldSelector=status.phase%3DRunning" 2>/dev/null | jq '.items | length' 2>/dev/null || echo 0
}
while true; do
    r=$(running)
    (( r >= pods )) && break
    check_deadline "pods Running ($r of $pods)"
    sleep 2
done
t_running=$(since "$t1")
rss_pods=$(rss)
log "$pods pods Running ${t_running}s after the first create"

log "watching the node leases for ${lease_secs}s"
oldest=0
end=$(( $(date +%s) + lease_secs ))
while (( $(date +%s) < end )); do
    age=$(k get --raw /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases |
        jq --argjson now "$(date +%s)" \
          '[.items[] | $now - (.spec.renewTime | sub("\\.[0-9]+Z$"; "Z") | fromdate)] | max')
    count=$(k get --raw /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases | jq '.items | length')
    (( count == nodes )) || { log "only $count leases"; exit 1; }
    (( age > oldest )) && oldest=$age
    check_deadline "leases"
    sleep 3
done
late=$(grep -c "node lease pass took" "$dir/data/rkube.log" || true)
rss_end=$(rss)

printf '\n%-44s %s\n' "simulated nodes (one process)" "$nodes"
printf '%-44s %s\n' "pods" "$pods"
printf '%-44s %s s\n' "start to all nodes Ready" "$t_nodes"
printf '%-44s %s s (%s kubectl creators)\n' "pods created" "$t_create" "$creators"
printf '%-44s %s s\n' "first create to all pods Running" "$t_running"
printf '%-44s %s s (renew 10 s, duration 40 s)\n' "oldest lease renewTime seen over ${lease_secs}s" "$oldest"
printf '%-44s %s\n' "lease passes late or with failures (log)" "$late"
printf '%-44s %s\n' "RSS, nodes registered" "$rss_nodes"
printf '%-44s %s\n' "RSS, all pods Running" "$rss_pods"
printf '%-44s %s\n' "RSS, end" "$rss_end"
