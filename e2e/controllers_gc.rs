//! Garbage collector (sig-api-machinery conformance behaviours) and
//! kubectl's `--cascade`.

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::{active_pods, eventually};
use crate::harness::Cluster;

fn rc(name: &str, replicas: i32) -> ReplicationController {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"app": name},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
}

async fn rc_with_pods(client: &kube::Client, ns: &str, name: &str, n: usize) -> Vec<Pod> {
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    rcs.create(&PostParams::default(), &rc(name, n as i32))
        .await
        .unwrap();
    eventually("the rc's pods", || async {
        let l = active_pods(&pods, &format!("app={name}")).await;
        (l.len() == n).then_some(l)
    })
    .await
}

// [sig-api-machinery] Garbage collector should delete pods created by rc
// when not orphaning [Conformance]
#[tokio::test]
async fn gc_should_delete_pods_created_by_rc_when_not_orphaning() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "gc").await;
    rc_with_pods(&client, &ns, "simpletest", 2).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rcs.delete("simpletest", &DeleteParams::background())
        .await
        .unwrap();
    eventually("pods collected", || async {
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

// [sig-api-machinery] Garbage collector should orphan pods created by rc if
// delete options say so [Conformance]; and kubectl delete --cascade=orphan.
#[tokio::test]
async fn gc_should_orphan_pods_created_by_rc_if_delete_options_say_so() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "gc").await;
    rc_with_pods(&client, &ns, "orphaned", 2).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rcs.delete("orphaned", &DeleteParams::orphan())
        .await
        .unwrap();
    eventually("rc gone", || async {
        rcs.get_opt("orphaned")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let left = active_pods(&pods, "app=orphaned").await;
    assert_eq!(left.len(), 2);
    for p in left {
        assert!(p.metadata.owner_references.unwrap_or_default().is_empty());
    }
    // The same through kubectl.
    rc_with_pods(&client, &ns, "kubectl-orphan", 1).await;
    c.kubectl_ok(&[
        "delete",
        "rc",
        "kubectl-orphan",
        "--cascade=orphan",
        "-n",
        &ns,
    ]);
    eventually("rc gone", || async {
        rcs.get_opt("kubectl-orphan")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(active_pods(&pods, "app=kubectl-orphan").await.len(), 1);
}

// [sig-api-machinery] Garbage collector should keep the rc around until all
// its pods are deleted if the deleteOptions says so [Conformance]
#[tokio::test]
async fn gc_should_keep_the_rc_around_until_all_its_pods_are_deleted() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "gc").await;
    let list = rc_with_pods(&client, &ns, "foreground", 2).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // A finalizer on one pod holds its deletion (as a slow kubelet would).
    let held = list[0].metadata.name.clone().unwrap();
    pods.patch(
        &held,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["e2e.rkube.io/hold"]}})),
    )
    .await
    .unwrap();
    rcs.delete("foreground", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("held pod being deleted", || async {
        let p = pods.get(&held).await.unwrap();
        p.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    let got = match rcs.get("foreground").await {
        Ok(g) => g,
        Err(e) => panic!("{e}\n{}", c.log()),
    };
    assert!(got.metadata.deletion_timestamp.is_some());
    assert!(
        got.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    pods.patch(
        &held,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("rc deleted after its pods", || async {
        rcs.get_opt("foreground")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn owned_pod(name: &str, owners: &[(&str, &str)]) -> Pod {
    let refs: Vec<_> = owners
        .iter()
        .map(|(n, uid)| json!({"apiVersion": "v1", "kind": "Pod", "name": n, "uid": uid, "blockOwnerDeletion": true}))
        .collect();
    obj(json!({
        "metadata": {"name": name, "ownerReferences": refs},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
}

// [sig-api-machinery] Garbage collector should not be blocked by
// dependency circle [Conformance]
#[tokio::test]
async fn gc_should_not_be_blocked_by_dependency_circle() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "gc").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    let p1 = pods.create(&pp, &owned_pod("pod1", &[])).await.unwrap();
    let uid1 = p1.metadata.uid.clone().unwrap();
    let p2 = pods
        .create(&pp, &owned_pod("pod2", &[("pod1", &uid1)]))
        .await
        .unwrap();
    let uid2 = p2.metadata.uid.clone().unwrap();
    let p3 = pods
        .create(&pp, &owned_pod("pod3", &[("pod2", &uid2)]))
        .await
        .unwrap();
    let uid3 = p3.metadata.uid.clone().unwrap();
    pods.patch(
        "pod1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "pod3", "uid": uid3, "blockOwnerDeletion": true}
        ]}})),
    )
    .await
    .unwrap();
    pods.delete("pod1", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the circle collected", || async {
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

// [sig-api-machinery] Garbage collector should not delete dependents that
// have both valid owner and owner that's waiting for dependents to be
// deleted [Conformance]
#[tokio::test]
async fn gc_should_not_delete_dependents_that_have_a_valid_owner() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "gc").await;
    let list = rc_with_pods(&client, &ns, "to-be-deleted", 2).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // A second owner (not selecting the pods) that stays.
    let stays = rcs
        .create(&PostParams::default(), &rc("to-stay", 0))
        .await
        .unwrap();
    let stay_uid = stays.metadata.uid.unwrap();
    let shared = list[0].metadata.name.clone().unwrap();
    let mut refs = list[0].metadata.owner_references.clone().unwrap();
    refs.push(obj(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "name": "to-stay", "uid": stay_uid,
    })));
    pods.patch(
        &shared,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": refs}})),
    )
    .await
    .unwrap();
    rcs.delete("to-be-deleted", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("deleted owner gone", || async {
        rcs.get_opt("to-be-deleted")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let left = pods.list(&Default::default()).await.unwrap().items;
    assert_eq!(left.len(), 1, "only the pod with a valid owner stays");
    assert_eq!(left[0].metadata.name.as_deref(), Some(shared.as_str()));
}
