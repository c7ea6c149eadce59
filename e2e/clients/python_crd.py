"""Custom resources through the official Python client (PyPI `kubernetes`):
install a CRD with ApiextensionsV1Api, wait for Established, then create,
get, list with a label selector, patch, patch the status, watch and delete
custom objects with CustomObjectsApi.

Usage: python_crd.py KUBECONFIG. Prints "ok" on success; any failure raises.
"""

import sys
import time

from kubernetes import client, config, watch

GROUP, VERSION, PLURAL = "py.example.com", "v1", "notes"


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    ext = client.ApiextensionsV1Api()
    custom = client.CustomObjectsApi()
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "kind": "Note"},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"text": {"type": "string"}}},
                    "status": {"type": "object", "properties": {"read": {"type": "boolean"}}},
                }}},
            }],
        },
    }
    ext.create_custom_resource_definition(crd)
    deadline = time.time() + 10
    while True:
        got = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        conds = got.status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conds):
            break
        assert time.time() < deadline, conds
        time.sleep(0.05)

    def note(name, text, label):
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Note",
                "metadata": {"name": name, "labels": {"tag": label}}, "spec": {"text": text}}

    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, note("a", "hello", "x"))
    assert created["metadata"]["uid"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, note("b", "bye", "y"))
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a")
    assert got["spec"]["text"] == "hello", got
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, label_selector="tag=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"], listed
    rv = listed["metadata"]["resourceVersion"]

    patched = custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a", {"spec": {"text": "hi"}})
    assert patched["spec"]["text"] == "hi" and patched["metadata"]["generation"] == 2, patched
    status = custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "a", {"status": {"read": True}})
    assert status["status"] == {"read": True} and status["metadata"]["generation"] == 2, status

    w = watch.Watch()
    seen = []
    for ev in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                       resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"]["metadata"]["name"]))
        if len(seen) == 2:
            w.stop()
    assert seen == [("MODIFIED", "a"), ("MODIFIED", "a")], seen

    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a")
    left = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert [i["metadata"]["name"] for i in left["items"]] == ["b"], left
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
