//! Deployment controller driven by the stock kubectl: create, scale, a
//! rolling update checked against maxSurge/maxUnavailable from a watch,
//! rollout undo, and deletion with each `--cascade`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;

use crate::conformance_util::test_namespace;
use crate::controllers_util::{active_pods, eventually, mark_all_ready};
use crate::harness::Cluster;

fn image(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

async fn available(deploys: &Api<Deployment>, name: &str, n: i32) {
    eventually("deployment available", || async {
        let d = deploys.get(name).await.unwrap();
        let st = d.status?;
        (st.available_replicas == Some(n)
            && st.updated_replicas == Some(n)
            && st.replicas == Some(n)
            && st.observed_generation == d.metadata.generation)
            .then_some(())
    })
    .await;
}

/// Marks every pod ready as it appears, as kubelets would.
fn spawn_kubelet(pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            mark_all_ready(&pods, "app=web").await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test]
async fn deployment_kubectl_create_reaches_available_and_scales() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=3",
        "-n",
        &ns,
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let list = eventually("3 pods", || async {
        let l = active_pods(&pods, "app=web").await;
        (l.len() == 3).then_some(l)
    })
    .await;
    for p in &list {
        let labels = p.metadata.labels.as_ref().unwrap();
        let hash = labels.get("pod-template-hash").expect("pod-template-hash");
        assert!(
            p.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with(&format!("web-{hash}-"))
        );
    }
    mark_all_ready(&pods, "app=web").await;
    available(&deploys, "web", 3).await;
    let d = deploys.get("web").await.unwrap();
    let conds = d.status.unwrap().conditions.unwrap();
    let available_cond = conds.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(available_cond.status, "True");
    assert_eq!(
        available_cond.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    let progressing = conds.iter().find(|c| c.type_ == "Progressing").unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        d.metadata
            .annotations
            .unwrap()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    let out = c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        &ns,
        "--timeout=30s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = c.kubectl_ok(&["get", "deployment", "web", "-n", &ns]);
    assert!(out.contains("3/3"), "{out}");
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=5", "-n", &ns]);
    eventually("5 pods", || async {
        (active_pods(&pods, "app=web").await.len() == 5).then_some(())
    })
    .await;
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=2", "-n", &ns]);
    eventually("2 pods", || async {
        (active_pods(&pods, "app=web").await.len() == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deployment_rolling_update_respects_surge_and_unavailable_then_undo() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    // 4 replicas: maxSurge 25% = 1, maxUnavailable 25% = 1.
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=4",
        "-n",
        &ns,
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let kubelet = spawn_kubelet(pods.clone());
    available(&deploys, "web", 4).await;

    // Watch the pods and check the limits after every event.
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_new = Arc::new(Mutex::new(0usize));
    let checker = {
        let pods = pods.clone();
        let violations = violations.clone();
        let seen_new = seen_new.clone();
        tokio::spawn(async move {
            let mut state: HashMap<String, Pod> = HashMap::new();
            let mut listed = false;
            let mut w = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = w.next().await {
                match ev {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        state.insert(p.metadata.name.clone().unwrap(), p);
                    }
                    watcher::Event::Delete(p) => {
                        state.remove(p.metadata.name.as_deref().unwrap());
                    }
                    watcher::Event::InitDone => listed = true,
                    watcher::Event::Init => continue,
                }
                if !listed {
                    continue;
                }
                let active: Vec<&Pod> = state
                    .values()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let ready = active
                    .iter()
                    .filter(|p| {
                        p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .count();
                *seen_new.lock().unwrap() =
                    active.iter().filter(|p| image(p) == "busybox:1.36").count();
                if active.len() > 5 {
                    violations
                        .lock()
                        .unwrap()
                        .push(format!("{} pods > replicas + maxSurge", active.len()));
                }
                if ready < 3 && !state.is_empty() {
                    violations
                        .lock()
                        .unwrap()
                        .push(format!("{ready} ready < replicas - maxUnavailable"));
                }
            }
        })
    };
    c.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "busybox=busybox:1.36",
        "-n",
        &ns,
    ]);
    eventually("rolled out", || async {
        let l = active_pods(&pods, "app=web").await;
        (l.len() == 4 && l.iter().all(|p| image(p) == "busybox:1.36")).then_some(())
    })
    .await;
    available(&deploys, "web", 4).await;
    let out = c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        &ns,
        "--timeout=30s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(*seen_new.lock().unwrap(), 4);
    checker.abort();
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "limits violated: {v:?}");
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2);
    let history = c.kubectl_ok(&["rollout", "history", "deployment/web", "-n", &ns]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo: back to the first ReplicaSet, now revision 3.
    c.kubectl_ok(&["rollout", "undo", "deployment/web", "-n", &ns]);
    eventually("rolled back", || async {
        let l = active_pods(&pods, "app=web").await;
        (l.len() == 4 && l.iter().all(|p| image(p) == "busybox")).then_some(())
    })
    .await;
    available(&deploys, "web", 4).await;
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2, "undo reuses the old ReplicaSet");
    let back = list
        .iter()
        .find(|r| r.spec.as_ref().unwrap().replicas == Some(4))
        .unwrap();
    assert_eq!(
        back.metadata
            .annotations
            .as_ref()
            .unwrap()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    kubelet.abort();
}

#[tokio::test]
async fn deployment_delete_with_each_cascade_mode() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    for (name, cascade) in [
        ("bg", "background"),
        ("fg", "foreground"),
        ("orphan", "orphan"),
    ] {
        c.kubectl_ok(&[
            "create",
            "deployment",
            name,
            "--image=busybox",
            "--replicas=2",
            "-n",
            &ns,
        ]);
        let sel = format!("app={name}");
        eventually("2 pods", || async {
            (active_pods(&pods, &sel).await.len() == 2).then_some(())
        })
        .await;
        c.kubectl_ok(&[
            "delete",
            "deployment",
            name,
            &format!("--cascade={cascade}"),
            "-n",
            &ns,
        ]);
        if cascade == "orphan" {
            let rs = eventually("replicaset orphaned", || async {
                let l = rss
                    .list(&ListParams::default().labels(&sel))
                    .await
                    .unwrap()
                    .items;
                (l.len() == 1
                    && l[0]
                        .metadata
                        .owner_references
                        .as_ref()
                        .is_none_or(|r| r.is_empty()))
                .then(|| l[0].clone())
            })
            .await;
            assert_eq!(rs.spec.unwrap().replicas, Some(2));
            assert_eq!(active_pods(&pods, &sel).await.len(), 2);
        } else {
            eventually("everything collected", || async {
                let rs = rss
                    .list(&ListParams::default().labels(&sel))
                    .await
                    .unwrap()
                    .items;
                (rs.is_empty() && active_pods(&pods, &sel).await.is_empty()).then_some(())
            })
            .await;
        }
    }
}

async fn replicasets(rss: &Api<ReplicaSet>) -> Vec<ReplicaSet> {
    rss.list(&ListParams::default()).await.unwrap().items
}

#[tokio::test]
async fn deployment_pause_resume_and_restart() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "-n",
        &ns,
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let kubelet = spawn_kubelet(pods.clone());
    available(&deploys, "web", 2).await;
    c.kubectl_ok(&["rollout", "pause", "deployment/web", "-n", &ns]);
    c.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "busybox=busybox:1.36",
        "-n",
        &ns,
    ]);
    eventually("paused condition", || async {
        let d = deploys.get("web").await.unwrap();
        let conds = d.status?.conditions?;
        conds
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused"))
            .then_some(())
    })
    .await;
    assert_eq!(replicasets(&rss).await.len(), 1, "no rollout while paused");
    c.kubectl_ok(&["rollout", "resume", "deployment/web", "-n", &ns]);
    eventually("rolled out after resume", || async {
        let l = active_pods(&pods, "app=web").await;
        (l.len() == 2 && l.iter().all(|p| image(p) == "busybox:1.36")).then_some(())
    })
    .await;
    available(&deploys, "web", 2).await;
    c.kubectl_ok(&["rollout", "restart", "deployment/web", "-n", &ns]);
    eventually("restarted", || async {
        let l = active_pods(&pods, "app=web").await;
        let restarted = l.iter().all(|p| {
            p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
        });
        (l.len() == 2 && restarted).then_some(())
    })
    .await;
    available(&deploys, "web", 2).await;
    assert_eq!(replicasets(&rss).await.len(), 3);
    kubelet.abort();
}

// [sig-apps] Deployment RecreateDeployment should delete old pods and
// create new ones [Conformance]
#[tokio::test]
async fn deployment_recreate_deletes_old_pods_before_creating_new_ones() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &kube::api::PostParams::default(),
            &crate::conformance_util::obj(serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 3,
                    "strategy": {"type": "Recreate"},
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "busybox", "image": "busybox"}]},
                    },
                },
            })),
        )
        .await
        .unwrap();
    let kubelet = spawn_kubelet(pods.clone());
    available(&deploys, "web", 3).await;
    let mixed = Arc::new(Mutex::new(false));
    let checker = {
        let pods = pods.clone();
        let mixed = mixed.clone();
        tokio::spawn(async move {
            let mut state: HashMap<String, Pod> = HashMap::new();
            let mut w = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = w.next().await {
                match ev {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        state.insert(p.metadata.name.clone().unwrap(), p);
                    }
                    watcher::Event::Delete(p) => {
                        state.remove(p.metadata.name.as_deref().unwrap());
                    }
                    _ => continue,
                }
                let images: std::collections::HashSet<String> = state.values().map(image).collect();
                if images.len() > 1 {
                    *mixed.lock().unwrap() = true;
                }
            }
        })
    };
    c.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "busybox=busybox:1.36",
        "-n",
        &ns,
    ]);
    eventually("recreated", || async {
        let l = active_pods(&pods, "app=web").await;
        (l.len() == 3 && l.iter().all(|p| image(p) == "busybox:1.36")).then_some(())
    })
    .await;
    available(&deploys, "web", 3).await;
    checker.abort();
    kubelet.abort();
    assert!(!*mixed.lock().unwrap(), "old and new pods ran together");
}
