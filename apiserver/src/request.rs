//! Request info: what a URL and method ask for, parsed as upstream's
//! `RequestInfoFactory` does.

use http::Method;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestInfo {
    /// A resource request, as opposed to discovery, health or version.
    pub is_resource: bool,
    /// `api` or `apis`.
    pub prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Path segments past the subresource (proxy paths).
    pub rest: Vec<String>,
    pub verb: &'static str,
    /// Path segments, for non-resource requests.
    pub parts: Vec<String>,
}

/// Subresources of a namespace that are not resources inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn is_watch(query: &str) -> bool {
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        k == "watch" && (v == "true" || v == "1")
    })
}

pub fn parse(method: &Method, path: &str, query: &str) -> RequestInfo {
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_owned())
        .collect();
    let mut info = RequestInfo {
        parts: parts.clone(),
        verb: match *method {
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        },
        ..Default::default()
    };
    let (prefix, mut rest) = match parts.first().map(String::as_str) {
        Some("api") if parts.len() >= 2 => ("api", parts[1..].to_vec()),
        Some("apis") if parts.len() >= 3 => ("apis", parts[1..].to_vec()),
        _ => return info,
    };
    info.prefix = prefix.into();
    if prefix == "apis" {
        info.group = rest.remove(0);
    }
    info.version = rest.remove(0);
    if rest.is_empty() {
        return info;
    }
    info.is_resource = true;
    // Legacy `/watch/` paths.
    let mut watch = is_watch(query);
    if rest[0] == "watch" {
        rest.remove(0);
        watch = true;
    }
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
        info.namespace = Some(rest[1].clone());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2].as_str()) {
            rest.drain(..2);
        }
    }
    let mut it = rest.into_iter();
    info.resource = it.next().unwrap_or_default();
    info.name = it.next();
    info.subresource = it.next();
    info.rest = it.collect();
    if info.resource == "namespaces" {
        // A namespace is cluster-scoped: `namespaces/foo` names it.
        info.namespace = None;
    }
    if info.name.is_none() {
        info.verb = match info.verb {
            "get" if watch => "watch",
            "get" => "list",
            "delete" => "deletecollection",
            v => v,
        };
    } else if watch && info.verb == "get" {
        info.verb = "watch";
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let i = parse(&Method::GET, "/api/v1/namespaces/default/pods/web/log", "");
        assert_eq!(
            (
                i.group.as_str(),
                i.version.as_str(),
                i.namespace.as_deref(),
                i.resource.as_str()
            ),
            ("", "v1", Some("default"), "pods")
        );
        assert_eq!(
            (i.name.as_deref(), i.subresource.as_deref(), i.verb),
            (Some("web"), Some("log"), "get")
        );
        let i = parse(&Method::GET, "/apis/apps/v1/deployments", "watch=true");
        assert_eq!(
            (i.group.as_str(), i.resource.as_str(), i.verb),
            ("apps", "deployments", "watch")
        );
        let i = parse(&Method::DELETE, "/api/v1/namespaces/ns1/configmaps", "");
        assert_eq!(i.verb, "deletecollection");
        let i = parse(&Method::PUT, "/api/v1/namespaces/ns1/finalize", "");
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_deref(),
                i.subresource.as_deref()
            ),
            ("namespaces", Some("ns1"), Some("finalize"))
        );
        assert_eq!(i.namespace, None);
        let i = parse(&Method::GET, "/api/v1/namespaces/ns1", "");
        assert_eq!(
            (i.resource.as_str(), i.name.as_deref(), i.verb),
            ("namespaces", Some("ns1"), "get")
        );
        let i = parse(&Method::GET, "/apis/apps/v1", "");
        assert!(!i.is_resource);
        let i = parse(&Method::GET, "/healthz", "");
        assert!(!i.is_resource);
    }
}
