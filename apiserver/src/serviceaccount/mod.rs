//! Service account credentials: bearer-token authentication, the
//! `serviceaccounts/token` subresource (TokenRequest), TokenReview,
//! SelfSubjectReview, and the OIDC discovery documents.

pub mod tokens;

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};

use crate::http_util::{Body, json_response};
use crate::registry::Resource;
use crate::server::{ApiServer, User};
use crate::status::ApiError;
use tokens::{Claims, KubernetesClaims, Ref};

/// Upstream's default and smallest TokenRequest lifetimes.
const DEFAULT_SECONDS: i64 = 3600;
const MIN_SECONDS: i64 = 600;

/// Who a token speaks for, as TokenReview reports it.
pub struct Identity {
    pub user: User,
    pub uid: String,
    pub extra: HashMap<String, Vec<String>>,
}

fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

async fn get(api: &ApiServer, plural: &str, ns: &str, name: &str) -> Option<Value> {
    let r = api.catalogue.resource("", "v1", plural)?;
    let ns = r.namespaced.then_some(ns);
    api.registry.get(&r, ns, name).await.ok()
}

/// The identity of a service account token meant for `audiences`; why
/// not otherwise.
pub async fn authenticate(
    api: &ApiServer,
    token: &str,
    audiences: &[String],
) -> Result<Identity, String> {
    let tokens = api
        .tokens
        .as_ref()
        .ok_or("service account tokens are not enabled")?;
    let claims = tokens.verify(token, audiences)?;
    let k = &claims.kubernetes;
    let ns = k.namespace.as_str();
    let sa = get(api, "serviceaccounts", ns, &k.serviceaccount.name)
        .await
        .ok_or_else(|| format!("service account {ns}/{} not found", k.serviceaccount.name))?;
    if uid_of(&sa) != k.serviceaccount.uid {
        return Err(format!(
            "service account UID ({}) does not match claim ({})",
            uid_of(&sa),
            k.serviceaccount.uid
        ));
    }
    let mut extra = HashMap::new();
    // A token bound to an object dies with it.
    for (plural, bound) in [("pods", &k.pod), ("secrets", &k.secret), ("nodes", &k.node)] {
        let Some(bound) = bound else { continue };
        let obj = get(api, plural, ns, &bound.name)
            .await
            .ok_or_else(|| format!("{plural} {} not found", bound.name))?;
        if uid_of(&obj) != bound.uid {
            return Err(format!(
                "{plural} {} UID ({}) does not match claim ({})",
                bound.name,
                uid_of(&obj),
                bound.uid
            ));
        }
        let singular = plural.trim_end_matches('s');
        extra.insert(
            format!("authentication.kubernetes.io/{singular}-name"),
            vec![bound.name.clone()],
        );
        extra.insert(
            format!("authentication.kubernetes.io/{singular}-uid"),
            vec![bound.uid.clone()],
        );
    }
    if let Some(jti) = &claims.jti {
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={jti}")],
        );
    }
    Ok(Identity {
        user: User {
            name: claims.sub.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                rkube_pki::AUTHENTICATED_GROUP.into(),
            ],
        },
        uid: k.serviceaccount.uid.clone(),
        extra,
    })
}

fn invalid(name: &str, field: &str, value: impl Into<Value>, detail: &str) -> ApiError {
    ApiError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        name,
        &[rkube_validation::FieldError::invalid(field, value, detail)],
    )
}

/// `POST serviceaccounts/{name}/token`.
pub async fn token_request(
    api: &ApiServer,
    r: &Resource,
    ns: &str,
    name: &str,
    mut request: Value,
) -> Result<Response, ApiError> {
    let tokens = api
        .tokens
        .as_ref()
        .ok_or_else(|| ApiError::not_implemented("serviceaccounts/token without a signing key"))?;
    let sa = api.registry.get(r, Some(ns), name).await?;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let seconds = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_SECONDS);
    if seconds < MIN_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > 1 << 32 {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| tokens.audiences.clone());
    let mut k = KubernetesClaims {
        namespace: ns.to_owned(),
        serviceaccount: Ref {
            name: name.to_owned(),
            uid: uid_of(&sa).to_owned(),
        },
        ..Default::default()
    };
    if let Some(bound) = spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        let kind = bound
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bound_name = bound
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            "Node" => "nodes",
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for object of kind {kind}"
                )));
            }
        };
        let obj = get(api, plural, ns, bound_name)
            .await
            .ok_or_else(|| ApiError::not_found("", plural, bound_name))?;
        let uid = uid_of(&obj).to_owned();
        if let Some(want) = bound
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            && want != uid
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        let named = Some(Ref {
            name: bound_name.to_owned(),
            uid: uid.clone(),
        });
        match plural {
            "pods" => k.pod = named,
            "secrets" => k.secret = named,
            _ => k.node = named,
        }
        request["spec"]["boundObjectRef"]["uid"] = json!(uid);
    }
    let now = chrono::Utc::now();
    let claims = Claims {
        iss: tokens.issuer.clone(),
        sub: format!("system:serviceaccount:{ns}:{name}"),
        aud: audiences.clone(),
        exp: now.timestamp() + seconds,
        iat: now.timestamp(),
        nbf: now.timestamp(),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        kubernetes: k,
    };
    let token = tokens.sign(&claims).map_err(ApiError::internal)?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0)
        .unwrap_or(now)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] = json!({
        "name": name,
        "namespace": ns,
        "creationTimestamp": crate::meta::now_rfc3339(),
    });
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(seconds);
    request["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(json_response(StatusCode::CREATED, &request))
}

/// `POST tokenreviews`: whether the token is one of ours, and whose.
pub async fn token_review(api: &ApiServer, mut review: Value) -> Response {
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let asked: Vec<String> = review
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let audiences = if asked.is_empty() {
        api.tokens
            .as_ref()
            .map(|t| t.audiences.clone())
            .unwrap_or_default()
    } else {
        asked
    };
    let status = match authenticate(api, &token, &audiences).await {
        Ok(id) => json!({
            "authenticated": true,
            "user": {
                "username": id.user.name,
                "uid": id.uid,
                "groups": id.user.groups,
                "extra": id.extra,
            },
            "audiences": audiences,
        }),
        Err(why) => json!({"user": {}, "error": why}),
    };
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    review["kind"] = json!("TokenReview");
    if review.get("metadata").is_none_or(Value::is_null) {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = json!(crate::meta::now_rfc3339());
    review["status"] = status;
    json_response(StatusCode::CREATED, &review)
}

/// `POST selfsubjectreviews` (`kubectl auth whoami`).
pub fn self_subject_review(user: &User, version: &str) -> Response {
    json_response(
        StatusCode::CREATED,
        &json!({
            "apiVersion": format!("authentication.k8s.io/{version}"),
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": crate::meta::now_rfc3339()},
            "status": {"userInfo": {"username": user.name, "groups": user.groups}},
        }),
    )
}

type Response = http::Response<Body>;
