//! rkube-catalogue: every resource the API server serves, and the discovery
//! documents (`/api`, `/apis`, resource lists, aggregated discovery) built from it.
//!
//! The built-in table is generated from the upstream OpenAPI document by
//! `hack/gen/catalogue.py`, so nothing is read from disk at run time.

#[rustfmt::skip]
mod builtin;
mod catalogue;
pub mod discovery;
mod hash;
mod resource;
mod runtime_config;

pub use catalogue::{Catalogue, GroupVersion, compare_versions};
pub use hash::storage_version_hash;
pub use resource::{ResourceInfo, Stability, SubresourceInfo};
pub use runtime_config::{RuntimeConfig, RuntimeConfigError, Switch};
