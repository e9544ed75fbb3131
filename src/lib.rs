//! hdinsight-topic-operator: manages Kafka topics on Azure HDInsight through the cluster's
//! Kafka REST proxy, driven by `KafkaTopic` and `KafkaRestProxy` custom resources.
//!
//! Pipeline of one topic reconcile: resolve references (IO) → validate the spec (pure) → observe
//! the proxy (IO) → plan (pure: desired vs observed → actions and conditions) → act (IO) → patch
//! status only when it changed (IO).

pub mod allowlist;
pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod data;
pub mod leader;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod telemetry;
