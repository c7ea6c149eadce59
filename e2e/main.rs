//! End-to-end tests: real `rkube up` processes driven by the stock kubectl
//! and kube-rs.

mod api;
mod basics;
mod harness;
