//! rkube's API server: request info, the generic registry, per-kind
//! strategies, and the HTTP layer.

pub mod defaults;
pub mod meta;
pub mod registry;
pub mod request;
pub mod status;
pub mod strategy;
pub mod validation;
pub mod http_util;
pub mod server;
