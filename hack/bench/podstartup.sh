#!/usr/bin/env bash
# Pod startup on containerd: create-to-Running latency of BENCH_PODS
# busybox pods (default 100), each observed through a watch, as upstream's
# pod startup SLI (p50/p99; the upstream SLO is p99 <= 5 s), and the RSS
# of the kubelet (its own process here) and of the containerd it manages
# with that many pods running.
#
# Starts `rkube up --no-controllers --no-scheduler` (the pods name their
# node) and `rkube kubelet` as a second process, which starts its own
# containerd under the data dir and imports the images hack/images builds.
# Needs root, containerd, runc and the CNI plugins (hack/install-deps.sh).
#
#   hack/bench/podstartup.sh
#   BENCH_PODS=30 BENCH_RKUBE=$CARGO_TARGET_DIR/debug/rkube hack/bench/podstartup.sh
#   BENCH_INTERVAL=0.5 hack/bench/podstartup.sh   # one create every 0.5 s
#
# By default all pods are created at once (a burst: the latency includes
# waiting for the runtime behind the pods before); BENCH_INTERVAL spaces
# the creates, which measures one pod's startup on a node that is busy
# running the earlier ones.
#
# BENCH_RKUBE=<binary> skips the release build; BENCH_KEEP=1 keeps the
# data dir and logs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

pods="${BENCH_PODS:-100}"
cidr="${BENCH_POD_CIDR:-10.247.0.0/24}"
timeout_secs="${BENCH_TIMEOUT:-300}"
interval="${BENCH_INTERVAL:-0}"

[ "$(id -u)" = 0 ] || { log "needs root (containers)"; exit 1; }
for tool in kubectl python3 containerd runc; do
    command -v "$tool" >/dev/null || { log "$tool is required (hack/install-deps.sh)"; exit 1; }
done
python3 -c 'import kubernetes' 2>/dev/null || { log "the Python kubernetes client is required (hack/install-deps.sh)"; exit 1; }

if [[ -n "${BENCH_RKUBE:-}" ]]; then
    bin="$BENCH_RKUBE"
else
    log "building rkube (release)"
    cargo build --release -p rkube
    bin="$CARGO_TARGET_DIR/release/rkube"
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-pods.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
api_pid=""
kubelet_pid=""
cleanup() {
    set +e
    if [[ -n "$kubelet_pid" ]]; then
        # Leave no containers behind: delete the pods while the kubelet runs.
        kubectl delete pods -l bench=podstartup --wait=true --timeout=120s >/dev/null 2>&1
        kill "$kubelet_pid" 2>/dev/null; wait "$kubelet_pid" 2>/dev/null
    fi
    if [[ -n "$api_pid" ]]; then kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null; fi
    bridge="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' \
        "$dir/kubelet/containerd/cni/10-rkube.conflist" 2>/dev/null)"
    [[ -n "$bridge" ]] && ip link delete "$bridge" 2>/dev/null
    grep " $dir" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    if [[ -n "${BENCH_KEEP:-}" ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

log "building the images"
python3 hack/images/build.py "$dir/images" >/dev/null

log "starting rkube up (data dir $dir)"
mkdir -p "$dir/data"
"$bin" up --data-dir "$dir/data" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --no-scheduler 2>"$dir/api.log" &
api_pid=$!
export KUBECONFIG="$dir/data/admin.conf"
for _ in $(seq 1 100); do
    kubectl get ns default >/dev/null 2>&1 && break
    sleep 0.2
done
node="bench-node"
"$bin" kubelet --kubeconfig "$KUBECONFIG" --node-name "$node" --root-dir "$dir/kubelet" \
    --image-archive-dir "$dir/images" --pod-cidr "$cidr" 2>"$dir/kubelet.log" &
kubelet_pid=$!
for _ in $(seq 1 150); do
    kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True && break
    kill -0 "$kubelet_pid" 2>/dev/null || { log "the kubelet died"; tail -n 20 "$dir/kubelet.log" >&2; exit 1; }
    sleep 0.2
done
containerd_pid="$(pgrep -f "containerd --config $dir/kubelet/containerd/config.toml" | head -1)"
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
rss_kubelet_idle=$(rss "$kubelet_pid")

log "creating $pods pods on $node (interval ${interval} s)"
python3 - "$pods" "$node" "$timeout_secs" "$interval" <<'PY'
import sys, threading, time
from kubernetes import client, config, watch

pods, node, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
interval = float(sys.argv[4])
config.load_kube_config()
api = client.CoreV1Api()
created, running = {}, {}
ready = threading.Event()

def observe():
    w = watch.Watch()
    ready.set()
    for ev in w.stream(api.list_namespaced_pod, "default", label_selector="bench=podstartup",
                       timeout_seconds=int(timeout)):
        p = ev["object"]
        if p.status and p.status.phase == "Running" and p.metadata.name not in running:
            running[p.metadata.name] = time.monotonic()
            if len(running) == pods:
                w.stop()

t = threading.Thread(target=observe, daemon=True)
t.start()
ready.wait()
time.sleep(0.5)  # the watch is established
start = time.monotonic()
for i in range(pods):
    name = f"bench-{i}"
    body = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "podstartup"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": "docker.io/library/busybox:1.36",
                                 "command": ["sleep", "3600"]}]},
    }
    if interval and i:
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
    created[name] = time.monotonic()
    api.create_namespaced_pod("default", body)
created_all = time.monotonic() - start
t.join(timeout)
missing = [n for n in created if n not in running]
if missing:
    sys.exit(f"{len(missing)} pods never reported Running (e.g. {missing[:3]})")
lat = sorted(running[n] - created[n] for n in created)
def pct(p):
    return lat[min(len(lat) - 1, max(0, int(round(p / 100 * len(lat))) - 1))]
print(f"pods created in {created_all:.2f} s; all Running {max(running.values()) - start:.2f} s after the first create")
print(f"create-to-Running (watch): p50 {pct(50):.2f} s, p90 {pct(90):.2f} s, p99 {pct(99):.2f} s, max {lat[-1]:.2f} s")
PY

printf '%-44s %s\n' "kubelet RSS, idle" "$rss_kubelet_idle"
printf '%-44s %s\n' "kubelet RSS, $pods pods Running" "$(rss "$kubelet_pid")"
if [[ -n "$containerd_pid" ]]; then
    printf '%-44s %s\n' "containerd RSS, $pods pods Running" "$(rss "$containerd_pid")"
fi
