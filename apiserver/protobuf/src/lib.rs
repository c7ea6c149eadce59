//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) support for rkube.
//!
//! The API server works on JSON (`serde_json::Value`); this crate turns a protobuf
//! request body into the JSON upstream would produce for the same object. It is driven
//! by a generated table of every k8s.io message (`schema.rs`, from
//! `hack/gen/protobuf.py`): field tags, wire types, JSON names, and which zero values
//! upstream drops, so the same table can later drive encoding.
//!
//! ```text
//! body = "k8s\0" + runtime.Unknown{typeMeta{apiVersion=1, kind=2}=1, raw=2,
//!                                   contentEncoding=3, contentType=4}
//! ```

mod decode;
#[rustfmt::skip]
mod schema;
mod types;
mod wellknown;
mod wire;

use serde_json::Value;

pub use types::{Card, Field, Message, Special, Ty};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("protobuf body does not start with the k8s\\0 magic prefix")]
    BadMagic,
    #[error("protobuf input is truncated")]
    Truncated,
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    #[error("protobuf envelope has no apiVersion/kind")]
    MissingTypeMeta,
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

/// Decode a full protobuf body (`k8s\0` + `runtime.Unknown`) into the object's JSON,
/// with `apiVersion` and `kind` taken from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let rest = body.strip_prefix(MAGIC).ok_or(DecodeError::BadMagic)?;
    let env = decode::envelope(rest)?;
    if !env.content_encoding.is_empty() {
        return Err(DecodeError::UnsupportedEncoding(env.content_encoding));
    }
    if env.api_version.is_empty() && env.kind.is_empty() {
        return Err(DecodeError::MissingTypeMeta);
    }
    decode_message(&env.api_version, &env.kind, env.raw)
}

/// Decode the raw bytes of one object of the given apiVersion and kind (no envelope).
/// The result carries `apiVersion` and `kind`.
pub fn decode_message(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, DecodeError> {
    let idx = lookup(api_version, kind).ok_or_else(|| DecodeError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    let value = decode::message(idx, raw, 0)?;
    let Value::Object(fields) = value else {
        return Err(DecodeError::Malformed(format!(
            "{kind} is not an object type"
        )));
    };
    let mut out = serde_json::Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    out.insert("kind".into(), Value::String(kind.to_owned()));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Decode the bytes of a message by its k8s-pb path (e.g. `api::core::v1::PodSpec`),
/// without envelope or apiVersion/kind.
pub fn decode_type(message: &str, raw: &[u8]) -> Result<Value, DecodeError> {
    let idx = schema::MESSAGES
        .binary_search_by(|m| m.name.cmp(message))
        .map_err(|_| DecodeError::UnknownKind {
            api_version: String::new(),
            kind: message.to_owned(),
        })?;
    decode::message(idx as u16, raw, 0)
}

/// Whether objects of this apiVersion and kind can be decoded.
pub fn is_supported(api_version: &str, kind: &str) -> bool {
    lookup(api_version, kind).is_some()
}

/// The schema of the message for an apiVersion and kind, if known.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    lookup(api_version, kind).map(|i| &schema::MESSAGES[usize::from(i)])
}

/// Every (apiVersion, kind, k8s-pb message path) with a schema, sorted. Kinds every
/// group version serves (DeleteOptions, Status, ...) also resolve under any apiVersion.
pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    schema::KINDS
        .iter()
        .map(|(av, k, i)| (*av, *k, schema::MESSAGES[usize::from(*i)].name))
}

/// The schema of a message by its table index (`Ty::M`).
pub fn message(index: u16) -> &'static Message {
    &schema::MESSAGES[usize::from(index)]
}

fn lookup(api_version: &str, kind: &str) -> Option<u16> {
    if let Ok(i) = schema::KINDS.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind)))
    {
        return Some(schema::KINDS[i].2);
    }
    if api_version.is_empty() {
        return None;
    }
    schema::META_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, i)| *i)
}
