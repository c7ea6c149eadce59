//! Patch application for the API server: RFC 6902 JSON patch, RFC 7386 JSON
//! merge patch, Kubernetes strategic merge patch, and server-side apply with
//! field ownership.
//!
//! Objects are `serde_json::Value`s; every function works on a copy so a
//! failing patch never leaves a half-applied document behind.

pub mod apply;
mod duplicates;
mod error;
mod json_patch;
mod merge;
mod schema;
#[rustfmt::skip]
mod schema_table;
mod strategic;
mod unknown;

pub use duplicates::duplicate_fields;
pub use error::PatchError;
pub use json_patch::json_patch;
pub use merge::merge_patch;
pub use schema::{BuiltinSchema, FieldMeta, PatchSchema, TypeRef, root_type, type_by_name};
pub use strategic::{strategic_merge_patch, strategic_merge_patch_for};
pub use unknown::{prune_unknown_fields, unknown_fields};
