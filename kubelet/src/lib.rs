//! rkube's kubelet: registers Nodes, renews their Leases, reports node
//! status and runs the pods bound to them through a container runtime.
//! One process can host many nodes (the simulated runtime): they share a
//! single pod watch and one batched lease renewal.

pub mod addresses;
pub mod admit;
pub mod containerd;
pub mod cri;
pub mod lease;
pub mod node;
pub mod pods;
pub mod podstatus;
pub mod runtime;
pub mod server;
pub mod staticpods;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

pub use cri::CriRuntime;
pub use node::NodeConfig;
pub use runtime::{Runtime, Simulated};

/// The `nodeInfo.kubeletVersion` reported (the API level rkube serves).
pub const KUBELET_VERSION: &str = "v1.36.0";
/// Upstream's nodeStatusReportFrequency: status is written at least this
/// often; the Ready heartbeat in between is the Lease.
pub const NODE_STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// How often the kubelet checks its status against the Node object
/// (upstream's nodeStatusUpdateFrequency): a status someone else changed
/// (the node lifecycle controller's `Unknown`) is re-posted at once.
pub const NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// Registrations in flight at once.
const REGISTER_CONCURRENCY: usize = 32;

/// The fallback pod range index of a node: its position when the process
/// hosts several, else a hash of its name.
fn range_index(name: &str, position: usize, hosted: usize) -> u32 {
    if hosted > 1 {
        return position as u32;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish() as u32
}

/// Registers the node until it succeeds (the API server may still be
/// starting).
async fn register(api: &Api<Node>, cfg: &NodeConfig, version: &str) -> node::Registered {
    let mut delay = Duration::from_millis(200);
    loop {
        match node::register(api, cfg, version).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::warn!(node = %cfg.name, "registering the node: {e:#}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(7));
            }
        }
    }
}

/// Writes every node's status each report period, and sooner the status of
/// nodes whose Ready condition is not what this kubelet reports.
async fn report_status(api: Api<Node>, nodes: Vec<NodeConfig>) {
    let mut tick = tokio::time::interval(NODE_STATUS_UPDATE_FREQUENCY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // registration just wrote it
    let mut last_full = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let due: Vec<&NodeConfig> = if last_full.elapsed() >= NODE_STATUS_REPORT_FREQUENCY {
            last_full = tokio::time::Instant::now();
            nodes.iter().collect()
        } else {
            // One list from the watch cache for every node of the process.
            let mut params = ListParams::default().match_any();
            if let [only] = nodes.as_slice() {
                params = params.fields(&format!("metadata.name={}", only.name));
            }
            let stale = match api.list(&params).await {
                Ok(list) => list
                    .items
                    .iter()
                    .filter(|n| !node::reports_ready(n))
                    .filter_map(|n| n.metadata.name.clone())
                    .collect::<std::collections::HashSet<_>>(),
                Err(e) => {
                    tracing::debug!("listing nodes: {e}");
                    continue;
                }
            };
            nodes.iter().filter(|n| stale.contains(&n.name)).collect()
        };
        futures::stream::iter(due)
            .for_each_concurrent(REGISTER_CONCURRENCY, |cfg| {
                let api = api.clone();
                async move {
                    if let Err(e) = node::report(&api, cfg).await {
                        tracing::warn!(node = %cfg.name, "updating node status: {e:#}");
                    }
                }
            })
            .await;
    }
}

/// Runs the kubelets of `nodes` in this process until an error.
pub async fn run(
    client: kube::Client,
    nodes: Vec<NodeConfig>,
    runtime: Arc<dyn Runtime>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!nodes.is_empty(), "no nodes to run");
    let api: Api<Node> = Api::all(client.clone());
    let version = runtime.version();
    let hosted = nodes.len();
    let registered: Vec<(usize, node::Registered)> =
        futures::stream::iter(nodes.iter().enumerate())
            .map(|(i, cfg)| {
                let api = api.clone();
                let version = version.clone();
                async move { (i, register(&api, cfg, &version).await) }
            })
            .buffer_unordered(REGISTER_CONCURRENCY)
            .collect()
            .await;
    tracing::info!(nodes = hosted, runtime = %version, "nodes registered");
    let mut entries = HashMap::new();
    let mut leases = Vec::new();
    for (i, reg) in registered {
        let cfg = nodes[i].clone();
        let pool = reg
            .pod_cidr
            .as_deref()
            .and_then(addresses::IpPool::from_cidr)
            .unwrap_or_else(|| addresses::IpPool::for_index(range_index(&cfg.name, i, hosted)));
        leases.push(lease::NodeLease::new(cfg.name.clone(), reg.uid));
        entries.insert(
            cfg.name.clone(),
            Arc::new(pods::NodeEntry {
                cfg,
                pool: Mutex::new(pool),
            }),
        );
    }
    tokio::select! {
        () = lease::run(client.clone(), leases) => anyhow::bail!("node lease renewal ended"),
        () = report_status(api, nodes) => anyhow::bail!("node status reporting ended"),
        r = pods::run(client, runtime, entries) => r,
    }
}
