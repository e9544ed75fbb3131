//! What the emulator counts and remembers about the requests it served, and the faults it is
//! told to inject.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How many requests the request log keeps (oldest dropped first).
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// Counters over every request served (faults and authentication failures included, control
/// API calls excluded).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// operation → HTTP status → count.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Every `PUT /v1/topics/{t}` received, whatever its outcome (created, refused, faulted,
    /// unauthenticated).
    pub creates_per_topic: BTreeMap<String, u64>,
    /// Creates that took effect (the topic came into being), whatever the caller was answered:
    /// an `applied` fault counts here although the caller saw an error. Out-of-band creates
    /// (control API) are not counted.
    #[serde(default)]
    pub created_per_topic: BTreeMap<String, u64>,
    /// Successful token responses per client id.
    pub tokens_issued: BTreeMap<String, u64>,
    /// Every request to the token endpoint, whatever its outcome.
    pub token_requests: u64,
}

impl Stats {
    /// Requests of `operation`, whatever their status.
    pub fn count(&self, operation: &str) -> u64 {
        self.requests
            .get(operation)
            .map(|by_status| by_status.values().sum())
            .unwrap_or(0)
    }

    /// Requests of `operation` answered with `status`.
    pub fn count_status(&self, operation: &str, status: u16) -> u64 {
        self.requests
            .get(operation)
            .and_then(|by_status| by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests answered with `status`, over all operations.
    pub fn total_status(&self, status: u16) -> u64 {
        self.requests
            .values()
            .filter_map(|by_status| by_status.get(&status))
            .sum()
    }
}

/// One served request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub at: SystemTime,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub operation: String,
    pub status: u16,
    /// Client id: from the form or Basic header on the token endpoint, from a valid token's
    /// `appid` on the proxy.
    pub client: Option<String>,
    /// The management node that served a proxy request (counted from 0).
    #[serde(default)]
    pub node: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, entry: LoggedRequest) {
        if self.entries.len() >= REQUEST_LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<LoggedRequest> {
        self.entries.iter().cloned().collect()
    }
}

/// Faults to inject.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Checked in order; the first rule that matches and fires answers the request.
    pub rules: Vec<FaultRule>,
    /// The token endpoint answers 503 with a small body without AADSTS code.
    pub token_endpoint_down: bool,
    /// Added to every request except control API calls.
    pub extra_latency_ms: u64,
}

/// One fault: "answer `operations` with `status` with probability `probability`".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultRule {
    /// Operation names (see [`crate::OPERATIONS`]); empty means every proxy operation (the token
    /// endpoint, discovery and JWKS only when listed).
    pub operations: Vec<String>,
    /// Status of a [`FaultBody::Json`] answer; the other bodies always come with 200.
    pub status: u16,
    /// 0..=1; 1 fires every time.
    pub probability: f64,
    /// Sent as a `Retry-After` header.
    pub retry_after_seconds: Option<u64>,
    /// Fire only this many more times (`None` = unlimited).
    pub remaining: Option<u64>,
    pub body: FaultBody,
    /// The request takes effect before the fault answers it (a create that happened although
    /// the caller saw a 5xx, a stall or a broken body). `truncated` and `stall` always take
    /// effect; for `json`, `garbage` and `oversized` this flag decides.
    pub applied: bool,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            operations: Vec::new(),
            status: 500,
            probability: 1.0,
            retry_after_seconds: None,
            remaining: None,
            body: FaultBody::Json,
            applied: false,
        }
    }
}

impl FaultRule {
    /// A rule answering `operations` (empty: every proxy operation) with `status`, always.
    pub fn status(operations: &[&str], status: u16) -> Self {
        FaultRule {
            operations: operations.iter().map(|op| (*op).to_string()).collect(),
            status,
            ..FaultRule::default()
        }
    }
}

/// What a fired fault answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FaultBody {
    /// `status` with `{"error":"injected_fault","message":...}`; the request has no effect
    /// unless the rule says `applied`.
    #[default]
    Json,
    /// 200 with bytes that are not JSON; the request has no effect unless `applied`.
    Garbage,
    /// The request takes effect, then its real status with the first half of its real JSON
    /// body.
    Truncated,
    /// 200 with a valid JSON document of `bytes` bytes; the request has no effect unless
    /// `applied`.
    Oversized { bytes: u64 },
    /// The request takes effect, then its real status, whose body stops after `after_bytes`
    /// bytes for `seconds` before the rest follows.
    Stall { after_bytes: u64, seconds: u64 },
}
