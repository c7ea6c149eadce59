//! sig-node conformance behaviours that need pods to run but no process:
//! Pods (host IP, submit/remove, update, activeDeadlineSeconds updates,
//! delete collection, status patch and replace, QoS) and RuntimeClass
//! admission, against the scheduler and a simulated node; and the API
//! side of RuntimeClasses, Nodes and sysctls.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use crate::harness::Cluster;

const PATIENCE: Duration = Duration::from_secs(60);
const NODE: &str = "sim-node-0";

async fn wait_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn json_of<T: k8s_openapi::serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("json")
}

/// A cluster with the scheduler and one simulated node, and the pods API
/// of `default`.
async fn cluster() -> (Cluster, Api<Pod>) {
    let c = Cluster::up_with_scheduler_and_args(&["--simulated-nodes", "1"]).await;
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    wait_until("the simulated node", || async {
        nodes.get_opt(NODE).await.ok()?.map(|_| ())
    })
    .await;
    (c, Api::namespaced(client, "default"))
}

fn pod(name: &str, labels: Value, extra_spec: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "busybox"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .expect("pod")
}

async fn running(pods: &Api<Pod>, name: &str) -> Value {
    wait_until(&format!("pod {name} Running"), || async {
        let p = json_of(&pods.get_opt(name).await.ok()??);
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await
}

// [sig-node] Pods should get a host IP
#[tokio::test]
async fn pods_should_get_a_host_ip() {
    let (c, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &pod("host-ip", json!({}), json!({})),
    )
    .await
    .expect("create");
    let p = running(&pods, "host-ip").await;
    let node: Node = Api::all(c.client().await).get(NODE).await.expect("node");
    let internal = node
        .status
        .and_then(|s| s.addresses)
        .into_iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address)
        .expect("InternalIP");
    let host_ip = p["status"]["hostIP"].as_str().expect("hostIP");
    assert!(host_ip.parse::<std::net::IpAddr>().is_ok(), "{host_ip}");
    assert_eq!(host_ip, internal);
    assert_eq!(p["status"]["hostIPs"][0]["ip"], host_ip);
}

// [sig-node] Pods should be submitted and removed
#[tokio::test]
async fn pods_should_be_submitted_and_removed() {
    let (_c, pods) = cluster().await;
    let selector = ListParams::default().labels("time=submit-remove");
    assert!(pods.list(&selector).await.expect("list").items.is_empty());
    let created = pods
        .create(
            &PostParams::default(),
            &pod("submit", json!({"time": "submit-remove"}), json!({})),
        )
        .await
        .expect("create");
    assert_eq!(pods.list(&selector).await.expect("list").items.len(), 1);
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let params = WatchParams::default()
        .labels("time=submit-remove")
        .timeout(60);
    let mut events = pods.watch(&params, &rv).await.expect("watch").boxed();
    running(&pods, "submit").await;
    pods.delete("submit", &DeleteParams::default())
        .await
        .expect("delete");
    let mut saw_deletion_timestamp = false;
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no DELETED event");
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Modified(p)))) => {
                saw_deletion_timestamp |= p.metadata.deletion_timestamp.is_some();
            }
            Ok(Ok(Some(WatchEvent::Deleted(p)))) => {
                assert!(p.metadata.deletion_timestamp.is_some());
                break;
            }
            Ok(Ok(Some(_))) | Err(_) => {}
            other => panic!("the watch ended: {other:?}"),
        }
    }
    assert!(saw_deletion_timestamp, "graceful deletion observed");
    assert!(pods.list(&selector).await.expect("list").items.is_empty());
}

// [sig-node] Pods should be updated
#[tokio::test]
async fn pods_should_be_updated() {
    let (_c, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &pod("updated", json!({"time": "before"}), json!({})),
    )
    .await
    .expect("create");
    running(&pods, "updated").await;
    let mut p = pods.get("updated").await.expect("get");
    p.metadata
        .labels
        .get_or_insert_default()
        .insert("time".into(), "after".into());
    pods.replace("updated", &PostParams::default(), &p)
        .await
        .expect("update");
    let found = pods
        .list(&ListParams::default().labels("time=after"))
        .await
        .expect("list");
    assert_eq!(found.items.len(), 1);
}

// [sig-node] Pods should allow activeDeadlineSeconds to be updated
#[tokio::test]
async fn pods_should_allow_active_deadline_seconds_to_be_updated() {
    let (_c, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &pod("deadline", json!({"name": "deadline"}), json!({})),
    )
    .await
    .expect("create");
    running(&pods, "deadline").await;
    pods.patch(
        "deadline",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 5}})),
    )
    .await
    .expect("set activeDeadlineSeconds");
    let p = wait_until("the pod to fail its deadline", || async {
        let p = json_of(&pods.get_opt("deadline").await.ok()??);
        (p["status"]["phase"] == "Failed").then_some(p)
    })
    .await;
    assert_eq!(p["status"]["reason"], "DeadlineExceeded", "{}", p["status"]);
}

// [sig-node] Pods should delete a collection of pods
#[tokio::test]
async fn pods_should_delete_a_collection_of_pods() {
    let (_c, pods) = cluster().await;
    for i in 0..3 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("coll-{i}"), json!({"type": "Testing"}), json!({})),
        )
        .await
        .expect("create");
    }
    let selector = ListParams::default().labels("type=Testing");
    for i in 0..3 {
        running(&pods, &format!("coll-{i}")).await;
    }
    assert_eq!(pods.list(&selector).await.expect("list").items.len(), 3);
    pods.delete_collection(&DeleteParams::default(), &selector)
        .await
        .expect("deletecollection");
    wait_until("the collection to be gone", || async {
        pods.list(&selector)
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

// [sig-node] Pods should patch a pod status
#[tokio::test]
async fn pods_should_patch_a_pod_status() {
    let (_c, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &pod("patched", json!({}), json!({})),
    )
    .await
    .expect("create");
    running(&pods, "patched").await;
    let patched = pods
        .patch_status(
            "patched",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"annotations": {"patchedstatus": "true"}},
                "status": {"message": "Patched by e2e test", "reason": "E2E"},
            })),
        )
        .await
        .expect("patch status");
    let p = json_of(&patched);
    assert_eq!(p["metadata"]["annotations"]["patchedstatus"], "true");
    assert_eq!(p["status"]["message"], "Patched by e2e test");
    assert_eq!(p["status"]["reason"], "E2E");
}

// [sig-node] Pods should run through the lifecycle of Pods and PodStatus
#[tokio::test]
async fn pods_should_run_through_the_lifecycle_of_pods_and_podstatus() {
    let (_c, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &pod("lifecycle", json!({"test-pod-static": "true"}), json!({})),
    )
    .await
    .expect("create");
    let p = running(&pods, "lifecycle").await;
    let ready = p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{}", p["status"]);
    pods.patch(
        "lifecycle",
        &PatchParams::default(),
        &Patch::Strategic(json!({
            "metadata": {"labels": {"test-pod": "patched"}},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
        })),
    )
    .await
    .expect("patch");
    let status = pods.get_status("lifecycle").await.expect("get status");
    let mut replaced = status.clone();
    if let Some(conds) = replaced.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
            c.status = "False".into();
        }
    }
    let got = pods
        .replace_status("lifecycle", &PostParams::default(), &replaced)
        .await
        .expect("replace status");
    let ready = got
        .status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status);
    assert_eq!(ready.as_deref(), Some("False"));
    pods.delete_collection(
        &DeleteParams {
            grace_period_seconds: Some(1),
            ..Default::default()
        },
        &ListParams::default().labels("test-pod-static=true"),
    )
    .await
    .expect("delete");
    wait_until("the pod to be gone", || async {
        pods.get_opt("lifecycle")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}

// [sig-node] Pods Extended Pods Set QOS Class
#[tokio::test]
async fn pods_set_qos_class_guaranteed() {
    let (_c, pods) = cluster().await;
    let resources = json!({"limits": {"cpu": "100m", "memory": "100Mi"},
                           "requests": {"cpu": "100m", "memory": "100Mi"}});
    let p = pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "qos"},
                "spec": {"containers": [{"name": "agnhost", "image": "busybox", "resources": resources}]},
            }))
            .expect("pod"),
        )
        .await
        .expect("create");
    assert_eq!(
        p.status.and_then(|s| s.qos_class).as_deref(),
        Some("Guaranteed")
    );
}

async fn expect_forbidden(pods: &Api<Pod>, name: &str, class: &str) -> String {
    let err = pods
        .create(
            &PostParams::default(),
            &pod(name, json!({}), json!({"runtimeClassName": class})),
        )
        .await
        .expect_err("a pod with a missing RuntimeClass must be refused");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403, "{s:?}");
            s.message
        }
        other => panic!("unexpected error {other:?}"),
    }
}

// [sig-node] RuntimeClass should reject a Pod requesting a non-existent
// RuntimeClass / a deleted RuntimeClass
#[tokio::test]
async fn runtimeclass_should_reject_pods_requesting_missing_classes() {
    let (c, pods) = cluster().await;
    let msg = expect_forbidden(&pods, "no-class", "non-existent").await;
    assert_eq!(
        msg,
        "pods \"no-class\" is forbidden: pod rejected: RuntimeClass \"non-existent\" not found"
    );
    let classes: Api<RuntimeClass> = Api::all(c.client().await);
    classes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}, "handler": "runc"}))
                .expect("rc"),
        )
        .await
        .expect("create runtimeclass");
    classes
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete runtimeclass");
    wait_until("the RuntimeClass to be gone", || async {
        classes
            .get_opt("doomed")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    expect_forbidden(&pods, "deleted-class", "doomed").await;
}

// [sig-node] RuntimeClass should schedule a Pod requesting a RuntimeClass
// without PodOverhead / and initialize its Overhead
#[tokio::test]
async fn runtimeclass_pods_are_scheduled_with_the_overhead() {
    let (c, pods) = cluster().await;
    let classes: Api<RuntimeClass> = Api::all(c.client().await);
    for (name, extra) in [
        ("plain", json!({})),
        (
            "with-overhead",
            json!({"overhead": {"podFixed": {"cpu": "10m", "memory": "1Mi"}},
                   "scheduling": {"tolerations": [{"key": "rc", "operator": "Exists"}]}}),
        ),
    ] {
        let mut rc = json!({"metadata": {"name": name}, "handler": "runc"});
        if let (Some(o), Some(e)) = (rc.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        classes
            .create(
                &PostParams::default(),
                &serde_json::from_value(rc).expect("rc"),
            )
            .await
            .expect("create runtimeclass");
    }
    let plain = pods
        .create(
            &PostParams::default(),
            &pod("rc-plain", json!({}), json!({"runtimeClassName": "plain"})),
        )
        .await
        .expect("create");
    assert!(plain.spec.and_then(|s| s.overhead).is_none());
    let with = json_of(
        &pods
            .create(
                &PostParams::default(),
                &pod(
                    "rc-overhead",
                    json!({}),
                    json!({"runtimeClassName": "with-overhead"}),
                ),
            )
            .await
            .expect("create"),
    );
    assert_eq!(
        with["spec"]["overhead"],
        json!({"cpu": "10m", "memory": "1Mi"})
    );
    let tolerations = with["spec"]["tolerations"].as_array().expect("tolerations");
    assert!(
        tolerations.iter().any(|t| t["key"] == "rc"),
        "{tolerations:?}"
    );
    // An overhead that differs from the class's is refused.
    let mismatch = pods
        .create(
            &PostParams::default(),
            &pod(
                "rc-mismatch",
                json!({}),
                json!({"runtimeClassName": "with-overhead", "overhead": {"cpu": "1"}}),
            ),
        )
        .await
        .expect_err("mismatching overhead");
    assert!(
        mismatch
            .to_string()
            .contains("Pod's Overhead doesn't match RuntimeClass's defined Overhead"),
        "{mismatch}"
    );
    for name in ["rc-plain", "rc-overhead"] {
        wait_until(&format!("{name} to be scheduled"), || async {
            let p = pods.get_opt(name).await.ok()??;
            p.spec?.node_name.filter(|n| n == NODE).map(|_| ())
        })
        .await;
    }
}

// [sig-node] Sysctls [LinuxOnly] [NodeConformance] should reject invalid
// sysctls: malformed names are refused by validation, while a
// well-formed unsafe one is left for the kubelet to refuse.
#[tokio::test]
async fn sysctls_should_reject_invalid_sysctls() {
    let (_c, pods) = cluster().await;
    let sysctls = json!({"securityContext": {"sysctls": [
        {"name": "foo-", "value": "bar"},
        {"name": "kernel.shmmax", "value": "100000000"},
        {"name": "safe-and-unsafe", "value": "100000000"},
        {"name": "bar..", "value": "42"}
    ]}});
    let err = pods
        .create(&PostParams::default(), &pod("sysctl", json!({}), sysctls))
        .await
        .expect_err("invalid sysctl names must be refused");
    let kube::Error::Api(s) = err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    assert!(
        s.message.contains("Invalid value: \"foo-\""),
        "{}",
        s.message
    );
    assert!(
        s.message.contains("Invalid value: \"bar..\""),
        "{}",
        s.message
    );
    assert!(!s.message.contains("safe-and-unsafe"), "{}", s.message);
    assert!(!s.message.contains("kernel.shmmax"), "{}", s.message);
}

// [sig-node] RuntimeClass should support RuntimeClasses API operations:
// discovery, then create, get, list, watch, update, patch, delete and
// deletecollection.
#[tokio::test]
async fn runtimeclass_should_support_runtimeclasses_api_operations() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let groups = c.kubectl_ok(&["get", "--raw", "/apis"]);
    assert!(groups.contains("\"node.k8s.io/v1\""), "{groups}");
    let group = c.kubectl_ok(&["get", "--raw", "/apis/node.k8s.io"]);
    assert!(group.contains("\"node.k8s.io/v1\""), "{group}");
    let resources = c.kubectl_ok(&["get", "--raw", "/apis/node.k8s.io/v1"]);
    assert!(
        resources.contains("\"name\":\"runtimeclasses\""),
        "{resources}"
    );

    let classes: Api<RuntimeClass> = Api::all(client);
    let class = |name: &str| -> RuntimeClass {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"test": "api-operations"}},
            "handler": "runc"
        }))
        .expect("runtimeclass")
    };
    let list = ListParams::default().labels("test=api-operations");
    for name in ["rc-1", "rc-2", "rc-3"] {
        classes
            .create(&PostParams::default(), &class(name))
            .await
            .expect("create");
    }
    let got = classes.get("rc-1").await.expect("get");
    assert_eq!(got.handler, "runc");
    let listed = classes.list(&list).await.expect("list");
    assert_eq!(listed.items.len(), 3);
    let rv = listed.metadata.resource_version.clone().unwrap_or_default();
    let mut events = classes
        .watch(&WatchParams::default().labels("test=api-operations"), &rv)
        .await
        .expect("watch")
        .boxed();
    let patch = json!({"metadata": {"annotations": {"patched": "true"}}});
    let patched = classes
        .patch("rc-1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    assert_eq!(
        patched
            .metadata
            .annotations
            .unwrap_or_default()
            .get("patched"),
        Some(&"true".to_owned())
    );
    let mut fresh = classes.get("rc-1").await.expect("get");
    fresh
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("updated".into(), "true".into());
    let updated = classes
        .replace("rc-1", &PostParams::default(), &fresh)
        .await
        .expect("update");
    assert!(
        updated
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("updated")
    );
    // The watch saw both modifications.
    let mut modified = 0;
    while modified < 2 {
        match tokio::time::timeout(PATIENCE, events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Modified(rc)))) => {
                assert_eq!(rc.metadata.name.as_deref(), Some("rc-1"));
                modified += 1;
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch: {other:?}"),
        }
    }
    classes
        .delete("rc-2", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(classes.get_opt("rc-2").await.expect("get").is_none());
    classes
        .delete_collection(&DeleteParams::default(), &list)
        .await
        .expect("deletecollection");
    assert!(classes.list(&list).await.expect("list").items.is_empty());
}

// [sig-node] Node Lifecycle should run through the lifecycle of a node:
// create and read, patch a label, list by label, update, delete.
#[tokio::test]
async fn node_lifecycle_should_run_through_the_lifecycle_of_a_node() {
    let c = Cluster::up().await;
    let nodes: Api<Node> = Api::all(c.client().await);
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "e2e-fake-node"},
        "status": {"phase": "Running"}
    }))
    .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create");
    let got = nodes.get("e2e-fake-node").await.expect("get");
    assert_eq!(got.metadata.name.as_deref(), Some("e2e-fake-node"));
    let patch = json!({"metadata": {"labels": {"e2e-fake-node-patched": "true"}}});
    let patched = nodes
        .patch(
            "e2e-fake-node",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .unwrap_or_default()
            .get("e2e-fake-node-patched"),
        Some(&"true".to_owned())
    );
    let listed = nodes
        .list(&ListParams::default().labels("e2e-fake-node-patched=true"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let mut fresh = listed.items.into_iter().next().expect("node");
    fresh
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("e2e-fake-node-updated".into(), "true".into());
    let updated = nodes
        .replace("e2e-fake-node", &PostParams::default(), &fresh)
        .await
        .expect("update");
    assert!(
        updated
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("e2e-fake-node-updated")
    );
    nodes
        .delete("e2e-fake-node", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the node to be gone", || async {
        nodes
            .get_opt("e2e-fake-node")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}
