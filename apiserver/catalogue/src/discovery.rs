//! Discovery documents, field for field as upstream serves them. Typed structs keep
//! upstream's key order in the byte form (`*_bytes`); the `Value` forms are for callers that edit.

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::resource::ResourceInfo;

/// Aggregated discovery versions upstream serves (same shape, different apiVersion).
pub const AGGREGATED_V2: &str = "apidiscovery.k8s.io/v2";
pub const AGGREGATED_V2BETA1: &str = "apidiscovery.k8s.io/v2beta1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerAddressByClientCidr<'a> {
    #[serde(rename = "clientCIDR")]
    client_cidr: &'a str,
    server_address: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiVersions<'a> {
    kind: &'a str,
    versions: Vec<&'a str>,
    #[serde(rename = "serverAddressByClientCIDRs")]
    server_address_by_client_cidrs: Vec<ServerAddressByClientCidr<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersionForDiscovery {
    group_version: String,
    version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroup<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    name: &'a str,
    versions: Vec<GroupVersionForDiscovery>,
    preferred_version: GroupVersionForDiscovery,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroupList<'a> {
    kind: &'a str,
    api_version: &'a str,
    groups: Vec<ApiGroup<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResource<'a> {
    name: String,
    singular_name: &'a str,
    namespaced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    kind: &'a str,
    verbs: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    short_names: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    categories: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    storage_version_hash: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResourceList<'a> {
    kind: &'a str,
    /// Upstream omits apiVersion on the legacy `/api/v1` list.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    group_version: String,
    resources: Vec<ApiResource<'a>>,
}

#[derive(Serialize)]
struct Gvk<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubresourceDiscovery<'a> {
    subresource: &'a str,
    response_kind: Gvk<'a>,
    verbs: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiscovery<'a> {
    resource: &'a str,
    response_kind: Gvk<'a>,
    scope: &'a str,
    singular_resource: &'a str,
    verbs: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    short_names: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    categories: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subresources: Vec<SubresourceDiscovery<'a>>,
}

#[derive(Serialize)]
struct VersionDiscovery<'a> {
    version: &'a str,
    resources: Vec<ResourceDiscovery<'a>>,
    freshness: &'a str,
}

#[derive(Serialize)]
struct ObjectMeta<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
}

#[derive(Serialize)]
struct GroupDiscovery<'a> {
    metadata: ObjectMeta<'a>,
    versions: Vec<VersionDiscovery<'a>>,
}

#[derive(Serialize)]
struct EmptyListMeta {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDiscoveryList<'a> {
    kind: &'a str,
    api_version: &'a str,
    metadata: EmptyListMeta,
    items: Vec<GroupDiscovery<'a>>,
}

fn to_value<T: Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap_or_default()
}

fn legacy_core_doc(server_address: &str) -> ApiVersions<'_> {
    ApiVersions {
        kind: "APIVersions",
        versions: vec!["v1"],
        server_address_by_client_cidrs: vec![ServerAddressByClientCidr {
            client_cidr: "0.0.0.0/0",
            server_address,
        }],
    }
}

/// `GET /api`: the legacy core APIVersions; `server_address` is `host:port` as clients should dial it.
pub fn legacy_core_versions(server_address: &str) -> Value {
    to_value(&legacy_core_doc(server_address))
}

pub fn legacy_core_versions_bytes(server_address: &str) -> Vec<u8> {
    to_bytes(&legacy_core_doc(server_address))
}

fn gv_for_discovery(group: &str, version: &str) -> GroupVersionForDiscovery {
    GroupVersionForDiscovery {
        group_version: format!("{group}/{version}"),
        version: version.to_owned(),
    }
}

fn group_doc<'a>(cat: &Catalogue, name: &'a str, typed: bool) -> Option<ApiGroup<'a>> {
    let versions = cat.versions(name);
    let preferred = versions.first()?;
    Some(ApiGroup {
        kind: typed.then_some("APIGroup"),
        api_version: typed.then_some("v1"),
        name,
        preferred_version: gv_for_discovery(name, preferred),
        versions: versions.iter().map(|v| gv_for_discovery(name, v)).collect(),
    })
}

fn group_list_doc(cat: &Catalogue) -> ApiGroupList<'_> {
    ApiGroupList {
        kind: "APIGroupList",
        api_version: "v1",
        groups: cat
            .groups()
            .into_iter()
            .filter(|g| !g.is_empty())
            .filter_map(|g| group_doc(cat, g, false))
            .collect(),
    }
}

/// `GET /apis`: APIGroupList in upstream order (apiregistration first, then by priority).
pub fn group_list(cat: &Catalogue) -> Value {
    to_value(&group_list_doc(cat))
}

pub fn group_list_bytes(cat: &Catalogue) -> Vec<u8> {
    to_bytes(&group_list_doc(cat))
}

/// `GET /apis/<group>`: one APIGroup; `None` when the group is not served (a 404).
pub fn api_group(cat: &Catalogue, group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    group_doc(cat, group, true).map(|d| to_value(&d))
}

pub fn api_group_bytes(cat: &Catalogue, group: &str) -> Option<Vec<u8>> {
    if group.is_empty() {
        return None;
    }
    group_doc(cat, group, true).map(|d| to_bytes(&d))
}

fn api_resources(r: &ResourceInfo) -> Vec<ApiResource<'_>> {
    let mut out = vec![ApiResource {
        name: r.plural.clone(),
        singular_name: &r.singular,
        namespaced: r.namespaced,
        group: None,
        version: None,
        kind: &r.kind,
        verbs: &r.verbs,
        short_names: &r.short_names,
        categories: &r.categories,
        storage_version_hash: &r.storage_version_hash,
    }];
    out.extend(r.subresources.iter().map(|s| ApiResource {
        name: format!("{}/{}", r.plural, s.name),
        singular_name: "",
        namespaced: r.namespaced,
        group: s.group.as_deref(),
        version: s.version.as_deref(),
        kind: &s.kind,
        verbs: &s.verbs,
        short_names: &[],
        categories: &[],
        storage_version_hash: "",
    }));
    out
}

fn resource_list_doc<'a>(
    cat: &'a Catalogue,
    group: &str,
    version: &str,
) -> Option<ApiResourceList<'a>> {
    let resources = cat.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut entries: Vec<ApiResource<'a>> = resources.into_iter().flat_map(api_resources).collect();
    // Upstream sorts the storage paths, so `pods/status` follows `pods` and precedes `podtemplates`.
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Some(ApiResourceList {
        kind: "APIResourceList",
        api_version: (!group.is_empty()).then_some("v1"),
        group_version: if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        },
        resources: entries,
    })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`; `None` when not served.
pub fn resource_list(cat: &Catalogue, group: &str, version: &str) -> Option<Value> {
    resource_list_doc(cat, group, version).map(|d| to_value(&d))
}

pub fn resource_list_bytes(cat: &Catalogue, group: &str, version: &str) -> Option<Vec<u8>> {
    resource_list_doc(cat, group, version).map(|d| to_bytes(&d))
}

fn resource_discovery(r: &ResourceInfo) -> ResourceDiscovery<'_> {
    ResourceDiscovery {
        resource: &r.plural,
        response_kind: Gvk {
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
        },
        scope: if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        },
        singular_resource: &r.singular,
        verbs: &r.verbs,
        short_names: &r.short_names,
        categories: &r.categories,
        subresources: r
            .subresources
            .iter()
            .map(|s| SubresourceDiscovery {
                subresource: &s.name,
                response_kind: Gvk {
                    group: s.group.as_deref().unwrap_or(&r.group),
                    version: s.version.as_deref().unwrap_or(&r.version),
                    kind: &s.kind,
                },
                verbs: &s.verbs,
            })
            .collect(),
    }
}

fn aggregated_doc<'a>(
    cat: &'a Catalogue,
    core: bool,
    api_version: &'a str,
) -> GroupDiscoveryList<'a> {
    let items = cat
        .groups()
        .into_iter()
        .filter(|g| g.is_empty() == core)
        .map(|g| GroupDiscovery {
            metadata: ObjectMeta { name: g },
            versions: cat
                .versions(g)
                .into_iter()
                .map(|v| VersionDiscovery {
                    version: v,
                    resources: cat
                        .resources_in(g, v)
                        .into_iter()
                        .map(resource_discovery)
                        .collect(),
                    freshness: "Current",
                })
                .collect(),
        })
        .collect();
    GroupDiscoveryList {
        kind: "APIGroupDiscoveryList",
        api_version,
        metadata: EmptyListMeta {},
        items,
    }
}

/// Aggregated discovery (`Accept: ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`):
/// `core` selects the `/api` document, otherwise `/apis`. `api_version` is
/// [`AGGREGATED_V2`] or [`AGGREGATED_V2BETA1`].
pub fn aggregated(cat: &Catalogue, core: bool, api_version: &str) -> Value {
    to_value(&aggregated_doc(cat, core, api_version))
}

pub fn aggregated_bytes(cat: &Catalogue, core: bool, api_version: &str) -> Vec<u8> {
    to_bytes(&aggregated_doc(cat, core, api_version))
}
