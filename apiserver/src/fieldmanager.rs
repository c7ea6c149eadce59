//! Field ownership on the request path: who the field manager of a write is,
//! and the glue between the registry and `rkube_patch::apply` (which holds
//! the structured-merge logic).

use std::collections::HashMap;

use rkube_patch::apply::{self, ApplyError, Kind, Writer};
use rkube_patch::{BuiltinSchema, root_type};
use serde_json::{Value, json};

use crate::registry::Resource;
use crate::status::ApiError;

/// Upstream's limit on `fieldManager`.
const MAX_MANAGER_LEN: usize = 128;

fn kind(r: &Resource) -> Kind<'static> {
    Kind {
        schema: &BuiltinSchema,
        root: root_type(&r.group, &r.version, &r.kind),
        has_status: r.has_status,
    }
}

/// The field manager of a write: `fieldManager`, else the User-Agent up to
/// its first `/` (upstream's default), checked as upstream checks it.
pub fn manager(
    q: &HashMap<String, String>,
    user_agent: &str,
    options_kind: &str,
) -> Result<String, ApiError> {
    match q.get("fieldManager") {
        Some(m) => {
            if m.chars().count() > MAX_MANAGER_LEN {
                return Err(invalid_options(
                    options_kind,
                    &format!(
                        "fieldManager: Invalid value: {:?}: must be at most 128 characters",
                        m
                    ),
                ));
            }
            if m.chars().any(|c| c.is_control()) {
                return Err(invalid_options(
                    options_kind,
                    &format!(
                        "fieldManager: Invalid value: {m:?}: must only contain printable characters"
                    ),
                ));
            }
            Ok(m.clone())
        }
        None => {
            let prefix = user_agent.split('/').next().unwrap_or_default();
            Ok(prefix.chars().take(MAX_MANAGER_LEN).collect())
        }
    }
}

/// `CreateOptions.meta.k8s.io "" is invalid: ...` and its kin (422).
pub fn invalid_options(options_kind: &str, detail: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("{options_kind}.meta.k8s.io \"\" is invalid: {detail}"),
    )
}

/// Records a non-apply write by `manager` in `new`'s managedFields.
pub fn track_update(
    r: &Resource,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
) -> Result<(), ApiError> {
    as_writer(r, manager, subresource, |w| {
        apply::update(&kind(r), old, new, w)
    })
}

/// The object an apply by `manager` makes of `live` (`None`: not there yet).
pub fn apply(
    r: &Resource,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
) -> Result<Value, ApiError> {
    as_writer(r, manager, subresource, |w| {
        apply::apply(&kind(r), live, config, w, force)
    })
}

/// Runs `f` as `manager` writing `r` (at its version, now), mapping its
/// errors to upstream's statuses.
fn as_writer<T>(
    r: &Resource,
    manager: &str,
    subresource: &str,
    f: impl FnOnce(&Writer) -> Result<T, ApplyError>,
) -> Result<T, ApiError> {
    let api_version = r.api_version();
    let now = crate::meta::now_rfc3339();
    f(&Writer {
        manager,
        api_version: &api_version,
        subresource,
        now: &now,
    })
    .map_err(to_api_error)
}

fn to_api_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::BadRequest(m) => ApiError::bad_request(m),
        ApplyError::Conflicts(c) => {
            let causes: Vec<Value> = c
                .iter()
                .map(|(m, p)| {
                    json!({
                        "type": "FieldManagerConflict",
                        "message": format!("conflict with {m}"),
                        "field": p,
                    })
                })
                .collect();
            ApiError {
                details: Some(json!({ "causes": causes })),
                ..ApiError::new(409, "Conflict", ApplyError::conflict_message(&c))
            }
        }
    }
}
