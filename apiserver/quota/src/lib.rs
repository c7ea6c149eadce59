//! Resource quantities and ResourceQuota accounting, shared by the API
//! server's quota admission and the controller manager's quota controller
//! so both count an object the same way.

pub mod quantity;
pub mod scopes;
pub mod usage;

pub use quantity::Quantity;
pub use scopes::covers;
pub use usage::{
    ResourceList, add, object_count_name, parse_list, pod_constraints, pod_limits, pod_requests,
    pretty, to_json, tracks, usage,
};
