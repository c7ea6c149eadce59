//! EndpointSlice mirroring controller (upstream
//! `endpointslice-mirroring-controller`): for a Service without a
//! selector, the Endpoints its users write are mirrored into EndpointSlices
//! labelled `endpointslice.kubernetes.io/managed-by:
//! endpointslicemirroring-controller.k8s.io`, one per subset and address
//! type, owned by the Endpoints. Endpoints labelled
//! `endpointslice.kubernetes.io/skip-mirror: "true"` are not mirrored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::api_code;
use crate::endpoints::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::informer::Informers;
use crate::metrics::{self, Queue};
use crate::podutil;

pub const MIRRORING_MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Upstream's `--mirroring-max-endpoints-per-subset` default.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Annotations upstream does not copy onto mirrored slices.
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "endpoints.kubernetes.io/last-change-trigger-time",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("IPv4"),
        std::net::IpAddr::V6(_) => Some("IPv6"),
    }
}

fn endpoint(a: &EndpointAddress, ready: bool) -> Value {
    let mut e = json!({"addresses": [a.ip], "conditions": {"ready": ready}});
    if let Some(h) = &a.hostname {
        e["hostname"] = json!(h);
    }
    if let Some(n) = &a.node_name {
        e["nodeName"] = json!(n);
    }
    if let Some(r) = &a.target_ref {
        e["targetRef"] = serde_json::to_value(r).unwrap_or(Value::Null);
    }
    e
}

/// The slices (as `addressType`, `ports`, `endpoints`) the Endpoints
/// mirror to: one per subset and address type, up to
/// [`MAX_ENDPOINTS_PER_SUBSET`] endpoints each (ready ones first).
pub fn desired_slices(ep: &Endpoints) -> Vec<(String, Value, Vec<Value>)> {
    let mut out: Vec<(String, Value, Vec<Value>)> = Vec::new();
    for subset in ep.subsets.as_deref().unwrap_or_default() {
        let ports: Vec<Value> = subset
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let mut v = json!({"port": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())});
                v["name"] = json!(p.name.clone().unwrap_or_default());
                if let Some(a) = &p.app_protocol {
                    v["appProtocol"] = json!(a);
                }
                v
            })
            .collect();
        let mut by_type: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (a, r) in ready.chain(not_ready) {
            // Invalid addresses are skipped, as upstream.
            let Some(t) = address_type(&a.ip) else {
                continue;
            };
            let v = by_type.entry(t).or_default();
            if v.len() < MAX_ENDPOINTS_PER_SUBSET {
                v.push(endpoint(a, r));
            }
        }
        for (t, endpoints) in by_type {
            out.push((t.to_string(), json!(ports), endpoints));
        }
    }
    out
}

struct Ctx {
    client: Client,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
}

fn selectorless(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(|s| s.is_empty())
}

async fn reconcile(ep: Arc<Endpoints>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = ep.namespace().unwrap_or_default();
    let name = ep.name_any();
    let service = ctx.services.get(&ObjectRef::new(&name).within(&ns));
    let mirror = service.as_deref().is_some_and(selectorless)
        && ep.labels().get(SKIP_MIRROR_LABEL).map(String::as_str) != Some("true")
        && ep.metadata.deletion_timestamp.is_none();
    // Most Endpoints belong to services with selectors: when nothing is
    // mirrored for them either, the shared slice store says so without a
    // request. Mirrored ones are listed live (the store may lag our writes).
    if !mirror
        && !ctx.slices.state().iter().any(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.labels().get(SERVICE_NAME_LABEL) == Some(&name)
                && s.labels().get(MANAGED_BY_LABEL).map(String::as_str)
                    == Some(MIRRORING_MANAGED_BY)
        })
    {
        return Ok(Action::await_change());
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MIRRORING_MANAGED_BY}"
        )))
        .await?
        .items;
    let desired = if mirror { desired_slices(&ep) } else { vec![] };
    let mut labels: BTreeMap<String, String> = ep
        .labels()
        .iter()
        .filter(|(k, _)| k.as_str() != SKIP_MIRROR_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MIRRORING_MANAGED_BY.into());
    let annotations: BTreeMap<String, String> = ep
        .annotations()
        .iter()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut unused = existing;
    for (addr_type, ports, endpoints) in desired {
        let same = |s: &EndpointSlice| {
            s.address_type == addr_type
                && serde_json::to_value(s.ports.clone().unwrap_or_default()).unwrap_or_default()
                    == ports
        };
        if let Some(i) = unused.iter().position(same) {
            let s = unused.remove(i);
            let current =
                serde_json::to_value(s.endpoints.clone().unwrap_or_default()).unwrap_or_default();
            let current_labels = s.metadata.labels.clone().unwrap_or_default();
            let current_annotations = s.metadata.annotations.clone().unwrap_or_default();
            if current != json!(endpoints)
                || current_labels != labels
                || current_annotations != annotations
            {
                let mut slice = s.clone();
                slice.endpoints = serde_json::from_value(json!(endpoints)).unwrap_or_default();
                slice.metadata.labels = Some(labels.clone());
                slice.metadata.annotations = Some(annotations.clone());
                api.replace(&s.name_any(), &PostParams::default(), &slice)
                    .await?;
            }
        } else {
            let slice: EndpointSlice = serde_json::from_value(json!({
                "metadata": {
                    "generateName": format!("{name}-"),
                    "labels": labels,
                    "annotations": annotations,
                    "ownerReferences": [podutil::new_controller_ref("v1", "Endpoints", &name, ep.metadata.uid.as_deref().unwrap_or_default())],
                },
                "addressType": addr_type,
                "endpoints": endpoints,
                "ports": ports,
            }))
            .unwrap_or_default();
            match api.create(&PostParams::default(), &slice).await {
                Ok(_) => {}
                // The namespace is going away.
                Err(e) if matches!(api_code(&e), Some(403 | 404)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for s in unused {
        match api.delete(&s.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}

fn error_policy(ep: Arc<Endpoints>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(endpoints = %ep.name_any(), error = %err, "endpointslice mirroring failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the mirroring controller until cancelled.
pub async fn run(client: Client, informers: Informers, queue: Arc<Queue>) {
    let (endpoints, changes) = informers.subscribe::<Endpoints>();
    let (services, svc_changes) = informers.subscribe::<Service>();
    let slices = informers.store::<EndpointSlice>();
    informers.synced().await;
    // A Service's change (or deletion) syncs its Endpoints' slices;
    // deleted Endpoints take theirs through the garbage collector.
    let ctx = Arc::new(Ctx {
        client,
        services,
        slices,
    });
    let q = queue.clone();
    let q2 = queue.clone();
    let changes = changes.inspect(move |ep| q.add(&metrics::key(ep.as_ref())));
    Controller::for_shared_stream(changes, endpoints)
        .watches_shared_stream(svc_changes, move |svc: Arc<Service>| {
            let r = ObjectRef::<Endpoints>::new(&svc.name_any())
                .within(&svc.namespace().unwrap_or_default());
            q2.add(&metrics::key(svc.as_ref()));
            Some(r)
        })
        .run(metrics::instrument(queue, reconcile), error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slice_per_subset_and_address_type() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "ext", "namespace": "ns"},
            "subsets": [
                {"addresses": [{"ip": "10.1.0.1"}, {"ip": "fd00::1"}],
                 "notReadyAddresses": [{"ip": "10.1.0.2", "hostname": "b"}],
                 "ports": [{"name": "http", "port": 80}]},
                {"addresses": [{"ip": "10.1.0.3"}, {"ip": "not-an-ip"}], "ports": [{"port": 53, "protocol": "UDP"}]},
            ],
        }))
        .unwrap();
        let slices = desired_slices(&ep);
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[0].0, "IPv4");
        assert_eq!(slices[0].2.len(), 2);
        assert_eq!(slices[0].2[0]["conditions"]["ready"], json!(true));
        assert_eq!(slices[0].2[1]["conditions"]["ready"], json!(false));
        assert_eq!(slices[0].2[1]["hostname"], json!("b"));
        assert_eq!(slices[1].0, "IPv6");
        assert_eq!(
            slices[2].1,
            json!([{"name": "", "port": 53, "protocol": "UDP"}])
        );
        assert_eq!(slices[2].2.len(), 1);
    }
}
