//! ReplicaSet and ReplicationController controllers against a real cluster
//! (sig-apps conformance behaviours and kubectl).

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::{active_pods, eventually, mark_all_ready, mark_ready};
use crate::harness::Cluster;

fn rs(name: &str, label: &str, replicas: i32) -> ReplicaSet {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"name": label}},
            "template": {
                "metadata": {"labels": {"name": label}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
}

fn controller_uid(p: &Pod) -> Option<String> {
    p.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

// [sig-apps] ReplicaSet should serve a basic image on each replica with a
// public image [Conformance] (the pods' part: one pod per replica, owned,
// named after the ReplicaSet, then all available).
#[tokio::test]
async fn replicaset_creates_owned_pods_and_reports_status() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let created = rss
        .create(&PostParams::default(), &rs("my-rs", "basic", 3))
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();
    let list = eventually("3 pods", || async {
        let l = active_pods(&pods, "name=basic").await;
        (l.len() == 3).then_some(l)
    })
    .await;
    for p in &list {
        assert!(p.metadata.name.as_deref().unwrap().starts_with("my-rs-"));
        assert_eq!(controller_uid(p).as_deref(), Some(uid.as_str()));
    }
    mark_all_ready(&pods, "name=basic").await;
    let st = eventually("3 available", || async {
        let st = rss.get("my-rs").await.unwrap().status.unwrap();
        (st.available_replicas == Some(3)).then_some(st)
    })
    .await;
    assert_eq!(st.replicas, 3);
    assert_eq!(st.ready_replicas, Some(3));
    assert_eq!(st.fully_labeled_replicas, Some(3));
    assert_eq!(st.observed_generation, Some(1));
    // No more pods than replicas, even after the watch caught up.
    assert_eq!(active_pods(&pods, "name=basic").await.len(), 3);
}

// Scaling down deletes the not-ready pods first; kubectl scale.
#[tokio::test]
async fn replicaset_scale_down_prefers_not_ready_pods() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rss.create(&PostParams::default(), &rs("scaler", "scaler", 4))
        .await
        .unwrap();
    let list = eventually("4 pods", || async {
        let l = active_pods(&pods, "name=scaler").await;
        (l.len() == 4).then_some(l)
    })
    .await;
    let keep = list[2].metadata.name.clone().unwrap();
    mark_ready(&pods, &keep).await;
    c.kubectl_ok(&["scale", "rs", "scaler", "--replicas=1", "-n", &ns]);
    let left = eventually("1 pod", || async {
        let l = active_pods(&pods, "name=scaler").await;
        (l.len() == 1).then_some(l)
    })
    .await;
    assert_eq!(left[0].metadata.name.as_deref(), Some(keep.as_str()));
    eventually("status replicas 1", || async {
        let st = rss.get("scaler").await.unwrap().status?;
        (st.replicas == 1 && st.ready_replicas == Some(1)).then_some(())
    })
    .await;
    c.kubectl_ok(&["scale", "rs", "scaler", "--replicas=3", "-n", &ns]);
    eventually("3 pods again", || async {
        (active_pods(&pods, "name=scaler").await.len() == 3).then_some(())
    })
    .await;
}

// [sig-apps] ReplicaSet should adopt matching pods on creation and release
// no longer matching pods [Conformance]
#[tokio::test]
async fn replicaset_should_adopt_matching_pods_and_release_no_longer_matching() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let label = "pod-adoption-release";
    pods.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": label, "labels": {"name": label}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        })),
    )
    .await
    .unwrap();
    mark_ready(&pods, label).await;
    let created = rss
        .create(&PostParams::default(), &rs(label, label, 1))
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();
    eventually("orphan adopted", || async {
        let p = pods.get(label).await.unwrap();
        (controller_uid(&p).as_deref() == Some(uid.as_str())).then_some(())
    })
    .await;
    // Adopted, so no second pod (or the surplus one made before the
    // controller saw the orphan goes).
    eventually("1 pod", || async {
        (active_pods(&pods, &format!("name={label}")).await.len() == 1).then_some(())
    })
    .await;
    pods.patch(
        label,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"name": "not-matching"}}})),
    )
    .await
    .unwrap();
    eventually("released", || async {
        let p = pods.get(label).await.unwrap();
        controller_uid(&p).is_none().then_some(())
    })
    .await;
    eventually("a replacement pod", || async {
        let l = active_pods(&pods, &format!("name={label}")).await;
        (l.len() == 1 && l[0].metadata.name.as_deref() != Some(label)).then_some(())
    })
    .await;
}

// [sig-apps] ReplicationController should adopt matching pods on creation
// [Conformance] and should release no longer matching pods [Conformance]
#[tokio::test]
async fn replicationcontroller_should_adopt_and_release_pods() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "rc").await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let name = "pod-adoption";
    pods.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": name, "labels": {"name": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        })),
    )
    .await
    .unwrap();
    let created = rcs
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"name": name},
                    "template": {
                        "metadata": {"labels": {"name": name}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    },
                },
            })),
        )
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();
    eventually("orphan adopted", || async {
        let p = pods.get(name).await.unwrap();
        (controller_uid(&p).as_deref() == Some(uid.as_str())).then_some(())
    })
    .await;
    // The controller may have made a pod before it saw the orphan; the
    // surplus one it made goes.
    eventually("1 pod", || async {
        (active_pods(&pods, &format!("name={name}")).await.len() == 1).then_some(())
    })
    .await;
    assert!(controller_uid(&pods.get(name).await.unwrap()).is_some());
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"name": "released"}}})),
    )
    .await
    .unwrap();
    eventually("released", || async {
        controller_uid(&pods.get(name).await.unwrap())
            .is_none()
            .then_some(())
    })
    .await;
    // Scale through kubectl and check the RC's status follows.
    c.kubectl_ok(&["scale", "rc", name, "--replicas=2", "-n", &ns]);
    eventually("2 pods", || async {
        (active_pods(&pods, &format!("name={name}")).await.len() == 2).then_some(())
    })
    .await;
    mark_all_ready(&pods, &format!("name={name}")).await;
    eventually("rc status", || async {
        let st = rcs.get(name).await.unwrap().status?;
        (st.replicas == 2 && st.ready_replicas == Some(2) && st.available_replicas == Some(2))
            .then_some(())
    })
    .await;
}
