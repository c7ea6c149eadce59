//! Node lifecycle and taint eviction controllers: a node whose Lease stops
//! renewing goes Unknown and gets the unreachable taints, its pods are
//! evicted as their tolerations say, and the taints go when it comes back;
//! `Ready=False` and cordoned nodes get their taints. No kubelet runs: the
//! test writes the Nodes and Leases a kubelet would.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::eventually;
use crate::harness::Cluster;

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// What a kubelet posts: the node's Ready condition with a fresh heartbeat.
async fn post_status(nodes: &Api<Node>, name: &str, ready: &str) {
    let t = now();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady",
                 "message": "kubelet is posting ready status",
                 "lastHeartbeatTime": t, "lastTransitionTime": t},
            ]}})),
        )
        .await
        .expect("post node status");
}

async fn renew_lease(leases: &Api<Lease>, name: &str) {
    let spec = json!({"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()});
    if leases.get_opt(name).await.expect("get lease").is_none() {
        leases
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}, "spec": spec})),
            )
            .await
            .expect("create lease");
        return;
    }
    leases
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
        .expect("renew lease");
}

async fn create_node(nodes: &Api<Node>, leases: &Api<Lease>, name: &str) {
    nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}})),
        )
        .await
        .expect("create node");
    post_status(nodes, name, "True").await;
    renew_lease(leases, name).await;
}

fn taints(node: &Node) -> Vec<(String, String, bool)> {
    let mut t: Vec<(String, String, bool)> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect, t.time_added.is_some()))
        .collect();
    t.sort();
    t
}

fn taint(key: &str, effect: &str) -> (String, String, bool) {
    (key.to_string(), effect.to_string(), true)
}

async fn bound_pod(pods: &Api<Pod>, name: &str, node: &str, tolerations: Value) {
    pods.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "tolerations": tolerations,
                     "containers": [{"name": "c", "image": "busybox"}]},
        })),
    )
    .await
    .expect("create pod");
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}]}})),
    )
    .await
    .expect("pod status");
}

/// A kubelet's lease renewal loop.
fn keep_renewing(leases: &Api<Lease>, name: &str) -> tokio::task::JoinHandle<()> {
    let leases = leases.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            renew_lease(&leases, &name).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    })
}

/// Gone or being deleted.
async fn evicted(pods: &Api<Pod>, name: &str) -> bool {
    match pods.get_opt(name).await.expect("get pod") {
        None => true,
        Some(p) => p.metadata.deletion_timestamp.is_some(),
    }
}

#[tokio::test]
async fn lost_node_is_tainted_and_its_pods_evicted() {
    let c = Cluster::up_with_controllers_and_args(&[
        "--node-monitor-grace-period",
        "4s",
        "--node-monitor-period",
        "1s",
    ])
    .await;
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    create_node(&nodes, &leases, "lost").await;
    create_node(&nodes, &leases, "alive").await;
    // The live node's kubelet keeps renewing.
    let keep = keep_renewing(&leases, "alive");
    let ns = test_namespace(&client, "nodelifecycle").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Pods get DefaultTolerationSeconds' 300 s tolerations unless they
    // tolerate the taints themselves: these tolerate unreachable for 0 s.
    bound_pod(
        &pods,
        "intolerant",
        "lost",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 0}]),
    )
    .await;
    bound_pod(&pods, "defaulted", "lost", json!([])).await;
    let defaulted = pods.get("defaulted").await.unwrap();
    let tolerations = serde_json::to_value(defaulted.spec.unwrap().tolerations).unwrap();
    assert_eq!(
        tolerations,
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
    bound_pod(
        &pods,
        "tolerates-briefly",
        "lost",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 3}]),
    )
    .await;
    bound_pod(
        &pods,
        "tolerates-forever",
        "lost",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]),
    )
    .await;
    bound_pod(
        &pods,
        "on-alive",
        "alive",
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 0}]),
    )
    .await;

    // The lost node goes Unknown with upstream's reason and message.
    let lost = eventually("the lost node Unknown and tainted", || async {
        let n = nodes.get("lost").await.ok()?;
        (taints(&n).len() == 2).then_some(n)
    })
    .await;
    let conditions = lost.status.unwrap().conditions.unwrap();
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    for type_ in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(c.status, "Unknown", "{type_}");
    }
    assert_eq!(
        taints(&nodes.get("lost").await.unwrap()),
        [
            taint("node.kubernetes.io/unreachable", "NoExecute"),
            taint("node.kubernetes.io/unreachable", "NoSchedule"),
        ]
    );

    // Pods that tolerate the taint for 0 s go at once, with upstream's
    // DisruptionTarget condition; tolerationSeconds delays the eviction.
    eventually("the intolerant pod evicted", || async {
        evicted(&pods, "intolerant").await.then_some(())
    })
    .await;
    eventually("the briefly tolerating pod evicted", || async {
        evicted(&pods, "tolerates-briefly").await.then_some(())
    })
    .await;
    // The defaulted pod waits out its 300 s.
    assert!(!evicted(&pods, "defaulted").await);
    if let Some(p) = pods.get_opt("intolerant").await.unwrap() {
        let c = p.status.unwrap().conditions.unwrap_or_default();
        assert!(
            c.iter().any(|c| c.type_ == "DisruptionTarget"
                && c.reason.as_deref() == Some("DeletionByTaintManager")),
            "{c:?}"
        );
    }
    // The pod that tolerates forever stays, no longer ready.
    let forever = pods.get("tolerates-forever").await.unwrap();
    assert!(forever.metadata.deletion_timestamp.is_none());
    let ready = forever
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    eventually("the NodeNotReady event", || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("NodeNotReady")
                    && e.involved_object.name.as_deref() == Some("lost")
            })
            .then_some(())
    })
    .await;

    // The live node is untouched.
    let alive = nodes.get("alive").await.unwrap();
    assert!(taints(&alive).is_empty(), "{:?}", taints(&alive));
    assert!(!evicted(&pods, "on-alive").await);

    // The lost node comes back: its taints go.
    let back = keep_renewing(&leases, "lost");
    post_status(&nodes, "lost", "True").await;
    eventually("the returned node untainted", || async {
        let n = nodes.get("lost").await.ok()?;
        taints(&n).is_empty().then_some(())
    })
    .await;

    // A kubelet reporting Ready=False gets the not-ready taints (at the
    // zone's eviction rate: one node per 10 s by default).
    post_status(&nodes, "alive", "False").await;
    eventually("the not-ready taints", || async {
        let n = nodes.get("alive").await.ok()?;
        (taints(&n)
            == [
                taint("node.kubernetes.io/not-ready", "NoExecute"),
                taint("node.kubernetes.io/not-ready", "NoSchedule"),
            ])
        .then_some(())
    })
    .await;
    eventually("the pod on the not-ready node evicted", || async {
        evicted(&pods, "on-alive").await.then_some(())
    })
    .await;
    keep.abort();
    back.abort();
}

#[tokio::test]
async fn cordoned_node_gets_the_unschedulable_taint() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    create_node(&nodes, &leases, "n1").await;
    c.kubectl_ok(&["cordon", "n1"]);
    eventually("the unschedulable taint", || async {
        let n = nodes.get("n1").await.ok()?;
        (taints(&n) == [taint("node.kubernetes.io/unschedulable", "NoSchedule")]).then_some(())
    })
    .await;
    c.kubectl_ok(&["uncordon", "n1"]);
    eventually("the unschedulable taint removed", || async {
        let n = nodes.get("n1").await.ok()?;
        taints(&n).is_empty().then_some(())
    })
    .await;
}

/// The conformance behaviours "Pod Eviction, Toleration limits" and
/// "Taint, Pod Eviction on taint removal": with a NoExecute taint put on by
/// hand, pods go in the order of their tolerationSeconds, and removing the
/// taint cancels the evictions still pending.
#[tokio::test]
async fn toleration_seconds_order_evictions_and_removing_the_taint_cancels_them() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    create_node(&nodes, &leases, "n1").await;
    let ns = test_namespace(&client, "tainteviction").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let tolerate = |secs: i64| {
        json!([{"key": "rkube.test/evict", "operator": "Equal", "value": "evictTaintVal",
                "effect": "NoExecute", "tolerationSeconds": secs}])
    };
    bound_pod(&pods, "intolerant", "n1", json!([])).await;
    bound_pod(&pods, "short", "n1", tolerate(1)).await;
    bound_pod(&pods, "long", "n1", tolerate(15)).await;
    bound_pod(
        &pods,
        "other-value",
        "n1",
        json!([{"key": "rkube.test/evict", "operator": "Equal", "value": "else", "effect": "NoExecute"}]),
    )
    .await;
    let tainted = tokio::time::Instant::now();
    c.kubectl_ok(&[
        "taint",
        "nodes",
        "n1",
        "rkube.test/evict=evictTaintVal:NoExecute",
    ]);
    eventually("the intolerant pods evicted", || async {
        (evicted(&pods, "intolerant").await && evicted(&pods, "other-value").await).then_some(())
    })
    .await;
    eventually("the pod with the shorter toleration evicted", || async {
        evicted(&pods, "short").await.then_some(())
    })
    .await;
    assert!(!evicted(&pods, "long").await);
    c.kubectl_ok(&["taint", "nodes", "n1", "rkube.test/evict:NoExecute-"]);
    // Past the longer toleration, the pod is still there.
    tokio::time::sleep_until(tainted + std::time::Duration::from_secs(18)).await;
    assert!(
        !evicted(&pods, "long").await,
        "removing the taint did not cancel the eviction"
    );
    // Upstream's events, on the pods.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    for message in [
        format!("Marking for deletion Pod {ns}/short"),
        format!("Cancelling deletion of Pod {ns}/long"),
    ] {
        eventually(&message, || async {
            events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("TaintManagerEviction")
                        && e.message.as_deref() == Some(message.as_str())
                })
                .then_some(())
        })
        .await;
    }
}

/// When every node is lost at once the fault is taken to be on the control
/// plane's side, as upstream: the nodes go Unknown and unschedulable, but
/// get no NoExecute taint and keep their pods.
#[tokio::test]
async fn every_node_lost_evicts_nothing() {
    let c = Cluster::up_with_controllers_and_args(&[
        "--node-monitor-grace-period",
        "3s",
        "--node-monitor-period",
        "1s",
    ])
    .await;
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    create_node(&nodes, &leases, "only").await;
    let ns = test_namespace(&client, "disruption").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    bound_pod(&pods, "p", "only", json!([])).await;
    eventually("the node unreachable", || async {
        let n = nodes.get("only").await.ok()?;
        (!taints(&n).is_empty()).then_some(())
    })
    .await;
    // A few monitor periods later, still no NoExecute taint.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let n = nodes.get("only").await.unwrap();
    assert_eq!(
        taints(&n),
        [taint("node.kubernetes.io/unreachable", "NoSchedule")]
    );
    assert!(!evicted(&pods, "p").await);
}
