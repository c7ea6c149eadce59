//! rkube's storage layer: a key-value store with etcd v3 semantics.
//!
//! Every value carries the revision that created it and the one that last
//! modified it; writes are compare-and-swap on the mod revision; ranges are
//! read at one revision and paginate by key; watches replay every change in
//! revision order with the previous value. Two backends implement it: the
//! embedded SQLite store ([`sqlite::SqliteStore`], the default) and etcd
//! ([`etcd::EtcdStore`]).
//!
//! Keys passed to the trait are relative to the storage prefix
//! (`/pods/default/web`); the etcd backend prepends `--etcd-prefix`
//! (`/registry` by default) so the keys in etcd match upstream's layout.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub mod etcd;
pub mod sqlite;
pub mod testing;

/// A store revision. Revisions start at 1 and grow by one per write.
pub type Revision = i64;

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Bytes a write request needs beyond its key and value (the transaction's
/// compare, the put and their framing). Keeping this margin means a value
/// we accept is also accepted by an etcd running with the same limit.
const REQUEST_OVERHEAD_BYTES: usize = 512;

/// The largest value that may be stored under `key` with the given request
/// limit. Both backends apply this, so behaviour does not change with the
/// backend.
pub fn max_value_bytes(key: &str, max_request_bytes: usize) -> usize {
    max_request_bytes.saturating_sub(2 * key.len() + REQUEST_OVERHEAD_BYTES)
}

fn check_size(key: &str, value: &[u8], max_request_bytes: usize) -> Result<()> {
    let limit = max_value_bytes(key, max_request_bytes);
    if value.len() > limit {
        return Err(StorageError::TooLarge {
            size: value.len(),
            limit,
        });
    }
    Ok(())
}

/// The first key after every key that starts with `prefix` (etcd's range end
/// for a prefix).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // A prefix of only 0xff bytes (or empty): range to the end of the keyspace.
    vec![0]
}

/// One stored key and its metadata, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    /// Number of writes since the key was created (1 after creation).
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
    /// Nothing under the watched prefix changed up to `kv.mod_revision`
    /// (only from [`Storage::watch_with_progress`]).
    Progress,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For a put, the new value. For a delete, the key with an empty value and
    /// `mod_revision` set to the revision of the delete.
    pub kv: KeyValue,
    /// The value before this change; `None` for a put that created the key.
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

#[derive(Clone, Debug, Default)]
pub struct RangeRequest {
    /// Every key that starts with this prefix.
    pub prefix: String,
    /// Start from this key (inclusive) instead of the prefix: the continue key.
    pub start: Option<String>,
    /// At most this many keys; 0 for no limit.
    pub limit: usize,
    /// Read at this revision; `None` for the latest.
    pub revision: Option<Revision>,
}

#[derive(Clone, Debug, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the range was read at.
    pub revision: Revision,
    /// More keys remain after the last one returned.
    pub more: bool,
    /// How many keys the range from `start` holds at `revision` (including
    /// the returned ones), as etcd's `count`.
    pub count: i64,
}

#[derive(Clone, Debug)]
pub struct GetResult {
    pub kv: Option<KeyValue>,
    /// The revision the read was made at.
    pub revision: Revision,
}

#[derive(Clone, Debug)]
pub struct DeleteResult {
    pub revision: Revision,
    /// The value that was deleted.
    pub prev: KeyValue,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StorageError {
    #[error("key already exists: {key}")]
    AlreadyExists { key: String },
    #[error("key not found: {key}")]
    NotFound { key: String },
    /// A compare-and-swap saw another mod revision; `current` is the value
    /// now stored, so the caller can retry without another read.
    #[error("conflict on {key}: the stored object has changed")]
    Conflict {
        key: String,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision has been compacted away.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("request is too large: value of {size} bytes over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

pub type WatchStream = BoxStream<'static, Result<Event>>;

/// A key-value store with etcd v3 semantics.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads one key at the latest revision or at `revision`.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResult>;

    /// Reads keys under a prefix at one revision, in key order.
    async fn range(&self, req: RangeRequest) -> Result<RangeResult>;

    /// Stores a new key; fails with `AlreadyExists` when it is present.
    /// With a TTL the key is deleted (with a watch event) once it expires.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue>;

    /// Replaces a key if its mod revision is still `expected`.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue>;

    /// Deletes a key, if given only when its mod revision is still `expected`.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<DeleteResult>;

    /// Every change under `prefix` from `start_revision` (inclusive) on, in
    /// revision order. Fails (at once or later in the stream) with
    /// `Compacted` when that history is gone.
    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream>;

    /// Like [`Storage::watch`], and also yields `Progress` events, so a
    /// watcher knows how far the store has got even when nothing under its
    /// prefix changes (what the watch cache needs for consistent reads).
    /// Backends that cannot say so return a plain watch; see
    /// [`Storage::reports_progress`].
    async fn watch_with_progress(
        &self,
        prefix: &str,
        start_revision: Revision,
    ) -> Result<WatchStream> {
        self.watch(prefix, start_revision).await
    }

    /// Whether `watch_with_progress` reports progress promptly.
    fn reports_progress(&self) -> bool {
        false
    }

    /// The store's latest revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Drops history before `revision`: reads and watches at older revisions
    /// fail with `Compacted` afterwards.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The largest request this store accepts (key, value and overhead).
    fn max_request_bytes(&self) -> usize;
}
