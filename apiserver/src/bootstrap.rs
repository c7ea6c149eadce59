//! Objects every cluster has from the start: the system namespaces and the
//! `kubernetes` service, its Endpoints and EndpointSlice pointing at the API
//! server.

use std::net::IpAddr;

use serde_json::json;

use crate::registry::{Registry, Resource};
use crate::server::Catalogue;
use crate::status::ApiError;

/// A built-in resource from the catalogue (the same entry requests use).
fn resource(catalogue: &dyn Catalogue, group: &str, plural: &str) -> Result<Resource, ApiError> {
    catalogue
        .resource(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} is missing from the catalogue")))
}

/// The first address of a CIDR plus one: the `kubernetes` service's IP.
pub fn first_service_ip(cidr: &str) -> Option<IpAddr> {
    let (base, _) = cidr.split_once('/')?;
    match base.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(IpAddr::V4((u32::from(v4) + 1).into())),
        IpAddr::V6(v6) => Some(IpAddr::V6((u128::from(v6) + 1).into())),
    }
}

async fn ensure(
    registry: &Registry,
    r: &Resource,
    ns: Option<&str>,
    obj: serde_json::Value,
) -> Result<(), ApiError> {
    let name = crate::meta::name(&obj).unwrap_or_default().to_owned();
    if registry.get(r, ns, &name).await.is_ok() {
        return Ok(());
    }
    match registry
        .create(
            r,
            ns,
            obj,
            crate::registry::Write {
                dry_run: false,
                manager: Some("kube-apiserver"),
                record_as: None,
            },
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn ensure_system_objects(
    registry: &Registry,
    catalogue: &dyn Catalogue,
    service_cidr: &str,
    advertise: IpAddr,
    port: u16,
) -> Result<(), ApiError> {
    let namespaces = resource(catalogue, "", "namespaces")?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            registry,
            &namespaces,
            None,
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns, "labels": { "kubernetes.io/metadata.name": ns } } }),
        )
        .await?;
    }
    let cluster_ip = first_service_ip(service_cidr)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid --service-cluster-ip-range {service_cidr:?}"
            ))
        })?
        .to_string();
    let services = resource(catalogue, "", "services")?;
    ensure(
        registry,
        &services,
        Some("default"),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": { "component": "apiserver", "provider": "kubernetes" } },
          "spec": { "type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }] } }),
    )
    .await?;
    let cidrs = resource(catalogue, "networking.k8s.io", "servicecidrs")?;
    ensure(
        registry,
        &cidrs,
        None,
        json!({ "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
          "metadata": { "name": "kubernetes" },
          "spec": { "cidrs": [registry.service_ranges.cidr()] } }),
    )
    .await?;
    let endpoints = resource(catalogue, "", "endpoints")?;
    ensure(
        registry,
        &endpoints,
        Some("default"),
        json!({ "apiVersion": "v1", "kind": "Endpoints", "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
          "subsets": [{ "addresses": [{ "ip": advertise.to_string() }],
            "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }] }),
    )
    .await?;
    // Upstream's endpoints reconciler writes the same addresses as an
    // EndpointSlice named like the service (no managed-by label: neither the
    // EndpointSlice controller nor mirroring owns it).
    let slices = resource(catalogue, "discovery.k8s.io", "endpointslices")?;
    let address_type = if advertise.is_ipv6() { "IPv6" } else { "IPv4" };
    ensure(
        registry,
        &slices,
        Some("default"),
        json!({ "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": { "kubernetes.io/service-name": "kubernetes" } },
          "addressType": address_type,
          "endpoints": [{ "addresses": [advertise.to_string()], "conditions": { "ready": true } }],
          "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }),
    )
    .await?;
    // Upstream's scheduling post-start hook: the two system classes.
    if let Ok(classes) = resource(catalogue, "scheduling.k8s.io", "priorityclasses") {
        for (name, value, description) in rkube_validation::SYSTEM_PRIORITY_CLASSES {
            ensure(
                registry,
                &classes,
                None,
                json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                  "metadata": { "name": name }, "value": value, "description": description }),
            )
            .await?;
        }
    }
    Ok(())
}
