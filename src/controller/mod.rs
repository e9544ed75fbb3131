//! Controllers for `KafkaTopic` and `KafkaRestProxy`.

pub mod contain;
pub mod context;
pub mod memory;
pub mod plan;
pub mod registry;
pub mod rest_proxy;
pub mod runner;
pub mod selector;
pub mod status;
pub mod topic;
