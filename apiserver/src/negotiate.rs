//! Content negotiation for responses: JSON, YAML, server-side Tables and
//! PartialObjectMetadata, chosen from the Accept header as upstream does.

use rkube_tables::IncludeObject;

use crate::status::ApiError;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Output {
    Json,
    Yaml,
    Table(IncludeObject),
    /// `as=PartialObjectMetadata` (or `...List` for lists).
    Metadata,
}

/// Picks the first media type of the Accept header that we can produce.
/// Protobuf is not produced yet, so clients listing it with JSON as a
/// fallback get JSON.
pub fn choose(accept: &str, include_object: Option<&str>) -> Result<Output, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let Some(mime) = params.first() else { continue };
        let param = |name: &str| {
            params
                .iter()
                .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        let as_ = param("as");
        // `g=meta.k8s.io;v=v1` (or v1beta1).
        let meta_v1 =
            param("g") == Some("meta.k8s.io") && matches!(param("v"), Some("v1") | Some("v1beta1"));
        match (*mime, as_) {
            ("application/json" | "application/*" | "*/*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            ("application/json", Some("Table")) if meta_v1 => {
                let include =
                    IncludeObject::parse(include_object).map_err(ApiError::bad_request)?;
                return Ok(Output::Table(include));
            }
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if meta_v1 =>
            {
                return Ok(Output::Metadata);
            }
            _ => {}
        }
    }
    Err(ApiError::not_acceptable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_tables() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            choose(accept, None).unwrap(),
            Output::Table(IncludeObject::Metadata)
        );
        assert_eq!(
            choose(
                "application/vnd.kubernetes.protobuf, application/json",
                None
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(choose("", None).unwrap(), Output::Json);
        assert!(choose("application/vnd.kubernetes.protobuf", None).is_err());
        assert_eq!(
            choose(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                None
            )
            .unwrap(),
            Output::Metadata
        );
    }
}
