//! rkube's API server: request info, the generic registry, per-kind
//! strategies, and the HTTP layer.

pub mod admission;
pub mod allocation;
pub mod bootstrap;
pub mod catalogue;
pub mod compactor;
pub mod conversion;
pub mod crd;
pub mod fieldmanager;
pub mod fields;
pub mod http_util;
pub mod kubelet_client;
pub mod meta;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod podlogs;
pub mod registry;
pub mod request;
pub mod scale;
pub mod selectable;
pub mod server;
pub mod serviceaccount;
pub mod status;
pub mod strategy;
pub mod streams;
pub mod watchcache;
