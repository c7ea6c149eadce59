//! OpenAPI documents, as upstream serves them: `/openapi/v2` (JSON, and
//! gnostic protobuf for kubectl) and `/openapi/v3` (an index of hashed URLs,
//! and one document per group-version).
//!
//! Paths and operations come from the catalogue; schemas from the
//! definitions table generated from upstream's OpenAPI (`definitions.rs`),
//! plus extra definitions (custom resources). Each document is built and
//! serialized once, hashed (SHA-512, as upstream) for its ETag and URL, and
//! kept as bytes until the set of served resources changes.

mod definitions;
mod operations;
mod proto;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use rkube_catalogue::Catalogue;
use serde_json::{Map, Value, json};

pub use definitions::{DEFINITIONS, Definitions};
pub use v3::schema as v3_schema;

use crate::http_util::{Body, bytes_response, error_response, full};
use crate::status::ApiError;

pub const PROTOBUF_V2: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The content type upstream answers protobuf requests with.
const PROTOBUF_V2_RETURNED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One serialized document.
pub struct Doc {
    pub bytes: Bytes,
    /// Upper-case hex SHA-512 of the bytes: the ETag and the `?hash=`.
    pub hash: String,
}

impl Doc {
    fn new(bytes: Vec<u8>) -> Doc {
        let digest = ring::digest::digest(&ring::digest::SHA512, &bytes);
        let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
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

pub struct V3Docs {
    pub index: Doc,
    /// By path: `api/v1`, `apis/apps/v1`.
    pub groups: BTreeMap<String, Doc>,
}

/// The `api/v1` / `apis/<group>/<version>` key of a group-version.
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every path of every served resource, by group-version key.
fn all_paths(
    cat: &Catalogue,
    extra: &Map<String, Value>,
) -> BTreeMap<String, Vec<operations::PathItem>> {
    let mut out: BTreeMap<String, Vec<operations::PathItem>> = BTreeMap::new();
    for (key, item) in operations::root_discovery() {
        out.insert(key.to_owned(), vec![item]);
    }
    for r in cat.resources() {
        let items = out
            .entry(gv_key(&r.group, &r.version))
            .or_insert_with(|| vec![operations::group_version_discovery(&r.group, &r.version)]);
        items.extend(operations::resource_paths(&DEFINITIONS, extra, r));
        if !r.group.is_empty() {
            out.entry(format!("apis/{}", r.group))
                .or_insert_with(|| vec![operations::group_discovery(&r.group)]);
        }
    }
    out
}

pub fn build_v2(cat: &Catalogue, extra: &Map<String, Value>) -> V2Docs {
    let items: Vec<_> = all_paths(cat, extra).into_values().flatten().collect();
    let doc = v2::document(&DEFINITIONS, &items, extra);
    V2Docs {
        protobuf: Doc::new(proto::document(&doc)),
        json: Doc::new(serde_json::to_vec(&doc).unwrap_or_default()),
    }
}

pub fn build_v3(cat: &Catalogue, extra: &Map<String, Value>) -> V3Docs {
    let mut groups = BTreeMap::new();
    let mut index = Map::new();
    for (key, items) in all_paths(cat, extra) {
        let doc = Doc::new(
            serde_json::to_vec(&v3::document(&DEFINITIONS, &items, extra)).unwrap_or_default(),
        );
        index.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash) }),
        );
        groups.insert(key, doc);
    }
    let index = json!({ "paths": index });
    V3Docs {
        index: Doc::new(serde_json::to_vec(&index).unwrap_or_default()),
        groups,
    }
}

/// What the documents depend on: the served resources and the extra
/// definitions. A change rebuilds them.
fn fingerprint(cat: &Catalogue, extra_generation: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    extra_generation.hash(&mut h);
    for r in cat.resources() {
        (&r.group, &r.version, &r.plural, &r.kind, &r.list_kind).hash(&mut h);
        (r.namespaced, &r.verbs).hash(&mut h);
        for s in &r.subresources {
            (&s.name, &s.kind, &s.group, &s.version, &s.verbs).hash(&mut h);
        }
    }
    h.finish()
}

#[derive(Default)]
struct State {
    fingerprint: u64,
    extra: Map<String, Value>,
    extra_generation: u64,
    v2: Option<Arc<V2Docs>>,
    v3: Option<Arc<V3Docs>>,
    built_at: String,
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
    /// resources' schemas); the documents are rebuilt on next request.
    pub fn set_extra_definitions(&self, extra: Map<String, Value>) {
        if let Ok(mut s) = self.state.lock() {
            s.extra = extra;
            s.extra_generation += 1;
        }
    }

    fn current(
        &self,
        cat: &Catalogue,
        v2: bool,
    ) -> Option<(Option<Arc<V2Docs>>, Arc<V3Docs>, String)> {
        let mut s = self.state.lock().ok()?;
        let fp = fingerprint(cat, s.extra_generation);
        if fp != s.fingerprint || s.built_at.is_empty() {
            s.fingerprint = fp;
            s.v2 = None;
            s.v3 = None;
            s.built_at = http_date(chrono::Utc::now());
        }
        if s.v3.is_none() {
            s.v3 = Some(Arc::new(build_v3(cat, &s.extra)));
        }
        if v2 && s.v2.is_none() {
            s.v2 = Some(Arc::new(build_v2(cat, &s.extra)));
        }
        Some((s.v2.clone(), s.v3.clone()?, s.built_at.clone()))
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
        let is_v2 = rest == "v2";
        let Some((v2, v3, built_at)) = self.current(cat, is_v2) else {
            return Some(error_response(&ApiError::internal(
                "openapi state poisoned",
            )));
        };
        if is_v2 {
            let v2 = v2?;
            let offered = ["application/json", PROTOBUF_V2, PROTOBUF_V2_RETURNED];
            return Some(match negotiate(accept, &offered) {
                Some("application/json") => {
                    content(&v2.json, "application/json", &built_at, headers)
                }
                Some(_) => content(&v2.protobuf, PROTOBUF_V2_RETURNED, &built_at, headers),
                None => error_response(&ApiError::not_acceptable()),
            });
        }
        if rest == "v3" || rest == "v3/" {
            return Some(content(&v3.index, "application/json", &built_at, headers));
        }
        let key = rest.strip_prefix("v3/")?;
        let Some(doc) = v3.groups.get(key) else {
            return Some(error_response(&ApiError::path_not_found()));
        };
        if negotiate(accept, &["application/json"]).is_none() {
            return Some(error_response(&ApiError::not_acceptable()));
        }
        let hash = crate::http_util::query_map(query).remove("hash");
        match hash {
            Some(h) if h != doc.hash => {
                // A stale hashed URL: upstream redirects to the current one.
                let mut resp = Response::new(full(Bytes::new()));
                *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
                if let Ok(v) =
                    HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={}", doc.hash))
                {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Some(resp)
            }
            Some(_) => {
                let mut resp = content(doc, "application/json", &built_at, headers);
                let h = resp.headers_mut();
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
                let expires = http_date(chrono::Utc::now() + chrono::Duration::days(365));
                if let Ok(v) = HeaderValue::from_str(&expires) {
                    h.insert(header::EXPIRES, v);
                }
                Some(resp)
            }
            None => Some(content(doc, "application/json", &built_at, headers)),
        }
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
