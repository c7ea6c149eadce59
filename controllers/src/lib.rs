//! rkube controllers: the namespace lifecycle controller, the service
//! account controller and the root CA certificate publisher, built on
//! kube-runtime and behaving as their upstream kube-controller-manager
//! counterparts.

use futures::FutureExt;
use futures::future::BoxFuture;

pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod garbagecollector;
pub mod informer;
pub mod leader;
pub mod metrics;
pub mod mirroring;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod podutil;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacert;
pub mod serviceaccount;
pub mod tainteviction;

/// A controller known to [`run`]: its canonical upstream name and aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerName {
    /// Canonical name, e.g. `namespace-controller`.
    pub name: &'static str,
    /// Accepted aliases, e.g. `namespace`.
    pub aliases: &'static [&'static str],
}

impl ControllerName {
    fn matches(&self, s: &str) -> bool {
        self.name == s || self.aliases.contains(&s)
    }
}

/// The namespace lifecycle controller.
pub const NAMESPACE_CONTROLLER: ControllerName = ControllerName {
    name: "namespace-controller",
    aliases: &["namespace"],
};
/// The service account controller (`default` ServiceAccount per namespace).
pub const SERVICEACCOUNT_CONTROLLER: ControllerName = ControllerName {
    name: "serviceaccount-controller",
    aliases: &["serviceaccount"],
};
/// The root CA publisher (`kube-root-ca.crt` ConfigMap per namespace).
pub const ROOT_CA_PUBLISHER_CONTROLLER: ControllerName = ControllerName {
    name: "root-ca-certificate-publisher-controller",
    aliases: &["root-ca-cert-publisher"],
};

/// The ReplicaSet controller.
pub const REPLICASET_CONTROLLER: ControllerName = ControllerName {
    name: "replicaset-controller",
    aliases: &["replicaset"],
};
/// The ReplicationController controller.
pub const REPLICATIONCONTROLLER_CONTROLLER: ControllerName = ControllerName {
    name: "replicationcontroller-controller",
    aliases: &["replicationcontroller"],
};

/// The garbage collector.
pub const GARBAGE_COLLECTOR_CONTROLLER: ControllerName = ControllerName {
    name: "garbage-collector-controller",
    aliases: &["garbagecollector"],
};

/// The Deployment controller.
pub const DEPLOYMENT_CONTROLLER: ControllerName = ControllerName {
    name: "deployment-controller",
    aliases: &["deployment"],
};

/// The Endpoints controller.
pub const ENDPOINTS_CONTROLLER: ControllerName = ControllerName {
    name: "endpoints-controller",
    aliases: &["endpoint"],
};
/// The EndpointSlice controller.
pub const ENDPOINTSLICE_CONTROLLER: ControllerName = ControllerName {
    name: "endpointslice-controller",
    aliases: &["endpointslice"],
};

/// The pod garbage collector.
pub const PODGC_CONTROLLER: ControllerName = ControllerName {
    name: "pod-garbage-collector-controller",
    aliases: &["podgc"],
};

/// The node lifecycle controller (conditions Unknown, node taints).
pub const NODE_LIFECYCLE_CONTROLLER: ControllerName = ControllerName {
    name: "node-lifecycle-controller",
    aliases: &["nodelifecycle"],
};
/// The taint eviction controller (pods on NoExecute-tainted nodes).
pub const TAINT_EVICTION_CONTROLLER: ControllerName = ControllerName {
    name: "taint-eviction-controller",
    aliases: &[],
};
/// The EndpointSlice mirroring controller (selector-less services).
pub const ENDPOINTSLICE_MIRRORING_CONTROLLER: ControllerName = ControllerName {
    name: "endpointslice-mirroring-controller",
    aliases: &["endpointslicemirroring"],
};

/// All controllers in this crate.
/// The resource quota controller.
pub const RESOURCEQUOTA_CONTROLLER: ControllerName = ControllerName {
    name: "resourcequota-controller",
    aliases: &["resourcequota"],
};

pub const ALL_CONTROLLERS: &[ControllerName] = &[
    RESOURCEQUOTA_CONTROLLER,
    NODE_LIFECYCLE_CONTROLLER,
    TAINT_EVICTION_CONTROLLER,
    ENDPOINTSLICE_MIRRORING_CONTROLLER,
    PODGC_CONTROLLER,
    ENDPOINTS_CONTROLLER,
    ENDPOINTSLICE_CONTROLLER,
    DEPLOYMENT_CONTROLLER,
    GARBAGE_COLLECTOR_CONTROLLER,
    NAMESPACE_CONTROLLER,
    REPLICASET_CONTROLLER,
    REPLICATIONCONTROLLER_CONTROLLER,
    SERVICEACCOUNT_CONTROLLER,
    ROOT_CA_PUBLISHER_CONTROLLER,
];

/// Options for [`run`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// PEM bundle of the cluster CA, published as `ca.crt` in every
    /// namespace's `kube-root-ca.crt` ConfigMap.
    pub root_ca_pem: String,
    /// As kube-controller-manager's `--controllers`: `*` enables all,
    /// `foo` enables `foo`, `-foo` disables `foo`. Empty means `["*"]`.
    pub controllers: Vec<String>,
    /// `--concurrent-replicaset-syncs` (upstream default 5).
    pub concurrent_replicaset_syncs: u16,
    /// `--terminated-pod-gc-threshold` (upstream default 12500; 0 disables).
    pub terminated_pod_gc_threshold: usize,
    /// `--concurrent-deployment-syncs` (upstream default 5).
    pub concurrent_deployment_syncs: u16,
    /// `--concurrent-rc-syncs` (upstream default 5).
    pub concurrent_rc_syncs: u16,
    /// `--node-monitor-period`, `--node-monitor-grace-period`,
    /// `--node-startup-grace-period`.
    pub node_lifecycle: nodelifecycle::Settings,
    /// Where the controllers count their work (served on `/metrics`).
    pub metrics: metrics::Registry,
}

/// Checks that every entry of `--controllers` names a known controller.
pub fn validate_controllers(controllers: &[String]) -> anyhow::Result<()> {
    for entry in controllers {
        let name = entry.strip_prefix('-').unwrap_or(entry);
        if name == "*" {
            continue;
        }
        if !ALL_CONTROLLERS.iter().any(|c| c.matches(name)) {
            anyhow::bail!(
                "{entry:?} is not in the list of known controllers: {}",
                ALL_CONTROLLERS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

/// Whether `controller` is enabled by a `--controllers` list (upstream
/// semantics: an explicit `-name` wins, then an explicit `name`, then `*`).
pub fn is_enabled(controller: &ControllerName, controllers: &[String]) -> bool {
    let default = ["*".to_string()];
    let list = if controllers.is_empty() {
        &default[..]
    } else {
        controllers
    };
    if list
        .iter()
        .any(|e| e.strip_prefix('-').is_some_and(|n| controller.matches(n)))
    {
        return false;
    }
    if list.iter().any(|e| controller.matches(e)) {
        return true;
    }
    list.iter().any(|e| e == "*")
}

/// Runs the enabled controllers until the returned future is dropped
/// (cancelled) or every controller stream ends.
pub async fn run(client: kube::Client, opts: Options) -> anyhow::Result<()> {
    validate_controllers(&opts.controllers)?;
    let informers = informer::Informers::new(client.clone());
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    if is_enabled(&NAMESPACE_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = NAMESPACE_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            namespace::run(
                client.clone(),
                informers.clone(),
                opts.metrics.queue("namespace"),
            )
            .boxed(),
        );
    }
    if is_enabled(&SERVICEACCOUNT_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = SERVICEACCOUNT_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            serviceaccount::run(
                client.clone(),
                informers.clone(),
                opts.metrics.queue("serviceaccount"),
            )
            .boxed(),
        );
    }
    if is_enabled(&ROOT_CA_PUBLISHER_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = ROOT_CA_PUBLISHER_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            rootcacert::run(
                client.clone(),
                informers.clone(),
                opts.root_ca_pem.clone(),
                opts.metrics.queue("root_ca_cert_publisher"),
            )
            .boxed(),
        );
    }
    if is_enabled(&GARBAGE_COLLECTOR_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = GARBAGE_COLLECTOR_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            garbagecollector::run(
                client.clone(),
                opts.metrics.queue("garbage_collector_attempt_to_delete"),
            )
            .boxed(),
        );
    }
    if is_enabled(&ENDPOINTS_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = ENDPOINTS_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            endpoints::run(
                client.clone(),
                informers.clone(),
                false,
                opts.metrics.queue("endpoint"),
            )
            .boxed(),
        );
    }
    if is_enabled(&ENDPOINTSLICE_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = ENDPOINTSLICE_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            endpoints::run(
                client.clone(),
                informers.clone(),
                true,
                opts.metrics.queue("endpoint_slice"),
            )
            .boxed(),
        );
    }
    if is_enabled(&PODGC_CONTROLLER, &opts.controllers) {
        tracing::info!(controller = PODGC_CONTROLLER.name, "starting controller");
        tasks.push(
            podgc::run(
                client.clone(),
                informers.clone(),
                opts.terminated_pod_gc_threshold,
            )
            .boxed(),
        );
    }
    if is_enabled(&RESOURCEQUOTA_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = RESOURCEQUOTA_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            resourcequota::run(
                client.clone(),
                informers.clone(),
                opts.metrics.queue("resourcequota_primary"),
            )
            .boxed(),
        );
    }
    if is_enabled(&DEPLOYMENT_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = DEPLOYMENT_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            deployment::run(
                client.clone(),
                informers.clone(),
                opts.concurrent_deployment_syncs.max(1),
                opts.metrics.queue("deployment"),
            )
            .boxed(),
        );
    }
    if is_enabled(&REPLICASET_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = REPLICASET_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            replicaset::run::<k8s_openapi::api::apps::v1::ReplicaSet>(
                client.clone(),
                informers.clone(),
                opts.concurrent_replicaset_syncs.max(1),
                opts.metrics.queue("replicaset"),
            )
            .boxed(),
        );
    }
    if is_enabled(&REPLICATIONCONTROLLER_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = REPLICATIONCONTROLLER_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            replicaset::run::<k8s_openapi::api::core::v1::ReplicationController>(
                client.clone(),
                informers.clone(),
                opts.concurrent_rc_syncs.max(1),
                opts.metrics.queue("replicationmanager"),
            )
            .boxed(),
        );
    }
    if is_enabled(&NODE_LIFECYCLE_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = NODE_LIFECYCLE_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            nodelifecycle::run(
                client.clone(),
                informers.clone(),
                opts.node_lifecycle,
                opts.metrics.queue("node_lifecycle_controller"),
            )
            .boxed(),
        );
    }
    if is_enabled(&TAINT_EVICTION_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = TAINT_EVICTION_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            tainteviction::run(
                client.clone(),
                informers.clone(),
                opts.metrics.queue("noexec_taint_pod"),
            )
            .boxed(),
        );
    }
    if is_enabled(&ENDPOINTSLICE_MIRRORING_CONTROLLER, &opts.controllers) {
        tracing::info!(
            controller = ENDPOINTSLICE_MIRRORING_CONTROLLER.name,
            "starting controller"
        );
        tasks.push(
            mirroring::run(
                client.clone(),
                informers.clone(),
                opts.metrics.queue("endpoint_slice_mirroring"),
            )
            .boxed(),
        );
    }
    if tasks.is_empty() {
        tracing::warn!("no controllers enabled");
        return Ok(());
    }
    // Controllers subscribe to the shared watches as they start, so the
    // watches start once every controller has subscribed.
    let controllers = futures::future::join_all(tasks);
    let watches = async move {
        tokio::task::yield_now().await;
        informers.run().await
    };
    futures::future::join(controllers, watches).await;
    Ok(())
}

/// HTTP status code of an API error, if `err` is one.
pub(crate) fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn enabled_by_default_and_star() {
        for c in ALL_CONTROLLERS {
            assert!(is_enabled(c, &[]));
            assert!(is_enabled(c, &list(&["*"])));
        }
    }

    #[test]
    fn explicit_enable_and_disable() {
        let l = list(&["namespace"]);
        assert!(is_enabled(&NAMESPACE_CONTROLLER, &l));
        assert!(!is_enabled(&SERVICEACCOUNT_CONTROLLER, &l));
        let l = list(&["*", "-serviceaccount-controller"]);
        assert!(is_enabled(&NAMESPACE_CONTROLLER, &l));
        assert!(!is_enabled(&SERVICEACCOUNT_CONTROLLER, &l));
        assert!(is_enabled(&ROOT_CA_PUBLISHER_CONTROLLER, &l));
        let l = list(&["root-ca-cert-publisher", "-root-ca-cert-publisher"]);
        assert!(!is_enabled(&ROOT_CA_PUBLISHER_CONTROLLER, &l));
    }

    #[test]
    fn validation() {
        assert!(
            validate_controllers(&list(&["*", "-namespace", "serviceaccount-controller"])).is_ok()
        );
        assert!(validate_controllers(&list(&["bogus"])).is_err());
        assert!(validate_controllers(&list(&["-bogus"])).is_err());
    }
}
