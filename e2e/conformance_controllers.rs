//! Ports of upstream conformance tests that need the controller manager or
//! the API server's own bootstrap objects: namespace deletion of pods, the
//! root CA ConfigMap, the `kubernetes` EndpointSlice, and the EndpointSlice
//! API (test/e2e/apimachinery/namespace.go, auth/service_accounts.go,
//! network/endpointslice.go).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::{eventually, mark_ready};
use crate::harness::Cluster;

// [sig-api-machinery] Namespaces [Serial] should ensure that all pods are
// removed when a namespace is deleted [Conformance]
#[tokio::test]
async fn namespaces_should_ensure_that_all_pods_are_removed_when_a_namespace_is_deleted() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = test_namespace(&client, "nsdeletetest").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "test-pod"},
            "spec": {"containers": [{"name": "nginx", "image": "busybox"}]},
        })),
    )
    .await
    .unwrap();
    mark_ready(&pods, "test-pod").await;
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    eventually("the namespace removed", || async {
        nss.get_opt(&ns).await.unwrap().is_none().then_some(())
    })
    .await;
    nss.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": ns } })),
    )
    .await
    .unwrap();
    let left = pods.list(&ListParams::default()).await.unwrap().items;
    assert!(left.is_empty(), "{left:?}");
}

fn ca(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get("ca.crt").map(String::as_str)
}

// [sig-auth] ServiceAccounts should guarantee kube-root-ca.crt exist in any
// namespace [Conformance]: published, recreated when deleted, reconciled
// when changed.
#[tokio::test]
async fn serviceaccounts_should_guarantee_kube_root_ca_crt_exist_in_any_namespace() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "svcaccounts").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let name = "kube-root-ca.crt";
    let original = eventually("the root CA ConfigMap", || async {
        let cm = cms.get_opt(name).await.unwrap()?;
        ca(&cm)?.contains("BEGIN CERTIFICATE").then_some(cm)
    })
    .await;
    let pem = ca(&original).unwrap().to_owned();
    cms.delete(name, &DeleteParams::default()).await.unwrap();
    eventually("the ConfigMap recreated", || async {
        let cm = cms.get_opt(name).await.unwrap()?;
        (cm.metadata.uid != original.metadata.uid && ca(&cm) == Some(&pem)).then_some(())
    })
    .await;
    cms.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "changed"}})),
    )
    .await
    .unwrap();
    eventually("the ConfigMap reconciled", || async {
        let cm = cms.get_opt(name).await.unwrap()?;
        (ca(&cm) == Some(&pem)).then_some(())
    })
    .await;
}

// [sig-network] EndpointSlice should have Endpoints and EndpointSlices
// pointing to API Server [Conformance]
#[tokio::test]
async fn endpointslice_should_have_endpoints_and_endpointslices_pointing_to_api_server() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let ep = eps.get("kubernetes").await.unwrap();
    let subsets = ep.subsets.unwrap();
    assert_eq!(subsets.len(), 1, "one subset");
    let addresses = subsets[0].addresses.clone().unwrap_or_default();
    assert!(!addresses.is_empty());
    let slice = slices.get("kubernetes").await.unwrap();
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .map(String::as_str),
        Some("kubernetes")
    );
    let endpoints = slice.endpoints.clone().unwrap_or_default();
    assert_eq!(endpoints.len(), addresses.len());
    assert_eq!(endpoints[0].addresses, vec![addresses[0].ip.clone()]);
    let ep_ports = subsets[0].ports.clone().unwrap();
    let slice_ports = slice.ports.unwrap();
    assert_eq!(slice_ports.len(), ep_ports.len());
    assert_eq!(slice_ports[0].port, Some(ep_ports[0].port));
    assert_eq!(slice_ports[0].name.as_deref(), ep_ports[0].name.as_deref());
    // The controllers leave it alone: still there, unchanged, later on.
    let listed = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await
        .unwrap()
        .items;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

fn slice(name: &str) -> EndpointSlice {
    obj(json!({
        "metadata": {"name": name, "labels": {"special-label": "e2e-endpointslice"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["1.2.3.4", "5.6.7.8"]}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }))
}

// [sig-network] EndpointSlice should support creating EndpointSlice API
// operations [Conformance]
#[tokio::test]
async fn endpointslice_should_support_creating_endpointslice_api_operations() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "endpointslice").await;
    // Discovery: the group, version and resource.
    let group = c.kubectl_ok(&["get", "--raw", "/apis/discovery.k8s.io/v1"]);
    let group: serde_json::Value = serde_json::from_str(&group).unwrap();
    assert!(
        group["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "endpointslices"),
        "{group}"
    );
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let all: Api<EndpointSlice> = Api::all(client.clone());
    let sel = ListParams::default().labels("special-label=e2e-endpointslice");
    let start = slices.list(&sel).await.unwrap().metadata.resource_version;
    let mut watch = slices
        .watch(
            &kube::api::WatchParams::default().labels("special-label=e2e-endpointslice"),
            &start.unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    for n in ["e2e-es-1", "e2e-es-2", "e2e-es-3"] {
        slices
            .create(&PostParams::default(), &slice(n))
            .await
            .unwrap();
    }
    let got = slices.get("e2e-es-1").await.unwrap();
    assert_eq!(
        got.endpoints.unwrap()[0].addresses,
        vec!["1.2.3.4", "5.6.7.8"]
    );
    assert_eq!(slices.list(&sel).await.unwrap().items.len(), 3);
    assert!(all.list(&sel).await.unwrap().items.len() >= 3);
    let mut added = 0;
    while added < 3 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(30), watch.try_next())
            .await
            .expect("watch event in time")
            .unwrap()
            .expect("watch open");
        match ev {
            WatchEvent::Added(_) => added += 1,
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let patched = slices
        .patch(
            "e2e-es-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"patched": "true"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.annotations.unwrap().get("patched"),
        Some(&"true".to_string())
    );
    let mut cur = slices.get("e2e-es-1").await.unwrap();
    cur.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("updated".into(), "true".into());
    let updated = slices
        .replace("e2e-es-1", &PostParams::default(), &cur)
        .await
        .unwrap();
    assert_eq!(
        updated.metadata.annotations.unwrap().get("updated"),
        Some(&"true".to_string())
    );
    slices
        .delete("e2e-es-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(slices.get_opt("e2e-es-1").await.unwrap().is_none());
    assert_eq!(slices.list(&sel).await.unwrap().items.len(), 2);
    slices
        .delete_collection(&DeleteParams::default(), &sel)
        .await
        .unwrap();
    assert!(slices.list(&sel).await.unwrap().items.is_empty());
}
