#!/usr/bin/env bash
# kubectl's streaming paths on containerd (issue 9's figures): throughput of
# `kubectl cp` of a BENCH_MIB (default 100) MiB file into a pod and back,
# and the latency of a one-byte exec round trip, measured two ways: a whole
# `printf x | kubectl exec -i POD -- cat` (what a user waits for, kubectl's
# own start included) and one byte echoed back inside an open exec stream
# (the official Python client's `stream()`, WebSocket v5 through the API
# server and the kubelet to containerd).
#
# Starts `rkube up --kubelet` (its own containerd, images from hack/images)
# in a temporary directory. Needs root, containerd, runc and the CNI
# plugins (hack/install-deps.sh).
#
#   hack/bench/streaming.sh
#   BENCH_RKUBE=$CARGO_TARGET_DIR/debug/rkube BENCH_MIB=20 hack/bench/streaming.sh
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

mib="${BENCH_MIB:-100}"
execs="${BENCH_EXECS:-20}"
cidr="${BENCH_POD_CIDR:-10.248.0.0/24}"

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

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-streaming.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pid=""
cleanup() {
    set +e
    if [[ -n "$pid" ]]; then
        kubectl delete pod bench --wait=true --timeout=60s >/dev/null 2>&1
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    fi
    pkill -f "containerd --config $dir/" 2>/dev/null
    bridge="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' \
        "$dir/data/kubelet/containerd/cni/10-rkube.conflist" 2>/dev/null)"
    [[ -n "$bridge" ]] && ip link delete "$bridge" 2>/dev/null
    grep " $dir" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

log "building the images"
python3 hack/images/build.py "$dir/images" >/dev/null
log "starting rkube up --kubelet (data dir $dir)"
"$bin" up --data-dir "$dir/data" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --kubelet --image-archive-dir "$dir/images" --pod-cidr "$cidr" \
    2>"$dir/rkube.log" &
pid=$!
export KUBECONFIG="$dir/data/admin.conf"
for _ in $(seq 1 150); do
    kubectl get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null \
        | grep -q True && break
    kill -0 "$pid" 2>/dev/null || { log "rkube up died"; tail -n 20 "$dir/rkube.log" >&2; exit 1; }
    sleep 0.2
done
kubectl run bench --image=busybox:1.36 --restart=Never -- sleep 3600 >/dev/null
kubectl wait --for=condition=Ready pod/bench --timeout=60s >/dev/null

now() { date +%s.%N; }
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$dir/blob"
t0=$(now)
kubectl cp "$dir/blob" default/bench:/tmp/blob
t1=$(now)
kubectl cp default/bench:/tmp/blob "$dir/back" 2>/dev/null
t2=$(now)
cmp -s "$dir/blob" "$dir/back" || { log "the file came back different"; exit 1; }
python3 - "$mib" "$t0" "$t1" "$t2" <<'PY'
import sys
mib, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"kubectl cp {mib} MiB into the pod: {t1 - t0:.2f} s, {mib / (t1 - t0):.1f} MiB/s")
print(f"kubectl cp {mib} MiB out of the pod: {t2 - t1:.2f} s, {mib / (t2 - t1):.1f} MiB/s")
PY

times=()
for _ in $(seq 1 "$execs"); do
    a=$(now)
    out="$(printf x | kubectl exec -i bench -- cat)"
    b=$(now)
    [[ "$out" == x ]] || { log "exec echoed '$out'"; exit 1; }
    times+=("$(python3 -c "print($b - $a)")")
done
python3 - "${times[@]}" <<'PY'
import sys
t = sorted(float(x) for x in sys.argv[1:])
p = lambda q: t[min(len(t) - 1, int(round(q / 100 * len(t))) - 1)]
print(f"one-byte kubectl exec round trip (whole process, {len(t)} runs): p50 {p(50)*1000:.0f} ms, p90 {p(90)*1000:.0f} ms")
PY

python3 - <<'PY'
import time
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config()
core = client.CoreV1Api()
s = stream(core.connect_get_namespaced_pod_exec, "bench", "default", command=["cat"],
           stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
lat = []
for i in range(200):
    a = time.perf_counter()
    s.write_stdin("x")
    got = ""
    while not got:
        s.update(timeout=5)
        got = s.read_stdout()
    lat.append(time.perf_counter() - a)
s.close()
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(round(q / 100 * len(lat))) - 1)]
print(f"one byte echoed in an open exec stream ({len(lat)} round trips): p50 {p(50)*1000:.2f} ms, p99 {p(99)*1000:.2f} ms")
PY
