#!/usr/bin/env bash
# Patch figures for a Deployment with 50 containers:
#  1. the server-side work in-process (cargo bench, release): a server-side
#     apply changing one image, a strategic merge patch of the same change,
#     and that patch plus the managedFields bookkeeping every write does;
#  2. the whole request against a running `rkube up` (release build): mean
#     time of BENCH_REQUESTS server-side applies and strategic merge patches
#     over one kept-alive connection (curl), each changing the image; with
#     dryRun=All (everything but the durable write) and written (which adds
#     the storage commit: an fsync per group of writes).
#
#   hack/bench/patch.sh
#   BENCH_RKUBE=<binary> hack/bench/patch.sh    # skip the release build
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

requests="${BENCH_REQUESTS:-200}"

log "in-process (cargo bench -p rkube-patch --bench patch)"
cargo bench -q -p rkube-patch --bench patch

rkube="${BENCH_RKUBE:-}"
if [[ -z "$rkube" ]]; then
    log "building rkube (release)"
    cargo build -q --release -p rkube
    rkube="${CARGO_TARGET_DIR:-$ROOT/target}/release/rkube"
fi
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
"$rkube" up --data-dir "$dir" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-controllers --no-scheduler >"$dir/rkube.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
export KUBECONFIG="$dir/admin.conf"
for _ in $(seq 100); do kubectl get ns >/dev/null 2>&1 && break; sleep 0.1; done

# Client credentials for curl, from the admin kubeconfig.
python3 - "$dir" <<'PY'
import base64, sys, yaml
d = sys.argv[1]
cfg = yaml.safe_load(open(f"{d}/admin.conf"))
user = cfg["users"][0]["user"]
open(f"{d}/admin.crt", "wb").write(base64.b64decode(user["client-certificate-data"]))
open(f"{d}/admin.key", "wb").write(base64.b64decode(user["client-key-data"]))
open(f"{d}/ca.crt", "wb").write(base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]))
containers = [{"name": f"c{i}", "image": f"registry.example/app{i}:1.0",
               "ports": [{"containerPort": 8000 + i}],
               "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
               "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
              for i in range(50)]
import json
def dep(image):
    containers[0]["image"] = image
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "big", "labels": {"app": "big"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}},
                                  "spec": {"containers": containers}}}}
json.dump(dep("nginx:1.25"), open(f"{d}/apply-a.json", "w"))
json.dump(dep("nginx:1.26"), open(f"{d}/apply-b.json", "w"))
for tag in ("a", "b"):
    json.dump({"spec": {"template": {"spec": {"containers": [
        {"name": "c0", "image": f"nginx:smp-{tag}"}]}}}}, open(f"{d}/smp-{tag}.json", "w"))
PY

base="https://127.0.0.1:$port/apis/apps/v1/namespaces/default/deployments/big"
tls=(--cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" -s -o /dev/null)
# One curl per body: its URLs share one connection; alternate bodies so
# every request changes the object.
timed() { # content-type body-a body-b query
    local args=() i
    for i in $(seq "$requests"); do
        local body="$2"; (( i % 2 )) || body="$3"
        args+=(--next "${tls[@]}" -X PATCH -H "Content-Type: $1" --data-binary "@$dir/$body" -w '%{http_code} %{time_total}\n' "$base$4")
    done
    curl "${args[@]:1}" | awk '$1 >= 300 { bad++ } { sum += $2; n++ } END { if (bad) { print "  " bad " requests failed"; exit 1 } printf "%.3f ms mean over %d requests\n", sum * 1000 / n, n }'
}
curl "${tls[@]}" -X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary "@$dir/apply-a.json" "$base?fieldManager=bench"
log "rkube up (release), Deployment with 50 containers, whole requests:"
printf '  server-side apply, dry run:      '; timed application/apply-patch+yaml apply-b.json apply-a.json "?fieldManager=bench&dryRun=All"
printf '  strategic merge patch, dry run:  '; timed application/strategic-merge-patch+json smp-a.json smp-b.json "?dryRun=All"
printf '  server-side apply, written:      '; timed application/apply-patch+yaml apply-b.json apply-a.json "?fieldManager=bench"
printf '  strategic merge patch, written:  '; timed application/strategic-merge-patch+json smp-a.json smp-b.json ""
