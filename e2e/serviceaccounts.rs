//! Service account credentials as upstream's ServiceAccounts conformance
//! tests use them: TokenRequest (`kubectl create token`), TokenReview,
//! bearer tokens accepted by the API server, tokens bound to a pod dying
//! with it, OIDC discovery, and the token volume the ServiceAccount
//! admission plugin mounts (read by a real pod in `kubelet_cri`-style
//! tests below).

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::harness::Cluster;

async fn wait_for_default_account(c: &Cluster, ns: &str) {
    let sas: Api<ServiceAccount> = Api::namespaced(c.client().await, ns);
    for _ in 0..150 {
        if sas.get_opt("default").await.ok().flatten().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no default service account in {ns}");
}

async fn review(c: &Cluster, token: &str, audiences: Option<Vec<String>>) -> Value {
    let reviews: Api<TokenReview> = Api::all(c.client().await);
    let got = reviews
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: token.to_owned(),
                    audiences,
                },
                ..Default::default()
            },
        )
        .await
        .expect("token review");
    serde_json::to_value(got.status).expect("json")
}

/// kubectl as the bearer of `token` (no client certificate).
fn kubectl_as(c: &Cluster, token: &str, args: &[&str]) -> std::process::Output {
    let conf: Value =
        serde_yaml::from_str(&std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig"))
            .expect("yaml");
    let server = conf["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server")
        .to_owned();
    let ca = c.dir.path().join("pki/ca.crt");
    std::process::Command::new("kubectl")
        .args([
            "--kubeconfig=/dev/null",
            &format!("--server={server}"),
            &format!("--certificate-authority={}", ca.display()),
            &format!("--token={token}"),
        ])
        .args(args)
        .env("HOME", c.dir.path())
        .output()
        .expect("kubectl runs")
}

#[tokio::test]
async fn serviceaccount_tokens_are_requested_reviewed_and_accepted() {
    let c = Cluster::up_with_controllers().await;
    wait_for_default_account(&c, "default").await;
    c.kubectl_ok(&["create", "serviceaccount", "app"]);
    let token = c.kubectl_ok(&["create", "token", "app"]).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let status = review(&c, &token, None).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:app"
    );
    let groups = status["user"]["groups"].to_string();
    assert!(
        groups.contains("\"system:serviceaccounts\"")
            && groups.contains("\"system:serviceaccounts:default\"")
            && groups.contains("\"system:authenticated\""),
        "{groups}"
    );
    // A token for another audience is not for this server.
    let other = c
        .kubectl_ok(&["create", "token", "app", "--audience=vault"])
        .trim()
        .to_owned();
    assert_eq!(review(&c, &other, None).await["authenticated"], Value::Null);
    assert_eq!(
        review(&c, &other, Some(vec!["vault".into()])).await["authenticated"],
        true
    );

    // The API server takes the token as a bearer credential.
    let out = kubectl_as(&c, &token, &["auth", "whoami", "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let who: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:default:app"
    );
    let out = kubectl_as(&c, "not-a-token", &["get", "--raw", "/api"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{out:?}"
    );
    // Deleting the account ends its tokens.
    c.kubectl_ok(&["delete", "serviceaccount", "app"]);
    assert_eq!(review(&c, &token, None).await["authenticated"], Value::Null);

    // Lifetimes below ten minutes are refused as upstream.
    let out = c.kubectl(&["create", "token", "default", "--duration=5m"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("may not specify a duration less than 10 minutes"),
        "{out:?}"
    );
}

#[tokio::test]
async fn serviceaccount_tokens_bound_to_a_pod_die_with_it() {
    let c = Cluster::up_with_controllers().await;
    wait_for_default_account(&c, "default").await;
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "holder"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let token = c
        .kubectl_ok(&[
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=holder",
        ])
        .trim()
        .to_owned();
    let status = review(&c, &token, None).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "holder"
    );
    c.kubectl_ok(&["delete", "pod", "holder", "--grace-period=0", "--force"]);
    assert_eq!(review(&c, &token, None).await["authenticated"], Value::Null);
}

#[tokio::test]
async fn serviceaccount_admission_mounts_the_token_volume() {
    let c = Cluster::up_with_controllers().await;
    wait_for_default_account(&c, "default").await;
    c.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
             "automountServiceAccountToken": false},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mounted"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}],
                      "initContainers": [{"name": "i", "image": "busybox"}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "optout"},
             "spec": {"automountServiceAccountToken": false,
                      "containers": [{"name": "c", "image": "busybox"}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quietsa"},
             "spec": {"serviceAccountName": "quiet",
                      "containers": [{"name": "c", "image": "busybox"}]}},
        ]})
        .to_string(),
    );
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let mounted = serde_json::to_value(pods.get("mounted").await.expect("pod")).expect("json");
    assert_eq!(mounted["spec"]["serviceAccountName"], "default");
    let vol = &mounted["spec"]["volumes"][0];
    let name = vol["name"].as_str().expect("a volume");
    assert!(name.starts_with("kube-api-access-"), "{vol}");
    let sources = vol["projected"]["sources"].to_string();
    assert!(
        sources.contains("\"serviceAccountToken\"")
            && sources.contains("\"kube-root-ca.crt\"")
            && sources.contains("metadata.namespace"),
        "{sources}"
    );
    for kind in ["containers", "initContainers"] {
        let m = &mounted["spec"][kind][0]["volumeMounts"][0];
        assert_eq!(m["name"], name);
        assert_eq!(
            m["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(m["readOnly"], true);
    }
    for name in ["optout", "quietsa"] {
        let p = serde_json::to_value(pods.get(name).await.expect("pod")).expect("json");
        assert!(p["spec"]["volumes"].is_null(), "{name}: {}", p["spec"]);
    }

    // OIDC discovery names the issuer and its key.
    let conf: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/.well-known/openid-configuration"]))
            .expect("json");
    assert_eq!(
        conf["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert!(
        conf["jwks_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/openid/v1/jwks"))
    );
    let jwks: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"])).expect("json");
    assert_eq!(jwks["keys"][0]["use"], "sig");
    assert!(
        jwks["keys"][0]["kid"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
}
