//! Table tests with upstream's exact messages.

use super::*;
use serde_json::{Value, json};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn create(group: &str, resource: &str, mut obj: Value) -> Vec<String> {
    default(group, resource, &mut obj);
    validate_create(group, resource, &obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn update(group: &str, resource: &str, mut new: Value, mut old: Value) -> Vec<String> {
    default(group, resource, &mut new);
    default(group, resource, &mut old);
    validate_update(group, resource, &new, &old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn pod(containers: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": containers}
    })
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    })
}

#[test]
fn valid_objects_pass() {
    assert_eq!(
        create(
            "",
            "pods",
            pod(json!([{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]))
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        create(
            "apps",
            "deployments",
            deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}))
        ),
        Vec::<String>::new()
    );
    let svc = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}});
    assert_eq!(create("", "services", svc), Vec::<String>::new());
    let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"a.b": "x"}});
    assert_eq!(create("", "configmaps", cm), Vec::<String>::new());
    assert_eq!(
        create("", "namespaces", json!({"metadata": {"name": "team-a"}})),
        Vec::<String>::new()
    );
    let job = json!({"metadata": {"name": "j", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "j"}},
        "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_eq!(create("batch", "jobs", job), Vec::<String>::new());
    let cj = json!({"metadata": {"name": "cj", "namespace": "default"}, "spec": {"schedule": "*/1 * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert_eq!(create("batch", "cronjobs", cj), Vec::<String>::new());
    let sts = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "w"}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}}}});
    assert_eq!(create("apps", "statefulsets", sts), Vec::<String>::new());
    let ds = json!({"metadata": {"name": "ds", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    assert_eq!(create("apps", "daemonsets", ds), Vec::<String>::new());
}

#[test]
fn metadata_errors() {
    let mut p = pod(json!([{"name": "c", "image": "nginx"}]));
    p["metadata"]["name"] = json!("Foo");
    assert_eq!(
        create("", "pods", p),
        vec![format!(
            "metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"
        )]
    );

    let mut p = pod(json!([{"name": "c", "image": "nginx"}]));
    p["metadata"] = json!({"namespace": "default"});
    assert_eq!(
        create("", "pods", p),
        vec!["metadata.name: Required value: name or generateName is required"]
    );

    let svc = json!({"metadata": {"name": "1abc", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
    assert_eq!(
        create("", "services", svc),
        vec![
            "metadata.name: Invalid value: \"1abc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ]
    );

    assert_eq!(
        create("", "namespaces", json!({"metadata": {"name": "a.b"}})),
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
    assert_eq!(
        create(
            "",
            "namespaces",
            json!({"metadata": {"name": "a", "namespace": "x"}})
        ),
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
    assert_eq!(
        create(
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "system:Foo"}})
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        create(
            "rbac.authorization.k8s.io",
            "roles",
            json!({"metadata": {"name": "a/b", "namespace": "d"}})
        ),
        vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
    );

    let mut p = pod(json!([{"name": "c", "image": "nginx"}]));
    p["metadata"]["labels"] = json!({"a b": "c"});
    p["metadata"]["annotations"] = json!({"big": "x".repeat(262144)});
    p["metadata"]["finalizers"] = json!(["foo"]);
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "X", "name": "n"}]);
    assert_eq!(create("", "pods", p), vec![
        "metadata.labels: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string(),
        "metadata.annotations: Too long: may not be more than 262144 bytes".to_string(),
        "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty".to_string(),
        "metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified".to_string(),
    ]);

    let mut p = pod(json!([{"name": "c", "image": "nginx"}]));
    p["metadata"]["generateName"] = json!("web-");
    p["metadata"]["name"] = json!("web-abcde");
    assert_eq!(create("", "pods", p), Vec::<String>::new());
}

#[test]
fn metadata_update_errors() {
    let old = json!({"metadata": {"name": "c", "namespace": "default", "uid": "1", "resourceVersion": "5", "creationTimestamp": "2024-01-02T03:04:05Z"}, "data": {}});
    let mut new = old.clone();
    new["metadata"]["name"] = json!("d");
    new["metadata"]["uid"] = json!("2");
    new["metadata"]["creationTimestamp"] = json!("2024-01-02T03:04:06Z");
    assert_eq!(
        update("", "configmaps", new, old.clone()),
        vec![
            "metadata.name: Invalid value: \"d\": field is immutable",
            "metadata.uid: Invalid value: \"2\": field is immutable",
            "metadata.creationTimestamp: Invalid value: 2024-01-02 03:04:06 +0000 UTC: field is immutable",
        ]
    );
    let mut new = old.clone();
    new["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(
        update("", "configmaps", new, old),
        vec!["metadata.resourceVersion: Invalid value: \"\": must be specified for an update"]
    );
}

#[test]
fn pod_errors() {
    assert_eq!(
        create("", "pods", pod(json!([{"name": "c"}]))),
        vec!["spec.containers[0].image: Required value"]
    );
    assert_eq!(
        create("", "pods", pod(json!([]))),
        vec!["spec.containers: Required value"]
    );
    assert_eq!(
        create(
            "",
            "pods",
            pod(json!([{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]))
        ),
        vec!["spec.containers[1].name: Duplicate value: \"c\""]
    );
    assert_eq!(
        create("", "pods", pod(json!([{"name": "C", "image": "a"}]))),
        vec![
            "spec.containers[0].name: Invalid value: \"C\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
    assert_eq!(
        create(
            "",
            "pods",
            pod(
                json!([{"name": "c", "image": "a", "ports": [{"containerPort": 70000, "protocol": "tcp"}, {"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}]}])
            )
        ),
        vec![
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[2].hostPort: Duplicate value: \"TCP//80\"",
        ]
    );
    assert_eq!(
        create(
            "",
            "pods",
            pod(
                json!([{"name": "c", "image": "a", "env": [{"name": "A=B"}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]}])
            )
        ),
        vec![
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].volumeMounts[0].name: Not found: \"v\"",
        ]
    );
    assert_eq!(
        create(
            "",
            "pods",
            pod(
                json!([{"name": "c", "image": "a", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}])
            )
        ),
        vec![
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
        ]
    );
    let mut p = pod(json!([{"name": "c", "image": "a"}]));
    p["spec"]["restartPolicy"] = json!("Sometimes");
    p["spec"]["dnsPolicy"] = json!("Nope");
    p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]);
    assert_eq!(
        create("", "pods", p),
        vec![
            "spec.volumes[1].name: Duplicate value: \"v\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Nope\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]
    );
}

#[test]
fn pod_update_errors() {
    let mut old = pod(json!([{"name": "c", "image": "nginx:1"}]));
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert_eq!(update("", "pods", new, old.clone()), Vec::<String>::new());
    let mut new = old.clone();
    new["spec"]["restartPolicy"] = json!("Never");
    let errs = update("", "pods", new, old.clone());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", errs[0]);
    let mut new = old.clone();
    new["spec"]["containers"] = json!([{"name": "c", "image": "a"}, {"name": "d", "image": "b"}]);
    assert_eq!(
        update("", "pods", new, old),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
}

#[test]
fn service_errors() {
    let svc =
        |spec: Value| json!({"metadata": {"name": "s", "namespace": "default"}, "spec": spec});
    assert_eq!(
        create("", "services", svc(json!({"ports": [{"port": 0}]}))),
        vec![
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ]
    );
    assert_eq!(
        create(
            "",
            "services",
            svc(json!({"ports": [{"port": 80}, {"port": 81}]}))
        ),
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value",
        ]
    );
    assert_eq!(
        create(
            "",
            "services",
            svc(
                json!({"type": "Foo", "ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}]})
            )
        ),
        vec![
            "spec.ports[1].name: Duplicate value: \"a\"",
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
        ]
    );
    assert_eq!(
        create(
            "",
            "services",
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}))
        ),
        vec![
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ]
    );
    assert_eq!(
        create(
            "",
            "services",
            svc(json!({"selector": {"a": "b c"}, "ports": [{"port": 80}]}))
        )
        .len(),
        1
    );
    let old = json!({"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"}, "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}});
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.0.0.2");
    new["spec"]["clusterIPs"] = json!(["10.0.0.2"]);
    assert_eq!(
        update("", "services", new, old),
        vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set"]
    );
}

#[test]
fn workload_errors() {
    assert_eq!(
        create(
            "apps",
            "deployments",
            deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "b"}))
        ),
        vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        ]
    );
    assert_eq!(
        create(
            "apps",
            "deployments",
            deployment(Value::Null, json!({"app": "b"}))
        ),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`",
        ]
    );
    let mut d = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}));
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        create("apps", "deployments", d),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ]
    );
    let mut old = deployment(
        json!({"matchLabels": {"app": "a"}}),
        json!({"app": "a", "v": "1"}),
    );
    old["metadata"]["resourceVersion"] = json!("1");
    let new = {
        let mut n = old.clone();
        n["spec"]["selector"] = json!({"matchLabels": {"app": "a", "v": "1"}});
        n
    };
    assert_eq!(
        update("apps", "deployments", new, old),
        vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"a\", \"v\":\"1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ]
    );
    let job = json!({"metadata": {"name": "j", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "j"}}, "completions": -1,
        "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_eq!(
        create("batch", "jobs", job),
        vec![
            "spec.completions: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        ]
    );
    let cj = json!({"metadata": {"name": "cj", "namespace": "default"}, "spec": {"schedule": "bad", "concurrencyPolicy": "Sometimes",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert_eq!(
        create("batch", "cronjobs", cj),
        vec![
            "spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]",
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ]
    );
}

#[test]
fn config_errors() {
    let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"a b": "x", "k": "v"}, "binaryData": {"k": "eA=="}});
    assert_eq!(
        create("", "configmaps", cm),
        vec![
            "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            "data[k]: Invalid value: \"k\": duplicate of key present in binaryData",
        ]
    );
    let big = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "x".repeat(1048577)}});
    assert_eq!(
        create("", "configmaps", big),
        vec!["[]: Too long: may not be more than 1048576 bytes"]
    );
    let old = json!({"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"}, "type": "Opaque", "immutable": true, "data": {"a": "YQ=="}});
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/tls");
    new["data"] = json!({"a": "Yg=="});
    assert_eq!(
        update("", "secrets", new, old),
        vec![
            "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
            "data: Forbidden: field is immutable when `immutable` is set",
            "data[tls.crt]: Required value",
            "data[tls.key]: Required value",
        ]
    );
    assert_eq!(
        create(
            "",
            "namespaces",
            json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["foo"]}})
        ),
        vec![
            "spec.finalizers: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
        ]
    );
}

#[test]
fn defaults_pod() {
    let mut p = pod(
        json!([{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]),
    );
    p["spec"]["volumes"] = json!([{"name": "v", "configMap": {"name": "c"}}, {"name": "e"}]);
    default("", "pods", &mut p);
    let spec = &p["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
}

#[test]
fn defaults_workloads() {
    let mut d = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}));
    default("apps", "deployments", &mut d);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(
        d["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none()
    );

    let mut s = json!({"spec": {}});
    default("apps", "statefulsets", &mut s);
    assert_eq!(
        s["spec"],
        json!({"podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}, "replicas": 1, "revisionHistoryLimit": 10})
    );

    let mut ds = json!({"spec": {}});
    default("apps", "daemonsets", &mut ds);
    assert_eq!(
        ds["spec"],
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}, "revisionHistoryLimit": 10})
    );

    let mut j = json!({"metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}});
    default("batch", "jobs", &mut j);
    assert_eq!(j["spec"]["completions"], 1);
    assert_eq!(j["spec"]["parallelism"], 1);
    assert_eq!(j["spec"]["backoffLimit"], 6);
    assert_eq!(j["spec"]["completionMode"], "NonIndexed");
    assert_eq!(j["spec"]["suspend"], false);
    assert_eq!(j["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(j["metadata"]["labels"], json!({"a": "b"}));

    let mut cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}});
    default("batch", "cronjobs", &mut cj);
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );

    let mut rs = json!({"spec": {}});
    default("apps", "replicasets", &mut rs);
    assert_eq!(rs["spec"]["replicas"], 1);
}

#[test]
fn defaults_service_and_secret() {
    let mut s = json!({"spec": {"ports": [{"port": 80}]}});
    default("", "services", &mut s);
    assert_eq!(
        s["spec"],
        json!({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]})
    );
    let mut s =
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}});
    default("", "services", &mut s);
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], "http");
    let mut sec = json!({"metadata": {"name": "s"}});
    default("", "secrets", &mut sec);
    assert_eq!(sec["type"], "Opaque");
    let mut cm = json!({"metadata": {"name": "c"}});
    default("", "configmaps", &mut cm);
    assert_eq!(cm, json!({"metadata": {"name": "c"}}));
}

#[test]
fn reasons() {
    let errs = validate_create("", "pods", &pod(json!([{"name": "c"}])));
    assert!(errs.iter().any(|e| e.kind.reason() == "FieldValueRequired"));
}

#[test]
fn statefulset_and_job_details() {
    // StatefulSets check only template metadata (upstream TODO), so a
    // missing image is not reported here.
    let sts = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "w"}},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}}});
    assert_eq!(
        create("apps", "statefulsets", sts),
        vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ]
    );
    let old = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"}, "spec": {
        "serviceName": "a", "selector": {"matchLabels": {"app": "w"}},
        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let mut new = old.clone();
    new["spec"]["serviceName"] = json!("b");
    assert_eq!(
        update("apps", "statefulsets", new, old.clone()),
        vec![
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ]
    );
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    assert_eq!(
        update("apps", "statefulsets", new, old),
        Vec::<String>::new()
    );

    let old = json!({"metadata": {"name": "j", "namespace": "default", "resourceVersion": "1"}, "spec": {
        "selector": {"matchLabels": {"app": "j"}},
        "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
    let errs = update("batch", "jobs", new, old);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("spec.template: Invalid value: "),
        "{}",
        errs[0]
    );
    assert!(errs[0].ends_with(": field is immutable"), "{}", errs[0]);

    let cj = json!({"metadata": {"name": "x".repeat(53), "namespace": "default"}, "spec": {"schedule": "TZ=UTC 0 * * * *", "timeZone": "Local",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert_eq!(create("batch", "cronjobs", cj), vec![
        "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_string(),
        "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones".to_string(),
        format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "x".repeat(53)),
    ]);
}

#[test]
fn env_and_probe_details() {
    assert_eq!(
        create(
            "",
            "pods",
            pod(json!([{"name": "c", "image": "a",
            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}, {"name": "B", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "envFrom": [{}],
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}}}]))
        ),
        vec![
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.bogus\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
            "spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            "spec.containers[0].envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ]
    );
}

#[test]
fn pod_sysctls_and_sub_path_expr() {
    // Upstream's "should reject invalid sysctls": only the malformed
    // names are errors; unsafe ones are for the kubelet to refuse.
    let mut p = pod(json!([{"name": "c", "image": "a"}]));
    p["spec"]["securityContext"] = json!({"sysctls": [
        {"name": "foo-", "value": "bar"},
        {"name": "kernel.shmmax", "value": "100000000"},
        {"name": "safe-and-unsafe", "value": "100000000"},
        {"name": "bar..", "value": "42"},
        {"name": "kernel.shmmax", "value": "1"}
    ]});
    let regex = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";
    assert_eq!(
        create("", "pods", p),
        vec![
            format!(
                "spec.securityContext.sysctls[0].name: Invalid value: \"foo-\": must have at most 253 characters and match regex {regex}"
            ),
            format!(
                "spec.securityContext.sysctls[3].name: Invalid value: \"bar..\": must have at most 253 characters and match regex {regex}"
            ),
            "spec.securityContext.sysctls[4].name: Duplicate value: \"kernel.shmmax\"".to_owned(),
        ]
    );
    let mut p = pod(json!([{"name": "c", "image": "a", "volumeMounts": [
        {"name": "v", "mountPath": "/a", "subPathExpr": "$(POD_NAME)"},
        {"name": "v", "mountPath": "/b", "subPath": "x", "subPathExpr": "../$(A)"}
    ]}]));
    p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
    p["spec"]["hostNetwork"] = json!(true);
    p["spec"]["securityContext"] =
        json!({"sysctls": [{"name": "net.core.somaxconn", "value": "1"}]});
    assert_eq!(
        create("", "pods", p),
        vec![
            "spec.containers[0].volumeMounts[1].subPathExpr: Invalid value: \"../$(A)\": subPathExpr and subPath are mutually exclusive",
            "spec.containers[0].volumeMounts[1].subPathExpr: Invalid value: \"../$(A)\": must not contain '..'",
            "spec.securityContext.sysctls[0].name: Forbidden: sysctl \"net.core.somaxconn\" not allowed with host net enabled",
        ]
    );
}

#[test]
fn ephemeral_containers_update() {
    let old = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c", "image": "a"}]}
    });
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": "busybox", "targetContainerName": "c"}]);
    let errs = |mut new: Value, mut old: Value| -> Vec<String> {
        default("", "pods", &mut new);
        default("", "pods", &mut old);
        validate_ephemeral_containers_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(errs(new.clone(), old.clone()), Vec::<String>::new());
    let mut bad = old.clone();
    bad["spec"]["ephemeralContainers"] = json!([{
        "name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
        "targetContainerName": "nope",
        "volumeMounts": []
    }]);
    assert_eq!(
        errs(bad, old.clone()),
        vec![
            "spec.ephemeralContainers[0].name: Duplicate value: \"c\"",
            "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
            "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        ]
    );
    // Existing ones stay as they are.
    assert_eq!(
        errs(old.clone(), new.clone()),
        vec![
            "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n"
        ]
    );
}
