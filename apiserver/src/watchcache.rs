//! The watch cache: per resource, the current objects already serialized,
//! and a window of recent events. Lists without a limit and every watch are
//! served from it: an object is serialized once, when its change arrives,
//! and the same bytes go to every list and every watcher.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use rkube_storage::{EventKind, RangeRequest, Revision, Storage};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::meta;
use crate::status::ApiError;

/// Events kept for watchers resuming from an older resourceVersion.
const WINDOW: usize = 10_000;
/// Live events buffered for slow watchers before they are cut off.
const LIVE_BUFFER: usize = 1024;
/// Objects read per page when (re)filling a cache.
const RELIST_PAGE: usize = 1000;
/// How long a read waits for the cache to reach a requested revision.
const WAIT_FOR_REVISION: Duration = Duration::from_secs(3);

/// One object as the cache holds it: its serialized bytes, and a small
/// parsed extract (name, namespace, labels and selectable fields) for
/// label and field selectors. The full object is parsed only when a
/// response needs it (tables, conversions), so memory stays close to the
/// stored JSON.
pub struct CachedObject {
    pub key: String,
    pub rv: Revision,
    /// Serialized once, with its resourceVersion.
    pub json: Bytes,
    /// What selectors look at.
    pub filterable: crate::selectable::Extract,
}

impl CachedObject {
    /// An object from elsewhere (a storage watch), serialized as it is.
    pub fn from_object(value: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        CachedObject {
            key: String::new(),
            rv: 0,
            filterable: crate::selectable::Extract::of(&value),
            json,
        }
    }

    fn new(key: String, rv: Revision, mut value: Value) -> Self {
        meta::set_resource_version(&mut value, rv);
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        CachedObject {
            key,
            rv,
            filterable: crate::selectable::Extract::of(&value),
            json,
        }
    }

    /// The whole object, parsed from its bytes.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

pub struct CachedEvent {
    pub rev: Revision,
    pub kind: EventType,
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

/// A watch event line: `{"type":"ADDED","object":{...}}\n`.
pub fn frame(kind: &str, object_json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object_json.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object_json);
    b.put_slice(b"}\n");
    b.freeze()
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    window: VecDeque<Arc<CachedEvent>>,
    /// The cache holds every change up to this revision.
    rev: Revision,
    /// Events after this revision are all in the window.
    window_start: Revision,
    /// Live events with their JSON watch line, built once for every
    /// watcher (the window keeps events without it, to stay small).
    events: broadcast::Sender<(Arc<CachedEvent>, Bytes)>,
}

pub struct Cache {
    state: RwLock<State>,
    revision: watch::Sender<Revision>,
    /// Whether `rev` follows the store's revision (progress reports), so a
    /// consistent read can be served once the cache catches up.
    pub consistent: bool,
}

pub use crate::selectable::Filter;

fn parse(value: &[u8]) -> Value {
    serde_json::from_slice(value).unwrap_or(Value::Null)
}

impl Cache {
    async fn start(store: Arc<dyn Storage>, prefix: String) -> Result<Arc<Cache>, ApiError> {
        let (events, _) = broadcast::channel(LIVE_BUFFER);
        let (revision, _) = watch::channel(0);
        let cache = Arc::new(Cache {
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                window: VecDeque::new(),
                rev: 0,
                window_start: 0,
                events,
            }),
            revision,
            consistent: store.reports_progress(),
        });
        let rev = cache.relist(&store, &prefix).await?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            let mut from = rev + 1;
            loop {
                let stream = store.watch_with_progress(&prefix, from).await;
                let mut stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%prefix, error = %e, "watch cache: watch failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let Some(cache) = weak.upgrade() else { return };
                        if let Ok(rev) = cache.relist(&store, &prefix).await {
                            from = rev + 1;
                        }
                        continue;
                    }
                };
                while let Some(item) = stream.next().await {
                    let Some(cache) = weak.upgrade() else { return };
                    match item {
                        Ok(event) => {
                            from = event.revision() + 1;
                            cache.apply(event);
                        }
                        Err(e) => {
                            tracing::info!(%prefix, error = %e, "watch cache: relisting");
                            break;
                        }
                    }
                }
                let Some(cache) = weak.upgrade() else { return };
                match cache.relist(&store, &prefix).await {
                    Ok(rev) => from = rev + 1,
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
        Ok(cache)
    }

    /// Loads every object afresh; watchers of the old state are ended (a
    /// new broadcast channel), and resume with their last resourceVersion.
    async fn relist(&self, store: &Arc<dyn Storage>, prefix: &str) -> Result<Revision, ApiError> {
        // Page through the store at one revision, so the whole raw list
        // never sits in memory next to the cache.
        let mut objects = BTreeMap::new();
        let mut start = None;
        let mut revision = None;
        loop {
            let page = store
                .range(RangeRequest {
                    prefix: prefix.to_owned(),
                    start: start.take(),
                    limit: RELIST_PAGE,
                    revision,
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            revision = Some(page.revision);
            let last = page.kvs.last().map(|kv| format!("{}\u{0}", kv.key));
            for kv in page.kvs {
                let obj = CachedObject::new(kv.key.clone(), kv.mod_revision, parse(&kv.value));
                objects.insert(kv.key, Arc::new(obj));
            }
            if !page.more {
                break;
            }
            start = last;
        }
        let list = rkube_storage::RangeResult {
            revision: revision.unwrap_or(0),
            ..Default::default()
        };
        let (events, _) = broadcast::channel(LIVE_BUFFER);
        if let Ok(mut st) = self.state.write() {
            *st = State {
                objects,
                window: VecDeque::new(),
                rev: list.revision,
                window_start: list.revision,
                events,
            };
        }
        self.revision.send_replace(list.revision);
        Ok(list.revision)
    }

    fn apply(&self, event: rkube_storage::Event) {
        let rev = event.revision();
        // Parse and serialize outside the lock.
        let put = (event.kind == EventKind::Put).then(|| {
            Arc::new(CachedObject::new(
                event.kv.key.clone(),
                rev,
                parse(&event.kv.value),
            ))
        });
        let Ok(mut st) = self.state.write() else {
            return;
        };
        let cached = match event.kind {
            EventKind::Progress => None,
            EventKind::Put => put.map(|obj| {
                let prev = st.objects.insert(event.kv.key, obj.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                CachedEvent {
                    rev,
                    kind,
                    object: obj,
                    prev,
                }
            }),
            EventKind::Delete => st.objects.remove(&event.kv.key).map(|prev| {
                // The deleted object, stamped with the revision of its deletion.
                let obj = Arc::new(CachedObject::new(prev.key.clone(), rev, prev.value()));
                CachedEvent {
                    rev,
                    kind: EventType::Deleted,
                    object: obj,
                    prev: Some(prev),
                }
            }),
        };
        if rev > st.rev {
            st.rev = rev;
        }
        if let Some(ev) = cached {
            let ev = Arc::new(ev);
            st.window.push_back(ev.clone());
            while st.window.len() > WINDOW {
                if let Some(old) = st.window.pop_front() {
                    st.window_start = old.rev;
                }
            }
            let line = frame(ev.kind.as_str(), &ev.object.json);
            let _ = st.events.send((ev, line));
        }
        let rev = st.rev;
        drop(st);
        self.revision.send_replace(rev);
    }

    /// Waits until the cache has every change up to `rev`.
    pub async fn wait_for(&self, rev: Revision) -> Result<(), ApiError> {
        let mut rx = self.revision.subscribe();
        let current = *rx.borrow();
        if current >= rev {
            return Ok(());
        }
        let waited = tokio::time::timeout(WAIT_FOR_REVISION, rx.wait_for(|r| *r >= rev)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                504,
                "Timeout",
                format!(
                    "Timeout: Too large resource version: {rev}, current: {}",
                    *self.revision.borrow()
                ),
            )),
        }
    }

    /// The objects under `key_prefix` that pass the filter, and the
    /// revision they are current at.
    pub fn list(
        &self,
        key_prefix: &str,
        filter: Option<&Filter>,
    ) -> (Vec<Arc<CachedObject>>, Revision) {
        let Ok(st) = self.state.read() else {
            return (Vec::new(), 0);
        };
        let items = st
            .objects
            .range(key_prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .filter(|(_, o)| filter.is_none_or(|f| f(&o.filterable)))
            .map(|(_, o)| o.clone())
            .collect();
        (items, st.rev)
    }

    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Watch frames for objects under `key_prefix`: the current objects as
    /// ADDED events when `after` is `None`, else every change after it;
    /// then live changes. Fails with 410 when `after` left the window.
    pub fn watch(
        &self,
        key_prefix: String,
        after: Option<Revision>,
        filter: Option<Filter>,
        initial_end: bool,
    ) -> Result<impl Stream<Item = WatchItem> + Send + use<>, ApiError> {
        let st = self
            .state
            .read()
            .map_err(|_| ApiError::internal("watch cache lock poisoned"))?;
        let mut first: Vec<WatchItem> = Vec::new();
        let pass = |o: &CachedObject| filter.as_ref().is_none_or(|f| f(&o.filterable));
        match after {
            None => {
                for (_, o) in st
                    .objects
                    .range(key_prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key_prefix))
                {
                    if pass(o) {
                        first.push(WatchItem::Event("ADDED", o.clone(), None));
                    }
                }
                if initial_end {
                    first.push(WatchItem::InitialEventsEnd(st.rev));
                }
            }
            Some(rv) => {
                if rv < st.window_start {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        st.window_start + 1
                    )));
                }
                for ev in st.window.iter().filter(|e| e.rev > rv) {
                    if let Some(item) = event_item(ev, None, &key_prefix, &filter) {
                        first.push(item);
                    }
                }
            }
        }
        let rx = st.events.subscribe();
        drop(st);
        // A watcher that falls this far behind is ended, as upstream does;
        // it resumes from its last revision.
        let live = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.ok().map(|ev| (ev, rx))
        })
        .filter_map(move |(ev, line)| {
            // A watcher from a revision the cache had not reached yet skips
            // what it has seen.
            let item = (ev.rev > after.unwrap_or(0))
                .then(|| event_item(&ev, Some(&line), &key_prefix, &filter))
                .flatten();
            futures::future::ready(item)
        });
        Ok(futures::stream::iter(first).chain(live))
    }
}

/// What a watch stream carries.
pub enum WatchItem {
    /// An event, with its prebuilt JSON line when the watcher sees it as
    /// the cache does.
    Event(&'static str, Arc<CachedObject>, Option<Bytes>),
    /// The bookmark that ends `sendInitialEvents`, at this revision.
    InitialEventsEnd(Revision),
    /// An ERROR event carrying this Status.
    Error(Value),
}

/// What one watcher gets for an event, given its filter: changes that
/// enter or leave the selection become ADDED or DELETED, as upstream.
fn event_item(
    ev: &CachedEvent,
    line: Option<&Bytes>,
    key_prefix: &str,
    filter: &Option<Filter>,
) -> Option<WatchItem> {
    if !ev.object.key.starts_with(key_prefix) {
        return None;
    }
    let Some(f) = filter else {
        return Some(WatchItem::Event(
            ev.kind.as_str(),
            ev.object.clone(),
            line.cloned(),
        ));
    };
    let cur = f(&ev.object.filterable);
    let prev = ev.prev.as_ref();
    let prev_passes = prev.is_some_and(|p| f(&p.filterable));
    let deleted = ev.kind == EventType::Deleted;
    let (kind, show_prev) = crate::selectable::transition(deleted, prev_passes, cur)?;
    match prev.filter(|_| show_prev) {
        // Leaving the selection: the previous content at this revision.
        Some(p) => Some(WatchItem::Event(
            kind,
            Arc::new(CachedObject::new(p.key.clone(), ev.rev, p.value())),
            None,
        )),
        None => {
            let prebuilt = line.filter(|_| kind == ev.kind.as_str()).cloned();
            Some(WatchItem::Event(kind, ev.object.clone(), prebuilt))
        }
    }
}

/// The caches of every resource, started on first use.
pub struct WatchCaches {
    store: Arc<dyn Storage>,
    caches: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Cache>>>>>,
}

impl WatchCaches {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        WatchCaches {
            store,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// Drops the cache of a prefix: the next request starts a fresh one
    /// (current watchers keep theirs until they end). For a change of what
    /// the extracts keep: a CRD's new selectable fields.
    pub fn forget(&self, prefix: &str) {
        if let Ok(mut caches) = self.caches.lock() {
            caches.remove(prefix);
        }
    }

    /// The cache of everything under a resource's storage prefix.
    pub async fn get(&self, prefix: &str) -> Result<Arc<Cache>, ApiError> {
        let cell = {
            let mut caches = self
                .caches
                .lock()
                .map_err(|_| ApiError::internal("watch cache registry poisoned"))?;
            caches.entry(prefix.to_owned()).or_default().clone()
        };
        cell.get_or_try_init(|| Cache::start(self.store.clone(), prefix.to_owned()))
            .await
            .cloned()
    }
}
