//! The single writer thread: group commit.
//!
//! Every write goes through one thread that takes all requests waiting in
//! its queue, applies them in one transaction and commits once, so N
//! concurrent writers cost one fsync instead of N. Revisions are assigned
//! here, in commit order. After a commit the batch's events go to the watch
//! hub and each caller gets its answer; a failed commit answers every
//! request in the batch with the error and assigns no revision.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use super::Shared;
use crate::{DeleteResult, Event, EventKind, KeyValue, Revision, StorageError};

/// The most requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// How often expired keys are looked for.
const EXPIRY_TICK: Duration = Duration::from_millis(500);

pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
        expires_at: Option<i64>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        expires_at: Option<i64>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

pub(crate) enum Outcome {
    Put(KeyValue),
    Deleted(DeleteResult),
    Compacted,
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome, StorageError>>,
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) struct Writer {
    pub conn: Connection,
    pub shared: Arc<Shared>,
    pub rev: Revision,
    pub compacted: Revision,
    pub compaction_interval: Option<Duration>,
}

fn sql_err(e: rusqlite::Error) -> StorageError {
    StorageError::Internal(e.to_string())
}

/// Reads the current row of a key.
fn current(tx: &Transaction, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    tx.prepare_cached(
        "SELECT l.value, k.create_rev, k.mod_rev, k.version FROM kv AS k \
         JOIN log AS l ON l.rev = k.mod_rev WHERE k.key = ?1",
    )?
    .query_row([key.as_bytes()], |r| {
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::from(r.get::<_, Vec<u8>>(0)?),
            create_revision: r.get(1)?,
            mod_revision: r.get(2)?,
            version: r.get(3)?,
        })
    })
    .optional()
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut last_expiry = Instant::now();
        let mut last_compaction = Instant::now();
        // Upstream compacts to the revision seen one interval earlier, so at
        // least one interval of history always remains.
        let mut compact_candidate = self.rev;
        loop {
            let first = match rx.recv_timeout(EXPIRY_TICK) {
                Ok(req) => Some(req),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = Vec::with_capacity(64);
            batch.extend(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            if last_expiry.elapsed() >= EXPIRY_TICK {
                last_expiry = Instant::now();
                batch.extend(self.expired_deletes());
            }
            if let Some(interval) = self.compaction_interval
                && last_compaction.elapsed() >= interval
            {
                last_compaction = Instant::now();
                if compact_candidate > self.compacted {
                    let (reply, _) = oneshot::channel();
                    batch.push(Request {
                        op: Op::Compact {
                            revision: compact_candidate,
                        },
                        reply,
                    });
                }
                compact_candidate = self.rev;
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
        }
    }

    /// Delete requests for keys whose TTL has run out.
    fn expired_deletes(&mut self) -> Vec<Request> {
        let found: rusqlite::Result<Vec<(Vec<u8>, Revision)>> = (|| {
            let mut stmt = self.conn.prepare_cached(
                "SELECT key, mod_rev FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 LIMIT 1000",
            )?;
            let rows = stmt.query_map([now_millis()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })();
        let found = found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "looking for expired keys failed");
            Vec::new()
        });
        found
            .into_iter()
            .filter_map(|(key, rev)| {
                let key = String::from_utf8(key).ok()?;
                let (reply, _) = oneshot::channel();
                Some(Request {
                    op: Op::Delete {
                        key,
                        expected: Some(rev),
                    },
                    reply,
                })
            })
            .collect()
    }

    fn commit(&mut self, batch: Vec<Request>) {
        let start_rev = self.rev;
        let start_compacted = self.compacted;
        let mut events = Vec::with_capacity(batch.len());
        let mut results = Vec::with_capacity(batch.len());
        let outcome: rusqlite::Result<()> = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for req in &batch {
                let result = apply(
                    &tx,
                    &req.op,
                    &mut self.rev,
                    &mut self.compacted,
                    &mut events,
                )?;
                results.push(result);
            }
            if self.rev != start_rev {
                tx.prepare_cached("INSERT OR REPLACE INTO meta(name, value) VALUES ('rev', ?1)")?
                    .execute([self.rev])?;
            }
            tx.commit()
        })();
        match outcome {
            Ok(()) => {
                self.shared.revision.store(self.rev, Ordering::Release);
                self.shared
                    .compacted
                    .store(self.compacted, Ordering::Release);
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.shared.hub.send(Arc::new(events));
                }
                for (req, result) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storage commit failed");
                self.rev = start_rev;
                self.compacted = start_compacted;
                let err = sql_err(e);
                for req in batch {
                    let _ = req.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Applies one request inside the batch transaction. The outer error is a
/// database failure (the whole batch rolls back); the inner one is this
/// request's own refusal, which writes nothing.
fn apply(
    tx: &Transaction,
    op: &Op,
    rev: &mut Revision,
    compacted: &mut Revision,
    events: &mut Vec<Event>,
) -> rusqlite::Result<Result<Outcome, StorageError>> {
    match op {
        Op::Create {
            key,
            value,
            expires_at,
        } => {
            let exists = tx
                .prepare_cached("SELECT 1 FROM kv WHERE key = ?1")?
                .exists([key.as_bytes()])?;
            if exists {
                return Ok(Err(StorageError::AlreadyExists { key: key.clone() }));
            }
            let new = *rev + 1;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: new,
                mod_revision: new,
                version: 1,
            };
            put(tx, &kv, *expires_at, None)?;
            *rev = new;
            events.push(Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev: None,
            });
            Ok(Ok(Outcome::Put(kv)))
        }
        Op::Update {
            key,
            value,
            expected,
            expires_at,
        } => {
            let Some(old) = current(tx, key)? else {
                return Ok(Err(StorageError::NotFound { key: key.clone() }));
            };
            if old.mod_revision != *expected {
                return Ok(Err(StorageError::Conflict {
                    key: key.clone(),
                    current: Some(Box::new(old)),
                }));
            }
            let new = *rev + 1;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: old.create_revision,
                mod_revision: new,
                version: old.version + 1,
            };
            put(tx, &kv, *expires_at, Some(old.mod_revision))?;
            *rev = new;
            events.push(Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev: Some(old),
            });
            Ok(Ok(Outcome::Put(kv)))
        }
        Op::Delete { key, expected } => {
            let Some(old) = current(tx, key)? else {
                return Ok(Err(StorageError::NotFound { key: key.clone() }));
            };
            if expected.is_some_and(|e| e != old.mod_revision) {
                return Ok(Err(StorageError::Conflict {
                    key: key.clone(),
                    current: Some(Box::new(old)),
                }));
            }
            let new = *rev + 1;
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            tx.prepare_cached(
                "INSERT INTO log(rev, key, value, create_rev, version, prev_rev) \
                 VALUES (?1, ?2, NULL, 0, 0, ?3)",
            )?
            .execute(params![new, key.as_bytes(), old.mod_revision])?;
            *rev = new;
            events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: new,
                    version: 0,
                },
                prev: Some(old.clone()),
            });
            Ok(Ok(Outcome::Deleted(DeleteResult {
                revision: new,
                prev: old,
            })))
        }
        Op::Compact { revision } => {
            if *revision <= *compacted {
                return Ok(Err(StorageError::Compacted {
                    requested: *revision,
                    compacted: *compacted,
                }));
            }
            if *revision > *rev {
                return Ok(Err(StorageError::FutureRevision {
                    requested: *revision,
                    current: *rev,
                }));
            }
            // Drop every row superseded by a change before the compaction
            // revision, and deletes before it: what remains is, for each
            // key, the row valid at `revision`, so reads and watches from
            // there on still see everything (with previous values). Rows
            // superseded before the last compaction are gone already.
            let superseded = tx
                .prepare_cached(
                    "DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log \
                     WHERE rev >= ?1 AND rev < ?2 AND prev_rev IS NOT NULL)",
                )?
                .execute([*compacted, *revision])?;
            let deletes = tx
                .prepare_cached("DELETE FROM log WHERE rev >= ?1 AND rev < ?2 AND value IS NULL")?
                .execute([*compacted, *revision])?;
            let removed = superseded + deletes;
            tx.prepare_cached("INSERT OR REPLACE INTO meta(name, value) VALUES ('compact', ?1)")?
                .execute([*revision])?;
            tracing::debug!(revision, removed, "compacted storage history");
            *compacted = *revision;
            Ok(Ok(Outcome::Compacted))
        }
    }
}

fn put(
    tx: &Transaction,
    kv: &KeyValue,
    expires_at: Option<i64>,
    prev_rev: Option<Revision>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO kv(key, create_rev, mod_rev, version, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET \
         mod_rev = excluded.mod_rev, version = excluded.version, \
         expires_at = excluded.expires_at",
    )?
    .execute(params![
        kv.key.as_bytes(),
        kv.create_revision,
        kv.mod_revision,
        kv.version,
        expires_at
    ])?;
    tx.prepare_cached(
        "INSERT INTO log(rev, key, value, create_rev, version, prev_rev) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        kv.mod_revision,
        kv.key.as_bytes(),
        kv.value.as_ref(),
        kv.create_revision,
        kv.version,
        prev_rev
    ])?;
    Ok(())
}
