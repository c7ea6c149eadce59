//! Core/v1 Events from the controllers (client-go's event recorder, as the
//! scheduler's): written in the background through a bounded buffer and
//! dropped when it is full, so recording never slows a controller down.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

const BUFFER: usize = 1000;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    component: &'static str,
    instance: String,
}

impl Recorder {
    /// A recorder for `component` (upstream's reporting controller name);
    /// its writer runs on the current runtime.
    pub fn new(client: Client, component: &'static str) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<Event>(BUFFER);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                // Cluster-scoped objects' events live in `default`.
                let ns = event
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                if let Err(e) = Api::<Event>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &event)
                    .await
                {
                    tracing::debug!(error = %e, "writing an event");
                }
            }
        });
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Recorder {
            tx,
            component,
            instance: format!("{component}-{}", host.trim()),
        }
    }

    /// Records an event about `obj`.
    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let now = Timestamp::now();
        let meta = obj.meta();
        let name = meta.name.clone().unwrap_or_default();
        let ns = meta.namespace.clone().filter(|n| !n.is_empty());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns.clone().unwrap_or_else(|| "default".into())),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                namespace: ns,
                name: Some(name),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            action: Some(reason.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            source: Some(EventSource {
                component: Some(self.component.into()),
                host: None,
            }),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let _ = self.tx.try_send(event);
    }
}
