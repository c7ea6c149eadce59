//! Endpoints and EndpointSlice controllers (upstream `endpoints-controller`
//! and `endpointslice-controller`): for every Service with a selector, the
//! selected pods' IPs as ready or not-ready addresses, with each service
//! port resolved against the pod (named target ports included), and
//! `publishNotReadyAddresses` honoured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::api_code;
use crate::informer::Informers;
use crate::podutil::{self, Selector};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

/// A resolved port: (name, port, protocol).
pub type ResolvedPort = (String, i32, String);

/// A pod endpoint of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub ready: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
    pub pod_name: String,
    pub pod_uid: String,
    /// Resolved ports: (name, port, protocol).
    pub ports: Vec<ResolvedPort>,
}

/// Upstream `FindPort`: a numeric target port as is; a named one from the
/// pod's container ports of the same protocol.
pub fn resolve_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.as_deref().unwrap_or_default().iter().find_map(|p| {
                    (p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
            })
        }
    }
}

/// The endpoints of a service from the pods of its namespace.
pub fn pod_endpoints(svc: &Service, pods: &[Arc<Pod>]) -> Vec<PodEndpoint> {
    let Some(spec) = svc.spec.as_ref() else {
        return vec![];
    };
    let Some(sel) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        return vec![];
    };
    let selector = Selector::from_map(sel);
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let mut out = Vec::new();
    for pod in pods {
        if !selector.matches(pod.metadata.labels.as_ref()) {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !publish_not_ready {
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let ports = spec
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|sp| {
                resolve_port(pod, sp).map(|p| {
                    (
                        sp.name.clone().unwrap_or_default(),
                        p,
                        sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    )
                })
            })
            .collect();
        out.push(PodEndpoint {
            ip,
            ready: publish_not_ready || (podutil::is_ready(pod) && !terminating),
            terminating,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            pod_name: pod.name_any(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            ports,
        });
    }
    out.sort_by(|a, b| a.ip.cmp(&b.ip).then(a.pod_name.cmp(&b.pod_name)));
    out
}

fn address(e: &PodEndpoint, ns: &str) -> Value {
    let mut a = json!({
        "ip": e.ip,
        "targetRef": {"kind": "Pod", "namespace": ns, "name": e.pod_name, "uid": e.pod_uid},
    });
    if let Some(n) = &e.node_name {
        a["nodeName"] = json!(n);
    }
    a
}

/// The Endpoints subsets: addresses grouped by their resolved port set.
pub fn subsets(eps: &[PodEndpoint], ns: &str) -> Value {
    let mut groups: BTreeMap<Vec<ResolvedPort>, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for e in eps {
        let g = groups.entry(e.ports.clone()).or_default();
        if e.ready {
            g.0.push(address(e, ns));
        } else {
            g.1.push(address(e, ns));
        }
    }
    let subsets: Vec<Value> = groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| {
            let mut s = json!({});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            if !ports.is_empty() {
                s["ports"] = json!(
                    ports
                        .iter()
                        .map(|(n, p, proto)| {
                            let mut v = json!({"port": p, "protocol": proto});
                            if !n.is_empty() {
                                v["name"] = json!(n);
                            }
                            v
                        })
                        .collect::<Vec<_>>()
                );
            }
            s
        })
        .collect();
    json!(subsets)
}

struct Ctx {
    client: Client,
    pods: Store<Pod>,
}

fn namespace_pods(pods: &Store<Pod>, ns: &str) -> Vec<Arc<Pod>> {
    pods.state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .collect()
}

async fn reconcile_endpoints(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    // Selector-less services keep the Endpoints their users write.
    if svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(|s| s.is_empty())
    {
        return Ok(Action::await_change());
    }
    let eps = pod_endpoints(&svc, &namespace_pods(&ctx.pods, &ns));
    let desired_subsets = subsets(&eps, &ns);
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        None => {
            let ep: Endpoints = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "subsets": desired_subsets,
            }))
            .unwrap_or_default();
            match api.create(&PostParams::default(), &ep).await {
                Ok(_) => {}
                Err(e) if matches!(api_code(&e), Some(403 | 404 | 409)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(existing) => {
            let current = serde_json::to_value(&existing.subsets).unwrap_or(Value::Null);
            let current = if current.is_null() {
                json!([])
            } else {
                current
            };
            if current != desired_subsets
                || existing.metadata.labels.clone().unwrap_or_default() != labels
            {
                let mut ep = existing.clone();
                ep.metadata.labels = Some(labels);
                ep.subsets = serde_json::from_value(desired_subsets).ok();
                api.replace(&name, &PostParams::default(), &ep).await?;
            }
        }
    }
    Ok(Action::await_change())
}

async fn reconcile_slices(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    if svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(|s| s.is_empty())
    {
        return Ok(Action::await_change());
    }
    let eps = pod_endpoints(&svc, &namespace_pods(&ctx.pods, &ns));
    // One slice per resolved port set.
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<&PodEndpoint>> = BTreeMap::new();
    for e in &eps {
        groups.entry(e.ports.clone()).or_default().push(e);
    }
    if groups.is_empty() {
        // Upstream keeps one (empty) slice with the service's ports.
        groups.insert(vec![], vec![]);
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        )))
        .await?
        .items;
    let mut unused: Vec<EndpointSlice> = existing;
    for (ports, members) in groups {
        let ports_json: Vec<Value> = ports
            .iter()
            .map(|(n, p, proto)| json!({"name": n, "port": p, "protocol": proto}))
            .collect();
        let endpoints: Vec<Value> = members
            .iter()
            .map(|e| {
                let mut v = json!({
                    "addresses": [e.ip],
                    "conditions": {"ready": e.ready && !e.terminating, "serving": e.ready, "terminating": e.terminating},
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": e.pod_name, "uid": e.pod_uid},
                });
                if let Some(n) = &e.node_name {
                    v["nodeName"] = json!(n);
                }
                v
            })
            .collect();
        let body = json!({"endpoints": endpoints, "ports": ports_json});
        let same_ports = |s: &EndpointSlice| {
            serde_json::to_value(s.ports.clone().unwrap_or_default()).unwrap_or_default()
                == json!(ports_json)
        };
        if let Some(i) = unused.iter().position(same_ports) {
            let s = unused.remove(i);
            let cur = json!({
                "endpoints": serde_json::to_value(&s.endpoints).unwrap_or_default(),
                "ports": serde_json::to_value(s.ports.clone().unwrap_or_default()).unwrap_or_default(),
            });
            if cur != body {
                let patch = json!({"endpoints": body["endpoints"], "ports": body["ports"],
                    "metadata": {"resourceVersion": s.metadata.resource_version}});
                api.patch(&s.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
        } else {
            let slice: EndpointSlice = serde_json::from_value(json!({
                "metadata": {
                    "generateName": format!("{name}-"),
                    "labels": {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
                    "ownerReferences": [podutil::new_controller_ref("v1", "Service", &name, svc.metadata.uid.as_deref().unwrap_or_default())],
                },
                "addressType": "IPv4",
                "endpoints": body["endpoints"],
                "ports": body["ports"],
            }))
            .unwrap_or_default();
            match api.create(&PostParams::default(), &slice).await {
                Ok(_) => {}
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

fn error_policy(svc: Arc<Service>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(service = %svc.name_any(), error = %err, "endpoints sync failed");
    Action::requeue(Duration::from_secs(1))
}

/// Services whose selector matches a pod.
fn services_of_pod(pod: &Pod, services: &Store<Service>) -> Vec<ObjectRef<Service>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .filter(|m| !m.is_empty())
                .is_some_and(|m| Selector::from_map(m).matches(pod.metadata.labels.as_ref()))
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Runs the Endpoints (`slices == false`) or EndpointSlice controller.
pub async fn run(
    client: Client,
    informers: Informers,
    slices: bool,
    queue: Arc<crate::metrics::Queue>,
) {
    let (services, changes) = informers.subscribe::<Service>();
    let (pods, pod_changes) = informers.subscribe::<Pod>();
    // The Endpoints controller also deletes the Endpoints of deleted services.
    let cleanup = (!slices).then(|| informers.subscribe::<Service>());
    informers.synced().await;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods,
    });
    let svc_store = services.clone();
    let (q1, q2) = (queue.clone(), queue.clone());
    let changes = changes.inspect(move |s| q1.add(&crate::metrics::key(s.as_ref())));
    // A pod change syncs every service of its namespace: one that selected
    // it before a label change must drop it too.
    let controller = Controller::for_shared_stream(changes, services.clone())
        .watches_shared_stream(pod_changes, move |pod: Arc<Pod>| {
            let mut refs = services_of_pod(&pod, &svc_store);
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            for s in svc_store.state() {
                if s.metadata.namespace.as_deref() == Some(ns.as_str()) {
                    let r = ObjectRef::from_obj(s.as_ref());
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
            }
            refs.iter().for_each(|r| q2.add_ref(r));
            refs
        });
    let Some((svc_store, svc_changes)) = cleanup else {
        controller
            .run(
                crate::metrics::instrument(queue, reconcile_slices),
                error_policy,
                ctx,
            )
            .for_each(|_| async {})
            .await;
        return;
    };
    // Deleted services take their Endpoints with them (slices go through
    // their owner reference and the garbage collector).
    let mut svc_changes = svc_changes.boxed();
    let cleanup = async move {
        while let Some(svc) = svc_changes.next().await {
            if svc_store.get(&ObjectRef::from_obj(svc.as_ref())).is_none() {
                let ns = svc.namespace().unwrap_or_default();
                let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
                let _ = api.delete(&svc.name_any(), &DeleteParams::default()).await;
            }
        }
    };
    let main = controller
        .run(
            crate::metrics::instrument(queue, reconcile_endpoints),
            error_policy,
            ctx,
        )
        .for_each(|_| async {});
    futures::future::join(main, cleanup).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_and_readiness() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": {"app": "a"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "num", "port": 81, "targetPort": 8081},
            ]},
        }))
        .unwrap();
        let pod = |name: &str, ip: &str, ready: bool, named: bool| -> Arc<Pod> {
            let ports = if named {
                json!([{"name": "web", "containerPort": 8080}])
            } else {
                json!([])
            };
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "ns", "labels": {"app": "a"}, "uid": name},
                    "spec": {"containers": [{"name": "c", "ports": ports}]},
                    "status": {"podIP": ip, "phase": "Running", "conditions": [
                        {"type": "Ready", "status": if ready {"True"} else {"False"}}]},
                }))
                .unwrap(),
            )
        };
        let eps = pod_endpoints(
            &svc,
            &[
                pod("a", "10.0.0.1", true, true),
                pod("b", "10.0.0.2", false, true),
                pod("c", "10.0.0.3", true, false),
            ],
        );
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0].ports.len(), 2);
        assert!(eps[0].ready && !eps[1].ready);
        // The pod without the named port serves only the numeric one.
        assert_eq!(eps[2].ports, vec![("num".into(), 8081, "TCP".into())]);
        let s = subsets(&eps, "ns");
        assert_eq!(s.as_array().unwrap().len(), 2);
    }
}
