//! Endpoints and EndpointSlice controllers: a service's endpoints follow
//! its pods' readiness.

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::eventually;
use crate::harness::Cluster;

async fn pod_with_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let _ = pods
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                    "ports": [{"name": "http", "containerPort": 8080}]}]},
            })),
        )
        .await;
    set_ready(pods, name, ip, ready).await;
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }})),
    )
    .await
    .unwrap();
}

fn ips(ep: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = vec![];
    let mut not_ready = vec![];
    for s in ep.subsets.as_deref().unwrap_or_default() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

fn slice_ips(slices: &[EndpointSlice]) -> (Vec<String>, Vec<String>) {
    let mut ready = vec![];
    let mut not_ready = vec![];
    for s in slices {
        for e in s.endpoints.iter().flatten() {
            let r = e.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            if r {
                ready.extend(e.addresses.clone());
            } else {
                not_ready.extend(e.addresses.clone());
            }
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

#[tokio::test]
async fn service_endpoints_and_slices_follow_pod_readiness() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "endpoints").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    svcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        })),
    )
    .await
    .unwrap();
    pod_with_status(&pods, "a", "10.1.0.1", true).await;
    pod_with_status(&pods, "b", "10.1.0.2", false).await;
    let want = (vec!["10.1.0.1".to_string()], vec!["10.1.0.2".to_string()]);
    let ep = eventually("endpoints", || async {
        let ep = eps.get_opt("web").await.unwrap()?;
        (ips(&ep) == want).then_some(ep)
    })
    .await;
    let port = &ep.subsets.unwrap()[0].ports.clone().unwrap()[0];
    assert_eq!((port.port, port.name.as_deref()), (8080, Some("http")));
    let sel = ListParams::default().labels("kubernetes.io/service-name=web");
    eventually("slices", || async {
        let l = slices.list(&sel).await.unwrap().items;
        (slice_ips(&l) == want).then_some(())
    })
    .await;
    let l = slices.list(&sel).await.unwrap().items;
    assert_eq!(
        l[0].metadata.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    // b becomes ready, a is deleted.
    set_ready(&pods, "b", "10.1.0.2", true).await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let want = (vec!["10.1.0.2".to_string()], vec![]);
    eventually("endpoints follow", || async {
        let ep = eps.get_opt("web").await.unwrap()?;
        (ips(&ep) == want).then_some(())
    })
    .await;
    eventually("slices follow", || async {
        let l = slices.list(&sel).await.unwrap().items;
        (slice_ips(&l) == want).then_some(())
    })
    .await;
    // Deleting the service removes its Endpoints and slices.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("endpoints gone", || async {
        let gone = eps.get_opt("web").await.unwrap().is_none()
            && slices.list(&sel).await.unwrap().items.is_empty();
        gone.then_some(())
    })
    .await;
}

#[tokio::test]
async fn publish_not_ready_addresses_lists_every_pod_as_ready() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "endpoints").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    svcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "headless"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "ports": [{"port": 80, "targetPort": 8080}]},
        })),
    )
    .await
    .unwrap();
    pod_with_status(&pods, "x", "10.2.0.1", false).await;
    eventually("not-ready pod published", || async {
        let ep = eps.get_opt("headless").await.unwrap()?;
        (ips(&ep) == (vec!["10.2.0.1".to_string()], vec![])).then_some(())
    })
    .await;
}
