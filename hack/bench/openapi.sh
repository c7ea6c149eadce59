#!/usr/bin/env bash
# OpenAPI figures: time and size of /openapi/v2 (gnostic protobuf, as kubectl
# asks for it, and JSON), the /openapi/v3 index and two group-version
# documents (first request, which builds the document, then cached, then a
# 304 on If-None-Match), and the server's RSS before and after. Builds rkube in
# release (RKUBE_BIN overrides the binary), starts `rkube up` on a temporary
# data dir and a free port, and talks to it with curl and the admin client
# certificate from the kubeconfig it writes.
#
#   hack/bench/openapi.sh
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

if [[ -z "${RKUBE_BIN:-}" ]]; then
    log "building rkube (release)"
    cargo build --release -p rkube --quiet
    RKUBE_BIN="$CARGO_TARGET_DIR/release/rkube"
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/rkube-bench-openapi.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$RKUBE_BIN" up --data-dir "$dir/data" --secure-port "$port" --bind-address 127.0.0.1 \
    --no-scheduler >"$dir/rkube.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# The admin client certificate and key, out of the kubeconfig.
for _ in $(seq 100); do [[ -s "$dir/data/admin.conf" ]] && break; sleep 0.1; done
python3 - "$dir" <<'PY'
import base64, re, sys
d = sys.argv[1]
conf = open(f"{d}/data/admin.conf").read()
for key, name in [("client-certificate-data", "admin.crt"), ("client-key-data", "admin.key"),
                  ("certificate-authority-data", "ca.crt")]:
    m = re.search(rf"{key}:\s*(\S+)", conf)
    open(f"{d}/{name}", "wb").write(base64.b64decode(m.group(1)))
PY
curl_() {
    curl -sS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" "$@"
}
base="https://127.0.0.1:$port"
for _ in $(seq 300); do curl_ -o /dev/null "$base/readyz" 2>/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
# time_total in ms, bytes, status code
fetch() {
    curl_ -o /dev/null -w '%{time_total} %{size_download} %{http_code}' "$@" |
        awk '{printf "%8.1f ms %10d bytes  HTTP %s", $1*1000, $2, $3}'
}
etag() {
    curl_ -o /dev/null -D - "$@" | awk -F': ' 'tolower($1)=="etag" {gsub("\r",""); print $2}'
}

pb="Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
rss0=$(rss)
printf '%-44s %s\n' "RSS after start" "$rss0 kB"
printf '%-44s %s\n' "GET /openapi/v3 (first)" "$(fetch "$base/openapi/v3")"
printf '%-44s %s\n' "GET /openapi/v3 (cached)" "$(fetch "$base/openapi/v3")"
apps="$(curl_ "$base/openapi/v3" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"]["apis/apps/v1"]["serverRelativeURL"])')"
core="$(curl_ "$base/openapi/v3" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"]["api/v1"]["serverRelativeURL"])')"
for run in first cached; do
    printf '%-44s %s\n' "GET /openapi/v3/apis/apps/v1?hash= ($run)" "$(fetch -H 'Accept: application/json' "$base$apps")"
done
for run in first cached; do
    printf '%-44s %s\n' "GET /openapi/v3/api/v1?hash= ($run)" "$(fetch -H 'Accept: application/json' "$base$core")"
done
tag="$(etag "$base$apps")"
printf '%-44s %s\n' "GET .../apps/v1 If-None-Match" "$(fetch -H "If-None-Match: $tag" "$base$apps")"
rss1=$(rss)
printf '%-44s %s\n' "RSS after v3 index, apps/v1, api/v1" "$rss1 kB (+$((rss1 - rss0)) kB)"
printf '%-44s %s\n' "GET /openapi/v2 protobuf (first)" "$(fetch -H "$pb" "$base/openapi/v2")"
printf '%-44s %s\n' "GET /openapi/v2 protobuf (cached)" "$(fetch -H "$pb" "$base/openapi/v2")"
printf '%-44s %s\n' "GET /openapi/v2 JSON (cached)" "$(fetch "$base/openapi/v2")"
tag="$(etag -H "$pb" "$base/openapi/v2")"
printf '%-44s %s\n' "GET /openapi/v2 protobuf If-None-Match" "$(fetch -H "$pb" -H "If-None-Match: $tag" "$base/openapi/v2")"
rss2=$(rss)
printf '%-44s %s\n' "RSS after v2" "$rss2 kB (+$((rss2 - rss0)) kB over start)"
