//! Test infrastructure for incident-operator: an in-memory Kubernetes API server and a kubelet
//! that runs pods as local processes.
#![forbid(unsafe_code)]

pub mod kubelet;
