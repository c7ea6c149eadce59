//! rkube's scheduler: upstream's scheduling framework (queue, cache,
//! extension points, default plugins) as an API client.

pub mod affinity;
pub mod cache;
pub mod config;
pub mod framework;
pub mod labels;
pub mod metrics;
pub mod nodeinfo;
pub mod plugins;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod run;

pub use config::Configuration;
pub use run::{Options, run};
