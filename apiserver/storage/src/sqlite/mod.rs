//! The embedded store: SQLite in WAL mode.
//!
//! One writer thread commits batches of writes (see [`writer`]); a small
//! pool of read connections serves gets, ranges and watch catch-up
//! concurrently with it (WAL readers never block the writer).

mod reads;
mod schema;
mod watch;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{broadcast, oneshot};

use crate::{
    DeleteResult, GetResult, KeyValue, RangeRequest, RangeResult, Result, Revision, Storage,
    StorageError, WatchStream, check_size,
};
use writer::{Op, Outcome, Request, Writer};

/// Options of the embedded store.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// The database file (created if missing).
    pub path: PathBuf,
    /// How often history is compacted; `None` turns automatic compaction off.
    pub compaction_interval: Option<Duration>,
    pub max_request_bytes: usize,
    /// Read connections in the pool.
    pub readers: usize,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            compaction_interval: Some(Duration::from_secs(300)),
            max_request_bytes: crate::DEFAULT_MAX_REQUEST_BYTES,
            readers: 4,
        }
    }
}

/// State shared by the writer, the readers and the watchers.
pub(crate) struct Shared {
    /// The latest committed revision.
    pub revision: AtomicI64,
    pub compacted: AtomicI64,
    /// Each committed batch's events, for live watchers.
    pub hub: broadcast::Sender<Arc<Vec<crate::Event>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl Shared {
    /// Runs `f` on a read connection, off the async runtime.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let n = shared.readers.len();
            let start = shared.next_reader.fetch_add(1, Ordering::Relaxed);
            // Take the first idle connection, or wait for the one in turn.
            for i in 0..n {
                if let Ok(mut conn) = shared.readers[(start + i) % n].try_lock() {
                    return f(&mut conn);
                }
            }
            let mut conn = shared.readers[start % n]
                .lock()
                .map_err(|_| StorageError::Internal("read connection poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Internal(format!("read task failed: {e}")))?
    }
}

pub struct SqliteStore {
    shared: Arc<Shared>,
    writes: mpsc::Sender<Request>,
    max_request_bytes: usize,
    _lock: File,
}

/// Copies the WAL back into the database file off the writer's thread, so
/// commits rarely wait for a checkpoint. Ends once the store is gone.
fn checkpoint_loop(conn: Connection, shared: std::sync::Weak<Shared>) {
    while shared.upgrade().is_some() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!(
        "cannot open the database at {}: {e}",
        path.display()
    ))
}

impl SqliteStore {
    /// Opens (or creates) the store. A file that is not an rkube store, or
    /// is damaged, is an error: it is never recreated behind the user's back.
    pub fn open(config: SqliteConfig) -> Result<Self> {
        let path = &config.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
        }
        // One process at a time: revisions are assigned in memory.
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::create(&lock_path).map_err(|e| open_error(&lock_path, e))?;
        lock.try_lock().map_err(|_| {
            StorageError::Unavailable(format!(
                "the database at {} is in use by another process",
                path.display()
            ))
        })?;
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        schema::configure(&conn, &display)?;
        let (revision, compacted) = schema::init(&conn, &display)?;
        let mut readers = Vec::with_capacity(config.readers.max(1));
        for _ in 0..config.readers.max(1) {
            let reader = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_error(path, e))?;
            schema::configure_reader(&reader, &display)?;
            readers.push(Mutex::new(reader));
        }
        let (hub, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            hub,
            readers,
            next_reader: AtomicUsize::new(0),
        });
        let (writes, rx) = mpsc::channel();
        let writer = Writer {
            conn,
            shared: shared.clone(),
            rev: revision,
            compacted,
            compaction_interval: config.compaction_interval,
        };
        let checkpointer = Connection::open(path).map_err(|e| open_error(path, e))?;
        schema::configure_reader(&checkpointer, &display)?;
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("rkube-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, weak))
            .map_err(|e| open_error(path, e))?;
        std::thread::Builder::new()
            .name("rkube-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteStore {
            shared,
            writes,
            max_request_bytes: config.max_request_bytes,
            _lock: lock,
        })
    }

    async fn write(&self, op: Op) -> Result<Outcome> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(Request { op, reply })
            .map_err(|_| StorageError::Unavailable("the store writer has stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Unavailable("the store writer has stopped".into()))?
    }

    fn expires_at(ttl: Option<Duration>) -> Option<i64> {
        ttl.map(|t| writer::now_millis() + t.as_millis() as i64)
    }
}

fn unexpected() -> StorageError {
    StorageError::Internal("unexpected write outcome".into())
}

#[async_trait]
impl Storage for SqliteStore {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResult> {
        let key = key.to_owned();
        self.shared
            .read(move |conn| reads::get(conn, &key, revision))
            .await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        self.shared.read(move |conn| reads::range(conn, &req)).await
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        check_size(key, &value, self.max_request_bytes)?;
        let op = Op::Create {
            key: key.to_owned(),
            value,
            expires_at: Self::expires_at(ttl),
        };
        match self.write(op).await? {
            Outcome::Put(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue> {
        check_size(key, &value, self.max_request_bytes)?;
        let op = Op::Update {
            key: key.to_owned(),
            value,
            expected,
            expires_at: Self::expires_at(ttl),
        };
        match self.write(op).await? {
            Outcome::Put(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<DeleteResult> {
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op).await? {
            Outcome::Deleted(d) => Ok(d),
            _ => Err(unexpected()),
        }
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        watch::start(
            self.shared.clone(),
            prefix.to_owned(),
            start_revision,
            false,
        )
    }

    async fn watch_with_progress(
        &self,
        prefix: &str,
        start_revision: Revision,
    ) -> Result<WatchStream> {
        watch::start(self.shared.clone(), prefix.to_owned(), start_revision, true)
    }

    fn reports_progress(&self) -> bool {
        true
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.write(Op::Compact { revision }).await? {
            Outcome::Compacted => Ok(()),
            _ => Err(unexpected()),
        }
    }

    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }
}
