//! The kubelet with the simulated runtime: node registration and
//! conditions, node leases, pod status as upstream reports it, deletion,
//! init containers, active deadlines, many nodes in one process, and the
//! standalone `rkube kubelet`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use crate::harness::{Cluster, rkube_binary};

/// Generous: these wait for something that happens within seconds.
const PATIENCE: Duration = Duration::from_secs(60);

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

fn condition<'a>(obj: &'a Value, path: &str, kind: &str) -> Option<&'a Value> {
    obj.pointer(path)?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

async fn ready_node(client: &kube::Client, name: &str) -> Value {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_until(&format!("node {name} Ready"), || async {
        let n = json_of(&nodes.get_opt(name).await.ok()??);
        (condition(&n, "/status/conditions", "Ready")?["status"] == "True").then_some(n)
    })
    .await
}

fn pod(name: &str, node: &str, extra_spec: Value) -> Pod {
    let mut spec = json!({
        "nodeName": node,
        "containers": [{"name": "app", "image": "busybox"}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("pod")
}

async fn running_pod(api: &Api<Pod>, name: &str) -> Value {
    wait_until(&format!("pod {name} Running"), || async {
        let p = json_of(&api.get_opt(name).await.ok()??);
        (p.pointer("/status/phase")? == "Running").then_some(p)
    })
    .await
}

#[tokio::test]
async fn simulated_node_registers_ready_and_renews_its_lease() {
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "2"]).await;
    let client = cluster.client().await;
    let node = ready_node(&client, "sim-node-1").await;
    let status = &node["status"];
    assert_eq!(status["capacity"]["cpu"], "32");
    assert_eq!(status["capacity"]["memory"], "256Gi");
    assert_eq!(status["capacity"]["pods"], "110");
    assert_eq!(status["allocatable"]["pods"], "110");
    assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    assert_eq!(status["nodeInfo"]["operatingSystem"], "linux");
    assert!(
        status["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("simulated://")
    );
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        "sim-node-1"
    );
    for (kind, want, reason) in [
        ("Ready", "True", "KubeletReady"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
    ] {
        let c = condition(&node, "/status/conditions", kind).expect(kind);
        assert_eq!(c["status"], want, "{kind}");
        assert_eq!(c["reason"], reason, "{kind}");
    }
    let addresses = status["addresses"].as_array().unwrap();
    assert!(addresses.iter().any(|a| a["type"] == "InternalIP"));
    assert!(
        addresses
            .iter()
            .any(|a| a["type"] == "Hostname" && a["address"] == "sim-node-1")
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = wait_until("the node lease", || async {
        leases.get_opt("sim-node-1").await.ok()?
    })
    .await;
    let spec = first.spec.clone().expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("sim-node-1"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &first.metadata.owner_references.clone().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "sim-node-1")
    );
    assert_eq!(Some(owner.uid.as_str()), node["metadata"]["uid"].as_str());
    // Renewed: the renew time moves on.
    wait_until("the lease to be renewed", || async {
        let l = leases.get_opt("sim-node-1").await.ok()??;
        (l.spec?.renew_time != spec.renew_time).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pod_bound_to_a_simulated_node_runs_and_deletion_completes() {
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "1"]).await;
    let client = cluster.client().await;
    let node = ready_node(&client, "sim-node-0").await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut p = pod("web", "sim-node-0", json!({}));
    p.spec.as_mut().unwrap().containers[0].resources = serde_json::from_value(json!({
        "requests": {"cpu": "100m"}
    }))
    .ok();
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let p = running_pod(&api, "web").await;
    let status = &p["status"];
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        let c = condition(&p, "/status/conditions", kind).expect(kind);
        assert_eq!(c["status"], "True", "{kind}");
    }
    let c = &status["containerStatuses"][0];
    assert_eq!(c["name"], "app");
    assert!(c["state"]["running"]["startedAt"].is_string());
    assert_eq!(c["ready"], true);
    assert_eq!(c["started"], true);
    assert_eq!(c["restartCount"], 0);
    assert_eq!(c["image"], "busybox");
    assert!(c["imageID"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        c["containerID"]
            .as_str()
            .unwrap()
            .starts_with("simulated://")
    );
    let host_ip = node["status"]["addresses"][0]["address"].clone();
    assert_eq!(status["hostIP"], host_ip);
    assert_eq!(status["hostIPs"][0]["ip"], host_ip);
    assert!(status["podIP"].is_string());
    assert_eq!(status["podIPs"][0]["ip"], status["podIP"]);
    assert_ne!(status["podIP"], host_ip);
    assert!(status["startTime"].is_string());
    assert_eq!(status["qosClass"], "Burstable");
    // kubectl sees it Ready.
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);

    // A second pod gets another address.
    api.create(
        &PostParams::default(),
        &pod("web2", "sim-node-0", json!({})),
    )
    .await
    .expect("create");
    let p2 = running_pod(&api, "web2").await;
    assert_ne!(p2["status"]["podIP"], status["podIP"]);

    // Graceful deletion completes: the kubelet stops the containers and
    // confirms with a zero grace period.
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the pod to be gone", || async {
        matches!(api.get_opt("web").await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn init_containers_complete_in_order_and_sidecars_run() {
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "1"]).await;
    let client = cluster.client().await;
    ready_node(&client, "sim-node-0").await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let spec = json!({"initContainers": [
        {"name": "first", "image": "busybox"},
        {"name": "second", "image": "busybox"},
        {"name": "sidecar", "image": "busybox", "restartPolicy": "Always"},
    ]});
    api.create(&PostParams::default(), &pod("init", "sim-node-0", spec))
        .await
        .expect("create");
    let p = running_pod(&api, "init").await;
    let init = p["status"]["initContainerStatuses"]
        .as_array()
        .expect("init statuses");
    let names: Vec<&str> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["first", "second", "sidecar"]);
    for c in &init[..2] {
        assert_eq!(c["state"]["terminated"]["exitCode"], 0);
        assert_eq!(c["state"]["terminated"]["reason"], "Completed");
    }
    assert!(init[2]["state"]["running"].is_object());
    let initialized = condition(&p, "/status/conditions", "Initialized").unwrap();
    assert_eq!(initialized["status"], "True");
}

#[tokio::test]
async fn active_deadline_fails_the_pod() {
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "1"]).await;
    let client = cluster.client().await;
    ready_node(&client, "sim-node-0").await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let spec = json!({"activeDeadlineSeconds": 2});
    api.create(&PostParams::default(), &pod("deadline", "sim-node-0", spec))
        .await
        .expect("create");
    let p = wait_until("the pod to fail", || async {
        let p = json_of(&api.get_opt("deadline").await.ok()??);
        (p.pointer("/status/phase")? == "Failed").then_some(p)
    })
    .await;
    assert_eq!(p["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        p["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    assert!(p["status"]["containerStatuses"][0]["state"]["terminated"].is_object());
    // A terminal pod is deleted at once.
    api.delete("deadline", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the pod to be gone", || async {
        matches!(api.get_opt("deadline").await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_hundred_simulated_nodes_run_two_thousand_pods() {
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "200"]).await;
    let client = cluster.client().await;
    ready_node(&client, "sim-node-199").await;
    let nodes: Api<Node> = Api::all(client.clone());
    wait_until("200 nodes", || async {
        (nodes.list(&ListParams::default()).await.ok()?.items.len() == 200).then_some(())
    })
    .await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    use futures::StreamExt;
    futures::stream::iter(0..2000)
        .for_each_concurrent(32, |i| {
            let api = api.clone();
            async move {
                let p = pod(
                    &format!("p-{i}"),
                    &format!("sim-node-{}", i % 200),
                    json!({}),
                );
                api.create(&PostParams::default(), &p)
                    .await
                    .expect("create");
            }
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let running = api
            .list(&ListParams::default().fields("status.phase=Running"))
            .await
            .expect("list")
            .items;
        if running.len() == 2000 {
            let nodes: std::collections::HashSet<_> = running
                .iter()
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            assert_eq!(nodes.len(), 200);
            let ips: std::collections::HashSet<_> = running
                .iter()
                .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
                .collect();
            assert_eq!(ips.len(), 2000, "pod IPs are unique");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 2000 pods Running",
            running.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Kubelet(std::process::Child);

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn standalone_kubelet_runs_its_pods() {
    let cluster = Cluster::up().await;
    let kubeconfig = cluster.kubeconfig();
    // With no container runtime (nothing on the endpoint, no containerd
    // to start) it refuses, naming the fixes: no silent simulation.
    let out = Command::new(rkube_binary())
        .args(["kubelet", "--node-name", "solo", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--root-dir")
        .arg(cluster.dir.path().join("kubelet"))
        .args([
            "--container-runtime-endpoint",
            "unix:///nonexistent/cri.sock",
        ])
        .env("PATH", "/nonexistent")
        .output()
        .expect("run rkube kubelet");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--runtime=simulated"), "{stderr}");
    assert!(stderr.contains("hack/install-deps.sh"), "{stderr}");

    let _kubelet = Kubelet(
        Command::new(rkube_binary())
            .args([
                "kubelet",
                "--runtime=simulated",
                "--node-name",
                "solo",
                "--node-ip",
                "192.0.2.10",
                "--pod-cidr",
                "10.244.7.0/24",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rkube kubelet"),
    );
    let client = cluster.client().await;
    let node = ready_node(&client, "solo").await;
    assert_eq!(node["spec"]["podCIDR"], "10.244.7.0/24");
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &pod("solo-pod", "solo", json!({})))
        .await
        .expect("create");
    let p = running_pod(&api, "solo-pod").await;
    assert_eq!(p["status"]["hostIP"], "192.0.2.10");
    assert!(
        p["status"]["podIP"]
            .as_str()
            .unwrap()
            .starts_with("10.244.7.")
    );
}

#[tokio::test]
async fn a_status_changed_by_others_is_reposted() {
    // The node lifecycle controller marks a node Unknown when it misses
    // heartbeats; the kubelet, alive again, posts Ready within its status
    // update period (10 s), not its 5-minute report period.
    let cluster = Cluster::up_with_args(&["--simulated-nodes", "1"]).await;
    let client = cluster.client().await;
    ready_node(&client, "sim-node-0").await;
    let nodes: Api<Node> = Api::all(client.clone());
    let unknown = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown",
        "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."}]}});
    nodes
        .patch_status(
            "sim-node-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(unknown),
        )
        .await
        .unwrap();
    let n = json_of(&nodes.get("sim-node-0").await.unwrap());
    assert_eq!(
        condition(&n, "/status/conditions", "Ready").unwrap()["status"],
        "Unknown"
    );
    ready_node(&client, "sim-node-0").await;
}
