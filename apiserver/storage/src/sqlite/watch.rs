//! Watches on the embedded store.
//!
//! A watcher first replays history from the log (its start revision up to
//! the last commit), then follows the writer's broadcast of committed
//! batches. It subscribes before replaying, so no commit falls between the
//! two; events seen twice are skipped by revision. A watcher that falls
//! behind the broadcast goes back to the log, so a slow consumer never
//! loses events (or gets `Compacted` once its history is gone).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Shared, reads};
use crate::{Event, Result, Revision, StorageError, WatchStream};

/// Events read from the log per catch-up query.
const CATCH_UP_PAGE: usize = 1000;
/// Events buffered between the watcher task and its consumer.
const BUFFER: usize = 256;

pub(crate) fn start(
    shared: Arc<Shared>,
    prefix: String,
    start: Revision,
    progress: bool,
) -> Result<WatchStream> {
    let compacted = shared.compacted.load(Ordering::Acquire);
    if start < compacted {
        return Err(StorageError::Compacted {
            requested: start,
            compacted,
        });
    }
    let rx = shared.hub.subscribe();
    let (tx, out) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        tokio::select! {
            _ = run(shared, prefix, start.max(1), rx, tx.clone(), progress) => {}
            _ = tx.closed() => {}
        }
    });
    Ok(ReceiverStream::new(out).boxed())
}

fn progress_event(revision: Revision) -> Event {
    Event {
        kind: crate::EventKind::Progress,
        kv: crate::KeyValue {
            key: String::new(),
            value: bytes::Bytes::new(),
            create_revision: 0,
            mod_revision: revision,
            version: 0,
        },
        prev: None,
    }
}

async fn run(
    shared: Arc<Shared>,
    prefix: String,
    mut next: Revision,
    mut rx: broadcast::Receiver<Arc<Vec<Event>>>,
    tx: mpsc::Sender<Result<Event>>,
    progress: bool,
) {
    loop {
        // Catch up from the log to the last commit.
        loop {
            let to = shared.revision.load(Ordering::Acquire);
            if next > to {
                break;
            }
            let p = prefix.clone();
            let from = next;
            let page = shared
                .read(move |conn| reads::log_events(conn, &p, from, to, CATCH_UP_PAGE))
                .await;
            let events = match page {
                Ok(events) => events,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let full = events.len() == CATCH_UP_PAGE;
            for event in events {
                next = event.revision() + 1;
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if !full {
                next = next.max(to + 1);
            }
        }
        if progress && tx.send(Ok(progress_event(next - 1))).await.is_err() {
            return;
        }
        // Follow live commits.
        loop {
            match rx.recv().await {
                Ok(batch) => {
                    let mut delivered = 0;
                    for event in batch.iter() {
                        if event.revision() < next || !event.kv.key.starts_with(&prefix) {
                            continue;
                        }
                        if tx.send(Ok(event.clone())).await.is_err() {
                            return;
                        }
                        delivered = event.revision();
                    }
                    if let Some(last) = batch.last()
                        && last.revision() >= next
                    {
                        next = last.revision() + 1;
                        if progress
                            && delivered < last.revision()
                            && tx.send(Ok(progress_event(last.revision()))).await.is_err()
                        {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
