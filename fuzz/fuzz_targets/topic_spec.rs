//! Spec validation on any JSON document that deserialises as a KafkaTopic: no panic; a refusal
//! names a `spec.` field; an accepted spec has a valid Kafka name and a config of strings and
//! integers only (what the create request carries).
#![no_main]

use hdinsight_topic_operator::controller::plan;
use hdinsight_topic_operator::crd::{KafkaTopic, validate_topic_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(topic) = serde_json::from_slice::<KafkaTopic>(data) else {
        return;
    };
    match plan::validate(&topic) {
        Ok(desired) => {
            assert!(validate_topic_name(&desired.topic_name).is_ok());
            assert!(
                desired
                    .config
                    .values()
                    .all(|v| v.is_string() || v.is_i64() || v.is_u64()),
                "{:?}",
                desired.config
            );
        }
        Err(e) => assert!(e.starts_with("spec."), "{e}"),
    }
});
