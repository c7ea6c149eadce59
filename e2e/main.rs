//! End-to-end tests: real `rkube up` processes driven by the stock kubectl
//! and kube-rs.

mod admission;
mod api;
mod apply;
mod basics;
mod conformance_apps;
mod conformance_chunking;
mod conformance_controllers;
mod conformance_core;
mod conformance_discovery;
mod conformance_events;
mod conformance_namespaces;
mod conformance_node;
mod conformance_services;
mod conformance_util;
mod conformance_watch;
mod controllers_deployment;
mod controllers_endpoints;
mod controllers_gc;
mod controllers_metrics;
mod controllers_mirroring;
mod controllers_nodelifecycle;
mod controllers_replicaset;
mod controllers_util;
mod crd;
mod crd_conversion;
mod crd_operator;
mod harness;
mod kubelet;
mod kubelet_cri;
mod kubelet_server;
mod openapi;
mod scheduler;
mod serviceaccounts;
mod streaming;
