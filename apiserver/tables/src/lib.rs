//! rkube-tables: upstream's server-side tables for `kubectl get`.
//!
//! kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`
//! and prints whatever columns and cells the server returns, so matching
//! upstream's output means reproducing `pkg/printers/internalversion`:
//! the column definitions per resource and the cell formatting rules.
//! Objects are handled as stored JSON (`serde_json::Value`); absent fields
//! read as Go's zero values, and fields the API server defaults on write
//! (replicas, service type, port protocol...) read as their defaults.

mod cluster;
mod columns;
mod core;
pub mod duration;
mod pods;
mod table;
mod util;
mod workloads;

pub use columns::{CREATED_DESC, Column, NAME_DESC, columns, default_columns};
pub use duration::{human_duration, human_duration_nanos};
pub use table::{IncludeObject, cells, row, row_table, table};
