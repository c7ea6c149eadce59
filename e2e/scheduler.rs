//! The scheduler against a real API server: nodes are plain objects (no
//! kubelet), pods are bound through `pods/binding`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::controllers_util::eventually;
use crate::harness::Cluster;

const WAIT: Duration = Duration::from_secs(30);

/// A Ready node with the given allocatable, labels and taints.
pub async fn create_node(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    labels: Value,
    taints: Value,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let status = json!({"status": {
        "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
                        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("set node status");
}

pub async fn create_pod(client: &kube::Client, name: &str, spec: Value) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

pub fn cpu(request: &str) -> Value {
    json!([{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": request}}}])
}

/// Waits until `check` holds for the pod; returns it.
pub async fn wait_pod(
    client: &kube::Client,
    name: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pod = pods.get_opt(name).await.expect("get pod");
        if let Some(pod) = pod.filter(|p| check(p)) {
            return pod;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {name}: {what} not reached in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn node_of(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

pub async fn wait_bound(client: &kube::Client, name: &str) -> String {
    node_of(&wait_pod(client, name, "bound", |p| !node_of(p).is_empty()).await).to_owned()
}

/// The PodScheduled=False condition's message, once set.
pub async fn wait_unschedulable(client: &kube::Client, name: &str) -> String {
    let pod = wait_pod(client, name, "PodScheduled=False", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                // Before the scheduler has seen the test's nodes, it finds
                // none at all; wait for the verdict on them.
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.message.as_deref() != Some("no nodes available to schedule pods")
                })
            })
    })
    .await;
    assert_eq!(node_of(&pod), "");
    let cond = pod
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    cond.message.unwrap_or_default()
}

async fn events_for(client: &kube::Client, pod: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        let mine: Vec<Event> = list
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .collect();
        if !mine.is_empty() || tokio::time::Instant::now() > deadline {
            return mine;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn impossible_node_selector_stays_pending_until_a_matching_node_appears() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(&client, "n1", "4", json!({}), json!([])).await;
    create_pod(&client, "picky", json!({"nodeSelector": {"disk": "ssd"}})).await;
    let message = wait_unschedulable(&client, "picky").await;
    assert_eq!(
        message,
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    let events = events_for(&client, "picky").await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling")
                && e.type_.as_deref() == Some("Warning")
                && e.message.as_deref() == Some(message.as_str())),
        "{events:?}"
    );
    create_node(&client, "n2", "4", json!({"disk": "ssd"}), json!([])).await;
    assert_eq!(wait_bound(&client, "picky").await, "n2");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = events_for(&client, "picky").await;
        if events.iter().any(|e| {
            e.reason.as_deref() == Some("Scheduled")
                && e.message.as_deref() == Some("Successfully assigned default/picky to n2")
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Scheduled event: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [sig-scheduling] SchedulerPredicates validates that NodeSelector is
/// respected if matching / if not matching.
#[tokio::test]
async fn node_selector_is_respected() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    for i in 0..3 {
        create_node(&client, &format!("n{i}"), "4", json!({}), json!([])).await;
    }
    c.kubectl_ok(&["label", "node", "n1", "kubernetes.io/e2e-label=42"]);
    create_pod(
        &client,
        "with-labels",
        json!({"nodeSelector": {"kubernetes.io/e2e-label": "42"}}),
    )
    .await;
    assert_eq!(wait_bound(&client, "with-labels").await, "n1");
    create_pod(
        &client,
        "restricted",
        json!({"nodeSelector": {"label": "nonempty"}}),
    )
    .await;
    let message = wait_unschedulable(&client, "restricted").await;
    assert!(
        message.starts_with(
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        ),
        "{message}"
    );
}

#[tokio::test]
async fn taints_keep_pods_away_unless_tolerated() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(
        &client,
        "tainted",
        "4",
        json!({"pool": "gpu"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await;
    create_node(&client, "plain", "4", json!({"pool": "cpu"}), json!([])).await;
    for i in 0..4 {
        create_pod(&client, &format!("free-{i}"), json!({})).await;
    }
    for i in 0..4 {
        assert_eq!(wait_bound(&client, &format!("free-{i}")).await, "plain");
    }
    create_pod(
        &client,
        "intolerant",
        json!({"nodeSelector": {"pool": "gpu"}}),
    )
    .await;
    let message = wait_unschedulable(&client, "intolerant").await;
    assert!(
        message.contains("1 node(s) had untolerated taint {dedicated: gpu}"),
        "{message}"
    );
    assert!(
        message.contains("1 node(s) didn't match Pod's node affinity/selector"),
        "{message}"
    );
    create_pod(
        &client,
        "tolerant",
        json!({"nodeSelector": {"pool": "gpu"}, "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    assert_eq!(wait_bound(&client, "tolerant").await, "tainted");
}

/// [sig-scheduling] SchedulerPredicates validates resource limits of pods
/// that are allowed to run: pods fill the nodes' cpu, one more stays pending.
#[tokio::test]
async fn resource_requests_beyond_capacity_stay_pending() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(&client, "a", "1", json!({}), json!([])).await;
    create_node(&client, "b", "1", json!({}), json!([])).await;
    create_pod(&client, "fill-0", json!({"containers": cpu("700m")})).await;
    create_pod(&client, "fill-1", json!({"containers": cpu("700m")})).await;
    let a = wait_bound(&client, "fill-0").await;
    let b = wait_bound(&client, "fill-1").await;
    assert_ne!(a, b, "the assume cache spreads the pods");
    create_pod(&client, "extra", json!({"containers": cpu("500m")})).await;
    let message = wait_unschedulable(&client, "extra").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 2 Insufficient cpu. \
         preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    // Freeing a node lets it in.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete(
        "fill-0",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(wait_bound(&client, "extra").await, a);
}

/// [sig-scheduling] SchedulerPredicates validates that there exists
/// conflict between pods with same hostPort and protocol but one using
/// 0.0.0.0 hostIP.
#[tokio::test]
async fn host_port_conflicts_with_the_wildcard_address() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(&client, "n1", "4", json!({"e2e": "here"}), json!([])).await;
    let port = |ip: &str| json!([{"name": "c", "image": "busybox", "ports": [{"containerPort": 8080, "hostPort": 54322, "hostIP": ip, "protocol": "TCP"}]}]);
    create_pod(
        &client,
        "pod4",
        json!({"nodeSelector": {"e2e": "here"}, "containers": port("0.0.0.0")}),
    )
    .await;
    assert_eq!(wait_bound(&client, "pod4").await, "n1");
    create_pod(
        &client,
        "pod5",
        json!({"nodeSelector": {"e2e": "here"}, "containers": port("127.0.0.1")}),
    )
    .await;
    let message = wait_unschedulable(&client, "pod5").await;
    assert!(
        message.starts_with(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
        ),
        "{message}"
    );
}

#[tokio::test]
async fn pods_for_another_scheduler_are_left_alone() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(&client, "n1", "4", json!({}), json!([])).await;
    create_pod(&client, "other", json!({"schedulerName": "someone-else"})).await;
    create_pod(&client, "mine", json!({})).await;
    wait_bound(&client, "mine").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let other = pods.get("other").await.unwrap();
    assert_eq!(node_of(&other), "");
    assert!(
        other
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .is_empty()
    );
}

/// [sig-scheduling] SchedulerPreemption validates basic preemption works /
/// pod disruption condition is added to the preempted pod. Without a
/// kubelet the victim stays terminating; the test finishes its deletion.
#[tokio::test]
async fn a_high_priority_pod_preempts_a_lower_one() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    for (name, value) in [("low", 1), ("high", 1000)] {
        c.kubectl_with_input(
            &["apply", "-f", "-"],
            Some(&format!("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {name}}}\nvalue: {value}\n")),
        );
    }
    create_node(&client, "n1", "1", json!({}), json!([])).await;
    create_pod(
        &client,
        "victim",
        json!({"priorityClassName": "low", "containers": cpu("800m")}),
    )
    .await;
    assert_eq!(wait_bound(&client, "victim").await, "n1");
    create_pod(
        &client,
        "preemptor",
        json!({"priorityClassName": "high", "containers": cpu("800m")}),
    )
    .await;
    let victim = wait_pod(&client, "victim", "terminating", |p| {
        p.metadata.deletion_timestamp.is_some()
    })
    .await;
    let conditions = victim.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c.type_ == "DisruptionTarget"
            && c.status == "True"
            && c.reason.as_deref() == Some("PreemptionByScheduler")),
        "{conditions:?}"
    );
    let preemptor = wait_pod(&client, "preemptor", "nominated", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            == Some("n1")
    })
    .await;
    assert_eq!(node_of(&preemptor), "");
    // What the kubelet would do once the containers stopped.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete(
        "victim",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(wait_bound(&client, "preemptor").await, "n1");
}

#[tokio::test]
async fn pod_anti_affinity_and_affinity_place_pods_by_topology() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    for (name, zone) in [("a", "z1"), ("b", "z1"), ("c", "z2")] {
        create_node(
            &client,
            name,
            "4",
            json!({"kubernetes.io/hostname": name, "zone": zone}),
            json!([]),
        )
        .await;
    }
    let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}});
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = |name: &str| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"affinity": anti, "containers": [{"name": "c", "image": "busybox"}]}}))
        .unwrap()
    };
    pods.create(&PostParams::default(), &web("web-1"))
        .await
        .unwrap();
    let first = wait_bound(&client, "web-1").await;
    pods.create(&PostParams::default(), &web("web-2"))
        .await
        .unwrap();
    let second = wait_bound(&client, "web-2").await;
    let zone = |n: &str| if n == "c" { "z2" } else { "z1" };
    assert_ne!(zone(&first), zone(&second), "one web pod per zone");
    pods.create(&PostParams::default(), &web("web-3"))
        .await
        .unwrap();
    let message = wait_unschedulable(&client, "web-3").await;
    assert!(
        message.starts_with(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
        ),
        "{message}"
    );
    // Required affinity: next to the web pod in z2.
    create_pod(
        &client,
        "sidecar",
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
    )
    .await;
    let node = wait_bound(&client, "sidecar").await;
    assert!(node == first || node == second, "{node}");
}

#[tokio::test]
async fn topology_spread_constraints_balance_zones() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    for (name, zone) in [("a", "z1"), ("b", "z1"), ("c", "z2")] {
        create_node(&client, name, "4", json!({"zone": zone}), json!([])).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..6 {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": format!("s-{i}"), "labels": {"app": "spread"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "spread"}}}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        // One at a time, so each sees the previous placement.
        wait_bound(&client, &format!("s-{i}")).await;
    }
    let mut per_zone = [0, 0];
    for i in 0..6 {
        let node = wait_bound(&client, &format!("s-{i}")).await;
        per_zone[usize::from(node == "c")] += 1;
    }
    assert_eq!(per_zone, [3, 3]);
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn healthz_and_metrics_are_served() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    create_node(&client, "n1", "4", json!({}), json!([])).await;
    create_pod(&client, "p", json!({})).await;
    wait_bound(&client, "p").await;
    let port = c.scheduler_port.unwrap();
    let health = http_get(port, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
        "{health}"
    );
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scheduler_pending_pods{queue=\"active\"} 0"),
        "{metrics}"
    );
    // The scheduler holds its lease.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, "kube-system");
    let lease = leases
        .get("kube-scheduler")
        .await
        .expect("the kube-scheduler lease");
    assert!(lease.spec.and_then(|s| s.holder_identity).is_some());
}

/// [sig-scheduling] SchedulerPreemption validates lower priority pod
/// preemption by critical pod: a `system-cluster-critical` pod in
/// kube-system preempts a low-priority one on a full node.
#[tokio::test]
async fn a_critical_pod_preempts_a_lower_priority_one() {
    let c = Cluster::up_with_scheduler().await;
    let client = c.client().await;
    c.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 1\n",
    );
    create_node(&client, "n1", "1", json!({}), json!([])).await;
    create_pod(
        &client,
        "victim",
        json!({"priorityClassName": "low", "containers": cpu("800m")}),
    )
    .await;
    assert_eq!(wait_bound(&client, "victim").await, "n1");
    let system: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let critical: Pod = serde_json::from_value(json!({
        "metadata": {"name": "critical"},
        "spec": {"priorityClassName": "system-cluster-critical", "containers": cpu("800m")},
    }))
    .unwrap();
    system
        .create(&PostParams::default(), &critical)
        .await
        .expect("create critical pod");
    let victim = wait_pod(&client, "victim", "terminating", |p| {
        p.metadata.deletion_timestamp.is_some()
    })
    .await;
    let conditions = victim.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c.type_ == "DisruptionTarget"
            && c.status == "True"
            && c.reason.as_deref() == Some("PreemptionByScheduler")),
        "{conditions:?}"
    );
    // What the kubelet would do once the containers stopped.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete(
        "victim",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pod = system.get("critical").await.expect("get critical pod");
        if node_of(&pod) == "n1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "critical pod not bound: {:?}",
            pod.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [sig-scheduling] SchedulerPreemption PriorityClass endpoints verify
/// PriorityClass endpoints can be operated with different HTTP methods:
/// `value` can be neither patched nor updated, `description` can be both.
#[tokio::test]
async fn priority_class_endpoints_allow_mutable_fields_only() {
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    let c = Cluster::up().await;
    let client = c.client().await;
    let pcs: Api<PriorityClass> = Api::all(client.clone());
    for i in 1..=4 {
        let pc: PriorityClass = serde_json::from_value(json!({
            "metadata": {"name": format!("p{i}")}, "value": i,
        }))
        .unwrap();
        pcs.create(&PostParams::default(), &pc).await.unwrap();
    }
    let invalid = |e: kube::Error| match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert_eq!(s.reason, "Invalid", "{s:?}");
            s.message
        }
        other => panic!("expected 422, got {other:?}"),
    };
    // Immutable: value, through a strategic merge patch and an update.
    let err = pcs
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"value": 10})),
        )
        .await
        .unwrap_err();
    // Upstream names the kind with its group.
    let message = invalid(err);
    assert_eq!(
        message,
        "PriorityClass.scheduling.k8s.io \"p1\" is invalid: value: Forbidden: may not be changed in an update."
    );
    let mut p1 = pcs.get("p1").await.unwrap();
    p1.value = Some(100);
    invalid(
        pcs.replace("p1", &PostParams::default(), &p1)
            .await
            .unwrap_err(),
    );
    // Mutable: description.
    let desc = "updated description";
    pcs.patch(
        "p1",
        &PatchParams::default(),
        &Patch::Strategic(json!({"description": desc})),
    )
    .await
    .unwrap();
    for name in ["p2", "p3", "p4"] {
        let mut pc = pcs.get(name).await.unwrap();
        pc.description = Some(desc.into());
        pcs.replace(name, &PostParams::default(), &pc)
            .await
            .unwrap();
    }
    let list = pcs.list(&ListParams::default()).await.unwrap();
    for i in 1..=4 {
        let live = list
            .items
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&format!("p{i}")))
            .expect("listed");
        assert_eq!(live.value, Some(i));
        assert_eq!(live.description.as_deref(), Some(desc));
    }
}

/// A ReplicaSet of `replicas` pods of `class` asking for `fakecpu` of
/// `example.com/fakecpu` on `node`.
fn fake_cpu_rs(name: &str, class: &str, fakecpu: &str, node: &str) -> Value {
    let res = json!({"example.com/fakecpu": fakecpu});
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"name": name}},
            "template": {
                "metadata": {"labels": {"name": name}},
                "spec": {
                    "priorityClassName": class,
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": res, "limits": res}}],
                },
            },
        },
    })
}

/// The running (not terminating) pods of a ReplicaSet, by uid.
async fn rs_pods(pods: &Api<Pod>, name: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("name={name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

// [sig-scheduling] SchedulerPreemption PreemptionExecutionPath runs
// ReplicaSets to verify preemption running path: on one node with 1000
// fakecpu, ReplicaSets of priority 1, 2 and 3 take 200, 300 and 450; one of
// priority 4 asking 500 preempts the fewest lower pods (those of priority 1
// and 2: keeping priority 3 leaves room), and their replacements wait.
#[tokio::test]
async fn preemption_execution_path_with_replicasets() {
    let c = Cluster::up_full(&["--simulated-nodes", "1"]).await;
    let client = c.client().await;
    let node = "sim-node-0";
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("the node registered", || async {
        nodes.get(node).await.ok()
    })
    .await;
    nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "capacity": {"example.com/fakecpu": "1000"},
                "allocatable": {"example.com/fakecpu": "1000"},
            }})),
        )
        .await
        .unwrap();
    for (name, value) in [("p1", 1), ("p2", 2), ("p3", 3), ("p4", 4)] {
        c.kubectl_ok_with_input(
            &["apply", "-f", "-"],
            &format!("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {name}}}\nvalue: {value}\n"),
        );
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut first = Vec::new();
    for (name, class, amount) in [
        ("rs1", "p1", "200"),
        ("rs2", "p2", "300"),
        ("rs3", "p3", "450"),
    ] {
        c.kubectl_ok_with_input(
            &["apply", "-f", "-"],
            &fake_cpu_rs(name, class, amount, node).to_string(),
        );
        let pod = eventually("a running pod of the ReplicaSet", || async {
            rs_pods(&pods, name)
                .await
                .into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        })
        .await;
        first.push(pod.metadata.uid.unwrap());
    }
    c.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        &fake_cpu_rs("rs4", "p4", "500", node).to_string(),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    eprintln!(
        "DEBUG {}",
        c.kubectl_ok(&["get", "pods,events", "-o", "wide"])
    );
    eprintln!("DEBUG {}", c.kubectl_ok(&["get", "pods", "-o", "yaml"]));
    eventually("the preemptor running", || async {
        rs_pods(&pods, "rs4")
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    // rs1's and rs2's first pods were preempted; rs3's stays.
    for (i, name) in ["rs1", "rs2"].iter().enumerate() {
        eventually("the victim replaced", || async {
            let now = rs_pods(&pods, name).await;
            (!now.is_empty()
                && now
                    .iter()
                    .all(|p| p.metadata.uid.as_ref() != Some(&first[i])))
            .then_some(())
        })
        .await;
    }
    let rs3 = rs_pods(&pods, "rs3").await;
    assert_eq!(rs3.len(), 1);
    assert_eq!(rs3[0].metadata.uid.as_ref(), Some(&first[2]));
    // The replacements can't fit beside priority 3 and 4.
    for name in ["rs1", "rs2"] {
        let now = rs_pods(&pods, name).await;
        assert!(
            now.iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none()),
            "{name}: {now:?}"
        );
    }
}
