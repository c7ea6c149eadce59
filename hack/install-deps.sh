#!/usr/bin/env bash
# Installs what building, running and testing rkube need, from Debian's
# packages and PyPI. Safe to run again: it only installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_apt=()
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v cc >/dev/null || need_apt+=(build-essential)
# The kubelet's container runtime (CRI) and pod networking; busybox-static
# is what hack/images/ builds the test images from.
command -v containerd >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || need_apt+=(runc)
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The official Python client, which the end-to-end tests drive rkube with.
if ! python3 -c 'import kubernetes' 2>/dev/null; then
    log "installing the Python kubernetes client"
    python3 -m pip install --quiet "kubernetes==37.0.2"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi
