//! The HDInsight Kafka REST proxy client.
//!
//! One [`ProxyClient`] per `KafkaRestProxy`: one HTTP connection pool (rustls, webpki roots plus
//! the proxy's extra CA), one [`TokenProvider`](crate::auth::TokenProvider), one rate limiter and
//! one concurrency limit, shared by every topic that uses the proxy. Each call goes:
//! token → rate limit → concurrency permit → wait out any `Retry-After` → send with a timeout →
//! read the body with a cap → map the status to a [`ProxyError`] → retry transient failures with
//! exponential backoff and full jitter (never a create that may have reached the proxy).

mod client;
mod error;
mod limits;
mod model;

pub use client::{
    BODY_LIMIT, DEFAULT_SCOPE, MAX_IN_CALL_WAIT, NoopObserver, Operation, ProxyClient,
    ProxyClientConfig, ProxyObserver,
};
pub use error::ProxyError;
pub use limits::Limits;
pub use model::{
    BrokerEndpoint, ConsumeRecord, ConsumeResponse, PartitionMetadata, ProducerRecord,
    TopicCreationRecord, TopicPartitions, decode_brokers, decode_consume, decode_partition,
    decode_text, decode_topic_list, decode_topic_partitions,
};
