//! Conformance (sig-network, `test/e2e/network/service.go`): the API-only
//! Service and Endpoints tests.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

use crate::conformance_util::{Events, next_event, obj, test_namespace};
use crate::harness::Cluster;

fn plain() -> WatchParams {
    WatchParams {
        bookmarks: false,
        ..WatchParams::default()
    }
}

/// Reads events until one satisfies `done` (upstream's `watchtools.Until`).
async fn until<K: std::fmt::Debug>(
    w: &mut Events<K>,
    mut done: impl FnMut(&WatchEvent<K>) -> bool,
) {
    loop {
        let ev = next_event(w).await;
        if done(&ev) {
            return;
        }
    }
}

// [sig-network] Services should find a service from listing all namespaces
// [Conformance]
#[tokio::test]
async fn services_should_find_a_service_from_listing_all_namespaces() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let all: Api<Service> = Api::all(client);
    let list = all.list(&ListParams::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("kubernetes")
                && s.metadata.namespace.as_deref() == Some("default")),
        "no default/kubernetes service"
    );
}

// [sig-network] Services should provide secure master service [Conformance]
#[tokio::test]
async fn services_should_provide_secure_master_service() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let svc = Api::<Service>::namespaced(client, "default")
        .get("kubernetes")
        .await
        .expect("default/kubernetes service");
    let spec = svc.spec.unwrap();
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.name.as_deref(), Some("https"));
    assert_eq!(port.port, 443);
}

// [sig-network] Services should delete a collection of services
// [Conformance]
#[tokio::test]
async fn services_should_delete_a_collection_of_services() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "services").await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    for (name, label) in [
        ("e2e-svc-a-x1", "delete"),
        ("e2e-svc-b-x2", "delete"),
        ("e2e-svc-c-x3", "keep"),
    ] {
        svcs.create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": name, "labels": { "e2e-test-service": label } },
                "spec": { "type": "ClusterIP", "ports": [{ "name": "http", "protocol": "TCP", "port": 8888, "targetPort": 80 }] }
            })),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        svcs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    svcs.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("e2e-test-service=delete"),
    )
    .await
    .unwrap();
    let list = svcs.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("e2e-svc-c-x3"));
}

// [sig-network] Services should complete a service status lifecycle
// [Conformance]
#[tokio::test]
async fn services_should_complete_a_service_status_lifecycle() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "services").await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let all: Api<Service> = Api::all(client.clone());
    let name = "test-service-7zq9";
    let selector = "test-service-static=true";
    let start = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    let mut w = svcs
        .watch(
            &plain().labels(selector),
            start.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    svcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": { "name": name, "labels": { "test-service-static": "true" } },
            "spec": { "type": "LoadBalancer", "loadBalancerClass": "example.com/internal-vip", "ports": [{ "name": "http", "protocol": "TCP", "port": 80, "targetPort": 80 }] }
        })),
    )
    .await
    .unwrap();
    until(
        &mut w,
        |ev| matches!(ev, WatchEvent::Added(s) if s.metadata.name.as_deref() == Some(name)),
    )
    .await;
    let list = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert!(
        list.items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(name))
    );

    svcs.get_status(name).await.expect("GET services/status");

    // Patch /status, annotations included (the service status strategy
    // keeps metadata changes).
    let patched = svcs
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "annotations": { "patchedstatus": "true" } },
                "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.1" }] } }
            })),
        )
        .await
        .expect("PATCH services/status");
    let ingress = patched
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .clone()
        .unwrap();
    assert_eq!(ingress[0].ip.as_deref(), Some("203.0.113.1"));
    assert_eq!(
        patched
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("patchedstatus"))
            .map(String::as_str),
        Some("true"),
        "annotations patched through /status"
    );
    until(&mut w, |ev| {
        matches!(ev, WatchEvent::Modified(s)
            if s.metadata.annotations.as_ref().is_some_and(|a| a.get("patchedstatus").is_some_and(|v| v == "true"))
            && s.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref()).is_some_and(|i| i[0].ip.as_deref() == Some("203.0.113.1")))
    })
    .await;

    // Update /status with a condition.
    let mut current = svcs.get_status(name).await.unwrap();
    current.status.as_mut().unwrap().conditions = Some(vec![obj(json!({
        "type": "StatusUpdate", "status": "True", "reason": "E2E",
        "message": "Set from e2e test", "lastTransitionTime": "2025-01-01T00:00:00Z"
    }))]);
    let updated = svcs
        .replace_status(name, &PostParams::default(), &current)
        .await
        .expect("PUT services/status");
    let conds = updated.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "StatusUpdate" && c.message == "Set from e2e test")
    );
    until(&mut w, |ev| {
        matches!(ev, WatchEvent::Modified(s)
            if s.status.as_ref().and_then(|st| st.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "StatusUpdate")))
    })
    .await;

    // Patch the service itself.
    let patched = svcs
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "test-service": "patched" } } })),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.labels.as_ref().unwrap()["test-service"],
        "patched"
    );
    until(&mut w, |ev| {
        matches!(ev, WatchEvent::Modified(s)
            if s.metadata.labels.as_ref().is_some_and(|l| l.get("test-service").is_some_and(|v| v == "patched")))
    })
    .await;

    svcs.delete(name, &DeleteParams::default()).await.unwrap();
    until(
        &mut w,
        |ev| matches!(ev, WatchEvent::Deleted(s) if s.metadata.name.as_deref() == Some(name)),
    )
    .await;
}

// [sig-network] Services should test the lifecycle of an Endpoint
// [Conformance]
#[tokio::test]
async fn services_should_test_the_lifecycle_of_an_endpoint() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "services").await;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let all: Api<Endpoints> = Api::all(client.clone());
    let name = "testservice";
    let selector = "test-endpoint-static=true";
    let start = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    let mut w = all
        .watch(
            &plain().labels(selector),
            start.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    eps.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": { "name": name, "labels": { "test-endpoint-static": "true" } },
            "subsets": [{
                "addresses": [{ "ip": "10.0.0.24" }],
                "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }]
            }]
        })),
    )
    .await
    .unwrap();
    until(
        &mut w,
        |ev| matches!(ev, WatchEvent::Added(e) if e.metadata.name.as_deref() == Some(name)),
    )
    .await;
    let list = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert!(
        list.items
            .iter()
            .any(|e| e.metadata.name.as_deref() == Some(name))
    );

    let mut ep = eps.get(name).await.unwrap();
    ep.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("test-service".into(), "updated".into());
    eps.replace(name, &PostParams::default(), &ep)
        .await
        .unwrap();
    until(&mut w, |ev| {
        matches!(ev, WatchEvent::Modified(e)
            if e.metadata.labels.as_ref().is_some_and(|l| l.get("test-service").is_some_and(|v| v == "updated")))
    })
    .await;
    let got = eps.get(name).await.unwrap();
    assert_eq!(got.metadata.labels.unwrap()["test-service"], "updated");

    eps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({
            "metadata": { "labels": { "test-service": "patched" } },
            "subsets": [{
                "addresses": [{ "ip": "10.0.0.25" }],
                "ports": [{ "name": "http-test", "port": 8080, "protocol": "TCP" }]
            }]
        })),
    )
    .await
    .unwrap();
    until(&mut w, |ev| {
        matches!(ev, WatchEvent::Modified(e)
            if e.metadata.labels.as_ref().is_some_and(|l| l.get("test-service").is_some_and(|v| v == "patched")))
    })
    .await;
    let got = eps.get(name).await.unwrap();
    let subset = &got.subsets.unwrap()[0];
    assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "10.0.0.25");
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
    assert_eq!(got.metadata.labels.unwrap()["test-service"], "patched");

    eps.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(selector),
    )
    .await
    .unwrap();
    until(
        &mut w,
        |ev| matches!(ev, WatchEvent::Deleted(e) if e.metadata.name.as_deref() == Some(name)),
    )
    .await;
    let list = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert!(list.items.is_empty());
}
