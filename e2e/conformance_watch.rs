//! Conformance (sig-api-machinery, `test/e2e/apimachinery/watch.go`):
//! watch notifications on ConfigMaps, plus the watch semantics clients rely
//! on (resume, bookmarks with sendInitialEvents, 410 for a too-old
//! resourceVersion).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::conformance_util::{
    Events, api_status, describe, next_event, no_event, obj, test_namespace,
};
use crate::harness::Cluster;

const LABEL: &str = "watch-this-configmap";

/// Watch parameters as client-go's `Watch` sends them: no bookmarks.
fn plain() -> WatchParams {
    WatchParams {
        bookmarks: false,
        ..WatchParams::default()
    }
}

async fn watch_label(cms: &Api<ConfigMap>, rv: &str, selector: &str) -> Events<ConfigMap> {
    cms.watch(&plain().labels(selector), rv)
        .await
        .expect("watch")
        .boxed()
}

fn configmap(name: &str, label: &str) -> ConfigMap {
    obj(json!({ "metadata": { "name": name, "labels": { LABEL: label } } }))
}

/// Upstream's `setConfigMapMutation`-style update: sets `data.mutation`.
async fn mutate(cms: &Api<ConfigMap>, name: &str, value: &str) -> ConfigMap {
    let mut cm = cms.get(name).await.unwrap();
    cm.data
        .get_or_insert_with(BTreeMap::new)
        .insert("mutation".into(), value.into());
    cms.replace(name, &PostParams::default(), &cm)
        .await
        .unwrap()
}

async fn set_label(cms: &Api<ConfigMap>, name: &str, value: &str) -> ConfigMap {
    let mut cm = cms.get(name).await.unwrap();
    cm.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(LABEL.into(), value.into());
    cms.replace(name, &PostParams::default(), &cm)
        .await
        .unwrap()
}

/// Asserts the next event has this type and carries this object version.
async fn expect(w: &mut Events<ConfigMap>, kind: &str, cm: &ConfigMap) {
    let ev = next_event(w).await;
    let (t, name, rv) = describe(&ev);
    assert_eq!(
        (t.as_str(), name.as_str()),
        (kind, cm.metadata.name.as_deref().unwrap()),
        "{ev:?}"
    );
    if kind != "DELETED" {
        assert_eq!(Some(rv), cm.metadata.resource_version.clone(), "{ev:?}");
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) = ev {
            assert_eq!(o.data, cm.data);
        }
    }
}

async fn setup(c: &Cluster, base: &str) -> (Client, Api<ConfigMap>) {
    let client = c.client().await;
    let ns = test_namespace(&client, base).await;
    let cms = Api::namespaced(client.clone(), &ns);
    (client, cms)
}

// [sig-api-machinery] Watchers should observe add, update, and delete watch
// notifications on configmaps [Conformance]
#[tokio::test]
async fn watchers_should_observe_add_update_and_delete_watch_notifications_on_configmaps() {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    let (a, b) = ("multiple-watchers-A", "multiple-watchers-B");
    let mut watch_a = watch_label(&cms, "", &format!("{LABEL}={a}")).await;
    let mut watch_b = watch_label(&cms, "", &format!("{LABEL}={b}")).await;
    let mut watch_ab = watch_label(&cms, "", &format!("{LABEL} in ({a},{b})")).await;

    // configmap A: added, modified twice, deleted.
    let created = cms
        .create(
            &PostParams::default(),
            &configmap("e2e-watch-test-configmap-a", a),
        )
        .await
        .unwrap();
    expect(&mut watch_a, "ADDED", &created).await;
    expect(&mut watch_ab, "ADDED", &created).await;
    let m1 = mutate(&cms, "e2e-watch-test-configmap-a", "1").await;
    expect(&mut watch_a, "MODIFIED", &m1).await;
    expect(&mut watch_ab, "MODIFIED", &m1).await;
    let m2 = mutate(&cms, "e2e-watch-test-configmap-a", "2").await;
    expect(&mut watch_a, "MODIFIED", &m2).await;
    expect(&mut watch_ab, "MODIFIED", &m2).await;
    cms.delete("e2e-watch-test-configmap-a", &DeleteParams::default())
        .await
        .unwrap();
    expect(&mut watch_a, "DELETED", &m2).await;
    expect(&mut watch_ab, "DELETED", &m2).await;

    // configmap B: added, deleted.
    let created_b = cms
        .create(
            &PostParams::default(),
            &configmap("e2e-watch-test-configmap-b", b),
        )
        .await
        .unwrap();
    expect(&mut watch_b, "ADDED", &created_b).await;
    expect(&mut watch_ab, "ADDED", &created_b).await;
    cms.delete("e2e-watch-test-configmap-b", &DeleteParams::default())
        .await
        .unwrap();
    expect(&mut watch_b, "DELETED", &created_b).await;
    expect(&mut watch_ab, "DELETED", &created_b).await;

    // A watcher never sees the other label's configmap.
    no_event(&mut watch_a, Duration::from_millis(300)).await;
    no_event(&mut watch_b, Duration::from_millis(10)).await;
    no_event(&mut watch_ab, Duration::from_millis(10)).await;
}

// [sig-api-machinery] Watchers should be able to start watching from a
// specific resource version [Conformance]
#[tokio::test]
async fn watchers_should_be_able_to_start_watching_from_a_specific_resource_version() {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    let name = "e2e-watch-test-resource-version";
    cms.create(
        &PostParams::default(),
        &configmap(name, "from-resource-version"),
    )
    .await
    .unwrap();
    let first = mutate(&cms, name, "1").await;
    let second = mutate(&cms, name, "2").await;
    cms.delete(name, &DeleteParams::default()).await.unwrap();
    let mut w = watch_label(
        &cms,
        first.metadata.resource_version.as_deref().unwrap(),
        &format!("{LABEL}=from-resource-version"),
    )
    .await;
    expect(&mut w, "MODIFIED", &second).await;
    expect(&mut w, "DELETED", &second).await;
    no_event(&mut w, Duration::from_millis(200)).await;
}

// [sig-api-machinery] Watchers should be able to restart watching from the
// last resource version observed by the previous watch [Conformance]
#[tokio::test]
async fn watchers_should_be_able_to_restart_watching_from_the_last_resource_version_observed_by_the_previous_watch()
 {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    let name = "e2e-watch-test-watch-closed";
    let selector = format!("{LABEL}=watch-closed-and-restarted");
    let mut w = watch_label(&cms, "", &selector).await;
    let created = cms
        .create(
            &PostParams::default(),
            &configmap(name, "watch-closed-and-restarted"),
        )
        .await
        .unwrap();
    let m1 = mutate(&cms, name, "1").await;
    expect(&mut w, "ADDED", &created).await;
    expect(&mut w, "MODIFIED", &m1).await;
    let last = m1.metadata.resource_version.clone().unwrap();
    drop(w);
    // Changes while no watch is open.
    let m2 = mutate(&cms, name, "2").await;
    cms.delete(name, &DeleteParams::default()).await.unwrap();
    let mut w = watch_label(&cms, &last, &selector).await;
    expect(&mut w, "MODIFIED", &m2).await;
    expect(&mut w, "DELETED", &m2).await;
}

// [sig-api-machinery] Watchers should observe an object deletion if it stops
// meeting the requirements of the selector [Conformance]
#[tokio::test]
async fn watchers_should_observe_an_object_deletion_if_it_stops_meeting_the_requirements_of_the_selector()
 {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    let name = "e2e-watch-test-label-changed";
    let value = "label-changed-and-restored";
    let mut w = watch_label(&cms, "", &format!("{LABEL}={value}")).await;
    let created = cms
        .create(&PostParams::default(), &configmap(name, value))
        .await
        .unwrap();
    expect(&mut w, "ADDED", &created).await;
    let m1 = mutate(&cms, name, "1").await;
    expect(&mut w, "MODIFIED", &m1).await;
    // The label no longer matches: the watcher sees a deletion.
    let moved = set_label(&cms, name, "wrong-value").await;
    let ev = next_event(&mut w).await;
    assert_eq!(describe(&ev).0, "DELETED", "{ev:?}");
    // Changes while it does not match are not seen.
    let m2 = mutate(&cms, name, "2").await;
    assert_ne!(
        moved.metadata.resource_version,
        m2.metadata.resource_version
    );
    no_event(&mut w, Duration::from_millis(300)).await;
    // Matching again: an addition.
    let restored = set_label(&cms, name, value).await;
    expect(&mut w, "ADDED", &restored).await;
    let m3 = mutate(&cms, name, "3").await;
    expect(&mut w, "MODIFIED", &m3).await;
    cms.delete(name, &DeleteParams::default()).await.unwrap();
    expect(&mut w, "DELETED", &m3).await;
}

// [sig-api-machinery] Watchers should receive events on concurrent watches in
// same order [Conformance]
#[tokio::test]
async fn watchers_should_receive_events_on_concurrent_watches_in_same_order() {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    const EVENTS: usize = 50;
    let start = cms.list(&ListParams::default()).await.unwrap();
    let start_rv = start.metadata.resource_version.unwrap();
    let mut first = cms.watch(&plain(), &start_rv).await.unwrap().boxed();
    // Writes from the background: creates, updates and deletes.
    let producer = {
        let cms = cms.clone();
        tokio::spawn(async move {
            let mut present = [false; 5];
            let mut written = 0;
            let mut i = 0usize;
            while written < EVENTS + 10 {
                i += 1;
                let k = (i * 7) % present.len();
                let name = format!("cm-{k}");
                if !present[k] {
                    cms.create(
                        &PostParams::default(),
                        &obj(
                            json!({ "metadata": { "name": name }, "data": { "i": i.to_string() } }),
                        ),
                    )
                    .await
                    .unwrap();
                    present[k] = true;
                } else if i.is_multiple_of(3) {
                    cms.delete(&name, &DeleteParams::default()).await.unwrap();
                    present[k] = false;
                } else {
                    mutate(&cms, &name, &i.to_string()).await;
                }
                written += 1;
            }
        })
    };
    let mut seen = Vec::new();
    let mut watches = Vec::new();
    while seen.len() < EVENTS {
        let ev = next_event(&mut first).await;
        let d = describe(&ev);
        // A watch opened at this event's resourceVersion sees what follows.
        watches.push(cms.watch(&plain(), &d.2).await.unwrap().boxed());
        seen.push(d);
    }
    producer.await.unwrap();
    for (i, w) in watches.iter_mut().enumerate() {
        for (j, want) in seen.iter().enumerate().skip(i + 1) {
            let got = describe(&next_event(w).await);
            assert_eq!(
                &got, want,
                "watch opened at event {i} differs from the first watch at event {j}"
            );
        }
    }
}

// Watch semantics clients rely on (reflectors): a watch with
// sendInitialEvents=true streams the current objects as ADDED, then a
// BOOKMARK annotated `k8s.io/initial-events-end`, then live changes.
#[tokio::test]
async fn watch_send_initial_events_ends_with_a_bookmark() {
    let c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    for name in ["one", "two"] {
        cms.create(&PostParams::default(), &configmap(name, "initial"))
            .await
            .unwrap();
    }
    let mut w = cms
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .expect("watch with sendInitialEvents")
        .boxed();
    let mut names = Vec::new();
    let bookmark = loop {
        match next_event(&mut w).await {
            WatchEvent::Added(cm) => names.push(cm.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => break b,
            other => panic!("expected ADDED or BOOKMARK, got {other:?}"),
        }
    };
    names.sort();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true"),
        "{:?}",
        bookmark.metadata.annotations
    );
    let rv: u64 = bookmark.metadata.resource_version.parse().unwrap();
    let three = cms
        .create(&PostParams::default(), &configmap("three", "initial"))
        .await
        .unwrap();
    assert!(
        three
            .metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv
    );
    loop {
        match next_event(&mut w).await {
            WatchEvent::Added(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("three"));
                break;
            }
            // Periodic bookmarks may come in between.
            WatchEvent::Bookmark(_) => {}
            other => panic!("expected ADDED three, got {other:?}"),
        }
    }
}

// A watch from a resourceVersion older than what the server keeps fails
// with 410 Gone/Expired (as an HTTP 410 or an ERROR event carrying a 410
// Status, which is what upstream's watch cache sends), so clients relist.
#[tokio::test]
async fn watch_from_a_too_old_resource_version_is_410() {
    let mut c = Cluster::up().await;
    let (_client, cms) = setup(&c, "watch").await;
    // Touch the resource so its history advances past revision 1.
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("old-{i}"), "too-old"),
        )
        .await
        .unwrap();
    }
    // History from before the server started is not kept for watches (as
    // upstream's watch caches, which start empty).
    c.restart().await;
    let ns = cms.namespace().unwrap_or("default").to_owned();
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &ns);
    match cms.watch(&plain(), "1").await {
        Err(e) => {
            let s = api_status(e);
            assert_eq!(s.code, 410, "{s:?}");
            assert!(s.reason == "Expired" || s.reason == "Gone", "{s:?}");
        }
        Ok(stream) => {
            let mut w = stream.boxed();
            match next_event(&mut w).await {
                WatchEvent::Error(e) => assert_eq!(e.code, 410, "{e:?}"),
                other => panic!("expected a 410, got {other:?}"),
            }
        }
    }
}
