//! The embedded store's tables.
//!
//! `kv` is the current state: one small row per live key (its revisions,
//! version and expiry), so gets and lists walk only live keys and never
//! scan history. `log` holds every change (the history that watches, reads
//! at older revisions and compaction use), keyed by revision; a key's
//! current value is its `log` row at `kv.mod_rev`, fetched by primary key.
//! Values are written once, not once per table: on this disk the write
//! volume is what bounds commits per second.

use rusqlite::{Connection, OptionalExtension};

use crate::{Revision, StorageError};

/// `PRAGMA application_id` of an rkube store ("rkub").
const APPLICATION_ID: i64 = 0x726b_7562;

/// Small pages: each write dirties one random `kv` leaf, and every dirty
/// page costs its full size in the WAL and again at checkpoint, so 1 KiB
/// pages cut the bytes written per write (5.1 KiB against 8.6 KiB with
/// 4 KiB pages, for 1 KiB values; see the storage benchmark).
const PAGE_SIZE: usize = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key        BLOB NOT NULL PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB NOT NULL,
    value      BLOB,
    create_rev INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    -- The change this one supersedes (the key's previous row), if the key
    -- existed before it: reads at older revisions and compaction follow it,
    -- so the log needs no index by key.
    prev_rev   INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

fn corrupt(path: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!(
        "cannot use the database at {path}: {err}; it is not an rkube store or it is damaged \
         (it was left as it is: move it away to start with an empty store)"
    ))
}

/// Connection settings shared by the writer and the readers.
pub(crate) fn configure(conn: &Connection, path: &str) -> Result<(), StorageError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| corrupt(path, e))?;
    // synchronous=FULL: a commit is on disk before it is acknowledged.
    // Most checkpointing runs on its own thread (see `checkpoint_loop`); the
    // writer's own automatic checkpoint then finds little left to copy, and
    // lets the next commit restart the WAL from its start, so the file is
    // reused instead of growing while writes never pause.
    // The page size only takes on a new file, before WAL mode is set.
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
        .map_err(|e| corrupt(path, e))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-4096; \
         PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=8000; \
         PRAGMA journal_size_limit=268435456;",
    )
    .map_err(|e| corrupt(path, e))?;
    Ok(())
}

/// Checks an existing file is an rkube store, or lays out a new one.
/// Returns (current revision, compacted revision).
pub(crate) fn init(conn: &Connection, path: &str) -> Result<(Revision, Revision), StorageError> {
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    if tables > 0 && app_id != APPLICATION_ID {
        return Err(corrupt(path, "unknown application id"));
    }
    if tables == 0 {
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID};"))
            .map_err(|e| corrupt(path, e))?;
    }
    conn.execute_batch(SCHEMA).map_err(|e| corrupt(path, e))?;
    let meta = |name: &str| -> Result<Revision, StorageError> {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map(|v| v.unwrap_or(0))
        .map_err(|e| corrupt(path, e))
    };
    let max_log: Revision = conn
        .query_row("SELECT coalesce(max(rev), 0) FROM log", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    Ok((meta("rev")?.max(max_log), meta("compact")?))
}

/// Read connections only need a lock timeout and a cache.
pub(crate) fn configure_reader(conn: &Connection, path: &str) -> Result<(), StorageError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| corrupt(path, e))?;
    conn.execute_batch("PRAGMA cache_size=-2048;")
        .map_err(|e| corrupt(path, e))?;
    Ok(())
}
