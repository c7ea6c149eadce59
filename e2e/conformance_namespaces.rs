//! Conformance (sig-api-machinery, `test/e2e/apimachinery/namespace.go`):
//! namespace update, patch, status and finalize; deletion.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{api_status, obj, test_namespace};
use crate::harness::Cluster;

// [sig-api-machinery] Namespaces [Serial] should patch a Namespace
// [Conformance]
#[tokio::test]
async fn namespaces_should_patch_a_namespace() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = "nspatchtest-0d1f2c3b";
    nss.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name } })),
    )
    .await
    .unwrap();
    nss.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "testLabel": "testValue" } } })),
    )
    .await
    .unwrap();
    let got = nss.get(name).await.unwrap();
    assert_eq!(
        got.metadata
            .labels
            .unwrap()
            .get("testLabel")
            .map(String::as_str),
        Some("testValue")
    );
}

// [sig-api-machinery] Namespaces [Serial] should apply an update to a
// Namespace [Conformance]
#[tokio::test]
async fn namespaces_should_apply_an_update_to_a_namespace() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = test_namespace(&client, "namespaces").await;
    let mut ns = nss.get(&name).await.unwrap();
    ns.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("e2e-update-namespace".into(), "updated".into());
    let updated = nss
        .replace(&name, &PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(
        updated.metadata.labels.as_ref().unwrap()["e2e-update-namespace"],
        "updated"
    );
    let got = nss.get(&name).await.unwrap();
    assert_eq!(
        got.metadata.labels.unwrap()["e2e-update-namespace"],
        "updated"
    );
}

// [sig-api-machinery] Namespaces [Serial] should apply changes to a namespace
// status [Conformance]
#[tokio::test]
async fn namespaces_should_apply_changes_to_a_namespace_status() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = test_namespace(&client, "namespaces").await;
    let ns = nss.get(&name).await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    let status = nss.get_status(&name).await.expect("GET namespaces/status");
    assert_eq!(status.status.unwrap().phase.as_deref(), Some("Active"));

    let patched = nss
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "conditions": [{
                "type": "StatusPatch", "status": "True",
                "reason": "E2E", "message": "Patched by an e2e test"
            }] } })),
        )
        .await
        .expect("PATCH namespaces/status");
    let conds = patched.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conds.iter().any(|c| c.type_ == "StatusPatch"
            && c.status == "True"
            && c.message.as_deref() == Some("Patched by an e2e test")),
        "{conds:?}"
    );

    let mut current = nss.get_status(&name).await.unwrap();
    let st = current.status.as_mut().unwrap();
    st.conditions.get_or_insert_with(Vec::new).push(obj(json!({
        "type": "StatusUpdate", "status": "True",
        "reason": "E2E", "message": "Updated by an e2e test"
    })));
    let updated = nss
        .replace_status(&name, &PostParams::default(), &current)
        .await
        .expect("PUT namespaces/status");
    let conds = updated.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "StatusUpdate"
                && c.message.as_deref() == Some("Updated by an e2e test")),
        "{conds:?}"
    );
    assert!(conds.iter().any(|c| c.type_ == "StatusPatch"), "{conds:?}");
}

// [sig-api-machinery] Namespaces [Serial] should apply a finalizer to a
// Namespace [Conformance]
#[tokio::test]
async fn namespaces_should_apply_a_finalizer_to_a_namespace() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = "e2e-ns-finalizer";
    nss.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name } })),
    )
    .await
    .unwrap();
    const FAKE: &str = "e2e.example.com/fakeFinalizer";

    let mut ns = nss.get(name).await.unwrap();
    ns.spec
        .get_or_insert_with(Default::default)
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(FAKE.into());
    let updated: Namespace = nss
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
        .expect("PUT namespaces/finalize");
    let fins = updated.spec.unwrap().finalizers.unwrap_or_default();
    assert!(fins.iter().any(|f| f == FAKE), "{fins:?}");
    assert!(fins.iter().any(|f| f == "kubernetes"), "{fins:?}");

    let mut ns = nss.get(name).await.unwrap();
    ns.spec
        .as_mut()
        .unwrap()
        .finalizers
        .as_mut()
        .unwrap()
        .retain(|f| f != FAKE);
    let updated: Namespace = nss
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
        .expect("PUT namespaces/finalize");
    let fins = updated.spec.unwrap().finalizers.unwrap_or_default();
    assert!(!fins.iter().any(|f| f == FAKE), "{fins:?}");
}

// Part of [sig-api-machinery] Namespaces [Serial] should ensure that all
// services are removed when a namespace is deleted [Conformance]: what the
// API server alone does. DELETE marks the namespace Terminating (with a
// deletionTimestamp, kept while spec.finalizers is non-empty), and the
// NamespaceLifecycle admission refuses new content in it.
#[tokio::test]
async fn namespace_deletion_marks_terminating_and_refuses_new_content() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = test_namespace(&client, "nsdeletetest").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &name);
    services
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": "test-service" },
                "spec": { "selector": { "foo": "bar" }, "ports": [{ "port": 80, "targetPort": 80 }] }
            })),
        )
        .await
        .unwrap();
    let deleted = nss.delete(&name, &DeleteParams::default()).await.unwrap();
    let ns = deleted
        .left()
        .expect("DELETE returns the terminating namespace");
    assert!(ns.metadata.deletion_timestamp.is_some(), "{ns:?}");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));

    let got = nss.get(&name).await.unwrap();
    assert!(got.metadata.deletion_timestamp.is_some());
    assert_eq!(got.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert_eq!(
        got.spec.unwrap().finalizers.unwrap_or_default(),
        ["kubernetes"]
    );
    // A second delete is accepted (idempotent while terminating).
    nss.delete(&name, &DeleteParams::default()).await.unwrap();

    let err = Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": "late" } })),
        )
        .await
        .expect_err("create in a terminating namespace");
    let s = api_status(err);
    assert_eq!(s.code, 403, "{s:?}");
    assert_eq!(s.reason, "Forbidden", "{s:?}");
    assert!(
        s.message.contains(&format!(
            "unable to create new content in namespace {name} because it is being terminated"
        )),
        "{s:?}"
    );
}

// [sig-api-machinery] Namespaces [Serial] should ensure that all services are
// removed when a namespace is deleted [Conformance]
#[tokio::test]
async fn namespaces_should_ensure_that_all_services_are_removed_when_a_namespace_is_deleted() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = "nsdeletetest-services";
    nss.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name } })),
    )
    .await
    .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), name);
    services
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": "test-service" },
                "spec": { "selector": { "foo": "bar" }, "ports": [{ "port": 80, "targetPort": 80 }] }
            })),
        )
        .await
        .unwrap();
    nss.delete(name, &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while nss.get_opt(name).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "namespace {name} not removed in 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nss.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name } })),
    )
    .await
    .unwrap();
    let list = services.list(&ListParams::default()).await.unwrap();
    assert!(list.items.is_empty(), "{list:?}");
}
