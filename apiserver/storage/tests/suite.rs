//! One behaviour suite, run against both backends: every test below is
//! instantiated once for the embedded store and once for a real etcd.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::etcd::{EtcdConfig, EtcdStore};
use rkube_storage::sqlite::{SqliteConfig, SqliteStore};
use rkube_storage::testing::EtcdServer;
use rkube_storage::{
    EventKind, RangeRequest, Revision, Storage, StorageError, WatchStream, max_value_bytes,
};

type Store = Arc<dyn Storage>;

/// A store and whatever must live as long as it.
struct Backend {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _etcd: Option<EtcdServer>,
}

impl Backend {
    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = SqliteConfig::new(dir.path().join("state.db"));
        config.compaction_interval = None;
        let store = SqliteStore::open(config).expect("open sqlite store");
        Backend {
            store: Arc::new(store),
            _dir: Some(dir),
            _etcd: None,
        }
    }

    async fn etcd() -> Option<Backend> {
        let server = EtcdServer::start()?;
        let store = EtcdStore::connect(EtcdConfig::new(vec![server.endpoint.clone()]))
            .await
            .expect("connect to etcd");
        Some(Backend {
            store: Arc::new(store),
            _dir: None,
            _etcd: Some(server),
        })
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = super::Backend::sqlite();
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = super::Backend::etcd().await else { return };
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
    };
}

suite!(
    create_get_and_create_existing,
    update_compare_and_swap,
    delete_with_preconditions,
    get_at_older_revisions,
    pagination_is_consistent_while_writes_continue,
    watch_order_prev_values_and_resume,
    watch_after_compaction,
    expiry_deletes_with_an_event,
    concurrent_writers_lose_no_update,
    many_keys,
    values_at_and_over_the_size_limit,
);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(w: &mut WatchStream) -> rkube_storage::Event {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10s")
        .expect("watch stream open")
        .expect("watch event, not an error")
}

async fn create_get_and_create_existing(s: Store) {
    let kv = s.create("/cm/a/one", b("v1"), None).await.unwrap();
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.version, 1);
    let got = s.get("/cm/a/one", None).await.unwrap();
    assert_eq!(got.kv.as_ref().map(|k| &k.value), Some(&b("v1")));
    assert_eq!(got.kv.unwrap().mod_revision, kv.mod_revision);
    assert!(got.revision >= kv.mod_revision);
    let err = s.create("/cm/a/one", b("v2"), None).await.unwrap_err();
    assert!(matches!(err, StorageError::AlreadyExists { .. }), "{err:?}");
    // The refused create wrote nothing.
    assert_eq!(s.current_revision().await.unwrap(), kv.mod_revision);
    assert!(s.get("/cm/a/missing", None).await.unwrap().kv.is_none());
}

async fn update_compare_and_swap(s: Store) {
    let v1 = s.create("/cm/a/x", b("1"), None).await.unwrap();
    let v2 = s
        .update("/cm/a/x", b("2"), v1.mod_revision, None)
        .await
        .unwrap();
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);
    assert_eq!(v2.version, 2);
    // A stale revision conflicts and reports what is stored now.
    match s.update("/cm/a/x", b("3"), v1.mod_revision, None).await {
        Err(StorageError::Conflict { current, .. }) => {
            let current = current.expect("current value");
            assert_eq!(current.value, b("2"));
            assert_eq!(current.mod_revision, v2.mod_revision);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let err = s.update("/cm/a/nope", b("1"), 1, None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
    assert_eq!(
        s.get("/cm/a/x", None).await.unwrap().kv.unwrap().value,
        b("2")
    );
}

async fn delete_with_preconditions(s: Store) {
    let v1 = s.create("/cm/a/d", b("1"), None).await.unwrap();
    let v2 = s
        .update("/cm/a/d", b("2"), v1.mod_revision, None)
        .await
        .unwrap();
    let err = s
        .delete("/cm/a/d", Some(v1.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Conflict { .. }), "{err:?}");
    let deleted = s.delete("/cm/a/d", Some(v2.mod_revision)).await.unwrap();
    assert_eq!(deleted.prev.value, b("2"));
    assert!(deleted.revision > v2.mod_revision);
    assert!(s.get("/cm/a/d", None).await.unwrap().kv.is_none());
    let err = s.delete("/cm/a/d", None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
    // Unconditional delete.
    s.create("/cm/a/e", b("1"), None).await.unwrap();
    assert_eq!(s.delete("/cm/a/e", None).await.unwrap().prev.value, b("1"));
}

async fn get_at_older_revisions(s: Store) {
    let v1 = s.create("/cm/a/h", b("1"), None).await.unwrap();
    let v2 = s
        .update("/cm/a/h", b("2"), v1.mod_revision, None)
        .await
        .unwrap();
    let del = s.delete("/cm/a/h", None).await.unwrap();
    let v3 = s.create("/cm/a/h", b("3"), None).await.unwrap();
    let at = |r: Revision| {
        let s = s.clone();
        async move {
            s.get("/cm/a/h", Some(r))
                .await
                .unwrap()
                .kv
                .map(|kv| kv.value)
        }
    };
    assert_eq!(at(v1.mod_revision).await, Some(b("1")));
    assert_eq!(at(v2.mod_revision).await, Some(b("2")));
    assert_eq!(at(del.revision).await, None);
    assert_eq!(at(v3.mod_revision).await, Some(b("3")));
    assert_eq!(at(v1.mod_revision - 1).await, None);
    let old = s.get("/cm/a/h", Some(v2.mod_revision)).await.unwrap();
    assert_eq!(old.revision, v2.mod_revision);
    let kv = old.kv.unwrap();
    assert_eq!((kv.create_revision, kv.version), (v1.mod_revision, 2));
    let err = s
        .get("/cm/a/h", Some(v3.mod_revision + 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::FutureRevision { .. }),
        "{err:?}"
    );
}

async fn pagination_is_consistent_while_writes_continue(s: Store) {
    for i in 0..60 {
        s.create(&format!("/pods/ns/p{i:03}"), b("orig"), None)
            .await
            .unwrap();
    }
    // Keys outside the prefix never show up.
    s.create("/pods/other/x", b("x"), None).await.unwrap();
    s.create("/podsx/ns/y", b("y"), None).await.unwrap();
    let first = s
        .range(RangeRequest {
            prefix: "/pods/ns/".into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 10);
    assert!(first.more);
    assert_eq!(first.count, 60);
    let snapshot = first.revision;
    let mut seen: Vec<_> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut last = seen.last().cloned().unwrap();
    let mut round = 0;
    loop {
        // Writes between pages: updates, deletes and new keys in the range.
        let victim = format!("/pods/ns/p{:03}", 59 - round);
        s.delete(&victim, None).await.unwrap();
        let target = format!("/pods/ns/p{:03}", 20 + round);
        let cur = s.get(&target, None).await.unwrap().kv.unwrap();
        s.update(&target, b("changed"), cur.mod_revision, None)
            .await
            .unwrap();
        s.create(&format!("/pods/ns/p{round:03}a"), b("new"), None)
            .await
            .unwrap();
        round += 1;
        let page = s
            .range(RangeRequest {
                prefix: "/pods/ns/".into(),
                start: Some(format!("{last}\0")),
                limit: 10,
                revision: Some(snapshot),
            })
            .await
            .unwrap();
        assert_eq!(page.revision, snapshot);
        assert_eq!(page.count, 60 - seen.len() as i64, "count at the snapshot");
        for kv in &page.kvs {
            assert_eq!(kv.value, b("orig"), "{} read at the snapshot", kv.key);
            assert!(kv.mod_revision <= snapshot);
        }
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        last = seen.last().cloned().unwrap();
    }
    let expected: Vec<_> = (0..60).map(|i| format!("/pods/ns/p{i:03}")).collect();
    assert_eq!(seen, expected);
    // The latest revision sees the writes.
    let now = s
        .range(RangeRequest {
            prefix: "/pods/ns/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(now.count, 60);
    assert!(!now.more);
    assert!(now.kvs.iter().any(|kv| kv.value == b("new")));
}

async fn watch_order_prev_values_and_resume(s: Store) {
    let start = s.current_revision().await.unwrap() + 1;
    let a1 = s.create("/w/ns/a", b("a1"), None).await.unwrap();
    s.create("/other/ns/z", b("z"), None).await.unwrap();
    let a2 = s
        .update("/w/ns/a", b("a2"), a1.mod_revision, None)
        .await
        .unwrap();
    let bb = s.create("/w/ns/b", b("b1"), None).await.unwrap();
    let del = s.delete("/w/ns/a", None).await.unwrap();

    let mut w = s.watch("/w/", start).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.prev.is_none()),
        (EventKind::Put, "/w/ns/a", true)
    );
    assert_eq!(e.revision(), a1.mod_revision);
    let e = next_event(&mut w).await;
    assert_eq!(e.kv.value, b("a2"));
    assert_eq!(e.prev.as_ref().unwrap().value, b("a1"));
    assert_eq!(e.revision(), a2.mod_revision);
    assert_eq!(e.kv.version, 2);
    let e = next_event(&mut w).await;
    assert_eq!(e.revision(), bb.mod_revision);
    let e = next_event(&mut w).await;
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(e.revision(), del.revision);
    assert_eq!(e.prev.as_ref().unwrap().value, b("a2"));
    // Live events follow replayed ones.
    let c = s.create("/w/ns/c", b("c1"), None).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.kv.key.as_str(), e.revision()),
        ("/w/ns/c", c.mod_revision)
    );

    // Resume from any revision: exactly the events from there on.
    let mut resumed = s.watch("/w/", a2.mod_revision + 1).await.unwrap();
    let revs = [bb.mod_revision, del.revision, c.mod_revision];
    for rev in revs {
        assert_eq!(next_event(&mut resumed).await.revision(), rev);
    }
    // Many live events arrive in order.
    let mut last = c.mod_revision;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                s.create(&format!("/w/bulk/{i}"), b("x"), None)
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..300 {
        let e = next_event(&mut w).await;
        assert!(e.revision() > last, "revisions increase");
        last = e.revision();
    }
    writer.await.unwrap();
}

async fn watch_after_compaction(s: Store) {
    let first = s.create("/c/ns/a", b("1"), None).await.unwrap();
    let mut rev = first.mod_revision;
    for i in 0..10 {
        rev = s
            .update("/c/ns/a", b(&i.to_string()), rev, None)
            .await
            .unwrap()
            .mod_revision;
    }
    s.create("/c/ns/b", b("b"), None).await.unwrap();
    s.delete("/c/ns/b", None).await.unwrap();
    let compact_at = rev - 3;
    s.compact(compact_at).await.unwrap();
    match s.watch("/c/", first.mod_revision).await {
        Ok(mut w) => match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Err(StorageError::Compacted { compacted, .. }))) => {
                assert_eq!(compacted, compact_at)
            }
            other => panic!("expected a compacted error, got {other:?}"),
        },
        Err(StorageError::Compacted { compacted, .. }) => assert_eq!(compacted, compact_at),
        Err(e) => panic!("expected a compacted error, got {e:?}"),
    }
    let err = s
        .get("/c/ns/a", Some(first.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
    let err = s
        .range(RangeRequest {
            prefix: "/c/".into(),
            revision: Some(first.mod_revision),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
    let err = s.compact(compact_at - 1).await.unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
    // Reads and watches from the compaction revision on still work.
    let at = s.get("/c/ns/a", Some(compact_at)).await.unwrap();
    assert_eq!(at.kv.unwrap().mod_revision, compact_at);
    let mut w = s.watch("/c/", compact_at + 1).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision(), compact_at + 1);
    let page = s
        .range(RangeRequest {
            prefix: "/c/".into(),
            revision: Some(compact_at),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 1);
}

async fn expiry_deletes_with_an_event(s: Store) {
    let start = s.current_revision().await.unwrap() + 1;
    s.create("/events/ns/e1", b("ev"), Some(Duration::from_secs(2)))
        .await
        .unwrap();
    s.create("/events/ns/keep", b("ev"), None).await.unwrap();
    assert!(s.get("/events/ns/e1", None).await.unwrap().kv.is_some());
    let mut w = s.watch("/events/", start).await.unwrap();
    assert_eq!(next_event(&mut w).await.kind, EventKind::Put);
    assert_eq!(next_event(&mut w).await.kind, EventKind::Put);
    let deleted = tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("expired within 20s")
        .unwrap()
        .unwrap();
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.kv.key, "/events/ns/e1");
    assert!(s.get("/events/ns/e1", None).await.unwrap().kv.is_none());
    assert!(s.get("/events/ns/keep", None).await.unwrap().kv.is_some());
}

async fn concurrent_writers_lose_no_update(s: Store) {
    let key = "/counters/ns/c";
    s.create(key, b("0"), None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..25 {
                let mut cur = s.get(key, None).await.unwrap().kv.unwrap();
                loop {
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    match s
                        .update(key, b(&(n + 1).to_string()), cur.mod_revision, None)
                        .await
                    {
                        Ok(_) => break,
                        Err(StorageError::Conflict { current, .. }) => {
                            conflicts += 1;
                            cur = *current.unwrap();
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = s.get(key, None).await.unwrap().kv.unwrap();
    assert_eq!(v.value, b("400"));
    assert_eq!(v.version, 401);
}

async fn many_keys(s: Store) {
    let n = 5000;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(16) {
                s.create(
                    &format!("/many/ns/k{i:05}"),
                    Bytes::from(vec![b'x'; 200]),
                    None,
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = s
        .range(RangeRequest {
            prefix: "/many/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), n);
    assert_eq!(all.count, n as i64);
    assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key), "key order");
    let mut pages = BTreeMap::new();
    let mut start = None;
    loop {
        let page = s
            .range(RangeRequest {
                prefix: "/many/".into(),
                start: start.clone(),
                limit: 1000,
                revision: Some(all.revision),
            })
            .await
            .unwrap();
        for kv in &page.kvs {
            pages.insert(kv.key.clone(), kv.mod_revision);
        }
        if !page.more {
            break;
        }
        start = Some(format!("{}\0", page.kvs.last().unwrap().key));
    }
    assert_eq!(pages.len(), n);
}

async fn values_at_and_over_the_size_limit(s: Store) {
    let key = "/big/ns/obj";
    let limit = max_value_bytes(key, s.max_request_bytes());
    assert!(limit > 1_500_000, "limit {limit}");
    let kv = s
        .create(key, Bytes::from(vec![b'a'; limit]), None)
        .await
        .unwrap();
    assert_eq!(
        s.get(key, None).await.unwrap().kv.unwrap().value.len(),
        limit
    );
    let err = s
        .update(
            key,
            Bytes::from(vec![b'b'; limit + 1]),
            kv.mod_revision,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err:?}");
    let err = s
        .create("/big/ns/other", Bytes::from(vec![b'a'; limit + 4096]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err:?}");
    assert!(s.get("/big/ns/other", None).await.unwrap().kv.is_none());
}

/// Progress reports (embedded store only): a watcher learns the store's
/// revision even when nothing under its prefix changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_watch_reports_progress() {
    let backend = Backend::sqlite();
    let s = backend.store.clone();
    assert!(s.reports_progress());
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s.watch_with_progress("/mine/", start).await.unwrap();
    // The catch-up reports where it got to.
    let first = next_event(&mut w).await;
    assert_eq!(
        (first.kind, first.revision()),
        (EventKind::Progress, start - 1)
    );
    let other = s.create("/other/ns/x", b("x"), None).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.kind, e.revision()),
        (EventKind::Progress, other.mod_revision)
    );
    let mine = s.create("/mine/ns/y", b("y"), None).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.revision()), (EventKind::Put, mine.mod_revision));
}
