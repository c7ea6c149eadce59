//! The etcd backend: the same semantics through etcd v3 transactions.
//!
//! Creates compare the create revision with 0, updates and conditional
//! deletes compare the mod revision; a failed compare reads the key in the
//! same transaction so the caller gets the current value for its retry.
//! TTLs use etcd leases, shared between writes of the same TTL for a while
//! (as upstream's lease manager does) so Events don't cost a lease each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchClient, WatchOptions,
};
use futures::StreamExt;

use crate::{
    DeleteResult, Event, EventKind, GetResult, KeyValue, RangeRequest, RangeResult, Result,
    Revision, Storage, StorageError, WatchStream, check_size, prefix_end,
};

/// Leases are granted this much (in percent) longer than asked and shared
/// by writes with the same TTL while that margin lasts, as upstream's lease
/// manager does: an object lives between its TTL and 5% more.
const LEASE_REUSE_PERCENT: u64 = 5;

/// Options of the etcd backend, as kube-apiserver's `--etcd-*` flags.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `--etcd-servers`: client URLs.
    pub servers: Vec<String>,
    /// `--etcd-prefix`.
    pub prefix: String,
    /// `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`.
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub max_request_bytes: usize,
}

impl EtcdConfig {
    pub fn new(servers: Vec<String>) -> Self {
        EtcdConfig {
            servers,
            prefix: "/registry".into(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            max_request_bytes: crate::DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// Responses may hold many large objects (a list, or a watch batch with
/// previous values): allow what upstream allows.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    watches: WatchClient,
    prefix: String,
    max_request_bytes: usize,
    /// TTL in seconds → (lease id, when its reuse window ends).
    leases: Mutex<HashMap<i64, (i64, Instant)>>,
}

fn etcd_err(e: etcd_client::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("request is too large") {
        StorageError::TooLarge { size: 0, limit: 0 }
    } else if matches!(e, etcd_client::Error::TransportError(_)) || text.contains("Unavailable") {
        StorageError::Unavailable(text)
    } else {
        StorageError::Internal(text)
    }
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| StorageError::Unavailable(format!("reading {}: {e}", path.display())))
}

impl EtcdStore {
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
        let uses_tls = config.servers.iter().any(|s| s.starts_with("https://"));
        if uses_tls || config.ca_file.is_some() || config.cert_file.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &config.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read_file(ca)?));
            }
            if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
                tls = tls.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
            }
            options = options.with_tls(tls);
        }
        let client = Client::connect(&config.servers, Some(options))
            .await
            .map_err(|e| {
                StorageError::Unavailable(format!(
                    "connecting to etcd at {}: {e}",
                    config.servers.join(",")
                ))
            })?;
        Ok(EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watches: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            client,
            prefix: config.prefix.trim_end_matches('/').to_owned(),
            max_request_bytes: config.max_request_bytes,
            leases: Mutex::new(HashMap::new()),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> KeyValue {
        let key = kv.key_str().unwrap_or_default();
        KeyValue {
            key: key.strip_prefix(&self.prefix).unwrap_or(key).to_owned(),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        }
    }

    /// A lease for `ttl`, reused for a while between writes with the same TTL.
    async fn lease(&self, ttl: Duration) -> Result<i64> {
        let secs = ttl.as_secs().max(1);
        if let Ok(leases) = self.leases.lock()
            && let Some((id, reuse_until)) = leases.get(&(secs as i64))
            && Instant::now() < *reuse_until
        {
            return Ok(*id);
        }
        let margin = (secs * LEASE_REUSE_PERCENT).div_ceil(100);
        let granted = self
            .client
            .lease_client()
            .grant((secs + margin) as i64, None)
            .await
            .map_err(etcd_err)?;
        if let Ok(mut leases) = self.leases.lock() {
            let reuse_until = Instant::now() + Duration::from_secs(margin);
            leases.insert(secs as i64, (granted.id(), reuse_until));
        }
        Ok(granted.id())
    }

    async fn put_options(&self, ttl: Option<Duration>, prev: bool) -> Result<Option<PutOptions>> {
        let mut options = PutOptions::new();
        if prev {
            options = options.with_prev_key();
        }
        if let Some(ttl) = ttl {
            options = options.with_lease(self.lease(ttl).await?);
        }
        Ok(Some(options))
    }

    /// The value found by the `or_else` read of a failed transaction.
    fn found(&self, responses: &[TxnOpResponse]) -> Option<KeyValue> {
        responses.iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| self.kv(kv)),
            _ => None,
        })
    }

    /// Why a compare-and-swap transaction failed, from its `or_else` read:
    /// the key is gone, or it changed (with what it is now).
    fn compare_failed(&self, key: &str, resp: &etcd_client::TxnResponse) -> StorageError {
        match self.found(resp.op_responses().as_slice()) {
            None => StorageError::NotFound { key: key.into() },
            Some(current) => StorageError::Conflict {
                key: key.into(),
                current: Some(Box::new(current)),
            },
        }
    }

    /// etcd does not say which revision was compacted on a read; a watch
    /// from revision 1 does, at once.
    async fn compacted_revision(&self) -> Revision {
        let options = WatchOptions::new().with_start_revision(1);
        let Ok(mut stream) = self
            .watches
            .clone()
            .watch(self.full("/"), Some(options))
            .await
        else {
            return 0;
        };
        match tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
            Ok(Ok(Some(resp))) => resp.compact_revision(),
            _ => 0,
        }
    }

    async fn read_err(&self, e: etcd_client::Error, requested: Option<Revision>) -> StorageError {
        let text = e.to_string();
        if text.contains("required revision has been compacted") {
            StorageError::Compacted {
                requested: requested.unwrap_or(0),
                compacted: self.compacted_revision().await,
            }
        } else if text.contains("required revision is a future revision") {
            let current = self.current_revision().await.unwrap_or(0);
            StorageError::FutureRevision {
                requested: requested.unwrap_or(0),
                current,
            }
        } else {
            etcd_err(e)
        }
    }
}

#[async_trait]
impl Storage for EtcdStore {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResult> {
        let mut options = GetOptions::new();
        if let Some(r) = revision {
            options = options.with_revision(r);
        }
        let resp = match self.kv.clone().get(self.full(key), Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.read_err(e, revision).await),
        };
        Ok(GetResult {
            kv: resp.kvs().first().map(|kv| self.kv(kv)),
            revision: revision.unwrap_or_else(|| resp.header().map(|h| h.revision()).unwrap_or(0)),
        })
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        let start = self.full(req.start.as_deref().unwrap_or(&req.prefix));
        let mut options = GetOptions::new()
            .with_range(prefix_end(&self.full(&req.prefix)))
            .with_limit(req.limit as i64);
        if let Some(r) = req.revision {
            options = options.with_revision(r);
        }
        let resp = match self.kv.clone().get(start, Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.read_err(e, req.revision).await),
        };
        Ok(RangeResult {
            kvs: resp.kvs().iter().map(|kv| self.kv(kv)).collect(),
            revision: req
                .revision
                .unwrap_or_else(|| resp.header().map(|h| h.revision()).unwrap_or(0)),
            more: resp.more(),
            count: resp.count(),
        })
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        check_size(key, &value, self.max_request_bytes)?;
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                full.clone(),
                value.to_vec(),
                self.put_options(ttl, false).await?,
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.kv.clone().txn(txn).await.map_err(etcd_err)?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists { key: key.into() });
        }
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue> {
        check_size(key, &value, self.max_request_bytes)?;
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            )])
            .and_then([TxnOp::put(
                full.clone(),
                value.to_vec(),
                self.put_options(ttl, true).await?,
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.kv.clone().txn(txn).await.map_err(etcd_err)?;
        if !resp.succeeded() {
            return Err(self.compare_failed(key, &resp));
        }
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let prev = resp.op_responses().iter().find_map(|r| match r {
            TxnOpResponse::Put(put) => put.prev_key().map(|kv| self.kv(kv)),
            _ => None,
        });
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision: prev.as_ref().map(|p| p.create_revision).unwrap_or(rev),
            mod_revision: rev,
            version: prev.map(|p| p.version + 1).unwrap_or(1),
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<DeleteResult> {
        let full = self.full(key);
        let condition = match expected {
            Some(rev) => Compare::mod_revision(full.clone(), CompareOp::Equal, rev),
            None => Compare::create_revision(full.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([condition])
            .and_then([TxnOp::delete(
                full.clone(),
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.kv.clone().txn(txn).await.map_err(etcd_err)?;
        if !resp.succeeded() {
            return Err(self.compare_failed(key, &resp));
        }
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let prev = resp
            .op_responses()
            .iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(|kv| self.kv(kv)),
                _ => None,
            })
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        Ok(DeleteResult {
            revision: rev,
            prev,
        })
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        let full = self.full(prefix);
        let options = WatchOptions::new()
            .with_range(prefix_end(&full))
            .with_start_revision(start_revision.max(1))
            .with_prev_key();
        let stream = self
            .watches
            .clone()
            .watch(full, Some(options))
            .await
            .map_err(etcd_err)?;
        let prefix = self.prefix.clone();
        let to_kv = move |kv: &etcd_client::KeyValue| {
            let key = kv.key_str().unwrap_or_default();
            KeyValue {
                key: key.strip_prefix(&prefix).unwrap_or(key).to_owned(),
                value: Bytes::copy_from_slice(kv.value()),
                create_revision: kv.create_revision(),
                mod_revision: kv.mod_revision(),
                version: kv.version(),
            }
        };
        let requested = start_revision;
        let events = stream
            .map(move |resp| {
                let resp = resp.map_err(etcd_err)?;
                if resp.compact_revision() > 0 {
                    return Err(StorageError::Compacted {
                        requested,
                        compacted: resp.compact_revision(),
                    });
                }
                if resp.canceled() {
                    return Err(StorageError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    )));
                }
                let events: Vec<Result<Event>> = resp
                    .events()
                    .iter()
                    .filter_map(|e| {
                        let kv = e.kv()?;
                        let kind = match e.event_type() {
                            EventType::Put => EventKind::Put,
                            EventType::Delete => EventKind::Delete,
                        };
                        Some(Ok(Event {
                            kind,
                            kv: to_kv(kv),
                            prev: e.prev_kv().map(&to_kv),
                        }))
                    })
                    .collect();
                Ok(events)
            })
            .flat_map(|batch| match batch {
                Ok(events) => futures::stream::iter(events),
                Err(e) => futures::stream::iter(vec![Err(e)]),
            })
            .scan(false, |failed, item| {
                // End the stream after the first error, as the embedded store does.
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            });
        Ok(events.boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .kv
            .clone()
            .get(self.full("/"), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(etcd_err)?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.kv.clone().compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.read_err(e, Some(revision)).await),
        }
    }

    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }
}
