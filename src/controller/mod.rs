//! Controllers for `KafkaTopic` and `KafkaRestProxy`.

pub mod plan;
