//! Per-controller work queue metrics under upstream's names
//! (`workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total`,
//! `workqueue_work_duration_seconds`, labelled `name=` with the upstream
//! queue name), plus sync counts by result, rendered as Prometheus text
//! for the controller manager's `/metrics`.
//!
//! The kube-runtime controllers keep their own scheduler, so a [`Queue`]
//! mirrors what client-go's work queue counts: a key is added when a
//! change triggers it (counted once while it waits, as upstream's dirty
//! set), leaves the depth when its sync starts, and the sync's duration
//! and result are recorded when it ends.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

/// Upstream's work duration buckets: `ExponentialBuckets(10e-9, 10, 10)`.
pub const BUCKETS: &[f64] = &[1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// One controller's queue metrics.
pub struct Queue {
    pub name: &'static str,
    /// Keys waiting for a sync, with when they were added.
    waiting: Mutex<HashMap<String, Instant>>,
    adds: AtomicU64,
    retries: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    work: Histogram,
    /// Time from add to sync start.
    waited: Histogram,
}

/// A Prometheus histogram over [`BUCKETS`].
struct Histogram {
    /// Per bucket (and +Inf last), not cumulative.
    buckets: Vec<AtomicU64>,
    /// Sum of observations in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..=BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, metric: &str, queue: &str) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.buckets[i]);
            out.push_str(&format!(
                "{metric}_bucket{{name=\"{queue}\",le=\"{b}\"}} {cumulative}\n"
            ));
        }
        cumulative += get(&self.buckets[BUCKETS.len()]);
        out.push_str(&format!(
            "{metric}_bucket{{name=\"{queue}\",le=\"+Inf\"}} {cumulative}\n{metric}_sum{{name=\"{queue}\"}} {}\n{metric}_count{{name=\"{queue}\"}} {cumulative}\n",
            get(&self.sum_nanos) as f64 / 1e9
        ));
    }
}

impl Queue {
    fn new(name: &'static str) -> Queue {
        Queue {
            name,
            waiting: Mutex::default(),
            adds: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            work: Histogram::new(),
            waited: Histogram::new(),
        }
    }

    /// A change queued `key` (counted once while it waits).
    pub fn add(&self, key: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if !waiting.contains_key(key) {
            waiting.insert(key.to_string(), Instant::now());
            self.adds.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A sync of `key` starts; pass the result to [`Queue::done`].
    pub fn start(&self, key: &str) -> Instant {
        let added = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(added) = added {
            self.waited.observe(added.elapsed());
        }
        Instant::now()
    }

    /// A sync that began at `started` ended (`ok == false`: it failed and
    /// will be retried).
    pub fn done(&self, started: Instant, ok: bool) {
        self.work.observe(started.elapsed());
        if ok {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A change queued the object `r` names.
    pub fn add_ref<K: Resource>(&self, r: &ObjectRef<K>) {
        match r.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => self.add(&format!("{ns}/{}", r.name)),
            _ => self.add(&r.name),
        }
    }

    pub fn depth(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn syncs(&self) -> (u64, u64) {
        (
            self.succeeded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The key client-go's work queues use: `namespace/name` or `name`.
pub fn key<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Wraps a kube-runtime reconciler so its syncs are counted and timed.
pub fn instrument<K, C, E, F, Fut>(
    queue: Arc<Queue>,
    mut reconcile: F,
) -> impl FnMut(Arc<K>, Arc<C>) -> futures::future::BoxFuture<'static, Result<Action, E>>
where
    K: Resource + Send + Sync + 'static,
    C: Send + Sync + 'static,
    E: Send + 'static,
    F: FnMut(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    move |obj, ctx| {
        let started = queue.start(&key(obj.as_ref()));
        let fut = reconcile(obj, ctx);
        let queue = queue.clone();
        Box::pin(async move {
            let result = fut.await;
            queue.done(started, result.is_ok());
            result
        })
    }
}

/// Every queue of the process, by name.
#[derive(Default, Clone)]
pub struct Registry {
    queues: Arc<Mutex<BTreeMap<&'static str, Arc<Queue>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// The queue named `name`, created on first use.
    pub fn queue(&self, name: &'static str) -> Arc<Queue> {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_insert_with(|| Arc::new(Queue::new(name)))
            .clone()
    }

    /// Prometheus text exposition of every queue.
    pub fn render(&self) -> String {
        let queues: Vec<Arc<Queue>> = self
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str(
            "# HELP workqueue_depth Current depth of workqueue\n# TYPE workqueue_depth gauge\n",
        );
        for q in &queues {
            out.push_str(&format!(
                "workqueue_depth{{name=\"{}\"}} {}\n",
                q.name,
                q.depth()
            ));
        }
        out.push_str("# HELP workqueue_adds_total Total number of adds handled by workqueue\n# TYPE workqueue_adds_total counter\n");
        for q in &queues {
            out.push_str(&format!(
                "workqueue_adds_total{{name=\"{}\"}} {}\n",
                q.name,
                get(&q.adds)
            ));
        }
        out.push_str("# HELP workqueue_retries_total Total number of retries handled by workqueue\n# TYPE workqueue_retries_total counter\n");
        for q in &queues {
            out.push_str(&format!(
                "workqueue_retries_total{{name=\"{}\"}} {}\n",
                q.name,
                get(&q.retries)
            ));
        }
        out.push_str("# HELP workqueue_queue_duration_seconds How long in seconds an item stays in workqueue before being requested.\n# TYPE workqueue_queue_duration_seconds histogram\n");
        for q in &queues {
            q.waited
                .render(&mut out, "workqueue_queue_duration_seconds", q.name);
        }
        out.push_str("# HELP workqueue_work_duration_seconds How long in seconds processing an item from workqueue takes.\n# TYPE workqueue_work_duration_seconds histogram\n");
        for q in &queues {
            q.work
                .render(&mut out, "workqueue_work_duration_seconds", q.name);
        }
        out.push_str("# HELP rkube_controller_syncs_total Syncs (reconciles) finished, by controller queue and result.\n# TYPE rkube_controller_syncs_total counter\n");
        for q in &queues {
            let (ok, failed) = q.syncs();
            out.push_str(&format!(
                "rkube_controller_syncs_total{{name=\"{0}\",result=\"success\"}} {ok}\nrkube_controller_syncs_total{{name=\"{0}\",result=\"error\"}} {failed}\n",
                q.name
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_adds_and_durations() {
        let r = Registry::default();
        let q = r.queue("deployment");
        q.add("ns/a");
        q.add("ns/a");
        q.add("ns/b");
        assert_eq!(q.depth(), 2);
        let t = q.start("ns/a");
        q.done(t, true);
        let t = q.start("ns/b");
        q.done(t, false);
        assert_eq!(q.depth(), 0);
        let text = r.render();
        assert!(text.contains("workqueue_depth{name=\"deployment\"} 0\n"));
        assert!(text.contains("workqueue_adds_total{name=\"deployment\"} 2\n"));
        assert!(text.contains("workqueue_retries_total{name=\"deployment\"} 1\n"));
        assert!(text.contains("workqueue_work_duration_seconds_count{name=\"deployment\"} 2\n"));
        assert!(text.contains("workqueue_queue_duration_seconds_count{name=\"deployment\"} 2\n"));
        assert!(text.contains(
            "workqueue_work_duration_seconds_bucket{name=\"deployment\",le=\"+Inf\"} 2\n"
        ));
        assert!(
            text.contains(
                "rkube_controller_syncs_total{name=\"deployment\",result=\"success\"} 1\n"
            )
        );
    }
}
