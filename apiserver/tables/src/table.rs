//! Assembling `meta.k8s.io/v1` `Table` responses from rows, the way the
//! API server answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::columns::{Kind, columns, kind_of};
use crate::duration::parse_time;
use crate::util::opt_str;
use crate::{cluster, core, pods, workloads};

/// What each row carries in `object` (the `includeObject` table option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `object: null`.
    None,
    /// A `PartialObjectMetadata` holding the object's metadata (kubectl's default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; absent/empty is `Metadata`.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(format!(
                "unsupported includeObject value {other:?}: must be None, Metadata or Object"
            )),
        }
    }
}

/// The default table's cells: name and RFC 3339 creation time (UTC, seconds).
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = opt_str(obj, &["metadata", "creationTimestamp"])
        .and_then(parse_time)
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    vec![json!(crate::util::name(obj)), json!(created)]
}

fn kind_cells(kind: Kind, group: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    use Kind::*;
    match kind {
        Pod => pods::pod_cells(obj, now),
        PodTemplate => workloads::pod_template(obj, now),
        ReplicationController => workloads::replication_controller(obj, now),
        Deployment => workloads::deployment(obj, now),
        ReplicaSet => workloads::replica_set(obj, now),
        StatefulSet => workloads::stateful_set(obj, now),
        DaemonSet => workloads::daemon_set(obj, now),
        ControllerRevision => workloads::controller_revision(obj, now),
        Job => workloads::job(obj, now),
        CronJob => workloads::cron_job(obj, now),
        HorizontalPodAutoscaler => workloads::horizontal_pod_autoscaler(obj, now),
        PodDisruptionBudget => workloads::pod_disruption_budget(obj, now),
        Service => core::service(obj, now),
        Endpoints => core::endpoints(obj, now),
        EndpointSlice => core::endpoint_slice(obj, now),
        Node => core::node(obj, now),
        Namespace => core::namespace(obj, now),
        ConfigMap => core::config_map(obj, now),
        Secret => core::secret(obj, now),
        ServiceAccount => core::service_account(obj, now),
        Event => core::event(obj, group == "events.k8s.io", now),
        PersistentVolume => core::persistent_volume(obj, now),
        PersistentVolumeClaim => core::persistent_volume_claim(obj, now),
        ResourceQuota => core::resource_quota(obj, now),
        ComponentStatus => core::component_status(obj, now),
        Ingress => cluster::ingress(obj, now),
        IngressClass => cluster::ingress_class(obj, now),
        NetworkPolicy => cluster::network_policy(obj, now),
        ServiceCIDR => cluster::service_cidr(obj, now),
        IPAddress => cluster::ip_address(obj, now),
        RoleBinding | ClusterRoleBinding => cluster::role_binding(obj, now),
        Lease => cluster::lease(obj, now),
        PriorityClass => cluster::priority_class(obj, now),
        StorageClass => cluster::storage_class(obj, now),
        CSIDriver => cluster::csi_driver(obj, now),
        CSINode => cluster::csi_node(obj, now),
        VolumeAttachment => cluster::volume_attachment(obj, now),
        CertificateSigningRequest => cluster::certificate_signing_request(obj, now),
        RuntimeClass => cluster::runtime_class(obj, now),
        WebhookConfig => cluster::webhook_configuration(obj, now),
        FlowSchema => cluster::flow_schema(obj, now),
        PriorityLevel => cluster::priority_level(obj, now),
    }
}

/// Cells of one row, matching [`columns`] (always the wide set).
pub fn cells(group: &str, resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match kind_of(group, resource) {
        Some(kind) => kind_cells(kind, group, obj, now),
        None => default_cells(obj),
    }
}

/// The row's `object` for the requested `includeObject`.
fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// One `TableRow`: cells, optional row conditions, and the object.
pub fn row(
    group: &str,
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let mut r = Map::new();
    r.insert(
        "cells".into(),
        Value::Array(cells(group, resource, obj, now)),
    );
    if kind_of(group, resource) == Some(Kind::Pod)
        && let Some(conds) = pods::pod_conditions(obj)
    {
        r.insert("conditions".into(), conds);
    }
    r.insert("object".into(), row_object(obj, include));
    Value::Object(r)
}

fn column_definitions(group: &str, resource: &str) -> Value {
    Value::Array(
        columns(group, resource)
            .iter()
            .map(|c| c.to_json())
            .collect(),
    )
}

/// Copies the `ListMeta` fields a Table carries (resourceVersion, continue,
/// remainingItemCount), dropping empty ones as Go's omitempty would.
fn table_meta(list_meta: &Value) -> Value {
    let mut m = Map::new();
    for key in ["resourceVersion", "continue"] {
        if let Some(s) = list_meta
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            m.insert(key.into(), json!(s));
        }
    }
    if let Some(n) = list_meta
        .get("remainingItemCount")
        .filter(|v| v.is_number())
    {
        m.insert("remainingItemCount".into(), n.clone());
    }
    Value::Object(m)
}

/// A full `Table` for a list response. `list_meta` is the list's `metadata`.
pub fn table(
    group: &str,
    resource: &str,
    objs: &[Value],
    include: IncludeObject,
    list_meta: Value,
    now: DateTime<Utc>,
) -> Value {
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| row(group, resource, o, include, now))
        .collect();
    // The default convertor leaves an empty row list nil; printers make [].
    let rows = if rows.is_empty() && kind_of(group, resource).is_none() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_meta(&list_meta),
        "columnDefinitions": column_definitions(group, resource),
        "rows": rows,
    })
}

/// A one-row `Table` for a single object (GET of one object, or a watch
/// event). Upstream sends column definitions only with the first watch
/// event; later ones carry `columnDefinitions: null` (`with_columns = false`).
pub fn row_table(
    group: &str,
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    with_columns: bool,
    now: DateTime<Utc>,
) -> Value {
    let rv = obj
        .get("metadata")
        .map(|m| json!({"resourceVersion": m.get("resourceVersion").cloned().unwrap_or(Value::Null)}))
        .unwrap_or_else(|| json!({}));
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_meta(&rv),
        "columnDefinitions": if with_columns { column_definitions(group, resource) } else { Value::Null },
        "rows": [row(group, resource, obj, include, now)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn obj(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default", "resourceVersion": "7",
                            "creationTimestamp": "2024-01-01T00:00:00Z"},
               "data": {"a": "b"}})
    }

    #[test]
    fn list_table_with_metadata_rows() {
        let t = table(
            "",
            "configmaps",
            &[obj("a"), obj("b")],
            IncludeObject::Metadata,
            json!({"resourceVersion": "42", "continue": "", "remainingItemCount": 3}),
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "remainingItemCount": 3})
        );
        let cols = t["columnDefinitions"].as_array().unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[1]["name"], "Data");
        assert_eq!(t["rows"][0]["cells"], json!(["a", 1, "60m"]));
        assert_eq!(t["rows"][1]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][1]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["rows"][1]["object"]["metadata"]["name"], "b");
        assert!(t["rows"][0].get("conditions").is_none());
    }

    #[test]
    fn include_object_variants() {
        let o = obj("a");
        let none = row("", "configmaps", &o, IncludeObject::None, now());
        assert_eq!(none["object"], Value::Null);
        let full = row("", "configmaps", &o, IncludeObject::Object, now());
        assert_eq!(full["object"], o);
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert!(IncludeObject::parse(Some("bogus")).is_err());
    }

    #[test]
    fn default_table_for_unknown_kinds() {
        let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        for (g, r) in [
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("", "limitranges"),
            ("example.com", "widgets"),
        ] {
            let cols = columns(g, r);
            assert_eq!(cols.len(), 2);
            assert_eq!((cols[0].name, cols[0].format), ("Name", "name"));
            assert_eq!((cols[1].name, cols[1].type_), ("Created At", "date"));
            assert_eq!(
                cells(g, r, &crd, now()),
                vec![json!("widgets.example.com"), json!("2024-01-01T00:00:00Z")]
            );
        }
        let empty = table(
            "example.com",
            "widgets",
            &[],
            IncludeObject::Metadata,
            json!({}),
            now(),
        );
        assert_eq!(empty["rows"], Value::Null);
        let empty = table("", "pods", &[], IncludeObject::Metadata, json!({}), now());
        assert_eq!(empty["rows"], json!([]));
        let no_ts = json!({"metadata": {"name": "n"}});
        assert_eq!(
            cells("x", "y", &no_ts, now())[1],
            json!("0001-01-01T00:00:00Z")
        );
    }

    #[test]
    fn watch_row_tables() {
        let o = obj("a");
        let first = row_table("", "configmaps", &o, IncludeObject::Metadata, true, now());
        assert_eq!(first["metadata"], json!({"resourceVersion": "7"}));
        assert_eq!(first["columnDefinitions"].as_array().map(Vec::len), Some(3));
        assert_eq!(first["rows"].as_array().map(Vec::len), Some(1));
        let later = row_table("", "configmaps", &o, IncludeObject::Metadata, false, now());
        assert_eq!(later["columnDefinitions"], Value::Null);
    }

    #[test]
    fn pod_rows_carry_completion_conditions() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Succeeded"}});
        let r = row("", "pods", &p, IncludeObject::None, now());
        assert_eq!(r["conditions"][0]["type"], "Completed");
        assert_eq!(r["conditions"][0]["reason"], "Succeeded");
    }

    /// Every printer's cells line up with its columns (IPAddress aside,
    /// which upstream itself gives an extra AGE cell).
    #[test]
    fn cell_counts_match_columns() {
        let o = json!({"metadata": {"name": "x"}});
        for (g, r) in [
            ("", "pods"),
            ("", "podtemplates"),
            ("", "replicationcontrollers"),
            ("", "services"),
            ("", "endpoints"),
            ("", "nodes"),
            ("", "namespaces"),
            ("", "configmaps"),
            ("", "secrets"),
            ("", "serviceaccounts"),
            ("", "events"),
            ("events.k8s.io", "events"),
            ("", "persistentvolumes"),
            ("", "persistentvolumeclaims"),
            ("", "resourcequotas"),
            ("", "componentstatuses"),
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("apps", "controllerrevisions"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("policy", "poddisruptionbudgets"),
            ("discovery.k8s.io", "endpointslices"),
            ("networking.k8s.io", "ingresses"),
            ("networking.k8s.io", "ingressclasses"),
            ("networking.k8s.io", "networkpolicies"),
            ("networking.k8s.io", "servicecidrs"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
            ("coordination.k8s.io", "leases"),
            ("scheduling.k8s.io", "priorityclasses"),
            ("storage.k8s.io", "storageclasses"),
            ("storage.k8s.io", "csidrivers"),
            ("storage.k8s.io", "csinodes"),
            ("storage.k8s.io", "volumeattachments"),
            ("certificates.k8s.io", "certificatesigningrequests"),
            ("node.k8s.io", "runtimeclasses"),
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
            (
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
            ("flowcontrol.apiserver.k8s.io", "flowschemas"),
            (
                "flowcontrol.apiserver.k8s.io",
                "prioritylevelconfigurations",
            ),
        ] {
            assert_eq!(columns(g, r).len(), cells(g, r, &o, now()).len(), "{g}/{r}");
        }
        assert_eq!(
            cells("networking.k8s.io", "ipaddresses", &o, now()).len(),
            3
        );
    }

    #[test]
    fn wide_columns_have_priority_one() {
        let pod = columns("", "pods");
        let wide: Vec<&str> = pod
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect();
        assert_eq!(wide, ["IP", "Node", "Nominated Node", "Readiness Gates"]);
        let ev: Vec<&str> = columns("", "events")
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect();
        assert_eq!(ev, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    }
}
