//! EndpointSlice mirroring: the Endpoints of a selector-less Service are
//! mirrored into EndpointSlices managed by
//! `endpointslicemirroring-controller.k8s.io`.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::eventually;
use crate::harness::Cluster;

fn addresses(slices: &[EndpointSlice]) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .flat_map(|e| {
            let ready = e.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            e.addresses.iter().map(move |a| (a.clone(), ready))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn selectorless_service_endpoints_are_mirrored() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "mirroring").await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    svcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "external"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        })),
    )
    .await
    .unwrap();
    eps.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "external", "labels": {"team": "a"}},
            "subsets": [{
                "addresses": [{"ip": "192.0.2.1"}],
                "notReadyAddresses": [{"ip": "192.0.2.2"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }],
        })),
    )
    .await
    .unwrap();
    let sel = ListParams::default().labels(
        "kubernetes.io/service-name=external,endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
    );
    let want = vec![
        ("192.0.2.1".to_string(), true),
        ("192.0.2.2".to_string(), false),
    ];
    let mirrored = eventually("the mirrored slice", || async {
        let l = slices.list(&sel).await.unwrap().items;
        (addresses(&l) == want).then_some(l)
    })
    .await;
    assert_eq!(mirrored.len(), 1);
    let s = &mirrored[0];
    assert_eq!(s.address_type, "IPv4");
    let port = &s.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080))
    );
    assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "a");
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Endpoints", "external")
    );
    // The selector-managed slices controller leaves it alone.
    let all = slices.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 1, "{all:?}");

    // Changes to the Endpoints follow.
    eps.patch(
        "external",
        &PatchParams::default(),
        &Patch::Merge(json!({"subsets": [{
            "addresses": [{"ip": "192.0.2.3"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }]})),
    )
    .await
    .unwrap();
    eventually("the mirrored slice follows", || async {
        let l = slices.list(&sel).await.unwrap().items;
        (addresses(&l) == [("192.0.2.3".to_string(), true)]).then_some(())
    })
    .await;

    // skip-mirror turns mirroring off.
    eps.patch(
        "external",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}}),
        ),
    )
    .await
    .unwrap();
    eventually("the mirrored slice removed", || async {
        slices
            .list(&sel)
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    eps.patch(
        "external",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": null}}}),
        ),
    )
    .await
    .unwrap();
    eventually("mirrored again", || async {
        (!slices.list(&sel).await.unwrap().items.is_empty()).then_some(())
    })
    .await;

    // Deleting the Endpoints removes the mirrored slices (they are owned
    // by it); a new Endpoints is mirrored again.
    eps.delete("external", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the mirrored slices gone with the Endpoints", || async {
        slices
            .list(&sel)
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    eps.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "external"},
            "subsets": [{"addresses": [{"ip": "192.0.2.9"}], "ports": [{"port": 9090}]}],
        })),
    )
    .await
    .unwrap();
    eventually("the new Endpoints mirrored", || async {
        let l = slices.list(&sel).await.unwrap().items;
        (addresses(&l) == [("192.0.2.9".to_string(), true)]).then_some(())
    })
    .await;

    // Deleting the service removes the mirrored slices.
    svcs.delete("external", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the mirrored slices gone with the service", || async {
        slices
            .list(&sel)
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn endpoints_of_a_service_with_a_selector_are_not_mirrored() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "mirroring").await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    svcs.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        })),
    )
    .await
    .unwrap();
    // The EndpointSlice controller's own (empty) slice appears; no mirror.
    let l = eventually("the controller's slice", || async {
        let l = slices.list(&ListParams::default()).await.unwrap().items;
        (!l.is_empty()).then_some(l)
    })
    .await;
    for s in l {
        assert_eq!(
            s.metadata.labels.unwrap()["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
    }
}
