//! Every decoder of a REST-proxy answer on arbitrary bytes: no panic, and a refusal is the typed
//! "malformed" error naming what was decoded. The first byte picks the `NextOffset` header of
//! a consume answer (absent, or the next up to 12 bytes as text).
#![no_main]

use hdinsight_topic_operator::proxy::{
    ProxyError, decode_brokers, decode_consume, decode_partition, decode_text, decode_topic_list,
    decode_topic_partitions,
};
use libfuzzer_sys::fuzz_target;

fn typed(what: &str, error: String) {
    assert!(error.starts_with(&format!("{what}: ")), "{error}");
    let e = ProxyError::Malformed(error);
    assert_eq!(e.kind(), "malformed");
    assert!(!e.is_transient());
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.split_first() {
        Some((flag, rest)) if flag & 1 == 1 => {
            let cut = rest.len().min(12);
            (
                Some(String::from_utf8_lossy(&rest[..cut]).into_owned()),
                &rest[cut..],
            )
        }
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };

    if let Err(e) = decode_brokers(body) {
        typed("broker list", e);
    }
    match decode_topic_list(body) {
        Ok(topics) => assert!(topics.iter().all(|t| !t.starts_with("__")), "{topics:?}"),
        Err(e) => typed("topic list", e),
    }
    if let Err(e) = decode_topic_partitions(body) {
        typed("topic partitions", e);
    }
    if let Err(e) = decode_partition(body) {
        typed("partition metadata", e);
    }
    match decode_consume(body, header.as_deref()) {
        Ok(r) => {
            let expected = header.as_deref().and_then(|h| h.trim().parse::<i64>().ok());
            assert_eq!(r.next_offset, expected);
        }
        Err(e) => assert!(
            e.starts_with("consumed records: ") || e.starts_with("NextOffset header"),
            "{e}"
        ),
    }
    let _ = decode_text(body);
});
