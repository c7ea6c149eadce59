//! rkube-selectors: label and field selectors as the API server sees them.
//!
//! Clients (kubectl, client-go, kube-rs) send selectors as strings in
//! `labelSelector=` / `fieldSelector=` and as `metav1.LabelSelector` objects
//! inside resources. This crate parses, validates, prints and matches them
//! exactly as upstream apimachinery does, including its error wording, because
//! clients and conformance tests compare those messages verbatim.

mod error;
pub mod fields;
mod gofmt;
pub mod labels;
pub mod validation;

pub use error::SelectorError;
pub use fields::{FieldOperator, FieldRequirement, FieldSelector};
pub use labels::{LabelSelector, Labels, Operator, Requirement};
