//! Ports of upstream's sig-apps conformance tests (test/e2e/apps/
//! replica_set.go, rc.go, deployment.go) not covered in `controllers_*`:
//! the scale and status subresources, collections, and old ReplicaSet
//! cleanup. No kubelet runs: pods become ready through `pods/status`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::{active_pods, eventually, mark_all_ready};
use crate::harness::Cluster;

fn template(label: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"name": label}},
        "spec": {"containers": [{"name": "httpd", "image": "busybox"}]},
    })
}

fn replicaset(name: &str, label: &str, replicas: i32) -> ReplicaSet {
    obj(json!({
        "metadata": {"name": name, "labels": {"name": label}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"name": label}},
            "template": template(label),
        },
    }))
}

/// Marks pods ready until `ready` reports the expected count.
async fn ready_until<F, Fut>(pods: &Api<Pod>, selector: &str, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually(what, || {
        let fut = done();
        async move {
            mark_all_ready(pods, selector).await;
            fut.await.then_some(())
        }
    })
    .await;
}

// [sig-apps] ReplicaSet Replicaset should have a working scale subresource
// [Conformance]
#[tokio::test]
async fn replicaset_should_have_a_working_scale_subresource() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rss.create(
        &PostParams::default(),
        &replicaset("test-rs", "sample-pod", 1),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=sample-pod", "1 ready replica", || async {
        rss.get("test-rs")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let scale = rss.get_scale("test-rs").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 1);
    // A PUT carries the resourceVersion read: retried on conflicts with
    // the controller's status writes, as upstream's clients do.
    eventually("scale replaced", || async {
        let mut scale = rss.get_scale("test-rs").await.unwrap();
        scale.spec.as_mut().unwrap().replicas = Some(2);
        rss.replace_scale("test-rs", &PostParams::default(), &scale)
            .await
            .ok()
    })
    .await;
    assert_eq!(
        rss.get("test-rs").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
    rss.patch_scale(
        "test-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    assert_eq!(
        rss.get("test-rs").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
    eventually("4 pods", || async {
        (active_pods(&pods, "name=sample-pod").await.len() == 4).then_some(())
    })
    .await;
}

// [sig-apps] ReplicationController should get and update a
// ReplicationController scale [Conformance]
#[tokio::test]
async fn replicationcontroller_should_get_and_update_a_scale() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "rc").await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "e2e-rc"},
            "spec": {"replicas": 1, "selector": {"name": "e2e-rc"}, "template": template("e2e-rc")},
        })),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=e2e-rc", "1 ready replica", || async {
        rcs.get("e2e-rc")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let scale = rcs.get_scale("e2e-rc").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("name=e2e-rc")
    );
    rcs.patch_scale(
        "e2e-rc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=e2e-rc", "2 ready replicas", || async {
        rcs.get("e2e-rc")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(2))
    })
    .await;
    assert_eq!(active_pods(&pods, "name=e2e-rc").await.len(), 2);
}

// [sig-apps] Deployment Deployment should have a working scale subresource
// [Conformance]
#[tokio::test]
async fn deployment_should_have_a_working_scale_subresource() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-new-deployment"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"name": "httpd"}},
                    "template": template("httpd"),
                },
            })),
        )
        .await
        .unwrap();
    ready_until(&pods, "name=httpd", "1 available replica", || async {
        deploys
            .get("test-new-deployment")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == Some(1))
    })
    .await;
    let scale = deploys.get_scale("test-new-deployment").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("name=httpd")
    );
    eventually("scale replaced", || async {
        let mut scale = deploys.get_scale("test-new-deployment").await.unwrap();
        scale.spec.as_mut().unwrap().replicas = Some(2);
        deploys
            .replace_scale("test-new-deployment", &PostParams::default(), &scale)
            .await
            .ok()
    })
    .await;
    assert_eq!(
        deploys
            .get("test-new-deployment")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(2)
    );
    deploys
        .patch_scale(
            "test-new-deployment",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(
        deploys
            .get("test-new-deployment")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(4)
    );
    ready_until(&pods, "name=httpd", "4 available replicas", || async {
        deploys
            .get("test-new-deployment")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == Some(4))
    })
    .await;
}

// [sig-apps] Deployment deployment should delete old replica sets
// [Conformance]: a Deployment adopts a matching ReplicaSet as its old one
// and, with revisionHistoryLimit 0, deletes it once scaled down.
#[tokio::test]
async fn deployment_should_delete_old_replica_sets() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rss.create(
        &PostParams::default(),
        &replicaset("test-cleanup-controller", "cleanup-pod", 1),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=cleanup-pod", "old pods ready", || async {
        rss.get("test-cleanup-controller")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let mut tpl = template("cleanup-pod");
    tpl["spec"]["containers"][0]["name"] = json!("agnhost");
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-cleanup-deployment"},
                "spec": {
                    "replicas": 1,
                    "revisionHistoryLimit": 0,
                    "selector": {"matchLabels": {"name": "cleanup-pod"}},
                    "template": tpl,
                },
            })),
        )
        .await
        .unwrap();
    ready_until(
        &pods,
        "name=cleanup-pod",
        "the old ReplicaSet deleted and one new one available",
        || async {
            let l = rss.list(&ListParams::default()).await.unwrap().items;
            let d = deploys.get("test-cleanup-deployment").await.unwrap();
            l.len() == 1
                && l[0].metadata.name.as_deref() != Some("test-cleanup-controller")
                && d.status.is_some_and(|s| s.available_replicas == Some(1))
        },
    )
    .await;
}

// [sig-apps] ReplicaSet should list and delete a collection of ReplicaSets
// [Conformance]
#[tokio::test]
async fn replicaset_should_list_and_delete_a_collection_of_replicasets() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let all: Api<ReplicaSet> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut r = replicaset("test-rs", "sample-pod", 1);
    r.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("e2e".into(), "e2e-rs".into());
    rss.create(&PostParams::default(), &r).await.unwrap();
    ready_until(&pods, "name=sample-pod", "1 ready replica", || async {
        rss.get("test-rs")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let sel = ListParams::default().labels("e2e=e2e-rs");
    let listed = all.list(&sel).await.unwrap().items;
    assert_eq!(listed.len(), 1, "listed in all namespaces");
    rss.delete_collection(&DeleteParams::default(), &sel)
        .await
        .unwrap();
    eventually("the collection deleted", || async {
        rss.list(&sel).await.unwrap().items.is_empty().then_some(())
    })
    .await;
    // Background propagation: the garbage collector takes the pods.
    eventually("its pods collected", || async {
        active_pods(&pods, "name=sample-pod")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

// [sig-apps] ReplicaSet should validate Replicaset Status endpoints
// [Conformance]
#[tokio::test]
async fn replicaset_should_validate_replicaset_status_endpoints() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rss.create(
        &PostParams::default(),
        &replicaset("test-rs", "sample-pod", 1),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=sample-pod", "1 ready replica", || async {
        rss.get("test-rs")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let got = rss.get_status("test-rs").await.unwrap();
    assert_eq!(got.status.as_ref().unwrap().replicas, 1);
    // Update the status with a condition; retry on conflicts with the
    // controller's own status writes, as upstream's RetryOnConflict.
    eventually("status updated", || async {
        let mut cur = rss.get_status("test-rs").await.unwrap();
        let st = cur.status.as_mut().unwrap();
        st.conditions.get_or_insert_with(Vec::new).push(obj(json!({
            "type": "StatusUpdate", "status": "True",
            "reason": "E2E", "message": "Set from e2e test",
        })));
        rss.replace_status("test-rs", &PostParams::default(), &cur)
            .await
            .ok()
    })
    .await;
    let has = |rs: &ReplicaSet, t: &str| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == t))
    };
    assert!(has(&rss.get("test-rs").await.unwrap(), "StatusUpdate"));
    rss.patch_status(
        "test-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{
            "type": "StatusPatched", "status": "True",
        }]}})),
    )
    .await
    .unwrap();
    assert!(has(&rss.get("test-rs").await.unwrap(), "StatusPatched"));
}

fn image(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .unwrap_or_default()
}

/// Marks ready the active pods matching `selector` whose image is `image`
/// (a kubelet that can pull only that image).
async fn mark_ready_with_image(pods: &Api<Pod>, selector: &str, img: &str) {
    for p in active_pods(pods, selector).await {
        if image(&p) == img && !is_ready(&p) {
            crate::controllers_util::mark_ready(
                pods,
                p.metadata.name.as_deref().unwrap_or_default(),
            )
            .await;
        }
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn rs_replicas(l: &[ReplicaSet], img: &str) -> Option<(i32, i32)> {
    let rs = l.iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.as_deref())
            == Some(img)
    })?;
    Some((
        rs.spec.as_ref()?.replicas?,
        rs.status.as_ref()?.available_replicas.unwrap_or(0),
    ))
}

// [sig-apps] Deployment deployment should support proportional scaling
// [Conformance]: scaling a Deployment in the middle of a rollout spreads the
// new replicas over its ReplicaSets in proportion to their sizes.
#[tokio::test]
async fn deployment_should_support_proportional_scaling() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "webserver-deployment"},
                "spec": {
                    "replicas": 10,
                    "selector": {"matchLabels": {"name": "httpd"}},
                    "strategy": {"type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}},
                    "template": template("httpd"),
                },
            })),
        )
        .await
        .unwrap();
    eventually("10 available", || async {
        mark_ready_with_image(&pods, "name=httpd", "busybox").await;
        let d = deploys.get("webserver-deployment").await.unwrap();
        d.status
            .is_some_and(|s| s.available_replicas == Some(10) && s.updated_replicas == Some(10))
            .then_some(())
    })
    .await;
    // An image that never runs: the new ReplicaSet's pods stay unready.
    deploys
        .patch(
            "webserver-deployment",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "httpd", "image": "webserver:404"}]}}}})),
        )
        .await
        .unwrap();
    eventually("the rollout stuck at 8 old + 5 new", || async {
        mark_ready_with_image(&pods, "name=httpd", "busybox").await;
        let l = rss.list(&ListParams::default()).await.unwrap().items;
        (rs_replicas(&l, "busybox") == Some((8, 8)) && rs_replicas(&l, "webserver:404")?.0 == 5)
            .then_some(())
    })
    .await;
    deploys
        .patch_scale(
            "webserver-deployment",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 30}})),
        )
        .await
        .unwrap();
    eventually("20 old + 13 new", || async {
        mark_ready_with_image(&pods, "name=httpd", "busybox").await;
        let l = rss.list(&ListParams::default()).await.unwrap().items;
        (rs_replicas(&l, "busybox")?.0 == 20 && rs_replicas(&l, "webserver:404")?.0 == 13)
            .then_some(())
    })
    .await;
}

// [sig-apps] Deployment RollingUpdateDeployment should delete old pods and
// create new ones [Conformance]: a Deployment adopts a ReplicaSet matching
// its selector, takes the next revision after it, and scales it to 0.
#[tokio::test]
async fn deployment_rolling_update_should_delete_old_pods_and_create_new_ones() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut old = replicaset("test-rolling-update-controller", "sample-pod", 1);
    old.metadata.annotations = Some(
        [(
            "deployment.kubernetes.io/revision".to_string(),
            "3546343826724305832".to_string(),
        )]
        .into(),
    );
    rss.create(&PostParams::default(), &old).await.unwrap();
    ready_until(&pods, "name=sample-pod", "old pod ready", || async {
        rss.get("test-rolling-update-controller")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == Some(1))
    })
    .await;
    let mut tpl = template("sample-pod");
    tpl["spec"]["containers"][0] = json!({"name": "agnhost", "image": "agnhost"});
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-rolling-update-deployment"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"name": "sample-pod"}},
                    "strategy": {"type": "RollingUpdate"},
                    "template": tpl,
                },
            })),
        )
        .await
        .unwrap();
    ready_until(&pods, "name=sample-pod", "the rollout complete", || async {
        let d = deploys.get("test-rolling-update-deployment").await.unwrap();
        let l = rss.list(&ListParams::default()).await.unwrap().items;
        d.status.is_some_and(|s| {
            s.updated_replicas == Some(1)
                && s.available_replicas == Some(1)
                && s.replicas == Some(1)
        }) && rs_replicas(&l, "busybox").is_some_and(|(spec, _)| spec == 0)
    })
    .await;
    let d = deploys.get("test-rolling-update-deployment").await.unwrap();
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3546343826724305833"
    );
    // The old ReplicaSet is adopted and kept (revisionHistoryLimit 10).
    let old = rss.get("test-rolling-update-controller").await.unwrap();
    assert!(
        old.metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .any(|r| r.controller == Some(true) && r.kind == "Deployment")
    );
    let left = active_pods(&pods, "name=sample-pod").await;
    assert_eq!(left.len(), 1);
    assert_eq!(image(&left[0]), "agnhost");
}

// [sig-apps] ReplicaSet Replace and Patch tests [Conformance]
#[tokio::test]
async fn replicaset_replace_and_patch() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "replicaset").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rss.create(
        &PostParams::default(),
        &replicaset("test-rs", "sample-pod", 1),
    )
    .await
    .unwrap();
    let ready = |n: i32| {
        let rss = rss.clone();
        move || {
            let rss = rss.clone();
            async move {
                rss.get("test-rs")
                    .await
                    .unwrap()
                    .status
                    .is_some_and(|s| s.ready_replicas == Some(n))
            }
        }
    };
    ready_until(&pods, "name=sample-pod", "1 ready", ready(1)).await;
    eventually("replaced", || async {
        let mut cur = rss.get("test-rs").await.unwrap();
        cur.spec.as_mut().unwrap().replicas = Some(2);
        rss.replace("test-rs", &PostParams::default(), &cur)
            .await
            .ok()
    })
    .await;
    ready_until(&pods, "name=sample-pod", "2 ready", ready(2)).await;
    rss.patch(
        "test-rs",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"replicas": 3, "template": {"spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "httpd", "image": "busybox:2"}]}}}})),
    )
    .await
    .unwrap();
    ready_until(&pods, "name=sample-pod", "3 ready", ready(3)).await;
    assert_eq!(active_pods(&pods, "name=sample-pod").await.len(), 3);
}

// [sig-apps] Deployment deployment should support rollover [Conformance]: a
// template change in the middle of a stuck rollout rolls over to the newest
// ReplicaSet and scales every older one, adopted or not, to 0.
#[tokio::test]
async fn deployment_should_support_rollover() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let kubelet = |pods: Api<Pod>| async move {
        mark_ready_with_image(&pods, "name=rollover-pod", "busybox").await;
        mark_ready_with_image(&pods, "name=rollover-pod", "agnhost").await;
    };
    rss.create(
        &PostParams::default(),
        &replicaset("test-rollover-controller", "rollover-pod", 1),
    )
    .await
    .unwrap();
    eventually("the old pod ready", || async {
        kubelet(pods.clone()).await;
        let rs = rss.get("test-rollover-controller").await.unwrap();
        rs.status
            .is_some_and(|s| s.ready_replicas == Some(1))
            .then_some(())
    })
    .await;
    let mut tpl = template("rollover-pod");
    tpl["spec"]["containers"][0] =
        json!({"name": "redis-slave", "image": "redis-slave:nonexistent"});
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-rollover-deployment"},
                "spec": {
                    "replicas": 1,
                    "minReadySeconds": 10,
                    "selector": {"matchLabels": {"name": "rollover-pod"}},
                    "strategy": {"type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                    "template": tpl,
                },
            })),
        )
        .await
        .unwrap();
    // The first rollout surges one pod that never becomes ready.
    eventually("the stuck rollout", || async {
        kubelet(pods.clone()).await;
        let l = rss.list(&ListParams::default()).await.unwrap().items;
        (l.len() == 2 && rs_replicas(&l, "redis-slave:nonexistent")?.0 == 1).then_some(())
    })
    .await;
    deploys
        .patch(
            "test-rollover-deployment",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "redis-slave", "image": "agnhost"}]}}}})),
        )
        .await
        .unwrap();
    eventually("the rollover complete", || async {
        kubelet(pods.clone()).await;
        let d = deploys.get("test-rollover-deployment").await.unwrap();
        let l = rss.list(&ListParams::default()).await.unwrap().items;
        let done = d.status.is_some_and(|s| {
            s.updated_replicas == Some(1)
                && s.available_replicas == Some(1)
                && s.replicas == Some(1)
                && s.observed_generation == d.metadata.generation
        });
        (done
            && l.len() == 3
            && rs_replicas(&l, "busybox")?.0 == 0
            && rs_replicas(&l, "redis-slave:nonexistent")?.0 == 0
            && rs_replicas(&l, "agnhost")? == (1, 1))
            .then_some(())
    })
    .await;
}

// [sig-apps] Deployment should validate Deployment Status endpoints
// [Conformance]
#[tokio::test]
async fn deployment_should_validate_deployment_status_endpoints() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-deployment"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"name": "httpd"}},
                    "template": template("httpd"),
                },
            })),
        )
        .await
        .unwrap();
    ready_until(&pods, "name=httpd", "1 available", || async {
        deploys
            .get("test-deployment")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == Some(1))
    })
    .await;
    let got = deploys.get_status("test-deployment").await.unwrap();
    assert_eq!(got.status.as_ref().unwrap().replicas, Some(1));
    eventually("status updated", || async {
        let mut cur = deploys.get_status("test-deployment").await.unwrap();
        let st = cur.status.as_mut().unwrap();
        st.conditions.get_or_insert_with(Vec::new).push(obj(json!({
            "type": "StatusUpdate", "status": "True",
            "reason": "E2E", "message": "Set from e2e test",
        })));
        deploys
            .replace_status("test-deployment", &PostParams::default(), &cur)
            .await
            .ok()
    })
    .await;
    let has = |d: &Deployment, t: &str| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == t))
    };
    assert!(has(
        &deploys.get("test-deployment").await.unwrap(),
        "StatusUpdate"
    ));
    deploys
        .patch_status(
            "test-deployment",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{
                "type": "StatusPatched", "status": "True",
            }]}})),
        )
        .await
        .unwrap();
    assert!(has(
        &deploys.get("test-deployment").await.unwrap(),
        "StatusPatched"
    ));
}

// [sig-apps] ReplicationController should test the lifecycle of a
// ReplicationController [Conformance]: create, patch, status patch and get,
// scale, list across namespaces, delete collection.
#[tokio::test]
async fn replicationcontroller_should_test_the_lifecycle_of_a_replicationcontroller() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "rc").await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let all: Api<ReplicationController> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    rcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "rc-test", "labels": {"test-rc-static": "true"}},
            "spec": {"replicas": 1, "selector": {"name": "rc-test"}, "template": template("rc-test")},
        })),
    )
    .await
    .unwrap();
    let ready =
        |n: i32| {
            let rcs = rcs.clone();
            move || {
                let rcs = rcs.clone();
                async move {
                    rcs.get("rc-test").await.unwrap().status.is_some_and(|s| {
                        s.ready_replicas == Some(n) && s.available_replicas == Some(n)
                    })
                }
            }
        };
    ready_until(&pods, "name=rc-test", "1 ready", ready(1)).await;
    let patched = rcs
        .patch(
            "rc-test",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"labels": {"test-rc": "patched"}},
                "spec": {"replicas": 2, "template": {"spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "httpd", "image": "busybox"}]}}},
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.labels.unwrap().get("test-rc"),
        Some(&"patched".to_string())
    );
    ready_until(&pods, "name=rc-test", "2 ready", ready(2)).await;
    let st = rcs
        .patch_status(
            "rc-test",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 0, "availableReplicas": 0}})),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.ready_replicas.unwrap_or(0), 0);
    let got = rcs.get_status("rc-test").await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("rc-test"));
    // The controller puts the status right again.
    ready_until(&pods, "name=rc-test", "2 ready again", ready(2)).await;
    eventually("scale updated", || async {
        let mut scale = rcs.get_scale("rc-test").await.unwrap();
        scale.spec.as_mut().unwrap().replicas = Some(3);
        rcs.replace_scale("rc-test", &PostParams::default(), &scale)
            .await
            .ok()
    })
    .await;
    ready_until(&pods, "name=rc-test", "3 ready", ready(3)).await;
    let sel = ListParams::default().labels("test-rc-static=true");
    assert_eq!(all.list(&sel).await.unwrap().items.len(), 1);
    rcs.delete_collection(&DeleteParams::default(), &sel)
        .await
        .unwrap();
    eventually("the RC deleted", || async {
        rcs.list(&sel).await.unwrap().items.is_empty().then_some(())
    })
    .await;
}

// [sig-apps] Deployment should run the lifecycle of a Deployment
// [Conformance]: create, patch, update, status update and patch, delete
// collection.
#[tokio::test]
async fn deployment_should_run_the_lifecycle_of_a_deployment() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "deploy").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "test-deployment", "labels": {"test-deployment-static": "true"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"name": "test-deployment"}},
                    "template": template("test-deployment"),
                },
            })),
        )
        .await
        .unwrap();
    let complete = |n: i32, img: &'static str| {
        let deploys = deploys.clone();
        let pods = pods.clone();
        move || {
            let deploys = deploys.clone();
            let pods = pods.clone();
            async move {
                let d = deploys.get("test-deployment").await.unwrap();
                let done = d.status.is_some_and(|s| {
                    s.available_replicas == Some(n)
                        && s.updated_replicas == Some(n)
                        && s.replicas == Some(n)
                        && s.observed_generation == d.metadata.generation
                });
                done && active_pods(&pods, "name=test-deployment")
                    .await
                    .iter()
                    .all(|p| image(p) == img)
            }
        }
    };
    ready_until(
        &pods,
        "name=test-deployment",
        "2 available",
        complete(2, "busybox"),
    )
    .await;
    let patched = deploys
        .patch(
            "test-deployment",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"labels": {"test-deployment": "patched"}},
                "spec": {"replicas": 1, "template": {"spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "httpd", "image": "busybox:patched"}]}}},
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.labels.unwrap().get("test-deployment"),
        Some(&"patched".to_string())
    );
    ready_until(
        &pods,
        "name=test-deployment",
        "the patched rollout",
        complete(1, "busybox:patched"),
    )
    .await;
    eventually("updated", || async {
        let mut cur = deploys.get("test-deployment").await.unwrap();
        cur.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("test-deployment".into(), "updated".into());
        let spec = cur.spec.as_mut().unwrap();
        spec.template.spec.as_mut().unwrap().containers[0].image = Some("busybox:updated".into());
        deploys
            .replace("test-deployment", &PostParams::default(), &cur)
            .await
            .ok()
    })
    .await;
    ready_until(
        &pods,
        "name=test-deployment",
        "the updated rollout",
        complete(1, "busybox:updated"),
    )
    .await;
    eventually("status updated", || async {
        let mut cur = deploys.get_status("test-deployment").await.unwrap();
        let st = cur.status.as_mut().unwrap();
        st.conditions.get_or_insert_with(Vec::new).push(obj(json!({
            "type": "StatusUpdate", "status": "True",
            "reason": "E2E", "message": "Set from e2e test",
        })));
        deploys
            .replace_status("test-deployment", &PostParams::default(), &cur)
            .await
            .ok()
    })
    .await;
    let patched = deploys
        .patch_status(
            "test-deployment",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"patchedstatus": "true"}},
                "status": {"readyReplicas": 1}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.annotations.unwrap().get("patchedstatus"),
        Some(&"true".to_string())
    );
    let sel = ListParams::default().labels("test-deployment-static=true");
    deploys
        .delete_collection(&DeleteParams::default(), &sel)
        .await
        .unwrap();
    eventually("the Deployment deleted", || async {
        deploys
            .list(&sel)
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    eventually("its pods collected", || async {
        active_pods(&pods, "name=test-deployment")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}
