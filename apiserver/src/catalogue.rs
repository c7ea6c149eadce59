//! The server's view of the resource catalogue: resolving requests to
//! resources, discovery documents with content negotiation, and selectors.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rkube_catalogue::{Catalogue as Table, ResourceInfo, discovery};
use rkube_selectors::{FieldSelector, LabelSelector};

use crate::registry::Resource;
use crate::selectable::{Filter, Selectable};
use crate::server::Catalogue;
use crate::status::ApiError;

/// (group, version, plural) of a served resource.
type Key = (String, String, String);

/// What CRDs added to the catalogue.
#[derive(Default)]
struct Custom {
    /// Per CRD name, the keys it serves.
    by_crd: HashMap<String, Vec<Key>>,
    resources: HashMap<Key, Arc<crate::crd::CustomResource>>,
}

pub struct BuiltinCatalogue {
    table: RwLock<Table>,
    custom: RwLock<Custom>,
    /// What `/api` reports in `serverAddressByClientCIDRs`.
    server_address: String,
    openapi: crate::openapi::OpenApi,
}

impl BuiltinCatalogue {
    pub fn new(runtime_config: &str, server_address: String) -> Result<Self, String> {
        let table = Table::with_runtime_config(runtime_config).map_err(|e| e.to_string())?;
        Ok(BuiltinCatalogue {
            table: RwLock::new(table),
            custom: Default::default(),
            server_address,
            openapi: Default::default(),
        })
    }

    /// Schemas served in the OpenAPI documents beside the built-in ones
    /// (custom resources' definitions, named and carrying
    /// `x-kubernetes-group-version-kind` as upstream's); the documents are
    /// rebuilt on their next request.
    pub fn set_openapi_definitions(&self, defs: serde_json::Map<String, serde_json::Value>) {
        self.openapi.set_extra_definitions(defs);
    }

    /// Replaces what a CRD serves (nothing: it is no longer served). The
    /// change shows in routing, discovery and OpenAPI on the next request.
    /// Returns the storage prefixes whose selectable fields are new to the
    /// watch cache's extracts (their caches must start afresh).
    pub fn set_custom(
        &self,
        crd: &str,
        entries: Vec<(ResourceInfo, Arc<crate::crd::CustomResource>)>,
    ) -> Vec<String> {
        let mut stale = Vec::new();
        let (Ok(mut table), Ok(mut custom)) = (self.table.write(), self.custom.write()) else {
            return stale;
        };
        for key in custom.by_crd.remove(crd).unwrap_or_default() {
            // Only what this CRD still owns (another may hold it now).
            if custom.resources.get(&key).is_some_and(|c| c.crd == crd) {
                custom.resources.remove(&key);
                table.remove(&key.0, &key.1, &key.2);
            }
        }
        let mut keys = Vec::new();
        for (info, cr) in entries {
            let key = (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            );
            // Built-in resources are never replaced.
            if table.find(&key.0, &key.1, &key.2).is_some() && !custom.resources.contains_key(&key)
            {
                continue;
            }
            if crate::fields::register_pointers(cr.selectable.iter().map(|(_, p)| p.as_str())) {
                stale.push(info.storage_prefix.clone());
            }
            table.add(info);
            custom.resources.insert(key.clone(), cr);
            keys.push(key);
        }
        if !keys.is_empty() {
            custom.by_crd.insert(crd.to_owned(), keys);
        }
        stale
    }

    fn with<T>(&self, f: impl FnOnce(&Table) -> T) -> Option<T> {
        self.table.read().ok().map(|t| f(&t))
    }
}

fn resource_of(info: &ResourceInfo, custom: Option<Arc<crate::crd::CustomResource>>) -> Resource {
    Resource {
        custom,
        group: info.group.clone(),
        version: info.version.clone(),
        kind: info.kind.clone(),
        list_kind: info.list_kind.clone(),
        plural: info.plural.clone(),
        namespaced: info.namespaced,
        storage_prefix: info.storage_prefix.clone(),
        has_status: info.subresource("status").is_some(),
        verbs: info.verbs.clone(),
    }
}

/// Which aggregated discovery version the Accept header asks for, if any.
fn aggregated_version(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json") {
            if params.first() == Some(&"*/*") {
                return None;
            }
            continue;
        }
        let has = |p: &str| params.contains(&p);
        if !has("g=apidiscovery.k8s.io") {
            return None;
        }
        if has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some(discovery::AGGREGATED_V2);
            }
            if has("v=v2beta1") {
                return Some(discovery::AGGREGATED_V2BETA1);
            }
        }
    }
    None
}

fn aggregated_content_type(api_version: &str) -> String {
    let v = api_version.rsplit('/').next().unwrap_or("v2");
    format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
}

impl Catalogue for BuiltinCatalogue {
    fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        let custom = self.custom.read().ok().and_then(|c| {
            c.resources
                .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
                .cloned()
        });
        self.with(|t| {
            t.find(group, version, plural)
                .map(|info| resource_of(info, custom))
        })
        .flatten()
    }

    fn has_subresource(&self, group: &str, version: &str, plural: &str, sub: &str) -> bool {
        self.with(|t| {
            t.find(group, version, plural)
                .is_some_and(|r| r.subresource(sub).is_some())
        })
        .unwrap_or(false)
    }

    fn discovery(&self, parts: &[String], accept: &str) -> Option<(String, Vec<u8>)> {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let json = "application/json".to_owned();
        self.with(|t| match parts.as_slice() {
            ["api"] => Some(match aggregated_version(accept) {
                Some(v) => (
                    aggregated_content_type(v),
                    discovery::aggregated_bytes(t, true, v),
                ),
                None => (
                    json,
                    discovery::legacy_core_versions_bytes(&self.server_address),
                ),
            }),
            ["apis"] => Some(match aggregated_version(accept) {
                Some(v) => (
                    aggregated_content_type(v),
                    discovery::aggregated_bytes(t, false, v),
                ),
                None => (json, discovery::group_list_bytes(t)),
            }),
            ["api", version] => discovery::resource_list_bytes(t, "", version).map(|b| (json, b)),
            ["apis", group] => discovery::api_group_bytes(t, group).map(|b| (json, b)),
            ["apis", group, version] => {
                discovery::resource_list_bytes(t, group, version).map(|b| (json, b))
            }
            _ => None,
        })
        .flatten()
    }

    fn openapi(
        &self,
        path: &str,
        query: &str,
        headers: &http::HeaderMap,
    ) -> Option<http::Response<crate::http_util::Body>> {
        if !path.starts_with("/openapi/") {
            return None;
        }
        self.with(|t| self.openapi.serve(t, path, query, headers))
            .flatten()
    }

    fn selectors(
        &self,
        r: &Resource,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Option<Filter>, ApiError> {
        let labels = match label {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match field {
            Some(s) => {
                let sel =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                for req in sel.requirements() {
                    let custom_field = r
                        .custom
                        .as_ref()
                        .is_some_and(|c| c.selectable.iter().any(|(f, _)| *f == req.field));
                    if !custom_field && !crate::fields::supported(&r.group, &r.plural, &req.field) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {}",
                            req.field
                        )));
                    }
                }
                Some(sel)
            }
            None => None,
        };
        if labels.as_ref().is_none_or(|l| l.is_empty())
            && fields.as_ref().is_none_or(|f| f.is_empty())
        {
            return Ok(None);
        }
        let (group, plural) = (r.group.clone(), r.plural.clone());
        let custom: Vec<(String, String)> = r
            .custom
            .as_ref()
            .map(|c| c.selectable.clone())
            .unwrap_or_default();
        let value = move |obj: &dyn Selectable, field: &str| match custom
            .iter()
            .find(|(f, _)| f == field)
        {
            Some((_, pointer)) => obj.scalar(pointer).unwrap_or_default(),
            None => crate::fields::value(&group, &plural, obj, field),
        };
        let filter: Filter = Arc::new(move |obj: &dyn Selectable| {
            labels
                .as_ref()
                .is_none_or(|l| l.matches(&crate::selectable::LabelsOf(obj)))
                && fields
                    .as_ref()
                    .is_none_or(|f| f.matches(|field| Some(value(obj, field))))
        });
        Ok(Some(filter))
    }
}
