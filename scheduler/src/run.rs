//! The scheduler as an API client: watches feed the cache and the queue;
//! one thread runs scheduling cycles (the CPU-bound part, under one lock);
//! binds, status writes and events go out concurrently on the runtime.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    Binding, Event, EventSource, Namespace, Node, ObjectReference, Pod,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::Configuration;
use crate::framework::{ClusterView, CycleState, Framework, Outcome, Rng};
use crate::metrics::{Histogram, Metrics};
use crate::nodeinfo::PodInfo;
use crate::queue::{Popped, SchedulingQueue};
use crate::{cache::Cache, preemption};

pub struct Options {
    pub config: Configuration,
    /// Where `/healthz` and `/metrics` listen; `None` serves nothing.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Binds in flight at once (the network-bound part).
    pub parallel_binds: usize,
    pub identity: String,
}

#[derive(Default)]
struct PriorityClasses {
    values: HashMap<String, i32>,
    global_default: Option<i32>,
    default_name: Option<String>,
}

impl PriorityClasses {
    /// `spec.priority`, else what the Priority admission plugin would have
    /// set from `priorityClassName` (rkube's API server does not resolve it).
    fn resolve(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        match spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some("system-node-critical") => 2_000_001_000,
            Some("system-cluster-critical") => 2_000_000_000,
            Some(name) => self.values.get(name).copied().unwrap_or(0),
            None => self.global_default.unwrap_or(0),
        }
    }
}

struct State {
    cache: Cache,
    queue: SchedulingQueue,
    priorities: PriorityClasses,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    frameworks: Vec<Framework>,
    metrics: Metrics,
    latency: Histogram,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere must not stop scheduling: take the data as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn framework_for(&self, pod: &Pod) -> Option<usize> {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME);
        self.frameworks
            .iter()
            .position(|f| f.scheduler_name == name)
    }
}

/// Work for the async side, from the scheduling thread.
enum Outgoing {
    Bind {
        popped: Popped,
        node: String,
        started: Instant,
        profile: usize,
    },
    Failed {
        pod: Arc<PodInfo>,
        message: String,
        reason: &'static str,
    },
    Preempt {
        pod: Arc<PodInfo>,
        node: String,
        victims: Vec<Arc<PodInfo>>,
        profile: usize,
    },
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Only changes that can make a pending pod fit re-queue anything.
fn node_changed_for_scheduling(old: Option<&Node>, new: &Node) -> bool {
    let Some(old) = old else { return true };
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || old.status.as_ref().map(|s| (&s.allocatable, &s.images))
            != new.status.as_ref().map(|s| (&s.allocatable, &s.images))
}

fn on_pod(shared: &Shared, pod: Pod, deleted: bool) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let mut st = shared.lock();
    if deleted || is_terminal(&pod) {
        st.queue.delete(&uid);
        st.cache.unnominate(&uid);
        let was_bound = st.cache.get_pod_node(&uid).is_some();
        st.cache.remove_pod(&uid);
        if was_bound {
            // Freed resources may fit pending pods.
            st.queue.move_all_to_active_or_backoff();
            shared.wake.notify_one();
        }
        return;
    }
    let priority = st.priorities.resolve(&pod);
    let pod = Arc::new(pod);
    if assigned {
        st.queue.delete(&uid);
        // A pod bound by someone else may satisfy pending pods' affinity.
        let known = st.cache.get_pod_node(&uid).is_some();
        st.cache.upsert_pod(Arc::new(PodInfo::new(pod, priority)));
        if !known {
            st.queue.move_all_to_active_or_backoff();
            shared.wake.notify_one();
        }
        return;
    }
    let Some(profile) = shared.framework_for(&pod) else {
        return;
    };
    if pod.metadata.deletion_timestamp.is_some() || st.cache.is_assumed(&uid) {
        st.cache.unnominate(&uid);
        return;
    }
    match pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        Some(node) => {
            let node = node.to_owned();
            st.cache
                .nominate(Arc::new(PodInfo::new(pod.clone(), priority)), &node);
        }
        None => st.cache.unnominate(&uid),
    }
    let gated = !shared.frameworks[profile]
        .run_pre_enqueue(&pod)
        .is_success();
    st.queue
        .update(Arc::new(PodInfo::new(pod, priority)), gated);
    shared.wake.notify_one();
}

fn on_node(shared: &Shared, node: Node, deleted: bool) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut st = shared.lock();
    if deleted {
        st.cache.remove_node(&name);
        return;
    }
    let changed =
        node_changed_for_scheduling(st.cache.get(&name).and_then(|n| n.node.as_deref()), &node);
    st.cache.upsert_node(Arc::new(node));
    if changed {
        st.queue.move_all_to_active_or_backoff();
        shared.wake.notify_one();
    }
}

fn scheduling_loop(shared: Arc<Shared>, out: mpsc::UnboundedSender<Outgoing>) {
    let mut next_start = 0usize;
    let mut rng = Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7),
    );
    let mut last_flush = Instant::now();
    loop {
        let mut st = shared.lock();
        let popped = loop {
            if last_flush.elapsed() >= Duration::from_secs(1) {
                st.queue.flush(Instant::now());
                last_flush = Instant::now();
            }
            if let Some(p) = st.queue.pop() {
                break p;
            }
            st = shared
                .wake
                .wait_timeout(st, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        let started = Instant::now();
        let Some(profile) = shared.framework_for(&popped.pod.pod) else {
            st.queue.delete(&popped.pod.uid);
            continue;
        };
        let fw = &shared.frameworks[profile];
        let mut state = CycleState::default();
        let st = &mut *st;
        let outcome = fw.schedule(
            &mut state,
            &popped.pod,
            &ClusterView { cache: &st.cache },
            &mut next_start,
            &mut rng,
        );
        match outcome {
            Outcome::Scheduled { node, .. } => {
                let reserved = fw.run_reserve(&mut state, &popped.pod, &node);
                let permitted = reserved.is_success() && {
                    let s = fw.run_permit(&mut state, &popped.pod, &node);
                    if !s.is_success() {
                        fw.run_unreserve(&mut state, &popped.pod, &node);
                    }
                    s.is_success()
                };
                if !permitted {
                    shared.metrics.unschedulable.fetch_add(1, Ordering::Relaxed);
                    st.queue.requeue_failed(&popped, true);
                    continue;
                }
                st.cache.assume(popped.pod.clone(), &node);
                st.queue.done(&popped.pod.uid);
                let _ = out.send(Outgoing::Bind {
                    popped,
                    node,
                    started,
                    profile,
                });
            }
            Outcome::Unschedulable(mut diagnosis) => {
                let mut nominated = None;
                if fw.post_filter {
                    shared
                        .metrics
                        .preemption_attempts
                        .fetch_add(1, Ordering::Relaxed);
                    let nodes = st.cache.nodes();
                    match preemption::preempt(
                        fw,
                        &state,
                        &popped.pod,
                        nodes,
                        st.cache.node_count(),
                        &diagnosis,
                    ) {
                        Ok(c) => nominated = Some(c),
                        Err(msg) => diagnosis.post_filter_msg = format!("preemption: {msg}"),
                    }
                }
                shared.metrics.unschedulable.fetch_add(1, Ordering::Relaxed);
                shared.latency.observe(started.elapsed().as_secs_f64());
                st.queue.requeue_failed(&popped, true);
                let _ = out.send(Outgoing::Failed {
                    pod: popped.pod.clone(),
                    message: diagnosis.message(),
                    reason: "Unschedulable",
                });
                if let Some(c) = nominated {
                    // Known at once, before the API hears of it.
                    st.cache.nominate(popped.pod.clone(), &c.node);
                    shared
                        .metrics
                        .preemption_victims
                        .fetch_add(c.victims.len() as u64, Ordering::Relaxed);
                    let _ = out.send(Outgoing::Preempt {
                        pod: popped.pod,
                        node: c.node,
                        victims: c.victims,
                        profile,
                    });
                }
            }
            Outcome::Rejected(message) => {
                shared.metrics.unschedulable.fetch_add(1, Ordering::Relaxed);
                shared.latency.observe(started.elapsed().as_secs_f64());
                st.queue.requeue_failed(&popped, true);
                let _ = out.send(Outgoing::Failed {
                    pod: popped.pod,
                    message,
                    reason: "Unschedulable",
                });
            }
            Outcome::Error(message) => {
                shared.metrics.error.fetch_add(1, Ordering::Relaxed);
                st.queue.requeue_failed(&popped, false);
                let _ = out.send(Outgoing::Failed {
                    pod: popped.pod,
                    message,
                    reason: "SchedulerError",
                });
            }
        }
    }
}

/// Events go through a bounded buffer and are dropped when it is full,
/// as client-go's broadcaster does: they must never slow scheduling.
#[derive(Clone)]
struct Recorder {
    tx: mpsc::Sender<Event>,
    component: String,
    instance: String,
}

impl Recorder {
    fn record(&self, pod: &Pod, type_: &str, reason: &str, action: &str, message: String) {
        let now = Timestamp::now();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(ns),
                name: Some(name),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            action: Some(action.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let _ = self.tx.try_send(event);
    }
}

async fn send_events(client: kube::Client, mut rx: mpsc::Receiver<Event>) {
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    stream
        .for_each_concurrent(8, |event| {
            let client = client.clone();
            async move {
                let ns = event.metadata.namespace.clone().unwrap_or_default();
                if let Err(e) = Api::<Event>::namespaced(client, &ns)
                    .create(&PostParams::default(), &event)
                    .await
                {
                    tracing::debug!(error = %e, "writing an event");
                }
            }
        })
        .await;
}

async fn bind(client: &kube::Client, pod: &PodInfo, node: &str) -> kube::Result<()> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..Default::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    api.create_subresource::<_, serde_json::Value>(
        "binding",
        &pod.name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(|_| ())
}

/// The PodScheduled=False condition, written only when it changes.
async fn mark_unschedulable(client: &kube::Client, pod: &PodInfo, reason: &str, message: &str) {
    let current = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    if current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    }) {
        return;
    }
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": Timestamp::now().to_string(),
    }]}});
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    if let Err(e) = api
        .patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        tracing::debug!(pod = %pod.name, error = %e, "updating the PodScheduled condition");
    }
}

async fn preempt(
    client: &kube::Client,
    rec: &Recorder,
    pod: &PodInfo,
    node: &str,
    victims: &[Arc<PodInfo>],
    scheduler: &str,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let nominate = json!({"status": {"nominatedNodeName": node}});
    if let Err(e) = api
        .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(nominate))
        .await
    {
        tracing::warn!(pod = %pod.name, error = %e, "setting nominatedNodeName");
        return;
    }
    for v in victims {
        let vapi: Api<Pod> = Api::namespaced(client.clone(), &v.namespace);
        let condition = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": Timestamp::now().to_string(),
        }]}});
        let _ = vapi
            .patch_status(
                &v.name,
                &PatchParams::default(),
                &Patch::Strategic(condition),
            )
            .await;
        match vapi.delete(&v.name, &DeleteParams::default()).await {
            Ok(_) => rec.record(
                &v.pod,
                "Normal",
                "Preempted",
                "Preempting",
                format!("Preempted by pod {} on node {node}", pod.uid),
            ),
            Err(e) => tracing::warn!(victim = %v.name, error = %e, "deleting a preemption victim"),
        }
    }
}

async fn handle_outgoing(
    client: kube::Client,
    shared: Arc<Shared>,
    rec: Recorder,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    parallel: usize,
) {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    while let Some(work) = rx.recv().await {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            return;
        };
        let (client, shared, rec) = (client.clone(), shared.clone(), rec.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match work {
                Outgoing::Bind {
                    popped,
                    node,
                    started,
                    profile,
                } => match bind(&client, &popped.pod, &node).await {
                    Ok(()) => {
                        shared.metrics.scheduled.fetch_add(1, Ordering::Relaxed);
                        shared
                            .metrics
                            .attempt_micros
                            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                        shared.latency.observe(started.elapsed().as_secs_f64());
                        let p = &popped.pod;
                        rec.record(
                            &p.pod,
                            "Normal",
                            "Scheduled",
                            "Binding",
                            format!("Successfully assigned {}/{} to {node}", p.namespace, p.name),
                        );
                    }
                    Err(e) => {
                        shared.metrics.bind_errors.fetch_add(1, Ordering::Relaxed);
                        let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                        {
                            let mut st = shared.lock();
                            st.cache.forget(&popped.pod.uid);
                            if !gone {
                                st.queue.requeue_failed(&popped, false);
                            }
                        }
                        shared.wake.notify_one();
                        let _ = profile;
                        if !gone {
                            let message = format!("Binding rejected: {e}");
                            rec.record(
                                &popped.pod.pod,
                                "Warning",
                                "FailedScheduling",
                                "Scheduling",
                                message.clone(),
                            );
                            mark_unschedulable(&client, &popped.pod, "SchedulerError", &message)
                                .await;
                        }
                    }
                },
                Outgoing::Failed {
                    pod,
                    message,
                    reason,
                } => {
                    rec.record(
                        &pod.pod,
                        "Warning",
                        "FailedScheduling",
                        "Scheduling",
                        message.clone(),
                    );
                    mark_unschedulable(&client, &pod, reason, &message).await;
                }
                Outgoing::Preempt {
                    pod,
                    node,
                    victims,
                    profile,
                } => {
                    let name = shared.frameworks[profile].scheduler_name.clone();
                    preempt(&client, &rec, &pod, &node, &victims, &name).await;
                }
            }
        });
    }
}

/// Applies one watch stream to the scheduler's state until it ends.
async fn watch<K, F>(api: Api<K>, shared: Arc<Shared>, apply: F) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(&Shared, K, bool),
{
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.try_next().await? {
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => apply(&shared, o, false),
            watcher::Event::Delete(o) => apply(&shared, o, true),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
    Ok(())
}

pub async fn run(client: kube::Client, options: Options) -> anyhow::Result<()> {
    let frameworks = options.config.frameworks()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            priorities: Default::default(),
        }),
        wake: Condvar::new(),
        frameworks,
        metrics: Metrics::default(),
        latency: Histogram::default(),
    });
    if let Some(addr) = options.metrics_address {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
        let s = shared.clone();
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || s.metrics.render(&s.latency, s.lock().queue.sizes()));
        tokio::spawn(crate::metrics::serve(listener, render));
    }
    let (event_tx, event_rx) = mpsc::channel(1000);
    let recorder = Recorder {
        tx: event_tx,
        component: shared.frameworks[0].scheduler_name.clone(),
        instance: options.identity.clone(),
    };
    tokio::spawn(send_events(client.clone(), event_rx));
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(handle_outgoing(
        client.clone(),
        shared.clone(),
        recorder,
        out_rx,
        options.parallel_binds,
    ));
    // PriorityClasses and nodes first, so pods see them.
    let pcs = watch(
        Api::<PriorityClass>::all(client.clone()),
        shared.clone(),
        |s, pc: PriorityClass, deleted| {
            let name = pc.metadata.name.clone().unwrap_or_default();
            let mut st = s.lock();
            let p = &mut st.priorities;
            let value = pc.value.unwrap_or(0);
            if p.default_name.as_deref() == Some(name.as_str()) {
                p.default_name = None;
                p.global_default = None;
            }
            if deleted {
                p.values.remove(&name);
                return;
            }
            if pc.global_default == Some(true) {
                p.global_default = Some(value);
                p.default_name = Some(name.clone());
            }
            p.values.insert(name, value);
        },
    );
    let namespaces = watch(
        Api::<Namespace>::all(client.clone()),
        shared.clone(),
        |s, ns: Namespace, deleted| {
            let name = ns.metadata.name.clone().unwrap_or_default();
            let mut st = s.lock();
            if deleted {
                st.cache.namespaces.remove(&name);
            } else {
                st.cache
                    .namespaces
                    .insert(name, ns.metadata.labels.clone().unwrap_or_default());
            }
        },
    );
    let nodes = watch(Api::<Node>::all(client.clone()), shared.clone(), on_node);
    let pods = watch(Api::<Pod>::all(client.clone()), shared.clone(), on_pod);
    let loop_shared = shared.clone();
    std::thread::Builder::new()
        .name("scheduling".into())
        .spawn(move || scheduling_loop(loop_shared, out_tx))
        .map_err(|e| anyhow::anyhow!("starting the scheduling thread: {e}"))?;
    tracing::info!(profiles = shared.frameworks.len(), "scheduler started");
    tokio::select! {
        r = pcs => r,
        r = namespaces => r,
        r = nodes => r,
        r = pods => r,
    }
}
