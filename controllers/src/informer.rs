//! One watch per resource type, shared by every controller in the process
//! (upstream's shared informer factory). Each type gets one kube-runtime
//! `watcher` feeding one reflector `Store`; every subscriber gets a stream of
//! the objects that changed, deletions included (the object's last state),
//! which kube-runtime's own shared streams do not deliver.
//!
//! Controllers wait for [`Informers::synced`] before they read a store:
//! kube-runtime's `Store::wait_until_ready` wakes only the last of several
//! tasks waiting at once (a oneshot receiver keeps one waker), so shared
//! stores must be ready before anything else waits on them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it is resynced
/// from the store.
const BUFFER: usize = 16 * 1024;

/// What a resource type needs to be watched and shared.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

struct Shared<K: Watched> {
    store: Store<K>,
    tx: broadcast::Sender<Arc<K>>,
}

/// Set once a watch's first list is in its store.
type Synced = tokio::sync::watch::Receiver<bool>;

/// The process's shared watches. Subscribe with [`Informers::subscribe`]
/// while building the controllers, then drive every watch with
/// [`Informers::run`].
#[derive(Clone)]
pub struct Informers {
    client: Client,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    shared: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    watches: Vec<BoxFuture<'static, ()>>,
    synced: Vec<Synced>,
}

impl Informers {
    pub fn new(client: Client) -> Self {
        Informers {
            client,
            inner: Arc::default(),
        }
    }

    /// The store of every `K` in the cluster (filled once the watch's first
    /// list arrives: see `Store::wait_until_ready`).
    pub fn store<K: Watched>(&self) -> Store<K> {
        self.shared::<K>().store.clone()
    }

    /// The store and a stream of every change to a `K` from the first list
    /// on. A deleted object arrives as its last state (then no longer in the
    /// store).
    pub fn subscribe<K: Watched>(&self) -> (Store<K>, impl Stream<Item = Arc<K>> + Send + use<K>) {
        let shared = self.shared::<K>();
        let store = shared.store.clone();
        let rx = shared.tx.subscribe();
        (store.clone(), changes(rx, store))
    }

    fn shared<K: Watched>(&self) -> SharedRef<K> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = inner.shared.get(&TypeId::of::<K>())
            && let Some(s) = s.downcast_ref::<SharedRef<K>>()
        {
            return s.clone();
        }
        let (store, writer) = reflector::store::<K>();
        let (tx, _) = broadcast::channel(BUFFER);
        let shared = Arc::new(Shared {
            store: store.clone(),
            tx: tx.clone(),
        });
        let api: Api<K> = Api::all(self.client.clone());
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        inner.synced.push(synced);
        inner
            .watches
            .push(watch(api, writer, tx, synced_tx).boxed());
        inner
            .shared
            .insert(TypeId::of::<K>(), Box::new(shared.clone()));
        shared
    }

    /// Waits until every watch subscribed so far has its first list in its
    /// store.
    pub async fn synced(&self) {
        let synced = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .synced
            .clone();
        for mut rx in synced {
            // An error means the watch ended: nothing more to wait for.
            let _ = rx.wait_for(|listed| *listed).await;
        }
    }

    /// Runs every watch subscribed so far until the future is dropped.
    pub async fn run(&self) {
        let watches =
            std::mem::take(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()).watches);
        futures::future::join_all(watches).await;
    }
}

type SharedRef<K> = Arc<Shared<K>>;

/// One watch: applies its events to the store and fans the changed objects
/// out. After a relist, objects that vanished meanwhile are sent as deleted.
async fn watch<K: Watched>(
    api: Api<K>,
    mut writer: reflector::store::Writer<K>,
    tx: broadcast::Sender<Arc<K>>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    let store = writer.as_reader();
    tracing::debug!(kind = %K::kind(&()), "watch starting");
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                continue;
            }
        };
        match &event {
            Event::Apply(obj) | Event::Delete(obj) => {
                writer.apply_watcher_event(&event);
                let _ = tx.send(Arc::new(obj.clone()));
            }
            Event::Init | Event::InitApply(_) => writer.apply_watcher_event(&event),
            Event::InitDone => {
                tracing::debug!(kind = %K::kind(&()), "watch listed");
                let before: HashMap<ObjectRef<K>, Arc<K>> = store
                    .state()
                    .into_iter()
                    .map(|o| (ObjectRef::from_obj(o.as_ref()), o))
                    .collect();
                writer.apply_watcher_event(&event);
                synced.send_replace(true);
                let after = store.state();
                let mut seen = std::collections::HashSet::new();
                for obj in after {
                    seen.insert(ObjectRef::from_obj(obj.as_ref()));
                    let _ = tx.send(obj);
                }
                for (key, obj) in before {
                    if !seen.contains(&key) {
                        let _ = tx.send(obj);
                    }
                }
            }
        }
    }
}

/// A subscriber's stream: the broadcast changes; after falling behind, every
/// object in the store (owners then resync what they missed).
fn changes<K: Watched>(
    rx: broadcast::Receiver<Arc<K>>,
    store: Store<K>,
) -> impl Stream<Item = Arc<K>> + Send
where
    ObjectRef<K>: Hash + Eq,
{
    futures::stream::unfold(
        (rx, store, Vec::<Arc<K>>::new()),
        |(mut rx, store, mut pending)| async move {
            loop {
                if let Some(obj) = pending.pop() {
                    return Some((obj, (rx, store, pending)));
                }
                match rx.recv().await {
                    Ok(obj) => return Some((obj, (rx, store, pending))),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(kind = %K::kind(&()), missed = n, "subscriber fell behind; resyncing");
                        pending = store.state();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}
