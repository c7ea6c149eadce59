//! Encode objects with k8s-pb's prost structs, decode them, compare with upstream JSON.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use rkube_protobuf::{DecodeError, decode, decode_message, is_supported};
use serde_json::json;

fn envelope(api_version: &str, kind: &str, obj: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(obj.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// ObjectMeta as Go's marshaller writes it: every non-pointer field, zero or not.
fn meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

#[test]
fn configmap_with_data_and_binary_data() {
    let cm = core::ConfigMap {
        metadata: Some(meta("a", "")),
        data: BTreeMap::from([("x".into(), "y".into()), ("empty".into(), String::new())]),
        binary_data: BTreeMap::from([("bin".into(), vec![0u8, 1, 2, 255])]),
        immutable: None,
    };
    let got = decode(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"},
            "data": {"x": "y", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
        })
    );
}

#[test]
fn secret_data_is_base64_and_pointer_false_is_kept() {
    let secret = core::Secret {
        metadata: Some(meta("s", "default")),
        immutable: Some(false),
        data: BTreeMap::from([("password".into(), b"hunter2".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    let got = decode(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default"},
            "immutable": false,
            "data": {"password": "aHVudGVyMg=="},
            "type": "Opaque",
        })
    );
}

#[test]
fn namespace_with_labels_and_empty_status() {
    let mut m = meta("ns1", "");
    m.labels = BTreeMap::from([("team".into(), "a".into())]);
    m.creation_timestamp = Some(meta::Time {
        seconds: Some(1_700_000_000),
        nanos: Some(0),
    });
    let ns = core::Namespace {
        metadata: Some(m),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus::default()),
    };
    let got = decode(&envelope("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "ns1", "labels": {"team": "a"},
                         "creationTimestamp": "2023-11-14T22:13:20Z"},
            "spec": {}, "status": {},
        })
    );
}

#[test]
fn service_int_or_string_target_port() {
    let port = |name: &str, p: i32, target: IntOrString| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(p),
        target_port: Some(target),
        node_port: Some(0),
        ..Default::default()
    };
    let svc = core::Service {
        metadata: Some(meta("web", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "http",
                    80,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    },
                ),
                port(
                    "named",
                    443,
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("https"),
                    },
                ),
            ],
            selector: BTreeMap::from([("app".into(), "web".into())]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    let got = decode(&envelope("v1", "Service", &svc)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "named", "protocol": "TCP", "port": 443, "targetPort": "https"},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            },
            "status": {},
        })
    );
}

#[test]
fn deployment_with_pod_template() {
    let container = core::Container {
        name: s("nginx"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            container_port: Some(80),
            host_port: Some(0),
            protocol: s("TCP"),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([("memory".into(), Quantity { string: s("128Mi") })]),
            requests: BTreeMap::from([("cpu".into(), Quantity { string: s("250m") })]),
            ..Default::default()
        }),
        termination_message_path: s(""),
        stdin: Some(false),
        tty: Some(false),
        volume_mounts: vec![core::VolumeMount {
            name: s("data"),
            read_only: Some(false),
            mount_path: s("/data"),
            ..Default::default()
        }],
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(80),
                        str_val: s(""),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            timeout_seconds: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut labels = meta("", "");
    labels.labels = BTreeMap::from([("app".into(), "nginx".into())]);
    let dep = apps::Deployment {
        metadata: Some(meta("nginx", "default")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".into(), "nginx".into())]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(labels),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    volumes: vec![core::Volume {
                        name: s("data"),
                        volume_source: Some(core::VolumeSource {
                            empty_dir: Some(core::EmptyDirVolumeSource::default()),
                            ..Default::default()
                        }),
                    }],
                    host_network: Some(false),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let got = decode(&envelope("apps/v1", "Deployment", &dep)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": 80},
                                "initialDelaySeconds": 5,
                            },
                        }],
                        "automountServiceAccountToken": false,
                    },
                },
                "strategy": {},
            },
            "status": {},
        })
    );
}

#[test]
fn delete_options_under_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let want = |av: &str| {
        json!({"apiVersion": av, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    };
    for av in ["meta.k8s.io/v1", "v1", "apps/v1"] {
        assert_eq!(
            decode(&envelope(av, "DeleteOptions", &opts)).unwrap(),
            want(av)
        );
    }
}

#[test]
fn event_with_micro_time() {
    let ev = events::Event {
        metadata: Some(meta("ev", "default")),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_789),
        }),
        reporting_controller: s("kubelet"),
        reporting_instance: s("node-1"),
        action: s("Pulling"),
        reason: s("Pulling"),
        regarding: Some(core::ObjectReference {
            kind: s("Pod"),
            name: s("p"),
            namespace: s("default"),
            ..Default::default()
        }),
        note: s("pulling image"),
        r#type: s("Normal"),
        deprecated_first_timestamp: Some(meta::Time::default()),
        deprecated_count: Some(0),
        ..Default::default()
    };
    let got = decode(&envelope("events.k8s.io/v1", "Event", &ev)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "ev", "namespace": "default"},
            "eventTime": "2023-11-14T22:13:20.123456Z",
            "reportingController": "kubelet",
            "reportingInstance": "node-1",
            "action": "Pulling",
            "reason": "Pulling",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "note": "pulling image",
            "type": "Normal",
            "deprecatedFirstTimestamp": null,
            "deprecatedCount": 0,
        })
    );
}

#[test]
fn raw_extension_fields_v1_and_duration() {
    // ControllerRevision.data is a RawExtension holding JSON.
    let rev = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("r"),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Apply"),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"x":1}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let got = decode(&envelope("apps/v1", "ControllerRevision", &rev)).unwrap();
    assert_eq!(got["data"], json!({"spec": {"x": 1}}));
    assert_eq!(got["revision"], json!(3));
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {}})
    );
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsType"],
        json!("FieldsV1")
    );

    // A List whose items are RawExtensions holding protobuf envelopes.
    let cm = core::ConfigMap {
        metadata: Some(meta("inner", "")),
        ..Default::default()
    };
    let list = core::List {
        metadata: Some(meta::ListMeta::default()),
        items: vec![k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(envelope("v1", "ConfigMap", &cm)),
        }],
    };
    let got = decode(&envelope("v1", "List", &list)).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "List", "metadata": {},
               "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}]})
    );
}

#[test]
fn crd_schema_unions() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let props = ext::JsonSchemaProps {
        r#type: s("object"),
        x_kubernetes_preserve_unknown_fields: Some(true),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: None,
        })),
        default: Some(ext::Json {
            raw: Some(br#"{"a":1}"#.to_vec()),
        }),
        ..Default::default()
    };
    let raw = props.encode_to_vec();
    let got = rkube_protobuf::decode_type(
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        &raw,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
               "additionalProperties": true, "default": {"a": 1}})
    );
}

#[test]
fn decode_message_without_envelope() {
    let ns = core::Namespace {
        metadata: Some(meta("x", "")),
        ..Default::default()
    };
    let got = decode_message("v1", "Namespace", &ns.encode_to_vec()).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    );
}

#[test]
fn errors_never_panic() {
    assert_eq!(decode(b"{\"kind\":1}"), Err(DecodeError::BadMagic));
    let ok = envelope(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: Some(meta("a", "b")),
            data: BTreeMap::from([("k".into(), "v".into())]),
            ..Default::default()
        },
    );
    for n in 4..ok.len() {
        let _ = decode(&ok[..n]); // must not panic
    }
    assert!(decode(&ok[..ok.len() - 1]).is_err());
    assert!(matches!(
        decode(&envelope("v1", "NoSuchKind", &core::ConfigMap::default())),
        Err(DecodeError::UnknownKind { .. })
    ));
    // Arbitrary bytes after the magic: errors or values, never panics.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut body = b"k8s\0".to_vec();
        body.extend_from_slice(&ok[4..]);
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = 4 + (seed as usize) % (body.len() - 4);
            body[i] = (seed >> 32) as u8;
        }
        let _ = decode(&body);
    }
    // Deep nesting is rejected, not a stack overflow.
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let mut props = ext::JsonSchemaProps::default();
    for _ in 0..200 {
        props = ext::JsonSchemaProps {
            items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                schema: Some(Box::new(props)),
                j_son_schemas: vec![],
            })),
            ..Default::default()
        };
    }
    let name = "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps";
    let err = rkube_protobuf::decode_type(name, &props.encode_to_vec()).unwrap_err();
    assert!(err.to_string().contains("too deep"), "{err}");
    assert!(is_supported("v1", "Pod"));
    assert!(is_supported("apps/v1", "DeploymentList"));
    assert!(!is_supported("v1", "Deployment"));
}

#[test]
fn go_duration_strings() {
    use k8s_pb::api::autoscaling::v2 as hpa;
    let _ = hpa::HpaScalingPolicy::default();
    let ma = meta::Duration {
        duration: Some(3_723_500_000_000),
    };
    let got = rkube_protobuf::decode_type(
        "apimachinery::pkg::apis::meta::v1::Duration",
        &ma.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(got, json!("1h2m3.5s"));
    for (ns, want) in [
        (0i64, "0s"),
        (1_500_000, "1.5ms"),
        (2_000, "2µs"),
        (7, "7ns"),
        (-90_000_000_000, "-1m30s"),
        (3_600_000_000_000, "1h0m0s"),
    ] {
        let d = meta::Duration { duration: Some(ns) };
        let got = rkube_protobuf::decode_type(
            "apimachinery::pkg::apis::meta::v1::Duration",
            &d.encode_to_vec(),
        )
        .unwrap();
        assert_eq!(got, json!(want), "{ns}ns");
    }
}
