//! The HTTP layer: TLS, authentication, routing to discovery and to the
//! generic registry. No per-resource handlers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::fieldmanager;
use crate::http_util::{self, Body, error_response, json_response, query_map};
use crate::negotiate::{self, Output};
use crate::registry::{DeleteOptions, Filter, ListOptions, Registry, Resource, Write};
use crate::request::{self, RequestInfo};
use crate::status::ApiError;
use crate::watchcache::{CachedObject, WatchCaches, WatchItem, frame};

/// Who sent a request, from their client certificate.
#[derive(Clone, Debug, Default)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// Maps a request's (group, version, plural) to a resource and answers
/// discovery: the catalogue's job.
pub trait Catalogue: Send + Sync {
    fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource>;
    /// Whether the resource has this subresource.
    fn has_subresource(&self, group: &str, version: &str, plural: &str, sub: &str) -> bool;
    /// A discovery document for a non-resource path, given the Accept header:
    /// (content type, body).
    fn discovery(&self, parts: &[String], accept: &str) -> Option<(String, Vec<u8>)>;
    /// Serves `/openapi/...`, which has its own caching headers (ETag, 304,
    /// hashed URLs); None for other paths.
    fn openapi(
        &self,
        _path: &str,
        _query: &str,
        _headers: &http::HeaderMap,
    ) -> Option<Response<Body>> {
        None
    }
    /// Builds the filter for label and field selectors, or a 400.
    fn selectors(
        &self,
        r: &Resource,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Option<Filter>, ApiError>;
}

pub struct ApiServer {
    pub registry: Registry,
    pub catalogue: Arc<dyn Catalogue>,
    pub caches: WatchCaches,
    pub metrics: crate::metrics::Metrics,
    /// The store's revision when this server started: watches may resume
    /// from here on (upstream's watch caches start then), older is 410.
    pub started_at: std::sync::atomic::AtomicI64,
    /// How `pods/log` reaches kubelets (`--kubelet-client-certificate`).
    pub kubelet: Option<crate::kubelet_client::KubeletClient>,
    /// Service account tokens: signing, checking, discovery documents.
    pub tokens: Option<Arc<crate::serviceaccount::tokens::Tokens>>,
}

pub const VERSION: &str = "v1.36.0";

/// Size of the frames a list from the watch cache is streamed in.
const LIST_CHUNK: usize = 64 * 1024;

/// How often watches that allow bookmarks get one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": VERSION,
        "gitCommit": "rkube",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

impl ApiServer {
    pub fn new(store: Arc<dyn rkube_storage::Storage>, catalogue: Arc<dyn Catalogue>) -> Self {
        ApiServer {
            registry: Registry::new(store.clone()),
            catalogue,
            caches: WatchCaches::new(store),
            metrics: Default::default(),
            started_at: Default::default(),
            kubelet: None,
            tokens: None,
        }
    }

    /// Records the revision history is kept from; call once at start.
    pub async fn mark_started(&self) -> Result<(), ApiError> {
        let rev = self
            .registry
            .store
            .current_revision()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.started_at
            .store(rev, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        user: Option<User>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        match path.as_str() {
            "/healthz" | "/livez" | "/readyz" => {
                return http_util::bytes_response(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    b"ok".to_vec(),
                );
            }
            "/version" => return json_response(StatusCode::OK, &version_info()),
            _ => {}
        }
        let user = match user {
            Some(u) => Some(u),
            None => self.bearer_user(&req).await,
        };
        let Some(user) = user else {
            return error_response(&ApiError::unauthorized());
        };
        if let Some(resp) = self.oidc_discovery(&path) {
            return resp;
        }
        let mut req = req;
        req.extensions_mut().insert(user);
        if path == "/metrics" {
            return http_util::bytes_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render().into_bytes(),
            );
        }
        let started = std::time::Instant::now();
        let info = request::parse(&method, &path, &query);
        let resp = self.route(req, &info, &query).await;
        self.metrics
            .observe(&info, resp.status().as_u16(), started.elapsed());
        resp
    }

    /// The service account a bearer token speaks for, if it is valid.
    async fn bearer_user(&self, req: &Request<Incoming>) -> Option<User> {
        let tokens = self.tokens.as_ref()?;
        let token = req
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .trim();
        match crate::serviceaccount::authenticate(self, token, &tokens.audiences).await {
            Ok(id) => Some(id.user),
            Err(why) => {
                tracing::debug!(%why, "bearer token refused");
                None
            }
        }
    }

    /// `/.well-known/openid-configuration` and `/openid/v1/jwks`.
    fn oidc_discovery(&self, path: &str) -> Option<Response<Body>> {
        let tokens = self.tokens.as_ref()?;
        let (ct, doc) = match path {
            "/.well-known/openid-configuration" => (
                "application/json",
                tokens.openid_configuration(&tokens.jwks_uri),
            ),
            "/openid/v1/jwks" => ("application/jwk-set+json", tokens.jwks()),
            _ => return None,
        };
        Some(http_util::bytes_response(
            StatusCode::OK,
            ct,
            doc.to_string().into_bytes(),
        ))
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        info: &RequestInfo,
        query: &str,
    ) -> Response<Body> {
        let method = req.method().clone();
        let accept = header_text(&req, header::ACCEPT);
        if !info.is_resource {
            if method != Method::GET {
                return error_response(&ApiError::method_not_allowed());
            }
            if let Some(resp) = self
                .catalogue
                .openapi(req.uri().path(), query, req.headers())
            {
                return resp;
            }
            return match self.catalogue.discovery(&info.parts, &accept) {
                Some((ct, body)) => {
                    let mut resp = http_util::bytes_response(StatusCode::OK, &ct, body);
                    resp.headers_mut()
                        .insert(header::VARY, http::HeaderValue::from_static("Accept"));
                    resp
                }
                None => error_response(&ApiError::path_not_found()),
            };
        }
        match self.resource_request(req, info, query).await {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        }
    }

    async fn resource_request(
        &self,
        req: Request<Incoming>,
        info: &RequestInfo,
        query: &str,
    ) -> Result<Response<Body>, ApiError> {
        let r = self
            .catalogue
            .resource(&info.group, &info.version, &info.resource)
            .ok_or_else(ApiError::path_not_found)?;
        let q = query_map(query);
        let ns = if r.namespaced {
            info.namespace.as_deref()
        } else {
            None
        };
        if info.verb == "create" && r.custom.as_ref().is_some_and(|c| c.terminating) {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            ));
        }
        // A cluster-scoped custom resource has no namespaced paths.
        if !r.namespaced && r.custom.is_some() && info.namespace.is_some() {
            return Err(ApiError::path_not_found());
        }
        if r.namespaced && ns.is_none() && !matches!(info.verb, "list" | "watch") {
            return Err(ApiError::path_not_found());
        }
        let sub = info.subresource.as_deref();
        if let Some(sub) = sub
            && !self
                .catalogue
                .has_subresource(&info.group, &info.version, &info.resource, sub)
        {
            return Err(ApiError::path_not_found());
        }
        if sub == Some("scale") {
            return self.scale(req, &r, ns, info, &q).await;
        }
        if sub == Some("eviction")
            && r.group.is_empty()
            && r.plural == "pods"
            && info.verb == "create"
        {
            // An eviction deletes the pod with the eviction's delete options
            // (PodDisruptionBudgets are checked once their controller exists).
            let ct = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
            let eviction = read_body(req, ct.as_deref()).await?;
            let name = info.name.as_deref().unwrap_or_default();
            let options = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
            let opts = delete_options_from(&options, &q);
            self.registry.delete(&r, ns, name, &opts).await?;
            let status = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 });
            return Ok(json_response(StatusCode::CREATED, &status));
        }
        if sub == Some("binding")
            && r.group.is_empty()
            && r.plural == "pods"
            && info.verb == "create"
        {
            let ct = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
            let binding = read_body(req, ct.as_deref()).await?;
            let name = info.name.as_deref().unwrap_or_default();
            return self
                .bind(
                    &r,
                    ns,
                    name,
                    &binding,
                    q.get("dryRun").is_some_and(|v| v == "All"),
                )
                .await;
        }
        if sub == Some("log") && r.group.is_empty() && r.plural == "pods" && info.verb == "get" {
            let name = info.name.as_deref().unwrap_or_default();
            let resp = crate::podlogs::serve(self, &r, ns, name, &q).await?;
            return Ok(if crate::streams::wsbody::wanted(&req) {
                crate::streams::wsbody::serve(req, resp)
            } else {
                resp
            });
        }
        if sub == Some("token") && r.plural == "serviceaccounts" && info.verb == "create" {
            let ct = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
            let body = read_body(req, ct.as_deref()).await?;
            let name = info.name.as_deref().unwrap_or_default();
            let ns = ns.unwrap_or_default();
            return crate::serviceaccount::token_request(self, &r, ns, name, body).await;
        }
        if r.group == "authentication.k8s.io" && sub.is_none() && info.verb == "create" {
            if r.plural == "selfsubjectreviews" {
                let user = req.extensions().get::<User>().cloned().unwrap_or_default();
                return Ok(crate::serviceaccount::self_subject_review(
                    &user,
                    &info.version,
                ));
            }
            if r.plural == "tokenreviews" {
                let ct = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
                let body = read_body(req, ct.as_deref()).await?;
                return Ok(crate::serviceaccount::token_review(self, body).await);
            }
        }
        if let Some(s) = sub
            && r.group.is_empty()
            && crate::streams::handles(&r.plural, s)
        {
            return crate::streams::serve(self, &r, ns, info, req).await;
        }
        let own_rules = |s: &str| {
            matches!(s, "status" | "finalize")
                || s == "ephemeralcontainers" && r.group.is_empty() && r.plural == "pods"
        };
        if matches!(sub, Some(s) if !own_rules(s)) {
            return Err(ApiError::not_implemented(&format!(
                "the {} subresource",
                sub.unwrap_or_default()
            )));
        }
        if sub.is_none() && !r.verbs.is_empty() && !r.verbs.iter().any(|v| v == info.verb) {
            return Err(ApiError::method_not_allowed());
        }
        // Updates and patches name an object; creates name none.
        let named = info.name.is_some();
        if sub.is_none()
            && (matches!(info.verb, "update" | "patch") && !named || info.verb == "create" && named)
        {
            return Err(ApiError::method_not_allowed());
        }
        if r.storage_prefix.is_empty() {
            // Review objects have no table form (upstream: 406 before the
            // handler runs).
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if matches!(negotiate::choose(accept, None), Ok(Output::Table(_))) {
                return Err(ApiError::not_acceptable());
            }
            // Review and virtual resources come with the security issue.
            return Err(ApiError::not_implemented(&format!(
                "{}.{}",
                r.plural, r.group
            )));
        }
        let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
        let validation = FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?;
        let user_agent = header_text(&req, header::USER_AGENT);
        let name = info.name.as_deref().unwrap_or_default();
        let content_type = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
        let method = req.method().clone();
        let accept = header_text(&req, header::ACCEPT);
        let out = negotiate::choose(&accept, q.get("includeObject").map(String::as_str))?;
        match (info.verb, &method) {
            ("get", _) => {
                let obj = self.registry.get(&r, ns, name).await?;
                Ok(render(out, &r, StatusCode::OK, obj))
            }
            ("list", _) => self.list(&r, ns, &q, out).await,
            ("watch", _) => self.watch(&r, ns, info, &q, out).await,
            ("create", _) => {
                let (mut body, dups) =
                    read_checked_body(req, content_type.as_deref(), validation).await?;
                let warnings = check_fields(&r, &mut body, validation, &dups)?;
                let manager = fieldmanager::manager(&q, &user_agent, "CreateOptions")?;
                let w = Write {
                    dry_run,
                    manager: Some(&manager),
                    record_as: None,
                };
                let obj = self.registry.create(&r, ns, body, w).await?;
                Ok(with_warnings(
                    render(out, &r, StatusCode::CREATED, obj),
                    &warnings,
                ))
            }
            ("update", _) => {
                let (mut body, dups) =
                    read_checked_body(req, content_type.as_deref(), validation).await?;
                let warnings = check_fields(&r, &mut body, validation, &dups)?;
                let manager = fieldmanager::manager(&q, &user_agent, "UpdateOptions")?;
                let w = Write {
                    dry_run,
                    manager: Some(&manager),
                    record_as: None,
                };
                let obj = self.registry.update(&r, ns, name, body, sub, w).await?;
                Ok(with_warnings(
                    render(out, &r, StatusCode::OK, obj),
                    &warnings,
                ))
            }
            ("patch", _) => {
                let ct = content_type.clone().unwrap_or_default();
                let media = ct.split(';').next().unwrap_or("").trim();
                let kind = PatchKind::of(media, &r)?;
                let force = match q.get("force").map(String::as_str) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid value for force: {other:?}"
                        )));
                    }
                };
                let manager = fieldmanager::manager(&q, &user_agent, "PatchOptions")?;
                let apply = kind == PatchKind::Apply;
                if apply && q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return Err(fieldmanager::invalid_options(
                        "PatchOptions",
                        "fieldManager: Required value: is required for apply patch",
                    ));
                }
                if !apply && force {
                    return Err(fieldmanager::invalid_options(
                        "PatchOptions",
                        "force: Forbidden: may not be specified for non-apply patch",
                    ));
                }
                let body_type = match kind {
                    PatchKind::Apply => "application/yaml",
                    _ => "application/json",
                };
                let (patch, dups) = read_checked_body(req, Some(body_type), validation).await?;
                let validation = Validation {
                    mode: validation,
                    duplicates: &dups,
                };
                let w = Write {
                    dry_run,
                    manager: Some(&manager),
                    record_as: None,
                };
                let (obj, warnings, created) = self
                    .patch(&r, ns, name, kind, patch, sub, w, force, validation)
                    .await?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(with_warnings(render(out, &r, code, obj), &warnings))
            }
            ("delete", _) => {
                let opts = delete_options(req, &q).await?;
                let obj = self.registry.delete(&r, ns, name, &opts).await?;
                Ok(render(out, &r, StatusCode::OK, obj))
            }
            ("deletecollection", _) => {
                let filter = self.filter(&r, &q)?;
                let opts = delete_options(req, &q).await?;
                let list = self
                    .registry
                    .list(&r, ns, &ListOptions::default(), filter)
                    .await?;
                let mut deleted = Vec::new();
                for item in list["items"].as_array().cloned().unwrap_or_default() {
                    let n = crate::meta::name(&item).unwrap_or_default().to_owned();
                    let item_ns = crate::meta::namespace(&item).map(str::to_owned);
                    match self
                        .registry
                        .delete(&r, item_ns.as_deref(), &n, &opts)
                        .await
                    {
                        Ok(obj) => deleted.push(obj),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let mut out = list;
                out["items"] = json!(deleted);
                Ok(json_response(StatusCode::OK, &out))
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    /// `pods/binding`: assigns a pod to a node, once (the scheduler's write).
    async fn bind(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        binding: &Value,
        dry_run: bool,
    ) -> Result<Response<Body>, ApiError> {
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "",
                    "Binding",
                    name,
                    &[crate::status::FieldError::required("target.name", "")],
                )
            })?
            .to_owned();
        for _ in 0..5 {
            let mut pod = self.registry.get(r, ns, name).await?;
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(current) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            if let Some(uid) = binding.pointer("/metadata/uid").and_then(Value::as_str)
                && crate::meta::meta_str(&pod, "uid") != Some(uid)
            {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    name,
                    "the UID in the binding does not match the pod",
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            match self
                .registry
                .update(
                    r,
                    ns,
                    name,
                    pod,
                    Some("binding"),
                    Write {
                        dry_run,
                        manager: None,
                        record_as: None,
                    },
                )
                .await
            {
                Ok(_) => {
                    let status = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 });
                    return Ok(json_response(StatusCode::CREATED, &status));
                }
                Err(e) if e.code == 409 && e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::modified("", "pods", name))
    }

    async fn scale(
        &self,
        req: Request<Incoming>,
        r: &Resource,
        ns: Option<&str>,
        info: &RequestInfo,
        q: &HashMap<String, String>,
    ) -> Result<Response<Body>, ApiError> {
        let name = info.name.as_deref().unwrap_or_default();
        let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
        let content_type = Some(header_text(&req, header::CONTENT_TYPE)).filter(|c| !c.is_empty());
        let options = if info.verb == "patch" {
            "PatchOptions"
        } else {
            "UpdateOptions"
        };
        let manager = fieldmanager::manager(q, &header_text(&req, header::USER_AGENT), options)?;
        let w = Write {
            dry_run,
            manager: Some(&manager),
            record_as: Some("scale"),
        };
        let scale = match info.verb {
            "get" => crate::scale::to_scale_of(r, &self.registry.get(r, ns, name).await?),
            "update" => {
                let body = read_body(req, content_type.as_deref()).await?;
                crate::scale::write(&self.registry, r, ns, name, &body, w).await?
            }
            "patch" => {
                let media = content_type
                    .as_deref()
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                if media != "application/merge-patch+json" {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json",
                    ));
                }
                let patch = read_body(req, Some("application/json")).await?;
                // As for other patches: a write racing this one (a
                // controller's status update) is retried on the new object
                // unless the patch pins a resourceVersion.
                let pinned = patch.pointer("/metadata/resourceVersion").is_some();
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let current =
                        crate::scale::to_scale_of(r, &self.registry.get(r, ns, name).await?);
                    let patched = rkube_patch::merge_patch(&current, &patch);
                    match crate::scale::write(&self.registry, r, ns, name, &patched, w).await {
                        Err(e) if e.reason == "Conflict" && !pinned && attempt < 5 => continue,
                        other => break other?,
                    }
                }
            }
            _ => return Err(ApiError::method_not_allowed()),
        };
        Ok(json_response(StatusCode::OK, &scale))
    }

    fn filter(
        &self,
        r: &Resource,
        q: &HashMap<String, String>,
    ) -> Result<Option<Filter>, ApiError> {
        self.catalogue.selectors(
            r,
            q.get("labelSelector")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
            q.get("fieldSelector")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
        )
    }

    /// Applies a patch to what is stored and writes the result, retrying
    /// on conflicts unless the patch pins a resourceVersion.
    #[allow(clippy::too_many_arguments)]
    async fn patch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: Value,
        sub: Option<&str>,
        w: Write<'_>,
        force: bool,
        validation: Validation<'_>,
    ) -> Result<(Value, Vec<String>, bool), ApiError> {
        let pinned = patch.pointer("/metadata/resourceVersion").is_some();
        for _ in 0..5 {
            let result = match kind {
                PatchKind::Apply => {
                    self.apply(r, ns, name, &patch, sub, w, force, validation)
                        .await
                }
                _ => {
                    let current = self.registry.get(r, ns, name).await?;
                    let mut patched = kind.apply(r, &current, &patch)?;
                    let warnings =
                        check_fields(r, &mut patched, validation.mode, validation.duplicates)?;
                    self.registry
                        .update(r, ns, name, patched, sub, w)
                        .await
                        .map(|obj| (obj, warnings, false))
                }
            };
            match result {
                Err(e)
                    if e.code == 409
                        && matches!(e.reason, "Conflict" | "AlreadyExists")
                        && !pinned
                        && e.details.as_ref().is_none_or(|d| d.get("causes").is_none()) =>
                {
                    continue;
                }
                other => return other,
            }
        }
        Err(ApiError::modified(&r.group, &r.plural, name))
    }

    /// A server-side apply: merges the configuration into the live object
    /// (or creates it) with field ownership; conflicts are 409s.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        config: &Value,
        sub: Option<&str>,
        w: Write<'_>,
        force: bool,
        validation: Validation<'_>,
    ) -> Result<(Value, Vec<String>, bool), ApiError> {
        let mut config = config.clone();
        let warnings = check_fields(r, &mut config, validation.mode, validation.duplicates)?;
        match crate::meta::name(&config) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        let current = match self.registry.get(r, ns, name).await {
            Ok(c) => Some(c),
            Err(e) if e.code == 404 && sub.is_none() => None,
            Err(e) => return Err(e),
        };
        let manager = w.manager.unwrap_or_default();
        let mut obj = fieldmanager::apply(
            r,
            current.as_ref(),
            &config,
            manager,
            sub.unwrap_or_default(),
            force,
        )?;
        let applied = Write {
            dry_run: w.dry_run,
            manager: None,
            record_as: None,
        };
        match current {
            None => {
                crate::meta::meta_mut(&mut obj).insert("name".into(), json!(name));
                let created = self.registry.create(r, ns, obj, applied).await?;
                Ok((created, warnings, true))
            }
            Some(_) => {
                let updated = self.registry.update(r, ns, name, obj, sub, applied).await?;
                Ok((updated, warnings, false))
            }
        }
    }

    /// Lists from the watch cache when the request allows it (any
    /// resourceVersion, or a consistent read without a limit on a store
    /// that reports progress), else from storage with limit/continue.
    async fn list(
        &self,
        r: &Resource,
        ns: Option<&str>,
        q: &HashMap<String, String>,
        out: Output,
    ) -> Result<Response<Body>, ApiError> {
        let filter = self.filter(r, q)?;
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
        let rv_match = q
            .get("resourceVersionMatch")
            .map(String::as_str)
            .unwrap_or("");
        let continued = q.get("continue").is_some_and(|c| !c.is_empty());
        let cache = if continued || rv_match == "Exact" {
            None
        } else if rv == "0" {
            Some(self.caches.get(&r.key_prefix(None)).await?)
        } else if rv.is_empty() && limit == 0 {
            let cache = self.caches.get(&r.key_prefix(None)).await?;
            if cache.consistent {
                let current = self
                    .registry
                    .store
                    .current_revision()
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                cache.wait_for(current).await?;
                Some(cache)
            } else {
                None
            }
        } else {
            None
        };
        let Some(cache) = cache else {
            let opts = ListOptions {
                limit,
                continue_token: q.get("continue").cloned(),
                resource_version: q.get("resourceVersion").cloned(),
                resource_version_match: q.get("resourceVersionMatch").cloned(),
            };
            let list = self.registry.list(r, ns, &opts, filter).await?;
            return Ok(render_list(out, r, list));
        };
        let (items, rev) = cache.list(&r.key_prefix(ns), filter.as_ref());
        let converts = crate::conversion::converts(r);
        if out == Output::Json && !converts {
            // The cached bytes of every object, streamed as they are: no
            // re-serialization and no copy of the whole list.
            let head = format!(
                "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{rev}\"}},\"items\":[",
                r.list_kind,
                r.api_version()
            );
            // Frames of about 64 KiB: few writes, and never the whole list
            // in one buffer.
            let mut items = items.into_iter().enumerate();
            let mut head = Some(head);
            let mut done = false;
            let chunks = std::iter::from_fn(move || {
                if done {
                    return None;
                }
                let mut buf = bytes::BytesMut::with_capacity(LIST_CHUNK + 2048);
                if let Some(h) = head.take() {
                    buf.extend_from_slice(h.as_bytes());
                }
                while buf.len() < LIST_CHUNK {
                    match items.next() {
                        Some((i, o)) => {
                            if i > 0 {
                                buf.extend_from_slice(b",");
                            }
                            buf.extend_from_slice(&o.json);
                        }
                        None => {
                            buf.extend_from_slice(b"]}");
                            done = true;
                            break;
                        }
                    }
                }
                Some(Ok::<_, std::convert::Infallible>(Frame::data(buf.freeze())))
            });
            let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(
                futures::stream::iter(chunks),
            )));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Ok(resp);
        }
        let list = json!({
            "kind": r.list_kind,
            "apiVersion": r.api_version(),
            "metadata": { "resourceVersion": rev.to_string() },
            "items": crate::conversion::from_storage_all(
                r,
                items.iter().map(|o| o.value()).collect(),
            )
            .await?,
        });
        Ok(render_list(out, r, list))
    }

    async fn watch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        info: &RequestInfo,
        q: &HashMap<String, String>,
        out: Output,
    ) -> Result<Response<Body>, ApiError> {
        let mut filter = self.filter(r, q)?;
        if let Some(name) = &info.name {
            let name = name.clone();
            let inner = filter.take();
            filter = Some(Arc::new(move |o: &dyn crate::selectable::Selectable| {
                o.name() == Some(name.as_str()) && inner.as_ref().is_none_or(|f| f(o))
            }));
        }
        let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
        let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
        if send_initial.is_some()
            && q.get("allowWatchBookmarks").map(String::as_str) != Some("true")
        {
            return Err(ApiError::invalid_params(
                "sendInitialEvents",
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks=true",
            ));
        }
        let cache = self.caches.get(&r.key_prefix(None)).await?;
        let after = match (rv, send_initial) {
            ("" | "0", None | Some(true)) => {
                if rv.is_empty() && cache.consistent {
                    let current = self
                        .registry
                        .store
                        .current_revision()
                        .await
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    cache.wait_for(current).await?;
                }
                None
            }
            ("" | "0", Some(false)) => Some(cache.revision()),
            (rv, Some(true)) => {
                let rv = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?;
                // A cache that follows the store's progress catches up to
                // `rv`; one that cannot tell (etcd) starts from where it is
                // and skips events up to `rv`.
                if cache.consistent {
                    cache.wait_for(rv).await?;
                }
                None
            }
            (rv, _) => {
                let rv = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?;
                // A cache that follows the store's progress catches up to
                // `rv`; one that cannot tell (etcd) starts from where it is
                // and skips events up to `rv`.
                if cache.consistent {
                    cache.wait_for(rv).await?;
                }
                Some(rv)
            }
        };
        let items = match cache.watch(
            r.key_prefix(ns),
            after,
            filter.clone(),
            send_initial == Some(true),
        ) {
            Ok(items) => items.boxed(),
            // Older than the cache's window: replay from storage while the
            // store still has that history (410 once it is compacted).
            Err(e)
                if e.code == 410
                    && after.is_some_and(|a| {
                        a >= self.started_at.load(std::sync::atomic::Ordering::Relaxed)
                    }) =>
            {
                let rv = after.unwrap_or_default().to_string();
                let events = self.registry.watch(r, ns, Some(&rv), filter).await?;
                events
                    .map(|ev| match ev {
                        Ok(ev) => WatchItem::Event(
                            ev.kind,
                            Arc::new(CachedObject::from_object(ev.object)),
                            None,
                        ),
                        Err(e) => WatchItem::Error(e.to_status()),
                    })
                    .boxed()
            }
            Err(e) => return Err(e),
        };
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800 + rand_secs(1800)));
        let (kind, api_version) = (r.kind.clone(), r.api_version());
        let r = r.clone();
        let mut first_table = true;
        let converts = crate::conversion::converts(&r);
        let items = if converts {
            // Served in another version than stored: convert (and
            // serialize) per event; a failed conversion is an ERROR event.
            let r = r.clone();
            items
                .then(move |item| {
                    let r = r.clone();
                    async move {
                        let WatchItem::Event(kind, obj, _) = item else {
                            return item;
                        };
                        match crate::conversion::from_storage(&r, obj.value()).await {
                            Ok(served) => WatchItem::Event(
                                kind,
                                Arc::new(CachedObject::from_object(served)),
                                None,
                            ),
                            Err(e) => WatchItem::Error(e.to_status()),
                        }
                    }
                })
                .boxed()
        } else {
            items
        };
        let frames = items.map(move |item| {
            let bytes = match item {
                WatchItem::Event(_, _, Some(line)) if !converts && out == Output::Json => line,
                WatchItem::Event(kind, obj, _) => {
                    event_bytes(out, &r, kind, &obj, &mut first_table)
                }
                WatchItem::Error(status) => {
                    frame("ERROR", &serde_json::to_vec(&status).unwrap_or_default())
                }
                WatchItem::InitialEventsEnd(rev) => {
                    let bookmark = json!({
                        "kind": r.kind,
                        "apiVersion": r.api_version(),
                        "metadata": {
                            "resourceVersion": rev.to_string(),
                            "annotations": { "k8s.io/initial-events-end": "true" },
                        },
                    });
                    frame(
                        "BOOKMARK",
                        &serde_json::to_vec(&bookmark).unwrap_or_default(),
                    )
                }
            };
            Ok::<_, std::convert::Infallible>(Frame::data(bytes))
        });
        // With allowWatchBookmarks, a BOOKMARK at the cache's revision every
        // minute (as upstream), so idle watchers can resume without a relist.
        let bookmarks = if q.get("allowWatchBookmarks").map(String::as_str) == Some("true") {
            let cache = cache.clone();
            let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
                tokio::time::Instant::now() + BOOKMARK_INTERVAL,
                BOOKMARK_INTERVAL,
            ));
            ticks
                .map(move |_| {
                    let bookmark = json!({
                        "kind": kind,
                        "apiVersion": api_version,
                        "metadata": { "resourceVersion": cache.revision().to_string() },
                    });
                    Ok::<_, std::convert::Infallible>(Frame::data(frame(
                        "BOOKMARK",
                        &serde_json::to_vec(&bookmark).unwrap_or_default(),
                    )))
                })
                .boxed()
        } else {
            futures::stream::pending().boxed()
        };
        // The response ends when the events end (a watcher cut off for
        // falling behind must see its stream close, to resume from its last
        // revision), not when the never-ending bookmark ticker does: the end
        // of the events stops the bookmarks.
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let mut ended_tx = Some(ended_tx);
        let frames = frames.chain(futures::stream::poll_fn(move |_| {
            if let Some(tx) = ended_tx.take() {
                let _ = tx.send(());
            }
            std::task::Poll::Ready(None)
        }));
        let bookmarks = bookmarks.take_until(ended_rx);
        let frames =
            futures::stream::select(frames, bookmarks).take_until(tokio::time::sleep(timeout));
        let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

/// One watch event line in the negotiated output.
fn event_bytes(
    out: Output,
    r: &Resource,
    kind: &str,
    obj: &CachedObject,
    first_table: &mut bool,
) -> Bytes {
    match out {
        Output::Table(include) => {
            let row = match &r.custom {
                Some(c) => crate::crd::table::row_table(c, &obj.value(), include, *first_table),
                None => rkube_tables::row_table(
                    &r.group,
                    &r.plural,
                    &obj.value(),
                    include,
                    *first_table,
                    chrono::Utc::now(),
                ),
            };
            *first_table = false;
            frame(kind, &serde_json::to_vec(&row).unwrap_or_default())
        }
        Output::Metadata => frame(
            kind,
            &serde_json::to_vec(&partial_metadata(&obj.value())).unwrap_or_default(),
        ),
        _ => frame(kind, &obj.json),
    }
}

/// A `PartialObjectMetadata` of an object.
fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn render(out: Output, r: &Resource, status: StatusCode, obj: Value) -> Response<Body> {
    match out {
        Output::Json => json_response(status, &obj),
        Output::Yaml => yaml_response(status, &obj),
        Output::Metadata => json_response(status, &partial_metadata(&obj)),
        Output::Table(include) => {
            let meta = json!({ "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")) });
            let table = table_of(r, &[obj], include, meta);
            json_response(status, &table)
        }
    }
}

fn render_list(out: Output, r: &Resource, mut list: Value) -> Response<Body> {
    match out {
        Output::Json => json_response(StatusCode::OK, &list),
        Output::Yaml => yaml_response(StatusCode::OK, &list),
        Output::Metadata => {
            let items: Vec<Value> = list["items"]
                .as_array()
                .map(|a| a.iter().map(partial_metadata).collect())
                .unwrap_or_default();
            list["items"] = json!(items);
            list["kind"] = json!("PartialObjectMetadataList");
            list["apiVersion"] = json!("meta.k8s.io/v1");
            json_response(StatusCode::OK, &list)
        }
        Output::Table(include) => {
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let table = table_of(r, &items, include, list["metadata"].clone());
            json_response(StatusCode::OK, &table)
        }
    }
}

/// A Table of objects: the kind's columns, or a custom resource's printer
/// columns.
fn table_of(
    r: &Resource,
    objs: &[Value],
    include: rkube_tables::IncludeObject,
    meta: Value,
) -> Value {
    match &r.custom {
        Some(c) => crate::crd::table::table(c, objs, include, meta),
        None => rkube_tables::table(&r.group, &r.plural, objs, include, meta, chrono::Utc::now()),
    }
}

fn yaml_response(status: StatusCode, v: &Value) -> Response<Body> {
    http_util::bytes_response(
        status,
        "application/yaml",
        serde_yaml::to_string(v).unwrap_or_default().into_bytes(),
    )
}

/// A request header as text ("" when absent or not text).
fn header_text<B>(req: &Request<B>, name: header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn rand_secs(max: u64) -> u64 {
    uuid::Uuid::new_v4().as_u128() as u64 % max.max(1)
}

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Clone, Copy, PartialEq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v.unwrap_or("") {
            // Upstream's default since server-side field validation is on.
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Drops fields the built-in schema does not declare (as decoding into the
/// typed object does upstream); with Strict they are a 400, with Warn they
/// come back as warnings.
/// A write's field validation: the mode, and the fields its JSON body gave
/// twice.
#[derive(Clone, Copy)]
struct Validation<'a> {
    mode: FieldValidation,
    duplicates: &'a [String],
}

fn check_fields(
    r: &Resource,
    obj: &mut Value,
    mode: FieldValidation,
    duplicates: &[String],
) -> Result<Vec<String>, ApiError> {
    let unknown = match &r.custom {
        // Custom resources: ObjectMeta's fields at the root, the rest by
        // their schema (none: kept whole).
        Some(c) => {
            let mut unknown = prune_custom_metadata(obj);
            unknown.extend(c.schema.as_ref().map(|s| s.prune(obj)).unwrap_or_default());
            unknown
        }
        None => rkube_patch::prune_unknown_fields(&r.group, &r.version, &r.kind, obj),
    };
    if (unknown.is_empty() && duplicates.is_empty()) || mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .chain(
            duplicates
                .iter()
                .map(|f| format!("duplicate field \"{f}\"")),
        )
        .collect();
    if mode == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            messages.join(", "),
            kind = r.kind,
            version = r.version,
        )));
    }
    Ok(messages)
}

/// Removes the fields a custom resource's `metadata` has that ObjectMeta
/// does not declare (the schema's pruning leaves metadata alone), checked
/// as a ConfigMap's metadata: the same ObjectMeta type.
fn prune_custom_metadata(obj: &mut Value) -> Vec<String> {
    let Some(meta) = obj.get_mut("metadata").filter(|m| m.is_object()) else {
        return Vec::new();
    };
    let mut wrapper = json!({ "metadata": meta.take() });
    let unknown = rkube_patch::prune_unknown_fields("", "v1", "ConfigMap", &mut wrapper);
    *meta = wrapper["metadata"].take();
    unknown
}

/// Adds `Warning: 299 - "..."` headers, as upstream does for warnings.
fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// The patch formats a PATCH may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    fn of(media: &str, r: &Resource) -> Result<Self, ApiError> {
        let strategic = rkube_patch::root_type(&r.group, &r.version, &r.kind).is_some();
        match media {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" if strategic => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            _ => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json{}, application/apply-patch+yaml",
                    if strategic {
                        ", application/strategic-merge-patch+json"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }

    fn apply(self, r: &Resource, current: &Value, patch: &Value) -> Result<Value, ApiError> {
        let result = match self {
            PatchKind::Merge => Ok(rkube_patch::merge_patch(current, patch)),
            PatchKind::Json => rkube_patch::json_patch(current, patch),
            PatchKind::Strategic => rkube_patch::strategic_merge_patch_for(
                current, patch, &r.group, &r.version, &r.kind,
            ),
            // Applies go through the field manager, never here.
            PatchKind::Apply => {
                return Err(ApiError::new(
                    500,
                    "InternalError",
                    "an apply patch reached the plain patch path",
                ));
            }
        };
        result.map_err(|e| match e.http_status() {
            400 => ApiError::bad_request(e.to_string()),
            _ => ApiError::new(422, "Invalid", e.to_string()),
        })
    }
}

async fn read_bytes(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limited = Limited::new(req.into_body(), http_util::MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// The body, and the fields its JSON gives twice (looked for unless
/// validation is off).
async fn read_checked_body(
    req: Request<Incoming>,
    content_type: Option<&str>,
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let bytes = read_bytes(req).await?;
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    // Applies are YAML, which JSON (what kubectl sends) is too.
    let json = matches!(media, "" | "application/json" | "*/*")
        || (media == "application/yaml" && bytes.trim_ascii_start().starts_with(b"{"));
    let dups = if json && validation != FieldValidation::Ignore {
        rkube_patch::duplicate_fields(&bytes)
    } else {
        Vec::new()
    };
    Ok((decode_bytes(&bytes, content_type)?, dups))
}

async fn read_body(req: Request<Incoming>, content_type: Option<&str>) -> Result<Value, ApiError> {
    decode_bytes(&read_bytes(req).await?, content_type)
}

fn decode_bytes(bytes: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media == rkube_protobuf::CONTENT_TYPE {
        return rkube_protobuf::decode(bytes).map_err(|e| match e {
            rkube_protobuf::DecodeError::UnknownKind { .. } => ApiError::unsupported_media_type(),
            e => ApiError::bad_request(format!("decoding the protobuf body: {e}")),
        });
    }
    http_util::decode_body(content_type, bytes)
}

async fn delete_options(
    req: Request<Incoming>,
    q: &HashMap<String, String>,
) -> Result<DeleteOptions, ApiError> {
    let bytes = read_bytes(req).await?;
    let body: Value = if bytes.is_empty() {
        json!({})
    } else {
        http_util::decode_body(Some("application/json"), &bytes)?
    };
    Ok(delete_options_from(&body, q))
}

/// DeleteOptions from a body (or an Eviction's `deleteOptions`), with the
/// query parameters taking precedence as upstream.
fn delete_options_from(body: &Value, q: &HashMap<String, String>) -> DeleteOptions {
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let grace = q
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
    let policy = q
        .get("propagationPolicy")
        .cloned()
        .or_else(|| text("/propagationPolicy"))
        .or_else(
            || match body.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => Some("Orphan".into()),
                _ => None,
            },
        );
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    DeleteOptions {
        grace_period_seconds: grace,
        precondition_uid: text("/preconditions/uid"),
        precondition_rv: text("/preconditions/resourceVersion"),
        propagation_policy: policy,
        dry_run,
    }
}

/// Maps a client certificate (DER) to a user.
pub type Authenticator = Arc<dyn Fn(&[u8]) -> Option<User> + Send + Sync>;

/// Serves HTTPS until the listener fails. `authenticate` maps a peer
/// certificate chain to a user.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    authenticate: Authenticator,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer): (_, SocketAddr) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        let authenticate = authenticate.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| authenticate(cert.as_ref()));
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                let user = user.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req, user).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
