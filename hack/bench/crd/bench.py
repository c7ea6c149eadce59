#!/usr/bin/env python3
"""CRD figures against a running rkube (KUBECONFIG): time from CRD create to
Established and to the resource showing in discovery, then create/get/list
of N custom resources (a 50-field schema with two CEL rules) against N
ConfigMaps of the same size, with the
official Python client (raw responses, no model decoding) from C threads.
Prints a table; asserts nothing."""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

N = int(os.environ.get("BENCH_OBJECTS", "1000"))
C = int(os.environ.get("BENCH_CLIENTS", "8"))
NS = "default"
GROUP, PLURAL, KIND = "bench.rkube.io", "samples", "Sample"


def crd():
    props = {f"f{i}": {"type": "string"} for i in range(50)}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "kind": KIND},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": props,
                             # Two CEL rules, as the figure asks.
                             "x-kubernetes-validations": [
                                 {"rule": "self.f0 != 'forbidden'"},
                                 {"rule": "size(self.f1) < 64"},
                             ]}}}},
            }],
        },
    }


def payload():
    return {f"f{i}": f"value-{i:02d}" for i in range(50)}


def timed(fn, items):
    lat = []

    def one(i):
        t = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(C) as pool:
        list(pool.map(one, items))
    wall = time.perf_counter() - start
    lat.sort()
    return len(items) / wall, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99) - 1] * 1000


def main():
    config.load_kube_config()
    api = client.ApiClient()
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)

    t0 = time.perf_counter()
    ext.create_custom_resource_definition(crd(), _preload_content=False)
    established = discovered = None
    while established is None or discovered is None:
        now = time.perf_counter() - t0
        if established is None:
            raw = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}", _preload_content=False)
            conds = json.loads(raw.data).get("status", {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                established = now
        if discovered is None:
            try:
                raw = api.call_api("GET", f"{api.configuration.host}/apis/{GROUP}/v1",
                                   header_params={"Accept": "application/json"})
                raw.read()
                if raw.status == 200 and PLURAL in raw.data.decode():
                    discovered = now
            except client.exceptions.ApiException:
                pass
        if now > 30:
            sys.exit("CRD not established/discovered in 30 s")

    spec = payload()

    def create_cr(i):
        body = {"apiVersion": f"{GROUP}/v1", "kind": KIND, "metadata": {"name": f"s{i}"}, "spec": spec}
        custom.create_namespaced_custom_object(GROUP, "v1", NS, PLURAL, body, _preload_content=False)

    def create_cm(i):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bench-cm{i}"}, "data": spec}
        core.create_namespaced_config_map(NS, body, _preload_content=False)

    def get_cr(i):
        custom.get_namespaced_custom_object(GROUP, "v1", NS, PLURAL, f"s{i}", _preload_content=False)

    def get_cm(i):
        core.read_namespaced_config_map(f"bench-cm{i}", NS, _preload_content=False)

    rows = []
    rows.append(("create custom resource",) + timed(create_cr, range(N)))
    rows.append(("create ConfigMap (same data)",) + timed(create_cm, range(N)))
    rows.append(("get custom resource",) + timed(get_cr, range(N)))
    rows.append(("get ConfigMap",) + timed(get_cm, range(N)))

    def lists(fn, runs=10):
        t = time.perf_counter()
        for _ in range(runs):
            fn()
        return (time.perf_counter() - t) / runs * 1000

    cr_list = lists(lambda: custom.list_namespaced_custom_object(GROUP, "v1", NS, PLURAL, _preload_content=False))
    cm_list = lists(lambda: core.list_namespaced_config_map(NS, _preload_content=False))

    print(f"CRD create -> Established: {established * 1000:.0f} ms; -> in discovery: {discovered * 1000:.0f} ms")
    print(f"{'operation':32} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}   ({N} objects, {C} clients)")
    for name, rate, p50, p99 in rows:
        print(f"{name:32} {rate:8.0f} {p50:8.1f} {p99:8.1f}")
    print(f"list {N} custom resources: {cr_list:.1f} ms; list {N} ConfigMaps: {cm_list:.1f} ms")
    print(f"custom resource creates/s vs ConfigMap creates/s: {rows[0][1] / rows[1][1] * 100:.0f}%")


if __name__ == "__main__":
    main()
