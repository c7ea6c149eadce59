//! CustomResourceDefinitions: the CRD objects' own strategy, what a CRD
//! means for the custom resources it defines (one [`CustomResource`] per
//! served version), and the in-process controller that serves them.

pub mod cleanup;
pub mod controller;
pub mod jsonpath;
pub mod openapi;
pub mod strategy;
pub mod table;
pub mod webhook;

use std::sync::Arc;

use rkube_catalogue::{ResourceInfo, Stability, SubresourceInfo};
use rkube_storage::Storage;
use rkube_structural::Structural;
use serde_json::Value;

use crate::status::ApiError;

pub const GROUP: &str = "apiextensions.k8s.io";
pub const PLURAL: &str = "customresourcedefinitions";
/// The finalizer that deletes a CRD's custom resources before the CRD.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Whether a resource is the CRD resource itself.
pub fn is_crd(group: &str, plural: &str) -> bool {
    group == GROUP && plural == PLURAL
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub path: jsonpath::Path,
}

/// The `scale` subresource's paths (`.spec.replicas` as JSON pointers).
#[derive(Debug, Clone)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// A custom resource as served in one version.
#[derive(Debug)]
pub struct CustomResource {
    /// The CRD's name (`foos.example.com`).
    pub crd: String,
    pub group: String,
    pub kind: String,
    pub version: String,
    pub storage_version: String,
    /// Whether several versions exist (objects may be stored in another).
    pub multi_version: bool,
    pub schema: Option<Structural>,
    /// Whether the schema has `default`s (objects are then defaulted on read).
    pub has_defaults: bool,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub columns: Vec<PrinterColumn>,
    /// (field path `spec.color`, JSON pointer `/spec/color`).
    pub selectable: Vec<(String, String)>,
    /// The CRD is being deleted: no new objects.
    pub terminating: bool,
    /// Conversion strategy `Webhook`: other versions are converted by it.
    pub webhook: Option<Arc<webhook::Webhook>>,
}

impl CustomResource {
    /// Whether what is stored differs from what is served (apiVersion, or
    /// defaults applied on read).
    pub fn converts(&self) -> bool {
        self.multi_version || self.has_defaults || self.webhook.is_some()
    }

    /// Whether a written object comes back from the webhook rather than as
    /// written (upstream decodes what it stored).
    pub fn round_trips(&self) -> bool {
        self.webhook.is_some() && self.version != self.storage_version
    }

    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// Objects into `version`: by the webhook (objects already there are
    /// not sent), or by their apiVersion alone (strategy None).
    async fn to_version(
        &self,
        objs: &mut [Value],
        version: &str,
        list: bool,
    ) -> Result<(), ApiError> {
        let to = format!("{}/{version}", self.group);
        match &self.webhook {
            Some(w) => w.convert(objs, &to, list).await,
            None => {
                for obj in objs.iter_mut().filter(|o| o.is_object()) {
                    obj["apiVersion"] = Value::String(to.clone());
                }
                Ok(())
            }
        }
    }

    /// Objects read from storage as this version serves them: converted
    /// (a list in one review), then defaulted.
    pub async fn from_storage(&self, objs: &mut [Value], list: bool) -> Result<(), ApiError> {
        self.to_version(objs, &self.version, list).await?;
        if let Some(s) = &self.schema {
            for obj in objs.iter_mut() {
                s.apply_defaults(obj);
            }
        }
        Ok(())
    }

    /// The stored form: in the storage version.
    pub async fn to_storage(&self, obj: &mut Value) -> Result<(), ApiError> {
        self.to_version(std::slice::from_mut(obj), &self.storage_version, false)
            .await
    }
}

/// A simple JSON path (`.spec.replicas`) as a JSON pointer.
pub fn simple_path_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .fold(String::new(), |mut acc, seg| {
            acc.push('/');
            acc.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            acc
        })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn contains_key(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.contains_key(key) || m.values().any(|c| contains_key(c, key)),
        Value::Array(a) => a.iter().any(|c| contains_key(c, key)),
        _ => false,
    }
}

/// The names a CRD is served under: `status.acceptedNames` once the names
/// were accepted, else the spec's.
pub struct Names {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl Names {
    pub fn of(names: &Value) -> Names {
        Names {
            plural: str_at(names, "/plural").to_owned(),
            singular: str_at(names, "/singular").to_owned(),
            kind: str_at(names, "/kind").to_owned(),
            list_kind: str_at(names, "/listKind").to_owned(),
            short_names: strings_at(names, "/shortNames"),
            categories: strings_at(names, "/categories"),
        }
    }
}

/// The catalogue entries and custom resources of a CRD's served versions,
/// under the accepted names.
/// `store` resolves a conversion webhook's Service.
pub fn served(crd: &Value, store: &Arc<dyn Storage>) -> Vec<(ResourceInfo, Arc<CustomResource>)> {
    let name = crate::meta::name(crd).unwrap_or_default().to_owned();
    let group = str_at(crd, "/spec/group").to_owned();
    let names = Names::of(crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null));
    if names.plural.is_empty() || names.kind.is_empty() {
        return Vec::new();
    }
    let list_kind = if names.list_kind.is_empty() {
        format!("{}List", names.kind)
    } else {
        names.list_kind.clone()
    };
    let singular = if names.singular.is_empty() {
        names.kind.to_lowercase()
    } else {
        names.singular.clone()
    };
    let namespaced = str_at(crd, "/spec/scope") != "Cluster";
    let versions: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name").to_owned())
        .unwrap_or_default();
    let selectable_top = crd.pointer("/spec/selectableFields").cloned();
    // One webhook (and TLS config) for all the versions.
    let webhook = webhook::Webhook::of(crd, store.clone());
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = str_at(v, "/name").to_owned();
        let schema_json = v.pointer("/schema/openAPIV3Schema");
        let schema = schema_json.and_then(|s| {
            Structural::compile(s, &format!("spec.versions[{i}].schema.openAPIV3Schema")).ok()
        });
        let has_defaults = schema_json.is_some_and(|s| contains_key(s, "default"));
        let status = v.pointer("/subresources/status").is_some();
        let scale = v.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: simple_path_pointer(str_at(s, "/specReplicasPath")),
            status_replicas: simple_path_pointer(str_at(s, "/statusReplicasPath")),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(simple_path_pointer),
        });
        let columns = printer_columns(v);
        let selectable = v
            .get("selectableFields")
            .or(selectable_top.as_ref())
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| (p.trim_start_matches('.').to_owned(), simple_path_pointer(p)))
                    .collect()
            })
            .unwrap_or_default();
        let mut subresources = Vec::new();
        if status {
            subresources.push(SubresourceInfo {
                name: "status".into(),
                kind: names.kind.clone(),
                group: None,
                version: None,
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        if scale.is_some() {
            subresources.push(SubresourceInfo {
                name: "scale".into(),
                kind: "Scale".into(),
                group: Some("autoscaling".into()),
                version: Some("v1".into()),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        let info = ResourceInfo {
            group: group.clone(),
            version: version.clone(),
            kind: names.kind.clone(),
            list_kind: list_kind.clone(),
            plural: names.plural.clone(),
            singular: singular.clone(),
            short_names: names.short_names.clone(),
            categories: names.categories.clone(),
            namespaced,
            verbs: [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            subresources,
            storage_prefix: format!("{group}/{}", names.plural),
            storage_version_hash: rkube_catalogue::storage_version_hash(
                &group,
                &storage_version,
                &names.kind,
            ),
            enabled_by_default: true,
            stability: Stability::of_version(&version),
        };
        let custom = CustomResource {
            crd: name.clone(),
            group: group.clone(),
            kind: names.kind.clone(),
            version,
            storage_version: storage_version.clone(),
            multi_version: versions.len() > 1,
            schema,
            has_defaults,
            status,
            scale,
            columns,
            selectable,
            terminating: strategy::condition_true(crd, "Terminating")
                || crd.pointer("/metadata/deletionTimestamp").is_some(),
            webhook: webhook.clone(),
        };
        out.push((info, Arc::new(custom)));
    }
    out
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    let cols = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let Some(cols) = cols else {
        // Upstream's default when a version declares none: Age.
        return vec![PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: rkube_tables::CREATED_DESC.into(),
            priority: 0,
            path: jsonpath::Path::parse(".metadata.creationTimestamp").unwrap_or_default(),
        }];
    };
    cols.iter()
        .map(|c| PrinterColumn {
            name: str_at(c, "/name").to_owned(),
            type_: str_at(c, "/type").to_owned(),
            format: str_at(c, "/format").to_owned(),
            description: str_at(c, "/description").to_owned(),
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            path: jsonpath::Path::parse(str_at(c, "/jsonPath")).unwrap_or_default(),
        })
        .collect()
}
