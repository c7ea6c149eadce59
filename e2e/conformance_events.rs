//! Conformance (sig-instrumentation, `test/e2e/instrumentation/`): core/v1
//! and events.k8s.io/v1 Events; and field selectors.

use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::conformance_util::{api_status, obj, test_namespace};
use crate::harness::Cluster;

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| i.meta().name.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

fn core_event(name: &str, ns: &str, labels: serde_json::Value) -> Event {
    obj(json!({
        "metadata": { "name": name, "labels": labels },
        "message": "This is a test event",
        "reason": "Test",
        "type": "Normal",
        "count": 1,
        "involvedObject": { "namespace": ns },
    }))
}

// [sig-instrumentation] Events should manage the lifecycle of an event
// [Conformance]
#[tokio::test]
async fn events_should_manage_the_lifecycle_of_an_event() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "events").await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let all: Api<Event> = Api::all(client.clone());
    let name = "event-test";
    events
        .create(
            &PostParams::default(),
            &core_event(name, &ns, json!({ "testevent-constant": "true" })),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("testevent-constant=true"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), [name]);

    events
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "message": "This is a test event - patched" })),
        )
        .await
        .unwrap();
    let got = events.get(name).await.unwrap();
    assert_eq!(
        got.message.as_deref(),
        Some("This is a test event - patched")
    );

    let mut ev = got;
    ev.series = Some(obj(
        json!({ "count": 100, "lastObservedTime": "2025-01-02T03:04:05.123456Z" }),
    ));
    events
        .replace(name, &PostParams::default(), &ev)
        .await
        .unwrap();
    let got = events.get(name).await.unwrap();
    assert_eq!(
        serde_json::to_value(&got.series).unwrap(),
        json!({ "count": 100, "lastObservedTime": "2025-01-02T03:04:05.123456Z" })
    );

    events.delete(name, &DeleteParams::default()).await.unwrap();
    let list = all.list(&ListParams::default()).await.unwrap();
    assert!(
        !list
            .items
            .iter()
            .any(|e| e.metadata.name.as_deref() == Some(name)
                && e.metadata.namespace.as_deref() == Some(ns.as_str()))
    );
}

// [sig-instrumentation] Events should delete a collection of events
// [Conformance]
#[tokio::test]
async fn events_should_delete_a_collection_of_events() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "events").await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    for name in ["event-test-1", "event-test-2", "event-test-3"] {
        events
            .create(
                &PostParams::default(),
                &core_event(name, &ns, json!({ "testevent-set": "true" })),
            )
            .await
            .unwrap();
    }
    let lp = ListParams::default().labels("testevent-set=true");
    assert_eq!(events.list(&lp).await.unwrap().items.len(), 3);
    events
        .delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    assert!(events.list(&lp).await.unwrap().items.is_empty());
}

fn events_v1(name: &str, ns: &str, labels: serde_json::Value) -> EventV1 {
    obj(json!({
        "metadata": { "name": name, "labels": labels },
        "eventTime": "2025-01-02T03:04:05.123456Z",
        "reportingController": "test-controller",
        "reportingInstance": "test-node",
        "action": "Do",
        "reason": "Test",
        "type": "Normal",
        "note": "This is a test event",
        "regarding": { "namespace": ns, "kind": "Pod", "name": "test-pod" },
    }))
}

// [sig-instrumentation] Events API should ensure that an event can be
// fetched, patched, deleted, and listed [Conformance]
#[tokio::test]
async fn events_api_should_ensure_that_an_event_can_be_fetched_patched_deleted_and_listed() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "events").await;
    let events: Api<EventV1> = Api::namespaced(client.clone(), &ns);
    let all: Api<EventV1> = Api::all(client.clone());
    let name = "event-test";
    events
        .create(
            &PostParams::default(),
            &events_v1(name, &ns, json!({ "testevent-constant": "true" })),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("testevent-constant=true"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), [name]);
    let got = events.get(name).await.unwrap();
    assert_eq!(got.note.as_deref(), Some("This is a test event"));
    assert_eq!(got.reporting_controller.as_deref(), Some("test-controller"));

    events
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "note": "This is an updated note" })),
        )
        .await
        .unwrap();
    let got = events.get(name).await.unwrap();
    assert_eq!(got.note.as_deref(), Some("This is an updated note"));

    let mut ev = got;
    ev.series = Some(obj(
        json!({ "count": 100, "lastObservedTime": "2025-01-02T03:05:06.654321Z" }),
    ));
    events
        .replace(name, &PostParams::default(), &ev)
        .await
        .unwrap();
    let got = events.get(name).await.unwrap();
    assert_eq!(
        serde_json::to_value(&got.series).unwrap(),
        json!({ "count": 100, "lastObservedTime": "2025-01-02T03:05:06.654321Z" })
    );

    events.delete(name, &DeleteParams::default()).await.unwrap();
    let list = events.list(&ListParams::default()).await.unwrap();
    assert!(list.items.is_empty());
}

// [sig-instrumentation] Events API should delete a collection of events
// [Conformance]
#[tokio::test]
async fn events_api_should_delete_a_collection_of_events() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "events").await;
    let events: Api<EventV1> = Api::namespaced(client.clone(), &ns);
    for name in ["event-test-1", "event-test-2", "event-test-3"] {
        events
            .create(
                &PostParams::default(),
                &events_v1(name, &ns, json!({ "testevent-set": "true" })),
            )
            .await
            .unwrap();
    }
    let lp = ListParams::default().labels("testevent-set=true");
    assert_eq!(events.list(&lp).await.unwrap().items.len(), 3);
    events
        .delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    assert!(events.list(&lp).await.unwrap().items.is_empty());
}

// Both Event APIs serve the same objects (events.k8s.io/v1 is a view of the
// core Events with renamed fields: note/message, regarding/involvedObject,
// reportingController/reportingComponent, deprecatedCount/count, ...).
#[tokio::test]
async fn events_are_served_by_both_event_apis() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "events").await;
    let v1: Api<EventV1> = Api::namespaced(client.clone(), &ns);
    let core: Api<Event> = Api::namespaced(client.clone(), &ns);
    v1.create(
        &PostParams::default(),
        &events_v1("new-api", &ns, json!({})),
    )
    .await
    .unwrap();
    let got = core
        .get("new-api")
        .await
        .expect("events.k8s.io event visible as core/v1");
    assert_eq!(got.message.as_deref(), Some("This is a test event"));
    assert_eq!(got.involved_object.name.as_deref(), Some("test-pod"));
    assert_eq!(got.involved_object.kind.as_deref(), Some("Pod"));
    assert_eq!(got.reporting_component.as_deref(), Some("test-controller"));
    assert_eq!(got.reporting_instance.as_deref(), Some("test-node"));
    assert_eq!(got.action.as_deref(), Some("Do"));

    core.create(
        &PostParams::default(),
        &core_event("old-api", &ns, json!({})),
    )
    .await
    .unwrap();
    let got = v1
        .get("old-api")
        .await
        .expect("core/v1 event visible as events.k8s.io");
    assert_eq!(got.note.as_deref(), Some("This is a test event"));
    assert_eq!(got.deprecated_count, Some(1));
    assert_eq!(
        got.regarding.as_ref().and_then(|r| r.namespace.as_deref()),
        Some(ns.as_str())
    );
}

// Field selectors, as clients use them: metadata.name / metadata.namespace
// on every resource, per-kind fields (Event involvedObject.*, reason, type;
// Secret type), and a 400 for fields the kind does not support.
#[tokio::test]
async fn field_selectors_filter_lists_and_reject_unknown_fields() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "fieldselectors").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in ["a", "b"] {
        cms.create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": name } })),
        )
        .await
        .unwrap();
    }
    let got = cms
        .list(&ListParams::default().fields("metadata.name=a"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["a"]);
    let got = cms
        .list(&ListParams::default().fields("metadata.name!=a"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["b"]);
    let all_cms: Api<ConfigMap> = Api::all(client.clone());
    let got = all_cms
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["a", "b"]);
    let err = cms
        .list(&ListParams::default().fields("data.x=y"))
        .await
        .expect_err("unsupported field selector");
    let s = api_status(err);
    assert_eq!(s.code, 400, "{s:?}");
    assert_eq!(s.reason, "BadRequest", "{s:?}");

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    for (name, pod, reason, kind) in [
        ("e1", "pod-1", "Started", "Normal"),
        ("e2", "pod-2", "Started", "Warning"),
        ("e3", "pod-1", "Killing", "Normal"),
    ] {
        events
            .create(
                &PostParams::default(),
                &obj(json!({
                    "metadata": { "name": name },
                    "involvedObject": { "kind": "Pod", "name": pod, "namespace": ns },
                    "reason": reason, "type": kind, "message": "m",
                    "source": { "component": "kubelet" },
                })),
            )
            .await
            .unwrap();
    }
    let q = |f: &str| {
        let events = events.clone();
        let f = f.to_owned();
        async move {
            names(
                &events
                    .list(&ListParams::default().fields(&f))
                    .await
                    .unwrap()
                    .items,
            )
        }
    };
    assert_eq!(
        q("involvedObject.kind=Pod,involvedObject.name=pod-1").await,
        ["e1", "e3"]
    );
    assert_eq!(q("reason=Started").await, ["e1", "e2"]);
    assert_eq!(q("type=Warning").await, ["e2"]);
    assert_eq!(q("source=kubelet").await, ["e1", "e2", "e3"]);
    assert_eq!(
        q(&format!("involvedObject.namespace={ns},reason!=Started")).await,
        ["e3"]
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": "opaque" }, "type": "Opaque" })),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &obj(
                json!({ "metadata": { "name": "tls" }, "type": "kubernetes.io/tls",
                "data": { "tls.crt": "", "tls.key": "" } }),
            ),
        )
        .await
        .unwrap();
    let got = secrets
        .list(&ListParams::default().fields("type=kubernetes.io/tls"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["tls"]);
}
