//! Pod workers: one pod watch shared by every node of the process,
//! dispatched by `spec.nodeName`; pods are started through the runtime and
//! their status written to `pods/status`; deleted pods are stopped, marked
//! terminal and their deletion confirmed (upstream's status manager).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::mpsc;

use crate::addresses::IpPool;
use crate::node::NodeConfig;
use crate::podstatus::{self, Stop};
use crate::runtime::Runtime;

/// Pod status writes in flight at once.
const WORKERS: usize = 64;
/// How often a supervised pod's containers are checked (upstream's PLEG
/// relists every second).
const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Upstream's default terminationGracePeriodSeconds.
const DEFAULT_GRACE_SECONDS: i64 = 30;
const WRITE_ATTEMPTS: u32 = 5;

pub struct NodeEntry {
    pub cfg: NodeConfig,
    pub pool: Mutex<IpPool>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    Running,
    Stopping,
    /// Terminal (Succeeded/Failed) and not yet deleted.
    Done,
}

enum Work {
    Start(Box<Pod>),
    Stop(Box<Pod>, Stop),
    /// Removed from the API without this kubelet confirming it (a forced
    /// deletion): its containers still have to go.
    Gone(Box<Pod>),
}

pub struct Pods {
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    nodes: HashMap<String, Arc<NodeEntry>>,
    stages: Mutex<HashMap<String, Stage>>,
    /// The newest version seen of running pods: their labels and
    /// annotations (for downward API volumes) and ephemeral containers
    /// (added through a subresource) go into the next sync.
    latest: Mutex<HashMap<String, Pod>>,
    /// The activeDeadlineSeconds each running pod's timer was set for (an
    /// update sets a new one).
    deadlines: Mutex<HashMap<String, i64>>,
    tx: mpsc::UnboundedSender<Work>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not stop every pod worker.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn pods_api(client: &kube::Client, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

/// The field selector of the process's one pod watch.
pub fn selector(nodes: &HashMap<String, Arc<NodeEntry>>) -> String {
    match nodes.keys().next() {
        Some(only) if nodes.len() == 1 => format!("spec.nodeName={only}"),
        _ => "spec.nodeName!=".into(),
    }
}

/// Watches pods and runs them until the watch ends (it retries with
/// back-off, so only on shutdown).
pub async fn run(
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    nodes: HashMap<String, Arc<NodeEntry>>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let pods = Arc::new(Pods {
        client: client.clone(),
        runtime,
        stages: Mutex::new(HashMap::new()),
        latest: Mutex::new(HashMap::new()),
        deadlines: Mutex::new(HashMap::new()),
        tx,
        nodes,
    });
    let workers = {
        let pods = pods.clone();
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx).for_each_concurrent(
            WORKERS,
            move |work| {
                let pods = pods.clone();
                async move { pods.work(work).await }
            },
        )
    };
    let config = watcher::Config::default().fields(&selector(&pods.nodes));
    let events = watcher(Api::<Pod>::all(client), config).default_backoff();
    let watch = async {
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    pods.observe(pod)
                }
                Ok(watcher::Event::Delete(pod)) => pods.forget(&pod),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => tracing::warn!("pod watch: {e}"),
            }
        }
    };
    tokio::select! {
        () = watch => anyhow::bail!("the pod watch ended"),
        () = workers => anyhow::bail!("the pod workers ended"),
    }
}

impl Pods {
    fn send(&self, work: Work) {
        // The receiver lives as long as `run`.
        let _ = self.tx.send(work);
    }

    fn observe(&self, pod: Pod) {
        if !self.nodes.contains_key(node_name(&pod)) {
            return;
        }
        let uid = uid(&pod);
        let mut stages = lock(&self.stages);
        let stage = stages.get(&uid).copied();
        if pod.metadata.deletion_timestamp.is_some() {
            if stage != Some(Stage::Stopping) {
                stages.insert(uid, Stage::Stopping);
                self.send(Work::Stop(Box::new(pod), Stop::Deleted));
            }
            return;
        }
        if stage.is_some() {
            drop(stages);
            if stage == Some(Stage::Running) {
                self.schedule_deadline(&pod);
                if self.runtime.supervises() {
                    lock(&self.latest).insert(uid, pod);
                }
            }
            return;
        }
        if matches!(phase(&pod), "Succeeded" | "Failed") {
            stages.insert(uid, Stage::Done);
            return;
        }
        stages.insert(uid, Stage::Running);
        self.send(Work::Start(Box::new(pod)));
    }

    fn forget(&self, pod: &Pod) {
        let uid = uid(pod);
        lock(&self.latest).remove(&uid);
        lock(&self.deadlines).remove(&uid);
        let stage = lock(&self.stages).remove(&uid);
        if matches!(stage, Some(Stage::Running | Stage::Done)) {
            // Upstream's HandlePodRemoves: kill what is still there.
            self.send(Work::Gone(Box::new(pod.clone())));
            return;
        }
        if let Some(node) = self.nodes.get(node_name(pod)) {
            lock(&node.pool).release(&uid);
        }
    }

    /// Stops a pod that is no longer in the API, within the grace period
    /// its deletion had, and releases what it held.
    async fn gone(&self, pod: &Pod) -> anyhow::Result<()> {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        self.runtime.stop_pod(pod, grace).await?;
        self.runtime.forget_pod(pod);
        if let Some(node) = self.nodes.get(node_name(pod)) {
            lock(&node.pool).release(&uid(pod));
        }
        Ok(())
    }

    async fn work(self: &Arc<Self>, work: Work) {
        let (pod, result) = match work {
            Work::Start(pod) => {
                let r = self.start(&pod).await;
                (pod, r)
            }
            Work::Stop(pod, why) => {
                let r = self.stop(&pod, why).await;
                (pod, r)
            }
            Work::Gone(pod) => {
                let r = self.gone(&pod).await;
                (pod, r)
            }
        };
        if let Err(e) = result {
            tracing::warn!(
                pod = pod.metadata.name.as_deref().unwrap_or(""),
                namespace = pod.metadata.namespace.as_deref().unwrap_or(""),
                "pod worker: {e:#}"
            );
        }
    }

    /// Whether this pod's status was already written by this node (a
    /// restarted kubelet finds its pods running).
    fn already_running(pod: &Pod, node: &NodeEntry) -> Option<Ipv4Addr> {
        let status = pod.status.as_ref()?;
        let containers = pod.spec.as_ref()?.containers.len();
        (status.phase.as_deref() == Some("Running")
            && status.host_ip.as_deref() == Some(node.cfg.ip.as_str())
            && status.container_statuses.as_ref().map(Vec::len) == Some(containers))
        .then(|| status.pod_ip.as_deref()?.parse().ok())
        .flatten()
    }

    async fn start(self: &Arc<Self>, pod: &Pod) -> anyhow::Result<()> {
        let Some(node) = self.nodes.get(node_name(pod)) else {
            return Ok(());
        };
        if let Some((reason, message)) = crate::admit::reject(pod, &node.cfg.allowed_unsafe_sysctls)
        {
            let status = json!({"phase": "Failed", "reason": reason, "message": message});
            self.write_status(pod, status).await?;
            lock(&self.stages).insert(uid(pod), Stage::Done);
            return Ok(());
        }
        if self.runtime.supervises() {
            return self.start_supervised(pod, node.clone()).await;
        }
        let uid = uid(pod);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if let Some(ip) = Self::already_running(pod, node) {
            if !host_network {
                lock(&node.pool).reserve(&uid, ip);
            }
            self.schedule_deadline(pod);
            return Ok(());
        }
        let pod_ip = if host_network {
            node.cfg.ip.clone()
        } else {
            match lock(&node.pool).allocate(&uid) {
                Some(ip) => ip.to_string(),
                None => anyhow::bail!("no pod IPs left on node {}", node.cfg.name),
            }
        };
        let started = self.runtime.start_pod(pod).await?;
        let status = podstatus::running(pod, &started, &node.cfg.ip, &pod_ip, Utc::now());
        if self.write_status(pod, status).await?.is_some() {
            self.schedule_deadline(pod);
        }
        Ok(())
    }

    fn stage(&self, uid: &str) -> Option<Stage> {
        lock(&self.stages).get(uid).copied()
    }

    /// Starts the pod on a real runtime, then syncs it every period until
    /// it is terminal or stopping: init containers in order, restarts per
    /// restartPolicy, container exits reported as they happen.
    async fn start_supervised(
        self: &Arc<Self>,
        pod: &Pod,
        node: Arc<NodeEntry>,
    ) -> anyhow::Result<()> {
        let uid = uid(pod);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let host_ip = node.cfg.ip.clone();
        let fallback_ip = if host_network {
            host_ip.clone()
        } else {
            String::new()
        };
        let started = match self.runtime.start_pod(pod).await {
            Ok(s) => s,
            Err(e) => {
                // Let a later event try again (upstream's pod worker
                // retries the sync with back-off).
                lock(&self.stages).remove(&uid);
                let this = self.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if let Ok(Some(fresh)) = pods_api(&this.client, &pod)
                        .get_opt(pod.metadata.name.as_deref().unwrap_or_default())
                        .await
                        && fresh.metadata.uid == pod.metadata.uid
                    {
                        this.observe(fresh);
                    }
                });
                return Err(e);
            }
        };
        let status = podstatus::running(pod, &started, &host_ip, &fallback_ip, Utc::now());
        let Some(mut current) = self.write_status(pod, status.clone()).await? else {
            return Ok(());
        };
        self.schedule_deadline(&current);
        let this = self.clone();
        tokio::spawn(async move {
            let mut last = status;
            loop {
                if matches!(phase(&current), "Succeeded" | "Failed") {
                    let mut stages = lock(&this.stages);
                    if stages.get(&uid) == Some(&Stage::Running) {
                        stages.insert(uid.clone(), Stage::Done);
                    }
                    return;
                }
                tokio::time::sleep(SYNC_PERIOD).await;
                if this.stage(&uid) != Some(Stage::Running) {
                    return;
                }
                if let Some(latest) = lock(&this.latest).remove(&uid) {
                    current.metadata.labels = latest.metadata.labels;
                    current.metadata.annotations = latest.metadata.annotations;
                    if let (Some(spec), Some(new)) = (current.spec.as_mut(), latest.spec) {
                        spec.ephemeral_containers = new.ephemeral_containers;
                    }
                }
                let started = match this.runtime.sync_pod(&current).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(
                            pod = current.metadata.name.as_deref().unwrap_or(""),
                            "syncing the pod: {e:#}"
                        );
                        continue;
                    }
                };
                let status =
                    podstatus::running(&current, &started, &host_ip, &fallback_ip, Utc::now());
                if status == last || this.stage(&uid) != Some(Stage::Running) {
                    continue;
                }
                match this.write_status(&current, status.clone()).await {
                    Ok(Some(p)) => {
                        current = p;
                        last = status;
                    }
                    Ok(None) => return,
                    Err(e) => tracing::warn!("writing pod status: {e:#}"),
                }
            }
        });
        Ok(())
    }

    /// Fails the pod once `activeDeadlineSeconds` have passed since it
    /// started, as upstream's active deadline handler.
    fn schedule_deadline(&self, pod: &Pod) {
        let Some(seconds) = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
            return;
        };
        if lock(&self.deadlines).insert(uid(pod), seconds) == Some(seconds) {
            return;
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_second())
            .unwrap_or_else(|| Utc::now().timestamp());
        let wait = (started + seconds - Utc::now().timestamp()).max(0) as u64;
        let api = pods_api(&self.client, pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = uid(pod);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(wait)).await;
            if let Ok(Some(pod)) = api.get_opt(&name).await
                && pod.metadata.uid.as_deref() == Some(uid.as_str())
                && pod.metadata.deletion_timestamp.is_none()
                && !matches!(phase(&pod), "Succeeded" | "Failed")
                // Not shortened meanwhile (that update set its own timer).
                && pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) == Some(seconds)
            {
                let _ = tx.send(Work::Stop(Box::new(pod), Stop::DeadlineExceeded));
            }
        });
    }

    async fn stop(&self, pod: &Pod, why: Stop) -> anyhow::Result<()> {
        let uid = uid(pod);
        // The grace period the deletion asked for, else the pod's own.
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        let last = self.runtime.stop_pod(pod, grace).await?;
        // The status written last, which may be newer than this event's.
        let fresh = if self.runtime.supervises() {
            pods_api(&self.client, pod)
                .get_opt(pod.metadata.name.as_deref().unwrap_or_default())
                .await
                .ok()
                .flatten()
                .filter(|fresh| fresh.metadata.uid == pod.metadata.uid)
        } else {
            None
        };
        let pod = fresh.as_ref().unwrap_or(pod);
        if !matches!(phase(pod), "Succeeded" | "Failed") {
            let status = podstatus::stopped(pod, why, last.as_ref(), Utc::now());
            if self.write_status(pod, status).await?.is_none() {
                return Ok(());
            }
        }
        if let Some(node) = self.nodes.get(node_name(pod)) {
            lock(&node.pool).release(&uid);
        }
        if why == Stop::DeadlineExceeded {
            let mut stages = lock(&self.stages);
            if stages.get(&uid) == Some(&Stage::Running) {
                stages.insert(uid, Stage::Done);
            }
            return Ok(());
        }
        // Confirm the deletion: grace period 0, only for this very pod.
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match pods_api(&self.client, pod).delete(name, &params).await {
            Ok(_) => {
                self.runtime.forget_pod(pod);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Merge-patches `pods/status`; the pod as written, None when it is
    /// gone.
    async fn write_status(
        &self,
        pod: &Pod,
        status: serde_json::Value,
    ) -> anyhow::Result<Option<Pod>> {
        let api = pods_api(&self.client, pod);
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let patch = json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": status,
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(p) => return Ok(Some(p)),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(None),
                Err(e) if attempt >= WRITE_ATTEMPTS => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(pod = name, "status write failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
    }
}
