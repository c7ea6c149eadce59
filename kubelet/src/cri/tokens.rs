//! Service account tokens for projected volumes, as upstream's token
//! manager: requested through `serviceaccounts/<name>/token` bound to the
//! pod, kept, and renewed once 80% of their life (or 24 hours) has passed,
//! so the periodic volume sync doesn't ask for a token each time.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount, ServiceAccountTokenProjection};
use kube::api::{Api, PostParams};

/// Upstream's default lifetime of a projected token.
const DEFAULT_SECONDS: i64 = 3600;
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    account: String,
    audience: String,
    seconds: i64,
    pod_uid: String,
}

struct Cached {
    token: String,
    issued: SystemTime,
    expires: SystemTime,
}

impl Cached {
    fn fresh(&self, now: SystemTime) -> bool {
        let life = self.expires.duration_since(self.issued).unwrap_or_default();
        let age = now.duration_since(self.issued).unwrap_or_default();
        age < life.mul_f64(0.8) && age < MAX_AGE
    }
}

fn cache() -> &'static Mutex<HashMap<Key, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The token for `source` in `pod`'s volume.
pub async fn token(
    client: &kube::Client,
    pod: &Pod,
    source: &ServiceAccountTokenProjection,
) -> anyhow::Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let key = Key {
        namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
        account: spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
        audience: source.audience.clone().unwrap_or_default(),
        seconds: source.expiration_seconds.unwrap_or(DEFAULT_SECONDS),
        pod_uid: meta.uid.clone().unwrap_or_default(),
    };
    let now = SystemTime::now();
    if let Ok(cached) = cache().lock()
        && let Some(c) = cached.get(&key).filter(|c| c.fresh(now))
    {
        return Ok(c.token.clone());
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(if key.audience.is_empty() {
                Vec::new()
            } else {
                vec![key.audience.clone()]
            }),
            expiration_seconds: Some(key.seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: meta.name.clone(),
                uid: meta.uid.clone(),
            }),
        }),
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &key.namespace);
    let got = api
        .create_token_request(&key.account, &PostParams::default(), &request)
        .await
        .map_err(|e| anyhow::anyhow!("requesting a token for {}: {e}", key.account))?;
    let status = got
        .status
        .ok_or_else(|| anyhow::anyhow!("the token request for {} has no status", key.account))?;
    let token = status
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the token request for {} gave no token", key.account))?;
    // Without an expiry the token is asked for again next time.
    let expires = status
        .expiration_timestamp
        .and_then(|t| u64::try_from(t.0.as_second()).ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or(now);
    if let Ok(mut cached) = cache().lock() {
        // Tokens of pods gone are dropped once they expire.
        cached.retain(|_, c| c.expires > now);
        cached.insert(
            key,
            Cached {
                token: token.clone(),
                issued: now,
                expires,
            },
        );
    }
    Ok(token)
}
