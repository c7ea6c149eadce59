//! OpenAPI documents, as upstream serves them: `/openapi/v2` (JSON, and
//! gnostic protobuf for kubectl) and `/openapi/v3` (an index of hashed URLs,
//! and one document per group-version).
//!
//! Paths and operations come from the catalogue; schemas from the
//! definitions table generated from upstream's OpenAPI (`definitions.rs`),
//! plus extra definitions (custom resources). Each document is built and
//! serialized once, on its first request, and kept as bytes until the set
//! of served resources or extra definitions changes. ETags and `?hash=` are
//! SHA-512 in hex as upstream; a v3 document's hash is taken over what it is
//! built from rather than its bytes, so the index is served without
//! building every group-version's document (kubectl reads one or two).
//! Documents are written a path and a schema at a time, never held whole
//! as a JSON tree.

mod definitions;
mod operations;
mod proto;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use rkube_catalogue::{Catalogue, ResourceInfo};
use serde_json::{Map, Value, json};

pub use definitions::{DEFINITIONS, Definitions};

use crate::http_util::{Body, bytes_response, error_response, full};
use crate::status::ApiError;

pub const PROTOBUF_V2: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The content type upstream answers protobuf requests with.
const PROTOBUF_V2_RETURNED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One serialized document.
pub struct Doc {
    pub bytes: Bytes,
    /// Upper-case hex SHA-512: the ETag and the `?hash=`.
    pub hash: String,
}

fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

impl Doc {
    /// A document hashed over its bytes.
    fn new(bytes: Vec<u8>) -> Doc {
        let hash = sha512_hex(&[&bytes]);
        Doc {
            bytes: Bytes::from(bytes),
            hash,
        }
    }
}

pub struct V2Docs {
    pub json: Doc,
    pub protobuf: Doc,
}

/// The `api/v1` / `apis/<group>/<version>` key of a group-version.
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The v3 index keys (`api`, `apis`, `version`, `apis/<group>`,
/// `apis/<group>/<version>`, `api/v1`) with the resources each covers.
fn v3_keys(cat: &Catalogue) -> BTreeMap<String, Vec<&ResourceInfo>> {
    let mut out: BTreeMap<String, Vec<&ResourceInfo>> = BTreeMap::new();
    for (key, _) in operations::root_discovery() {
        out.insert(key.to_owned(), Vec::new());
    }
    for r in cat.resources() {
        out.entry(gv_key(&r.group, &r.version)).or_default().push(r);
        if !r.group.is_empty() {
            out.entry(format!("apis/{}", r.group)).or_default();
        }
    }
    out
}

/// The paths under one v3 index key.
fn paths_of(
    key: &str,
    resources: &[&ResourceInfo],
    extra: &Map<String, Value>,
) -> Vec<operations::PathItem> {
    if let Some((_, item)) = operations::root_discovery()
        .into_iter()
        .find(|(k, _)| *k == key)
    {
        return vec![item];
    }
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["apis", group] => vec![operations::group_discovery(group)],
        ["api", version] | ["apis", _, version] => {
            let group = if parts.len() == 3 { parts[1] } else { "" };
            let mut items = vec![operations::group_version_discovery(group, version)];
            for r in resources {
                items.extend(operations::resource_paths(&DEFINITIONS, extra, r));
            }
            items
        }
        _ => Vec::new(),
    }
}

pub fn build_v2(cat: &Catalogue, extra: &Map<String, Value>) -> V2Docs {
    let items: Vec<_> = v3_keys(cat)
        .iter()
        .flat_map(|(k, rs)| paths_of(k, rs, extra))
        .collect();
    let (json, protobuf) = v2::documents(&DEFINITIONS, &items, extra);
    V2Docs {
        json: Doc::new(json),
        protobuf: Doc::new(protobuf),
    }
}

/// The v3 document under one index key, serialized.
pub fn build_v3_document(
    cat: &Catalogue,
    extra: &Map<String, Value>,
    key: &str,
) -> Option<Vec<u8>> {
    let keys = v3_keys(cat);
    let resources = keys.get(key)?;
    Some(v3::document(
        &DEFINITIONS,
        &paths_of(key, resources, extra),
        extra,
    ))
}

/// A digest of what makes the built-in documents: the compiled tables.
static TABLES_DIGEST: LazyLock<String> = LazyLock::new(|| {
    sha512_hex(&[
        definitions::TABLE.as_bytes(),
        definitions::PARAMETERS.as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
    ])
});

/// The hash of each v3 document, derived from everything the document is
/// built from (the tables, the key, its resources, the extra definitions),
/// so that the index needs no document built: the same URL always yields
/// the same bytes, which is all `Cache-Control: immutable` asks.
fn v3_hashes(cat: &Catalogue, extra_digest: &str) -> BTreeMap<String, String> {
    v3_keys(cat)
        .into_iter()
        .map(|(key, resources)| {
            let described = format!("{resources:?}");
            let hash = sha512_hex(&[
                TABLES_DIGEST.as_bytes(),
                key.as_bytes(),
                described.as_bytes(),
                extra_digest.as_bytes(),
            ]);
            (key, hash)
        })
        .collect()
}

fn index_bytes(hashes: &BTreeMap<String, String>) -> Vec<u8> {
    let paths: Map<String, Value> = hashes
        .iter()
        .map(|(key, hash)| {
            (
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }),
            )
        })
        .collect();
    serde_json::to_vec(&json!({ "paths": paths })).unwrap_or_default()
}

/// What the documents depend on: the served resources and the extra
/// definitions. A change rebuilds them.
fn fingerprint(cat: &Catalogue, extra_generation: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    extra_generation.hash(&mut h);
    for r in cat.resources() {
        format!("{r:?}").hash(&mut h);
    }
    h.finish()
}

#[derive(Default)]
struct State {
    fingerprint: u64,
    extra: Map<String, Value>,
    extra_generation: u64,
    extra_digest: String,
    built_at: String,
    v2: Option<Arc<V2Docs>>,
    /// The v3 index and each document's hash.
    index: Option<Arc<Doc>>,
    hashes: BTreeMap<String, String>,
    /// v3 documents built so far (on first request of each).
    v3: BTreeMap<String, Arc<Doc>>,
}

/// The served documents, built on first request and kept until the
/// catalogue or the extra definitions change.
#[derive(Default)]
pub struct OpenApi {
    state: Mutex<State>,
}

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Which of `offered` the Accept header prefers (in header order, ignoring
/// parameters; `*/*` and `application/*` take the first offered).
fn negotiate<'a>(accept: &str, offered: &[&'a str]) -> Option<&'a str> {
    if accept.trim().is_empty() {
        return offered.first().copied();
    }
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let ty = parts.next().unwrap_or_default();
        if parts.any(|p| p.replace(' ', "") == "q=0") {
            continue;
        }
        if ty == "*/*" || ty == "application/*" {
            return offered.first().copied();
        }
        if let Some(o) = offered.iter().find(|o| o.eq_ignore_ascii_case(ty)) {
            return Some(o);
        }
    }
    None
}

impl OpenApi {
    /// Replaces the definitions served beside the built-in ones (custom
    /// resources' schemas, in v2 form: `#/definitions/` references, with
    /// `x-kubernetes-group-version-kind` naming the kinds they describe);
    /// the documents are rebuilt on next request.
    pub fn set_extra_definitions(&self, extra: Map<String, Value>) {
        if let Ok(mut s) = self.state.lock() {
            s.extra_digest = sha512_hex(&[&serde_json::to_vec(&extra).unwrap_or_default()]);
            s.extra = extra;
            s.extra_generation += 1;
        }
    }

    /// The state for this catalogue, reset when it changed.
    fn state(&self, cat: &Catalogue) -> Option<std::sync::MutexGuard<'_, State>> {
        let mut s = self.state.lock().ok()?;
        let fp = fingerprint(cat, s.extra_generation);
        if fp != s.fingerprint || s.index.is_none() {
            s.fingerprint = fp;
            s.built_at = http_date(chrono::Utc::now());
            s.v2 = None;
            s.v3.clear();
            s.hashes = v3_hashes(cat, &s.extra_digest);
            let index = Doc::new(index_bytes(&s.hashes));
            s.index = Some(Arc::new(index));
        }
        Some(s)
    }

    /// Serves `/openapi/...`; None for other paths.
    pub fn serve(
        &self,
        cat: &Catalogue,
        path: &str,
        query: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        let rest = path.strip_prefix("/openapi/")?;
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(mut s) = self.state(cat) else {
            return Some(error_response(&ApiError::internal(
                "openapi state poisoned",
            )));
        };
        let built_at = s.built_at.clone();
        if rest == "v2" {
            let offered = ["application/json", PROTOBUF_V2, PROTOBUF_V2_RETURNED];
            let Some(chosen) = negotiate(accept, &offered) else {
                return Some(error_response(&ApiError::not_acceptable()));
            };
            let v2 = match &s.v2 {
                Some(v2) => v2.clone(),
                None => {
                    let v2 = Arc::new(build_v2(cat, &s.extra));
                    s.v2 = Some(v2.clone());
                    v2
                }
            };
            drop(s);
            return Some(if chosen == "application/json" {
                content(&v2.json, "application/json", &built_at, headers)
            } else {
                content(&v2.protobuf, PROTOBUF_V2_RETURNED, &built_at, headers)
            });
        }
        if rest == "v3" || rest == "v3/" {
            let index = s.index.clone()?;
            drop(s);
            return Some(content(&index, "application/json", &built_at, headers));
        }
        let key = rest.strip_prefix("v3/")?;
        let Some(hash) = s.hashes.get(key).cloned() else {
            return Some(error_response(&ApiError::path_not_found()));
        };
        if negotiate(accept, &["application/json"]).is_none() {
            return Some(error_response(&ApiError::not_acceptable()));
        }
        let asked = crate::http_util::query_map(query).remove("hash");
        if let Some(h) = &asked
            && *h != hash
        {
            // A stale hashed URL: upstream redirects to the current one.
            let mut resp = Response::new(full(Bytes::new()));
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={hash}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return Some(resp);
        }
        let doc = match s.v3.get(key) {
            Some(d) => d.clone(),
            None => {
                let bytes = build_v3_document(cat, &s.extra, key)?;
                let d = Arc::new(Doc {
                    bytes: Bytes::from(bytes),
                    hash,
                });
                s.v3.insert(key.to_owned(), d.clone());
                d
            }
        };
        drop(s);
        let mut resp = content(&doc, "application/json", &built_at, headers);
        if asked.is_some() {
            let h = resp.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            let expires = http_date(chrono::Utc::now() + chrono::Duration::days(365));
            if let Ok(v) = HeaderValue::from_str(&expires) {
                h.insert(header::EXPIRES, v);
            }
        }
        Some(resp)
    }

    /// The v3 index as served (for tests and benchmarks).
    pub fn v3_index(&self, cat: &Catalogue) -> Option<Bytes> {
        Some(self.state(cat)?.index.as_ref()?.bytes.clone())
    }
}

/// A document with its ETag; `If-None-Match` on it gets a 304, as Go's
/// `http.ServeContent` answers upstream.
fn content(doc: &Doc, content_type: &str, built_at: &str, headers: &HeaderMap) -> Response<Body> {
    let etag = format!("\"{}\"", doc.hash);
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str()));
    let mut resp = if matches {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = bytes_response(StatusCode::OK, content_type, Vec::new());
        *r.body_mut() = full(doc.bytes.clone());
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(built_at) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp
}
