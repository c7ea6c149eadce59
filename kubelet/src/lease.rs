//! Node leases (upstream's nodeLease controller): a Lease in
//! `kube-node-lease` named for the node, held by the node, renewed every
//! 10 s with a 40 s duration and owned by the Node. All nodes of the
//! process renew in one batched pass per interval.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

pub const NAMESPACE: &str = "kube-node-lease";
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);
pub const DURATION_SECONDS: i32 = 40;
/// Renewals in flight at once during a pass.
const CONCURRENCY: usize = 64;

pub struct NodeLease {
    pub node: String,
    pub node_uid: String,
    /// The last lease written, to renew without a read.
    cached: Option<Lease>,
}

impl NodeLease {
    pub fn new(node: String, node_uid: String) -> NodeLease {
        NodeLease {
            node,
            node_uid,
            cached: None,
        }
    }

    fn desired(&self, base: Option<&Lease>) -> Lease {
        let mut lease = base.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.node.clone()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            spec: None,
        });
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.node.clone(),
            uid: self.node_uid.clone(),
            ..Default::default()
        }]);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.node.clone());
        spec.lease_duration_seconds = Some(DURATION_SECONDS);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease
    }

    /// Renews the lease: an update of the cached copy, or a read (and a
    /// create when missing) after a conflict or at first.
    pub async fn renew(&mut self, api: &Api<Lease>) -> anyhow::Result<()> {
        if let Some(cached) = self.cached.take() {
            let lease = self.desired(Some(&cached));
            match api
                .replace(&self.node, &PostParams::default(), &lease)
                .await
            {
                Ok(l) => {
                    self.cached = Some(l);
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let written = match api.get_opt(&self.node).await? {
            Some(existing) => {
                let lease = self.desired(Some(&existing));
                api.replace(&self.node, &PostParams::default(), &lease)
                    .await?
            }
            None => {
                api.create(&PostParams::default(), &self.desired(None))
                    .await?
            }
        };
        self.cached = Some(written);
        Ok(())
    }
}

/// Renews every lease each interval, forever. A pass that overruns the
/// interval is logged: the leases are then late.
pub async fn run(client: kube::Client, mut leases: Vec<NodeLease>) {
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let mut tick = tokio::time::interval(RENEW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let failures = futures::stream::iter(leases.iter_mut())
            .map(|l| {
                let api = api.clone();
                async move {
                    match l.renew(&api).await {
                        Ok(()) => 0usize,
                        Err(e) => {
                            tracing::warn!(node = %l.node, "renewing the node lease: {e:#}");
                            1
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .fold(0, |a, b| async move { a + b })
            .await;
        let took = started.elapsed();
        if took > RENEW_INTERVAL || failures > 0 {
            tracing::warn!(
                nodes = leases.len(),
                failures,
                "node lease pass took {took:?} (interval {RENEW_INTERVAL:?})"
            );
        } else {
            tracing::debug!(nodes = leases.len(), "node leases renewed in {took:?}");
        }
    }
}
