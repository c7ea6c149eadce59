"""Drives an rkube cluster with the official Python client (PyPI `kubernetes`).

Usage: python_client.py KUBECONFIG. Prints "ok" on success; any failure raises.
"""

import sys

from kubernetes import client, config, watch


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names, names

    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}), data={"k": "v"})
    created = core.create_namespaced_config_map("default", cm)
    assert created.metadata.uid and created.metadata.resource_version

    patched = core.patch_namespaced_config_map("py", "default", {"data": {"k": "w"}})
    assert patched.data == {"k": "w"}, patched.data

    listed = core.list_namespaced_config_map("default", label_selector="from=python")
    assert [c.metadata.name for c in listed.items] == ["py"]

    # A watch from the list's revision sees the next change.
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    )
    core.delete_namespaced_config_map("py", "default")
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            w.stop()
    assert ("DELETED", "py") in seen, seen

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyweb"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "pyweb"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pyweb"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    )
    made = apps.create_namespaced_deployment("default", dep)
    assert made.spec.strategy.type == "RollingUpdate"
    scale = apps.read_namespaced_deployment_scale("pyweb", "default")
    assert scale.spec.replicas == 2

    try:
        core.read_namespaced_config_map("missing", "default")
        raise AssertionError("expected a 404")
    except client.exceptions.ApiException as e:
        assert e.status == 404, e.status
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
