//! Controllers for `KafkaTopic` and `KafkaRestProxy`.

pub mod contain;
pub mod context;
pub mod events;
pub mod memory;
pub mod outcome;
pub mod ownership;
pub mod plan;
pub mod registry;
pub mod rest_proxy;
pub mod runner;
pub mod selector;
pub mod status;
pub mod stores;
pub mod topic;
