//! Controllers for `KafkaTopic` and `KafkaRestProxy`.

pub mod plan;
pub mod selector;
pub mod status;
