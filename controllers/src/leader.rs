//! Leader election on a `coordination.k8s.io/v1` Lease, as upstream's
//! client-go leaderelection: the holder renews the Lease every retry
//! period; another candidate takes it over once it has not been renewed
//! for the lease duration. Only the leader runs the controllers.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// Upstream kube-controller-manager's defaults.
#[derive(Clone, Debug)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Election {
    pub fn new(name: &str, identity: String) -> Self {
        Election {
            namespace: "kube-system".into(),
            name: name.into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Whether `identity` may take (or keep) the lease at `now`.
pub fn may_acquire(lease: &Lease, identity: &str, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
        Some(MicroTime(renewed)) => renewed
            .checked_add(SignedDuration::from_secs(duration))
            .is_ok_and(|expires| expires < now),
        None => true,
    }
}

/// The lease as `identity` holds it at `now`.
fn held(lease: Option<&Lease>, e: &Election, now: Timestamp) -> Lease {
    let previous = lease.and_then(|l| l.spec.clone()).unwrap_or_default();
    let same_holder = previous.holder_identity.as_deref() == Some(e.identity.as_str());
    Lease {
        metadata: ObjectMeta {
            name: Some(e.name.clone()),
            namespace: Some(e.namespace.clone()),
            resource_version: lease.and_then(|l| l.metadata.resource_version.clone()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(e.identity.clone()),
            lease_duration_seconds: Some(e.lease_duration.as_secs() as i32),
            acquire_time: if same_holder {
                previous.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(
                previous.lease_transitions.unwrap_or(0)
                    + i32::from(lease.is_some() && !same_holder),
            ),
            ..Default::default()
        }),
    }
}

/// One attempt to take or renew the lease; `true` when held afterwards.
async fn try_hold(api: &Api<Lease>, e: &Election) -> bool {
    let now = Timestamp::now();
    match api.get_opt(&e.name).await {
        Ok(None) => api
            .create(&PostParams::default(), &held(None, e, now))
            .await
            .is_ok(),
        Ok(Some(lease)) if may_acquire(&lease, &e.identity, now) => api
            .replace(&e.name, &PostParams::default(), &held(Some(&lease), e, now))
            .await
            .is_ok(),
        Ok(Some(_)) => false,
        Err(err) => {
            tracing::warn!(error = %err, "leader election: reading the lease failed");
            false
        }
    }
}

/// Waits to become leader, then runs `work` while renewing; returns an
/// error once leadership is lost (upstream's controller manager exits then).
pub async fn run_as_leader<F>(client: kube::Client, e: Election, work: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let api: Api<Lease> = Api::namespaced(client, &e.namespace);
    tracing::info!(lease = %format!("{}/{}", e.namespace, e.name), identity = %e.identity, "attempting to acquire the leader lease");
    while !try_hold(&api, &e).await {
        tokio::time::sleep(e.retry_period).await;
    }
    tracing::info!(identity = %e.identity, "acquired the leader lease");
    let renew = async {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(e.retry_period).await;
            if try_hold(&api, &e).await {
                last_renewed = tokio::time::Instant::now();
            } else if last_renewed.elapsed() > e.renew_deadline {
                return anyhow::anyhow!(
                    "leader election lost: the lease was not renewed within the deadline"
                );
            }
        }
    };
    tokio::select! {
        done = work => done,
        lost = renew => Err(lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(
                    Timestamp::now()
                        .checked_sub(SignedDuration::from_secs(renewed_secs_ago))
                        .unwrap(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_lease_of_another_holder_is_kept_from_us() {
        assert!(!may_acquire(&lease("other", 3), "me", Timestamp::now()));
        assert!(may_acquire(&lease("me", 3), "me", Timestamp::now()));
        assert!(
            may_acquire(&lease("other", 20), "me", Timestamp::now()),
            "expired"
        );
        assert!(may_acquire(&Lease::default(), "me", Timestamp::now()));
    }

    #[test]
    fn taking_over_counts_a_transition() {
        let e = Election::new("kube-controller-manager", "me".into());
        let taken = held(Some(&lease("other", 20)), &e, Timestamp::now());
        let spec = taken.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(1));
        let renewed = held(Some(&lease("me", 1)), &e, Timestamp::now());
        assert_eq!(renewed.spec.unwrap().lease_transitions, Some(0));
    }
}
