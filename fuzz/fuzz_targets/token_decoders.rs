//! Both decoders of token-endpoint answers on arbitrary bytes: a success is a non-empty token
//! with a plausible lifetime or `Malformed`; a rejection never shows the client secret, even
//! when the body echoes it (the dictionary in `fuzz/dict/token_decoders.dict` hands the fuzzer the secret).
#![no_main]

use hdinsight_topic_operator::auth::{
    AuthError, MAX_TOKEN_LIFETIME_SECS, decode_rejection, decode_success,
};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "Fz8Q~s3cr3t-value";

fuzz_target!(|data: &[u8]| {
    match decode_success(data) {
        Ok((token, lifetime)) => {
            assert!(!token.is_empty());
            assert!(lifetime.as_secs() <= MAX_TOKEN_LIFETIME_SECS);
        }
        Err(AuthError::Malformed(_)) => {}
        Err(other) => panic!("a 2xx body gave {other:?}"),
    }

    let status = match data.first() {
        Some(b) => 400 + u16::from(*b % 100),
        None => 400,
    };
    let e = decode_rejection(status, data, "app-id", SECRET);
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    match e {
        AuthError::Rejected { status: s, .. } => assert_eq!(s, status),
        other => panic!("a 4xx body gave {other:?}"),
    }
});
