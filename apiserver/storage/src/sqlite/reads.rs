//! Reads: gets and ranges at the latest or an older revision, and history
//! for watch catch-up.
//!
//! At the latest revision only the `kv` table is read. At an older revision
//! R, rows of `kv` untouched since R are still valid; only keys changed
//! after R (found from the short tail of `log` past R) need their value at R
//! looked up in history.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, Transaction};

use crate::{
    Event, EventKind, GetResult, KeyValue, RangeRequest, RangeResult, Result, Revision,
    StorageError, prefix_end,
};

fn sql(e: rusqlite::Error) -> StorageError {
    StorageError::Internal(e.to_string())
}

fn key_string(raw: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// (current revision, compacted revision) as of this read transaction.
fn revisions(tx: &Transaction) -> Result<(Revision, Revision)> {
    let mut stmt = tx
        .prepare_cached("SELECT name, value FROM meta WHERE name IN ('rev', 'compact')")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let (mut rev, mut compacted) = (0, 0);
    while let Some(row) = rows.next().map_err(sql)? {
        let name: String = row.get(0).map_err(sql)?;
        let value: i64 = row.get(1).map_err(sql)?;
        match name.as_str() {
            "rev" => rev = value,
            _ => compacted = value,
        }
    }
    Ok((rev, compacted))
}

/// Checks a requested revision against the store's and picks the one to read at.
fn read_revision(tx: &Transaction, requested: Option<Revision>) -> Result<(Revision, bool)> {
    let (current, compacted) = revisions(tx)?;
    match requested {
        None => Ok((current, true)),
        Some(r) if r > current => Err(StorageError::FutureRevision {
            requested: r,
            current,
        }),
        Some(r) if r < compacted => Err(StorageError::Compacted {
            requested: r,
            compacted,
        }),
        Some(r) => Ok((r, r == current)),
    }
}

fn kv_row(r: &Row) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(r.get(0)?)?,
        value: Bytes::from(r.get::<_, Vec<u8>>(1)?),
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
        version: r.get(4)?,
    })
}

/// The value a key had at `rev`, from the first change to it after `rev`:
/// that change supersedes exactly the row valid at `rev` (none if it
/// created the key).
fn before_change(tx: &Transaction, prev_rev: Option<Revision>) -> Result<Option<KeyValue>> {
    let Some(prev_rev) = prev_rev else {
        return Ok(None);
    };
    tx.prepare_cached(
        "SELECT key, value, create_rev, rev, version FROM log WHERE rev = ?1 AND value IS NOT NULL",
    )
    .map_err(sql)?
    .query_row([prev_rev], kv_row)
    .optional()
    .map_err(sql)
}

/// The value of `key` at `rev`, when it has changed since.
fn from_log(tx: &Transaction, key: &[u8], rev: Revision) -> Result<Option<KeyValue>> {
    let first_change: Option<Option<Revision>> = tx
        .prepare_cached("SELECT prev_rev FROM log WHERE rev > ?1 AND key = ?2 ORDER BY rev LIMIT 1")
        .map_err(sql)?
        .query_row(rusqlite::params![rev, key], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    before_change(tx, first_change.flatten())
}

pub(crate) fn get(
    conn: &mut Connection,
    key: &str,
    revision: Option<Revision>,
) -> Result<GetResult> {
    let tx = conn.transaction().map_err(sql)?;
    let (rev, latest) = read_revision(&tx, revision)?;
    let current = tx
        .prepare_cached(
            "SELECT k.key, l.value, k.create_rev, k.mod_rev, k.version FROM kv AS k \
             JOIN log AS l ON l.rev = k.mod_rev WHERE k.key = ?1",
        )
        .map_err(sql)?
        .query_row([key.as_bytes()], kv_row)
        .optional()
        .map_err(sql)?;
    let kv = match current {
        Some(kv) if latest || kv.mod_revision <= rev => Some(kv),
        _ if latest => None,
        _ => from_log(&tx, key.as_bytes(), rev)?,
    };
    Ok(GetResult { kv, revision: rev })
}

pub(crate) fn range(conn: &mut Connection, req: &RangeRequest) -> Result<RangeResult> {
    let tx = conn.transaction().map_err(sql)?;
    let (rev, latest) = read_revision(&tx, req.revision)?;
    let start = req
        .start
        .as_deref()
        .unwrap_or(&req.prefix)
        .as_bytes()
        .to_vec();
    let end = prefix_end(&req.prefix);
    // Fetch one more than the limit to learn whether more remain.
    let fetch = if req.limit == 0 {
        -1
    } else {
        req.limit as i64 + 1
    };
    let mut kvs: Vec<KeyValue> = tx
        .prepare_cached(
            "SELECT k.key, l.value, k.create_rev, k.mod_rev, k.version FROM kv AS k \
             JOIN log AS l ON l.rev = k.mod_rev \
             WHERE k.key >= ?1 AND k.key < ?2 AND k.mod_rev <= ?3 ORDER BY k.key LIMIT ?4",
        )
        .map_err(sql)?
        .query_map(rusqlite::params![start, end, rev, fetch], kv_row)
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    let mut count: i64 = tx
        .prepare_cached("SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2 AND mod_rev <= ?3")
        .map_err(sql)?
        .query_row(rusqlite::params![start, end, rev], |r| r.get(0))
        .map_err(sql)?;
    if !latest {
        // Keys changed after `rev`: their value at `rev` is the row their
        // first later change supersedes. (SQLite takes `prev_rev` from the
        // row with the smallest revision of each group.)
        let changed: Vec<Option<Revision>> = tx
            .prepare_cached(
                "SELECT prev_rev, min(rev) FROM log WHERE rev > ?1 AND key >= ?2 AND key < ?3 \
                 GROUP BY key",
            )
            .map_err(sql)?
            .query_map(rusqlite::params![rev, start, end], |r| r.get(0))
            .map_err(sql)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql)?;
        let mut old = Vec::new();
        for prev_rev in changed {
            if let Some(kv) = before_change(&tx, prev_rev)? {
                old.push(kv);
            }
        }
        count += old.len() as i64;
        kvs.extend(old);
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        if fetch >= 0 {
            kvs.truncate(fetch as usize);
        }
    }
    let more = req.limit != 0 && kvs.len() > req.limit;
    if more {
        kvs.truncate(req.limit);
    }
    Ok(RangeResult {
        kvs,
        revision: rev,
        more,
        count,
    })
}

/// Changes under a prefix with revisions in `[from, to]`, at most `limit`,
/// with their previous values. Fails with `Compacted` when `from` is gone.
pub(crate) fn log_events(
    conn: &mut Connection,
    prefix: &str,
    from: Revision,
    to: Revision,
    limit: usize,
) -> Result<Vec<Event>> {
    let tx = conn.transaction().map_err(sql)?;
    let (_, compacted) = revisions(&tx)?;
    if from < compacted {
        return Err(StorageError::Compacted {
            requested: from,
            compacted,
        });
    }
    let end = prefix_end(prefix);
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.rev, l.key, l.value, l.create_rev, l.version, \
             p.rev, p.value, p.create_rev, p.version \
             FROM log AS l LEFT JOIN log AS p ON p.rev = l.prev_rev \
             WHERE l.rev >= ?1 AND l.rev <= ?2 AND l.key >= ?3 AND l.key < ?4 \
             ORDER BY l.rev LIMIT ?5",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map(
            rusqlite::params![from, to, prefix.as_bytes(), end, limit as i64],
            |r| {
                let rev: Revision = r.get(0)?;
                let key = key_string(r.get(1)?)?;
                let value: Option<Vec<u8>> = r.get(2)?;
                let prev = match r.get::<_, Option<Revision>>(5)? {
                    Some(prev_rev) => Some(KeyValue {
                        key: key.clone(),
                        value: Bytes::from(r.get::<_, Option<Vec<u8>>>(6)?.unwrap_or_default()),
                        create_revision: r.get(7)?,
                        mod_revision: prev_rev,
                        version: r.get(8)?,
                    }),
                    None => None,
                };
                let kind = if value.is_some() {
                    EventKind::Put
                } else {
                    EventKind::Delete
                };
                Ok(Event {
                    kind,
                    kv: KeyValue {
                        key,
                        value: value.map(Bytes::from).unwrap_or_default(),
                        create_revision: r.get(3)?,
                        mod_revision: rev,
                        version: r.get(4)?,
                    },
                    prev,
                })
            },
        )
        .map_err(sql)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql)
}
