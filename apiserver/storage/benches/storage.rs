//! Storage figures, side by side: the embedded store, the etcd backend, and
//! raw etcd-client calls against the same etcd (the physical reference for
//! the etcd backend). Prints writes/s at 1, 16 and 64 concurrent writers
//! with 1 KiB values, the time to range over 10,000 keys, and watch
//! delivery latency.
//!
//! Run: `hack/bench/storage.sh` (or `cargo bench -p rkube-storage --bench storage`).
//! `BENCH_SECONDS` sets how long each write run lasts (default 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, WatchOptions};
use futures::StreamExt;
use rkube_storage::etcd::{EtcdConfig, EtcdStore};
use rkube_storage::sqlite::{SqliteConfig, SqliteStore};
use rkube_storage::testing::EtcdServer;
use rkube_storage::{RangeRequest, Storage, prefix_end};

const VALUE: usize = 1024;
const RANGE_KEYS: usize = 10_000;
const WATCH_EVENTS: usize = 1000;

/// What one row of the table measures: our trait, or raw etcd-client.
#[async_trait]
trait Target: Send + Sync {
    async fn write(&self, key: String, value: Bytes);
    async fn range_all(&self, prefix: &str) -> usize;
    /// Watches `prefix`, returning a receiver of delivery times of values
    /// that carry their write time in their first 16 bytes.
    async fn watch_latencies(&self, prefix: &str, n: usize) -> tokio::task::JoinHandle<Vec<u64>>;
}

struct Ours(Arc<dyn Storage>);

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn latency_of(value: &[u8]) -> Option<u64> {
    let sent: u64 = std::str::from_utf8(value.get(..16)?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(micros_now().saturating_sub(sent))
}

#[async_trait]
impl Target for Ours {
    async fn write(&self, key: String, value: Bytes) {
        self.0.create(&key, value, None).await.expect("create");
    }
    async fn range_all(&self, prefix: &str) -> usize {
        let r = self
            .0
            .range(RangeRequest {
                prefix: prefix.into(),
                ..Default::default()
            })
            .await
            .expect("range");
        r.kvs.len()
    }
    async fn watch_latencies(&self, prefix: &str, n: usize) -> tokio::task::JoinHandle<Vec<u64>> {
        let start = self.0.current_revision().await.expect("revision") + 1;
        let mut w = self.0.watch(prefix, start).await.expect("watch");
        tokio::spawn(async move {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let Some(Ok(e)) = w.next().await else { break };
                out.extend(latency_of(&e.kv.value));
            }
            out
        })
    }
}

/// Raw etcd-client calls: plain puts, or (`txn`) the conditional
/// transaction any create with etcd semantics needs, as upstream issues it.
struct Raw {
    client: Client,
    txn: bool,
}
#[async_trait]
impl Target for Raw {
    async fn write(&self, key: String, value: Bytes) {
        let key = format!("/registry{key}");
        let mut kv = self.client.kv_client();
        if self.txn {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value.to_vec(), None)]);
            kv.txn(txn).await.expect("txn");
        } else {
            kv.put(key, value.to_vec(), None).await.expect("put");
        }
    }
    async fn range_all(&self, prefix: &str) -> usize {
        let prefix = format!("/registry{prefix}");
        let r = self
            .client
            .kv_client()
            .max_decoding_message_size(i32::MAX as usize)
            .get(
                prefix.clone(),
                Some(GetOptions::new().with_range(prefix_end(&prefix))),
            )
            .await
            .expect("get");
        r.kvs().len()
    }
    async fn watch_latencies(&self, prefix: &str, n: usize) -> tokio::task::JoinHandle<Vec<u64>> {
        let prefix = format!("/registry{prefix}");
        let options = WatchOptions::new()
            .with_range(prefix_end(&prefix))
            .with_prev_key();
        let mut w = self
            .client
            .watch_client()
            .watch(prefix, Some(options))
            .await
            .expect("watch");
        // Wait for the watch to be created before writes start.
        let _ = w.message().await;
        tokio::spawn(async move {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let Ok(Some(resp)) = w.message().await else {
                    break;
                };
                for e in resp.events() {
                    out.extend(e.kv().and_then(|kv| latency_of(kv.value())));
                }
            }
            out
        })
    }
}

fn value(i: u64) -> Bytes {
    let mut v = format!("{:>16}", micros_now()).into_bytes();
    v.resize(VALUE, b'a' + (i % 26) as u8);
    Bytes::from(v)
}

/// Bytes this process has caused to be written to disk so far.
fn disk_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("write_bytes:")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

async fn writes_per_sec(t: &Arc<dyn Target>, run: &str, writers: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (t, stop, done, run) = (t.clone(), stop.clone(), done.clone(), run.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                t.write(format!("/bench/{run}/w{w}/k{i:08}"), value(i))
                    .await;
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn range_ms(t: &Arc<dyn Target>, name: &str) -> f64 {
    let prefix = format!("/range/{name}/");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (t, prefix) = (t.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..RANGE_KEYS).step_by(16) {
                t.write(format!("{prefix}k{i:06}"), value(i as u64)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let n = t.range_all(&prefix).await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, RANGE_KEYS);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

async fn watch_latency(t: &Arc<dyn Target>, name: &str) -> (f64, f64) {
    let prefix = format!("/watch/{name}/");
    let handle = t.watch_latencies(&prefix, WATCH_EVENTS).await;
    for i in 0..WATCH_EVENTS {
        t.write(format!("{prefix}k{i:06}"), value(i as u64)).await;
        // About 1,000 writes/s: latency, not throughput.
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let mut lat = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("watch finished")
        .expect("watch task");
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (pct(0.5), pct(0.99))
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .expect("tempdir");
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    config.compaction_interval = None;
    let embedded: Arc<dyn Storage> = Arc::new(SqliteStore::open(config).expect("open"));
    let only = std::env::var("BENCH_TARGETS").unwrap_or_default();
    // Each etcd row gets a fresh etcd, so no row pays for an earlier row's
    // data. BENCH_TARGETS=embedded,raw picks rows by their first word.
    let rows = [
        "embedded (sqlite)",
        "etcd backend",
        "raw etcd-client put",
        "raw etcd-client txn",
    ];
    let mut embedded = Some(embedded);
    println!(
        "storage benchmark: {VALUE} B values, {secs} s per write run, {RANGE_KEYS} keys per range"
    );
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>14} {:>12} {:>12}",
        "target", "w/s x1", "w/s x16", "w/s x64", "range 10k ms", "watch p50", "watch p99"
    );
    for (i, name) in rows.iter().enumerate() {
        if !only.is_empty() && !only.split(',').any(|o| name.starts_with(o)) {
            continue;
        }
        // Holds this row's etcd until the row is done.
        let mut _etcd = None;
        let t: Arc<dyn Target> = if i == 0 {
            match embedded.take() {
                Some(store) => Arc::new(Ours(store)),
                None => continue,
            }
        } else {
            let server = EtcdServer::start()
                .expect("etcd must be installed for the benchmark (hack/install-deps.sh)");
            let endpoint = server.endpoint.clone();
            _etcd = Some(server);
            if i == 1 {
                let store = EtcdStore::connect(EtcdConfig::new(vec![endpoint]))
                    .await
                    .expect("connect");
                Arc::new(Ours(Arc::new(store)))
            } else {
                let client = Client::connect([endpoint.as_str()], None)
                    .await
                    .expect("connect");
                Arc::new(Raw {
                    client,
                    txn: i == 3,
                })
            }
        };
        let t = &t;
        let tag = format!("t{i}");
        let w1 = writes_per_sec(t, &format!("{tag}-1"), 1, secs).await;
        let w16 = writes_per_sec(t, &format!("{tag}-16"), 16, secs).await;
        let before = (disk_write_bytes(), Instant::now());
        let w64 = writes_per_sec(t, &format!("{tag}-64"), 64, secs).await;
        let written = disk_write_bytes().saturating_sub(before.0) as f64;
        let ops = w64 * before.1.elapsed().as_secs_f64();
        if i == 0 && ops > 0.0 {
            eprintln!(
                "{name}: {:.1} KiB written to disk per write at x64",
                written / ops / 1024.0
            );
        }
        let range = range_ms(t, &tag).await;
        let (p50, p99) = watch_latency(t, &tag).await;
        println!(
            "{name:<20} {w1:>12.0} {w16:>12.0} {w64:>12.0} {range:>14.1} {:>10.2}ms {:>10.2}ms",
            p50, p99
        );
    }
}
