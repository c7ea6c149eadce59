//! Services' cluster IPs and node ports, allocated by the API server as
//! upstream does: each cluster IP is an `IPAddress` object named by the
//! address (networking.k8s.io/v1, created atomically, so two services can
//! never get the same one), each node port a reservation key in the store.

use std::net::Ipv4Addr;

use bytes::Bytes;
use rkube_storage::{Storage, StorageError};
use serde_json::{Value, json};

use crate::status::{ApiError, FieldError};

/// The service IP range and node port range (`--service-cluster-ip-range`,
/// `--service-node-port-range`).
#[derive(Clone, Debug)]
pub struct ServiceRanges {
    pub base: u32,
    pub size: u32,
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges::parse("10.96.0.0/12", "30000-32767").unwrap_or(ServiceRanges {
            base: u32::from(Ipv4Addr::new(10, 96, 0, 0)),
            size: 1 << 20,
            node_ports: (30000, 32767),
        })
    }
}

impl ServiceRanges {
    pub fn parse(cidr: &str, ports: &str) -> Result<Self, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {cidr:?}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {cidr:?} (only IPv4 is supported)"))?;
        let bits: u32 = bits.parse().map_err(|_| format!("invalid CIDR {cidr:?}"))?;
        if !(8..=30).contains(&bits) {
            return Err(format!(
                "invalid CIDR {cidr:?}: the prefix must be between /8 and /30"
            ));
        }
        let size = 1u32 << (32 - bits);
        let base = u32::from(ip) & !(size - 1);
        let (lo, hi) = ports
            .split_once('-')
            .ok_or_else(|| format!("invalid port range {ports:?}"))?;
        let lo: u16 = lo
            .trim()
            .parse()
            .map_err(|_| format!("invalid port range {ports:?}"))?;
        let hi: u16 = hi
            .trim()
            .parse()
            .map_err(|_| format!("invalid port range {ports:?}"))?;
        if lo > hi {
            return Err(format!("invalid port range {ports:?}"));
        }
        Ok(ServiceRanges {
            base,
            size,
            node_ports: (lo, hi),
        })
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n > self.base && n < self.base + self.size - 1
    }

    pub fn cidr(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base),
            32 - self.size.trailing_zeros()
        )
    }
}

fn ip_key(ip: &str) -> String {
    format!("/ipaddresses/{ip}")
}

fn port_key(protocol: &str, port: u16) -> String {
    format!(
        "/services/nodeports/{}-{port}",
        protocol.to_ascii_lowercase()
    )
}

fn random(n: u32) -> u32 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n.max(1))) as u32
}

fn internal(e: StorageError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn ipaddress(ip: &str, ns: &str, name: &str) -> Bytes {
    let obj = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": crate::meta::now_rfc3339(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": { "parentRef": { "group": "", "resource": "services", "namespace": ns, "name": name } },
    });
    Bytes::from(obj.to_string())
}

fn invalid(svc: &Value, field: &str, value: Value, detail: String) -> ApiError {
    let name = crate::meta::name(svc).unwrap_or_default();
    ApiError::invalid(
        "",
        "Service",
        name,
        &[FieldError::invalid(field, value, detail)],
    )
}

/// What was reserved for one service, to release if its write fails.
#[derive(Default)]
pub struct Reserved {
    keys: Vec<String>,
}

impl Reserved {
    pub async fn release(self, store: &dyn Storage) {
        for key in self.keys {
            let _ = store.delete(&key, None).await;
        }
    }
}

/// Gives a new service its cluster IP and node ports.
pub async fn allocate(
    store: &dyn Storage,
    ranges: &ServiceRanges,
    svc: &mut Value,
    ns: &str,
) -> Result<Reserved, ApiError> {
    let name = crate::meta::name(svc).unwrap_or_default().to_owned();
    let mut reserved = Reserved::default();
    let result = allocate_into(store, ranges, svc, ns, &name, &mut reserved).await;
    match result {
        Ok(()) => Ok(reserved),
        Err(e) => {
            reserved.release(store).await;
            Err(e)
        }
    }
}

async fn allocate_into(
    store: &dyn Storage,
    ranges: &ServiceRanges,
    svc: &mut Value,
    ns: &str,
    name: &str,
    reserved: &mut Reserved,
) -> Result<(), ApiError> {
    let svc_type = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if svc_type != "ExternalName" {
        let requested = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let ip = match requested.as_str() {
            "None" => None,
            "" => Some(allocate_any(store, ranges, ns, name, reserved).await?),
            ip => {
                let addr: Ipv4Addr = ip.parse().map_err(|_| {
                    invalid(
                        svc,
                        "spec.clusterIPs[0]",
                        json!(ip),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                    )
                })?;
                if !ranges.contains(addr) {
                    return Err(invalid(
                        svc,
                        "spec.clusterIPs",
                        json!([ip]),
                        format!(
                            "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                            ranges.cidr()
                        ),
                    ));
                }
                match store
                    .create(&ip_key(ip), ipaddress(ip, ns, name), None)
                    .await
                {
                    Ok(_) => reserved.keys.push(ip_key(ip)),
                    Err(StorageError::AlreadyExists { .. }) => {
                        return Err(invalid(
                            svc,
                            "spec.clusterIPs",
                            json!([ip]),
                            format!("failed to allocate IP {ip}: provided IP is already allocated"),
                        ));
                    }
                    Err(e) => return Err(internal(e)),
                }
                Some(ip.to_owned())
            }
        };
        let spec = &mut svc["spec"];
        match ip {
            Some(ip) => {
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            None => {
                spec["clusterIP"] = json!("None");
                spec["clusterIPs"] = json!(["None"]);
            }
        }
        spec["ipFamilies"] = json!(["IPv4"]);
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec.get("internalTrafficPolicy").is_none() {
            spec["internalTrafficPolicy"] = json!("Cluster");
        }
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer") {
        allocate_node_ports(store, ranges, svc, reserved).await?;
        if svc.pointer("/spec/externalTrafficPolicy").is_none() {
            svc["spec"]["externalTrafficPolicy"] = json!("Cluster");
        }
    }
    Ok(())
}

async fn allocate_any(
    store: &dyn Storage,
    ranges: &ServiceRanges,
    ns: &str,
    name: &str,
    reserved: &mut Reserved,
) -> Result<String, ApiError> {
    // Usable addresses exclude the network and broadcast ones and the
    // first, which is the `kubernetes` service's.
    let usable = ranges.size.saturating_sub(3);
    let start = random(usable);
    for i in 0..usable.min(4096) {
        let offset = 2 + (start + i) % usable;
        let ip = Ipv4Addr::from(ranges.base + offset).to_string();
        match store
            .create(&ip_key(&ip), ipaddress(&ip, ns, name), None)
            .await
        {
            Ok(_) => {
                reserved.keys.push(ip_key(&ip));
                return Ok(ip);
            }
            Err(StorageError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(ApiError::internal(
        "failed to allocate a serviceIP: range is full",
    ))
}

async fn allocate_node_ports(
    store: &dyn Storage,
    ranges: &ServiceRanges,
    svc: &mut Value,
    reserved: &mut Reserved,
) -> Result<(), ApiError> {
    let owner = format!(
        "{}/{}",
        crate::meta::namespace(svc).unwrap_or_default(),
        crate::meta::name(svc).unwrap_or_default()
    );
    let count = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let (lo, hi) = ranges.node_ports;
    let span = u32::from(hi - lo) + 1;
    for i in 0..count {
        let protocol = svc["spec"]["ports"][i]["protocol"]
            .as_str()
            .unwrap_or("TCP")
            .to_owned();
        let given = svc["spec"]["ports"][i]["nodePort"]
            .as_u64()
            .filter(|p| *p > 0);
        let port = match given {
            Some(p) => {
                let p = u16::try_from(p).unwrap_or(0);
                if p < lo || p > hi {
                    return Err(invalid(
                        svc,
                        &format!("spec.ports[{i}].nodePort"),
                        json!(p),
                        format!(
                            "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                        ),
                    ));
                }
                match store
                    .create(&port_key(&protocol, p), Bytes::from(owner.clone()), None)
                    .await
                {
                    Ok(_) => p,
                    Err(StorageError::AlreadyExists { .. }) => {
                        return Err(invalid(
                            svc,
                            &format!("spec.ports[{i}].nodePort"),
                            json!(p),
                            "provided port is already allocated".into(),
                        ));
                    }
                    Err(e) => return Err(internal(e)),
                }
            }
            None => {
                let start = random(span);
                let mut found = None;
                for k in 0..span {
                    let p = lo + ((start + k) % span) as u16;
                    match store
                        .create(&port_key(&protocol, p), Bytes::from(owner.clone()), None)
                        .await
                    {
                        Ok(_) => {
                            found = Some(p);
                            break;
                        }
                        Err(StorageError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(internal(e)),
                    }
                }
                found.ok_or_else(|| {
                    ApiError::internal("failed to allocate a nodePort: range is full")
                })?
            }
        };
        reserved.keys.push(port_key(&protocol, port));
        svc["spec"]["ports"][i]["nodePort"] = json!(port);
    }
    Ok(())
}

/// Releases what a deleted service held.
pub async fn release(store: &dyn Storage, svc: &Value) {
    let mut keys = Vec::new();
    if let Some(ips) = svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        keys.extend(
            ips.iter()
                .filter_map(Value::as_str)
                .filter(|ip| *ip != "None")
                .map(ip_key),
        );
    }
    if let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) {
        for p in ports {
            if let Some(n) = p
                .get("nodePort")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
            {
                keys.push(port_key(
                    p.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                    n,
                ));
            }
        }
    }
    for key in keys {
        let _ = store.delete(&key, None).await;
    }
}

/// On update: keeps the allocated cluster IPs (immutable) and allocates or
/// releases node ports when the type changes.
pub async fn update(
    store: &dyn Storage,
    ranges: &ServiceRanges,
    old: &Value,
    new: &mut Value,
) -> Result<Reserved, ApiError> {
    let mut reserved = Reserved::default();
    for field in ["clusterIP", "clusterIPs", "ipFamilies"] {
        if new
            .pointer(&format!("/spec/{field}"))
            .is_none_or(|v| v.is_null() || v == "")
            && let Some(v) = old.pointer(&format!("/spec/{field}"))
        {
            new["spec"][field] = v.clone();
        }
    }
    let needs_ports = |v: &Value| {
        matches!(
            v.pointer("/spec/type").and_then(Value::as_str),
            Some("NodePort" | "LoadBalancer")
        )
    };
    if needs_ports(new) {
        // Keep node ports of unchanged ports.
        if let (Some(new_ports), Some(old_ports)) = (
            new.pointer_mut("/spec/ports").and_then(Value::as_array_mut),
            old.pointer("/spec/ports").and_then(Value::as_array),
        ) {
            for p in new_ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) == 0
                    && let Some(o) = old_ports.iter().find(|o| {
                        o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                    })
                    && let Some(n) = o.get("nodePort")
                {
                    p["nodePort"] = n.clone();
                }
            }
        }
        let old_ports: Vec<u64> = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_default();
        // Allocate only what is new.
        let mut probe = new.clone();
        if let Some(ports) = probe
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut() {
                if p.get("nodePort")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| old_ports.contains(&n))
                {
                    p["nodePort"] = json!(-1);
                }
            }
        }
        let count = probe
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        let mut fresh = probe.clone();
        if let Some(ports) = fresh
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            ports.retain(|p| p.get("nodePort").and_then(Value::as_i64) != Some(-1));
        }
        if fresh
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            allocate_node_ports(store, ranges, &mut fresh, &mut reserved).await?;
            let mut allocated = fresh
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter();
            for i in 0..count {
                if probe["spec"]["ports"][i]["nodePort"].as_i64() != Some(-1)
                    && let Some(p) = allocated.next()
                {
                    new["spec"]["ports"][i]["nodePort"] = p["nodePort"].clone();
                }
            }
        }
    } else if needs_ports(old)
        && let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
    {
        for p in ports.iter_mut() {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
    Ok(reserved)
}

/// Node ports the old object held that the new one no longer does.
pub async fn release_dropped(store: &dyn Storage, old: &Value, new: &Value) {
    let held = |v: &Value| -> Vec<(String, u16)> {
        v.pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        let n = u16::try_from(p.get("nodePort")?.as_u64()?).ok()?;
                        Some((
                            p.get("protocol")
                                .and_then(Value::as_str)
                                .unwrap_or("TCP")
                                .to_owned(),
                            n,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let keep = held(new);
    for (proto, port) in held(old) {
        if !keep.contains(&(proto.clone(), port)) {
            let _ = store.delete(&port_key(&proto, port), None).await;
        }
    }
}
