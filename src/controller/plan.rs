//! The pure heart of a topic reconcile: given the spec, the previous status and what has been
//! observed so far, decide the next step. The reconciler runs a small loop — observe, ask
//! [`decide`], perform the IO it asks for, record the result, ask again — until the decision is
//! [`Decision::Finish`] with the new status, the Events to emit and when to look again.
//!
//! Everything here is deterministic and free of IO, so every row of the behaviour table is a
//! unit test below.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::crd::{
    ConfigState, DRIFTED, DesiredCondition, KafkaTopic, KafkaTopicStatus, MAX_PARTITION_DETAILS,
    MAX_REPLICAS_IN_STATUS, ManagementPolicy, PARTITION_DETAILS_BUDGET, PAUSED, PartitionDetail,
    READY, RECONCILING, STALLED, find_condition, merge_conditions, normalize_config,
    validate_topic_name,
};

/// Stable condition reasons. `docs/behaviour.md` explains each.
pub mod reason {
    pub const CREATED: &str = "Created";
    pub const ADOPTED: &str = "Adopted";
    pub const CREATING: &str = "Creating";
    pub const WAITING_FOR_VISIBILITY: &str = "WaitingForVisibility";
    pub const CREATE_UNCERTAIN: &str = "CreateUncertain";
    pub const NOT_VISIBLE: &str = "NotVisible";
    pub const CREATE_REJECTED: &str = "CreateRejected";
    pub const TOPIC_NOT_FOUND: &str = "TopicNotFound";
    pub const TOPIC_MISSING: &str = "TopicMissing";
    pub const PROXY_NOT_FOUND: &str = "ProxyNotFound";
    pub const PROXY_NOT_ALLOWED: &str = "ProxyNotAllowed";
    pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";
    pub const SCOPE_NOT_ALLOWED: &str = "ScopeNotAllowed";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const RESOURCE_CONFLICT: &str = "ResourceConflict";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const RETRYING: &str = "Retrying";
    /// KafkaRestProxy only: network error, timeout, 5xx or throttling on the way to the proxy
    /// or the token endpoint (topics report the same failures as `Retrying`).
    pub const UNREACHABLE: &str = "Unreachable";
    pub const RECONCILED: &str = "Reconciled";
    pub const PAUSED: &str = "Paused";
    pub const IN_SYNC: &str = "InSync";
    pub const DRIFTED: &str = "Drifted";
}

/// The message of a topic whose create was just accepted.
const CREATING_MESSAGE: &str = "the proxy accepted the create; waiting for the topic to be listed";

/// The message of a create without a clear answer. Condition messages carry no per-request
/// text (error bodies, request ids, times, countdowns): each change of a message is a status
/// write, and a failing period should cost a topic at most two.
pub const CREATE_UNCERTAIN_MESSAGE: &str = "the create got no clear answer (the proxy failed, or the answer was lost); waiting to see whether the topic appears before sending it again";

/// The message of a created topic the proxy's list does not show yet.
const WAITING_MESSAGE: &str = "the proxy accepted the create (status.createRequestedAt); its topic list does not show the topic yet";

/// How long a created topic stays `Creating` before it is reported `WaitingForVisibility`.
pub const CREATING_GRACE: Duration = Duration::from_secs(3);

/// Operator settings the plan depends on.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// How long a created topic may take to appear before it is reported `NotVisible`.
    pub visibility_timeout: Duration,
    /// How long a topic that existed must stay missing before it is created again.
    pub recreate_grace: Duration,
    /// How often a Ready topic is described again.
    pub resync_interval: Duration,
    /// How long after a create without a clear answer (5xx, timeout) the topic is looked up and,
    /// if still absent, created again. Safe: the proxy refuses to create an existing topic.
    pub uncertain_retry: Duration,
}

impl Default for PlanSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(600),
            recreate_grace: Duration::from_secs(300),
            resync_interval: Duration::from_secs(600),
            uncertain_retry: Duration::from_secs(30),
        }
    }
}

/// The validated, defaulted spec.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTopic {
    pub topic_name: String,
    /// The proxy as "namespace/name".
    pub proxy: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i32>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub policy: ManagementPolicy,
}

/// What to send in a create call.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateRequest {
    pub topic_name: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i32>,
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// Result of a create call, as the plan needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateOutcome {
    /// 2xx: the proxy accepted it.
    Accepted,
    /// The proxy answered with an error status: nothing was created (or it already existed).
    /// `cause` is what the answer says about why (see [`classify_refusal`]).
    Rejected { message: String, cause: Refusal },
    /// No clear answer (5xx, timeout, connection lost after sending): it may have been created.
    Uncertain { message: String },
}

/// Why the proxy refused a create, as far as its answer tells. The proxy's error bodies are
/// undocumented, so this is a reading of the status code and the text, and every class is
/// checked against what the cluster shows before anything is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The topic exists already (HTTP 409, or the answer says it exists): time fixes this — the
    /// topic shows up once the proxy's caches catch up.
    Exists,
    /// A topic config was refused; `key` when the answer names one of the spec's keys.
    Config { key: Option<String> },
    /// The request itself: the name, the partition count or the replication factor.
    Request,
    /// The answer gives no reason.
    Unclear,
}

/// Reads a refused create's answer: HTTP 409 or a text saying the topic exists → `Exists`; a
/// text naming one of the request's config keys (or speaking of a config) → `Config`; a text
/// about partitions, the replication factor or the name, or calling the request invalid →
/// `Request`; anything else → `Unclear`. The topic's own name is removed from the text first,
/// so that a name like `retention.ms-audit` is not mistaken for a config key.
pub fn classify_refusal(
    status: u16,
    body: &str,
    topic_name: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Refusal {
    if status == 409 {
        return Refusal::Exists;
    }
    let text = if topic_name.is_empty() {
        body.to_ascii_lowercase()
    } else {
        body.replace(topic_name, "").to_ascii_lowercase()
    };
    // The longest key first: `retention.ms` must not win over `local.retention.ms`.
    let mut keys: Vec<&String> = config.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    if let Some(key) = keys
        .into_iter()
        .find(|k| text.contains(&k.to_ascii_lowercase()))
    {
        return Refusal::Config {
            key: Some(key.clone()),
        };
    }
    if text.contains("exist") {
        return Refusal::Exists;
    }
    if text.contains("config") {
        return Refusal::Config { key: None };
    }
    if ["partition", "replication", "name", "invalid"]
        .iter()
        .any(|w| text.contains(w))
    {
        return Refusal::Request;
    }
    Refusal::Unclear
}

/// Result of a describe call.
#[derive(Clone, Debug, PartialEq)]
pub enum Described {
    Found(Vec<PartitionDetail>),
    NotFound,
}

/// What the reconciler has observed so far in this reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Whether the (shared, cached) topic list contains the name.
    pub listed: bool,
    /// A description this reconcile made.
    pub described: Option<Described>,
    /// Whether `described` is a fresh call of this reconcile (true) or reused (false).
    pub described_now: bool,
    /// The result of a create this reconcile sent.
    pub created: Option<CreateOutcome>,
}

/// A Kubernetes Event to publish about the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

impl EventSpec {
    fn normal(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            note: note.into(),
        }
    }
    fn warning(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            note: note.into(),
        }
    }
}

/// This process's last look at a topic: when it described it — or, right after it started and
/// trusting the status a previous process wrote, a time chosen so that the first describe
/// falls due at a random point within the resync interval. What the look saw is the status it
/// produced, so only the time and the endpoint are kept (a few bytes per topic, however many
/// partitions it has).
#[derive(Clone, Debug, PartialEq)]
pub struct LastLook {
    pub at: Timestamp,
    /// The endpoint the look went to: a look at another cluster says nothing.
    pub endpoint: String,
}

/// What the reconciler should remember about its look at the topic.
#[derive(Clone, Debug, PartialEq)]
pub enum LookUpdate {
    Keep,
    Remember(Box<LastLook>),
    Forget,
}

/// The end of a reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Finish {
    pub status: KafkaTopicStatus,
    pub events: Vec<EventSpec>,
    /// When to reconcile again (before jitter).
    pub requeue_after: Duration,
    /// The look to remember for the next reconcile.
    pub look: LookUpdate,
}

/// The next step.
// One Decision exists per step of one reconcile and is consumed at once: boxing the finish
// would cost an allocation per reconcile to save bytes nobody holds.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Describe,
    Create {
        request: CreateRequest,
        recreation: bool,
    },
    Finish(Finish),
}

/// Why a reconcile could not reach the proxy, or must not.
#[derive(Clone, Debug, PartialEq)]
pub enum Blocked {
    Paused,
    InvalidSpec(String),
    ProxyNotFound(String),
    ProxyNotAllowed(String),
    /// The proxy's endpoint or authority is off the operator's allowlists.
    EndpointNotAllowed(String),
    /// The proxy's scope is off the operator's allowlist.
    ScopeNotAllowed(String),
    Conflict {
        owner: String,
    },
    /// A Secret the proxy names does not exist.
    SecretNotFound(String),
    CredentialsInvalid(String),
    AuthenticationFailed(String),
    Forbidden(String),
    /// A transient failure (5xx, timeout, throttling); `retry_after` from the server if any.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

/// Checks the spec (Kafka naming, config values) and the immutability rules against what the
/// status recorded — admission enforces the same rules, but objects stored before a rule existed,
/// or on a cluster without CEL, reach the operator anyway.
pub fn validate(topic: &KafkaTopic) -> Result<DesiredTopic, String> {
    let topic_name = topic.kafka_name();
    validate_topic_name(&topic_name).map_err(|e| format!("spec.topicName: {e}"))?;
    let config = match &topic.spec.config {
        Some(c) => {
            let normalized = normalize_config(c)?;
            crate::crd::topic_config::check_config(c)?;
            normalized
        }
        None => serde_json::Map::new(),
    };
    let (ns, name) = topic.proxy_key();
    let proxy = format!("{ns}/{name}");
    if let Some(status) = &topic.status {
        if let Some(previous) = status.topic_name.as_deref().filter(|p| *p != topic_name) {
            return Err(format!(
                "spec.topicName: the topic name changed from {previous:?} to {topic_name:?}, but a topic cannot be renamed; restore it or create a new KafkaTopic"
            ));
        }
        if let Some(previous) = status.proxy.as_deref().filter(|p| *p != proxy) {
            return Err(format!(
                "spec.proxyRef: the proxy changed from {previous} to {proxy}, but a topic cannot move between clusters; restore it or create a new KafkaTopic"
            ));
        }
    }
    Ok(DesiredTopic {
        topic_name,
        proxy,
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        config,
        policy: topic.policy(),
    })
}

/// Everything [`decide`] reads.
pub struct PlanInput<'a> {
    pub generation: Option<i64>,
    pub desired: &'a DesiredTopic,
    pub proxy_endpoint: &'a str,
    pub previous: &'a KafkaTopicStatus,
    pub now: Timestamp,
    pub settings: &'a PlanSettings,
    /// This process's last look at the topic, if it has one.
    pub last_look: Option<&'a LastLook>,
    /// When this process has not looked at the topic yet: how far into the resync interval its
    /// first describe goes if the status shows a Ready topic of the current generation (a
    /// random share, chosen by the caller, so that a restart spreads its describes). `None`
    /// describes at once.
    pub first_look_after: Option<Duration>,
    /// A create this process sent for this object that the status does not record (the status
    /// write failed): it is not sent again before its time.
    pub sent_create: Option<SentCreate>,
}

/// A create this process sent, as remembered outside the status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SentCreate {
    pub at: Timestamp,
    /// It got no clear answer.
    pub uncertain: bool,
}

/// The previous status with a create that it does not record yet: sent at `at`, and — one
/// without a clear answer — uncertain, so that it is retried if nothing appears.
fn with_sent_create(input: &PlanInput<'_>) -> Option<KafkaTopicStatus> {
    let sent = input.sent_create?;
    let prev = input.previous;
    if prev.create_requested_at.is_some() || prev.partitions.is_some() {
        return None;
    }
    let mut status = prev.clone();
    status.create_requested_at = Some(Time(sent.at));
    if sent.uncertain {
        status.conditions.retain(|c| c.type_ != READY);
        status
            .conditions
            .push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: READY.into(),
                status: "False".into(),
                reason: reason::CREATE_UNCERTAIN.into(),
                message: CREATE_UNCERTAIN_MESSAGE.into(),
                last_transition_time: Time(sent.at),
                observed_generation: input.generation,
            });
    }
    Some(status)
}

fn elapsed_since(now: Timestamp, then: &Time) -> Duration {
    let d = now.as_millisecond() - then.0.as_millisecond();
    Duration::from_millis(u64::try_from(d).unwrap_or(0))
}

fn previous_ready_reason(status: &KafkaTopicStatus) -> Option<&str> {
    find_condition(&status.conditions, READY).map(|c| c.reason.as_str())
}

/// Poll interval while waiting for a created topic to appear: half the time already waited,
/// from 0.5 s up to 30 s (0.5, 0.5, 0.75, 1.1, 1.7 s …). Expressed through the time waited so
/// that it survives restarts; cheap because a poll reads the shared list, not the topic.
fn visibility_poll(waited: Duration) -> Duration {
    (waited / 2).clamp(Duration::from_millis(500), Duration::from_secs(30))
}

/// How often a topic with policy Observe that does not exist is looked for again: the cadence
/// of a topic waiting to appear (at most 30 s), never slower than the resync interval. It reads
/// the shared list, so it costs no proxy call of its own.
pub fn observe_poll(settings: &PlanSettings) -> Duration {
    settings
        .resync_interval
        .min(Duration::from_secs(30))
        .max(Duration::from_secs(1))
}

/// How old a description may be and still stand in for a describe: the resync interval less
/// its jitter, so that the periodic resync always describes and only reconciles triggered in
/// between (a proxy or Secret change, a restart) reuse it.
pub fn description_lifetime(settings: &PlanSettings) -> Duration {
    settings.resync_interval - settings.resync_interval / 10
}

/// Whether the proxy's endpoint differs from the one the status was observed through: the
/// KafkaRestProxy now points at another cluster.
pub fn cluster_changed(input: &PlanInput<'_>) -> bool {
    input
        .previous
        .proxy_endpoint
        .as_deref()
        .is_some_and(|e| e != input.proxy_endpoint)
}

/// The previous status as seen from a new cluster: what the old one showed (its partitions,
/// a create sent to it, a disappearance from it) says nothing about the new one. The conditions
/// stay, so that a topic Ready on both keeps its `lastTransitionTime`.
fn as_seen_from_new_cluster(prev: &KafkaTopicStatus) -> KafkaTopicStatus {
    KafkaTopicStatus {
        observed_generation: prev.observed_generation,
        topic_name: prev.topic_name.clone(),
        proxy: prev.proxy.clone(),
        conditions: prev.conditions.clone(),
        ..Default::default()
    }
}

/// Decides the next step of a reconcile.
pub fn decide(input: &PlanInput<'_>, obs: &Observation) -> Decision {
    if cluster_changed(input) {
        let fresh = as_seen_from_new_cluster(input.previous);
        let moved = PlanInput {
            previous: &fresh,
            last_look: None,
            first_look_after: None,
            sent_create: None,
            ..*input
        };
        return remember_look(&moved, obs, decide_here(&moved, obs));
    }
    if let Some(recorded) = with_sent_create(input) {
        let with_create = PlanInput {
            previous: &recorded,
            sent_create: None,
            ..*input
        };
        return remember_look(&with_create, obs, decide_here(&with_create, obs));
    }
    remember_look(input, obs, decide_here(input, obs))
}

/// A description made in this reconcile is remembered; a topic described as absent forgets
/// the last one.
fn remember_look(input: &PlanInput<'_>, obs: &Observation, decision: Decision) -> Decision {
    let Decision::Finish(mut f) = decision else {
        return decision;
    };
    if f.look == LookUpdate::Keep && obs.described_now {
        f.look = match &obs.described {
            Some(Described::Found(_)) => LookUpdate::Remember(Box::new(LastLook {
                at: input.now,
                endpoint: input.proxy_endpoint.to_string(),
            })),
            Some(Described::NotFound) => LookUpdate::Forget,
            None => LookUpdate::Keep,
        };
    }
    Decision::Finish(f)
}

/// Whether a listed topic's status can stand in for a describe: the status is what this
/// process's recent description produced, or — right after start — what a previous process
/// wrote. Returns when the describe falls due, and the look to remember.
fn reusable(input: &PlanInput<'_>, obs: &Observation) -> Option<(Duration, Option<LastLook>)> {
    if !obs.listed || obs.created.is_some() || obs.described.is_some() {
        return None;
    }
    let prev = input.previous;
    // Ready, settled (not retrying after a failure), of the current generation, and observed.
    let status_current = find_condition(&prev.conditions, READY)
        .is_some_and(|c| c.status == "True")
        && find_condition(&prev.conditions, RECONCILING).is_none_or(|c| c.status != "True")
        && prev.observed_generation == input.generation
        && prev.partitions.is_some()
        && prev.missing_since.is_none();
    if !status_current {
        return None;
    }
    let lifetime = description_lifetime(input.settings);
    match input.last_look {
        Some(look) if look.endpoint == input.proxy_endpoint => {
            let age = elapsed_since(input.now, &Time(look.at));
            (age < lifetime).then(|| ((lifetime - age).max(Duration::from_secs(1)), None))
        }
        Some(_) => None,
        None => {
            let spread = input.first_look_after?.min(lifetime);
            // Falls due `spread` from now.
            let back = i64::try_from((lifetime - spread).as_millis()).unwrap_or(i64::MAX);
            let at = Timestamp::from_millisecond(input.now.as_millisecond().saturating_sub(back))
                .unwrap_or(input.now);
            Some((
                spread.max(Duration::from_secs(1)),
                Some(LastLook {
                    at,
                    endpoint: input.proxy_endpoint.to_string(),
                }),
            ))
        }
    }
}

fn decide_here(input: &PlanInput<'_>, obs: &Observation) -> Decision {
    let d = input.desired;
    let prev = input.previous;

    if let Some((due_in, remember)) = reusable(input, obs) {
        let Decision::Finish(mut f) = finish_unchanged(input, None, due_in) else {
            return Decision::Describe;
        };
        if let Some(look) = remember {
            f.look = LookUpdate::Remember(Box::new(look));
        }
        return Decision::Finish(f);
    }

    // A create was sent in this reconcile: record it and report.
    if let Some(created) = &obs.created {
        return match created {
            CreateOutcome::Accepted => {
                let mut status = base_status(input);
                status.create_requested_at = Some(Time(input.now));
                let events = vec![EventSpec::normal(
                    reason::CREATED,
                    format!(
                        "created topic {} through {}",
                        d.topic_name, input.proxy_endpoint
                    ),
                )];
                finish_waiting(
                    input,
                    status,
                    reason::CREATING,
                    CREATING_MESSAGE.into(),
                    events,
                    Duration::from_millis(500),
                )
            }
            CreateOutcome::Uncertain { message } => {
                let mut status = base_status(input);
                status.create_requested_at = Some(Time(input.now));
                tracing::debug!(topic = %d.topic_name, error = %message, "create without a clear answer");
                finish_waiting(
                    input,
                    status,
                    reason::CREATE_UNCERTAIN,
                    CREATE_UNCERTAIN_MESSAGE.into(),
                    vec![],
                    Duration::from_secs(1),
                )
            }
            CreateOutcome::Rejected { message, cause } => match &obs.described {
                // "create answered non-2xx → re-observe; if the topic exists, adopt it".
                Some(Described::Found(parts)) => finish_present(input, parts, obs),
                Some(Described::NotFound) => refused(input, obs, message, cause),
                None => Decision::Describe,
            },
        };
    }

    match &obs.described {
        Some(Described::Found(parts)) => return finish_present(input, parts, obs),
        Some(Described::NotFound) => {}
        None => {
            // Listed (or known to have existed, or past the visibility wait): look closer.
            let existed = prev.partitions.is_some();
            let waiting_past_timeout = prev
                .create_requested_at
                .as_ref()
                .is_some_and(|t| elapsed_since(input.now, t) >= input.settings.visibility_timeout);
            if obs.listed || existed || waiting_past_timeout {
                return Decision::Describe;
            }
        }
    }

    // Not present: neither listed-and-described nor described.
    if let Some(requested) = &prev.create_requested_at
        && prev.partitions.is_none()
        && d.policy == ManagementPolicy::Create
    {
        let waited = elapsed_since(input.now, requested);
        let uncertain = previous_ready_reason(prev) == Some(reason::CREATE_UNCERTAIN);
        if uncertain
            && waited >= input.settings.uncertain_retry
            && d.policy == ManagementPolicy::Create
        {
            // The create may not have happened: look once more, then send it again. If it did
            // happen and is not yet visible, the proxy refuses the second one and nothing is lost.
            return match obs.described {
                None => Decision::Describe,
                Some(_) => Decision::Create {
                    request: create_request(d),
                    recreation: false,
                },
            };
        }
        if waited < input.settings.visibility_timeout {
            let status = base_status(input);
            let (reason, message) = if previous_ready_reason(prev) == Some(reason::CREATE_UNCERTAIN)
            {
                (
                    reason::CREATE_UNCERTAIN,
                    CREATE_UNCERTAIN_MESSAGE.to_string(),
                )
            } else if previous_ready_reason(prev) == Some(reason::CREATING)
                && waited < CREATING_GRACE
            {
                // Most topics appear within seconds: keep `Creating` (unchanged, so no status
                // write) and report `WaitingForVisibility` only when it takes longer.
                (reason::CREATING, CREATING_MESSAGE.to_string())
            } else {
                // Neither the time waited nor the create time: polling while waiting writes no
                // status (the time is in status.createRequestedAt).
                (reason::WAITING_FOR_VISIBILITY, WAITING_MESSAGE.to_string())
            };
            return finish_waiting(
                input,
                status,
                reason,
                message,
                vec![],
                visibility_poll(waited),
            );
        }
        // Past the visibility timeout. A create without a clear answer is tried again: nothing
        // appeared, so it most likely did not happen. An accepted one is reported.
        if previous_ready_reason(prev) == Some(reason::CREATE_UNCERTAIN)
            && d.policy == ManagementPolicy::Create
        {
            return Decision::Create {
                request: create_request(d),
                recreation: false,
            };
        }
        let status = base_status(input);
        let message = format!(
            "the proxy accepted the create (status.createRequestedAt) but after {}s neither lists nor describes topic {}; still checking",
            input.settings.visibility_timeout.as_secs(),
            d.topic_name
        );
        let events = if previous_ready_reason(prev) == Some(reason::NOT_VISIBLE) {
            vec![]
        } else {
            vec![EventSpec::warning(reason::NOT_VISIBLE, message.clone())]
        };
        return finish_stalled(
            input,
            status,
            reason::NOT_VISIBLE,
            message,
            events,
            Duration::from_secs(60),
        );
    }

    if let Some(since) = waiting_for_existing(prev)
        && d.policy == ManagementPolicy::Create
    {
        // A create was refused because the topic exists, and no create of ours is on record:
        // wait for the proxy to show it (then it is adopted). Now and then the create is sent
        // again — if the topic has gone meanwhile it is created; if the proxy still says it
        // exists, the wait goes on.
        let waited = elapsed_since(input.now, &since);
        if waited >= input.settings.uncertain_retry {
            return match obs.described {
                None => Decision::Describe,
                Some(_) => Decision::Create {
                    request: create_request(d),
                    recreation: false,
                },
            };
        }
        let message = find_condition(&prev.conditions, READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        return finish_waiting(
            input,
            base_status(input),
            reason::WAITING_FOR_VISIBILITY,
            message,
            vec![],
            visibility_poll(waited)
                .min(input.settings.uncertain_retry.saturating_sub(waited))
                .max(Duration::from_millis(500)),
        );
    }

    if d.policy == ManagementPolicy::Observe {
        // An observed topic that existed is not reported gone on one lagging node's word
        // either: only when list and describe agree through the grace period.
        if prev.partitions.is_some() {
            if obs.listed {
                return finish_unchanged(input, None, Duration::from_secs(1));
            }
            let since = prev.missing_since.clone().unwrap_or(Time(input.now));
            let missing_for = elapsed_since(input.now, &since);
            if missing_for < input.settings.recreate_grace {
                let remaining = input.settings.recreate_grace.saturating_sub(missing_for);
                let poll = (input.settings.recreate_grace / 4)
                    .min(remaining)
                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                return finish_unchanged(input, Some(since), poll);
            }
        }
        // Someone has to create it (Stalled); it is looked for on the shared list's cadence,
        // so that it turns Ready by itself soon after it appears.
        let status = base_status(input);
        return finish_stalled(
            input,
            status,
            reason::TOPIC_NOT_FOUND,
            format!(
                "topic {} does not exist and managementPolicy is Observe: create it on the cluster (or set managementPolicy: Create); it is looked for again every {}s",
                d.topic_name,
                observe_poll(input.settings).as_secs()
            ),
            vec![],
            observe_poll(input.settings),
        );
    }

    if prev.partitions.is_some() {
        // The topic existed and describe says 404. The proxy runs on several management nodes
        // whose caches lag each other, so one answer proves nothing: the topic counts as gone
        // only while the list and describe agree, observation after observation, for the whole
        // grace period. Until then nothing visible changes; any sighting starts over.
        if obs.listed {
            return finish_unchanged(input, None, Duration::from_secs(1));
        }
        let since = prev.missing_since.clone().unwrap_or(Time(input.now));
        let missing_for = elapsed_since(input.now, &since);
        let reported = previous_ready_reason(prev) == Some(reason::TOPIC_MISSING);
        if missing_for < input.settings.recreate_grace {
            let remaining = input.settings.recreate_grace.saturating_sub(missing_for);
            let poll = (input.settings.recreate_grace / 4)
                .min(remaining)
                .clamp(Duration::from_secs(1), Duration::from_secs(30));
            return finish_unchanged(input, Some(since), poll);
        }
        if reported {
            // Reported missing on an earlier reconcile and still gone on this one.
            return Decision::Create {
                request: create_request(d),
                recreation: true,
            };
        }
        let mut status = base_status(input);
        copy_observed(prev, &mut status);
        status.missing_since = Some(since.clone());
        return finish_waiting(
            input,
            status,
            reason::TOPIC_MISSING,
            format!(
                "topic {} existed but the cluster no longer has it: neither listed nor described for {}s (since status.missingSince); it is created again (empty) if the next look agrees",
                d.topic_name,
                input.settings.recreate_grace.as_secs()
            ),
            vec![],
            Duration::from_secs(1),
        );
    }

    Decision::Create {
        request: create_request(d),
        recreation: false,
    }
}

/// Since when a topic has been waiting for the proxy to show a topic it says exists, when no
/// create of ours is on record (`Ready` False `WaitingForVisibility` without
/// `createRequestedAt`).
fn waiting_for_existing(prev: &KafkaTopicStatus) -> Option<Time> {
    if prev.create_requested_at.is_some() || prev.partitions.is_some() {
        return None;
    }
    find_condition(&prev.conditions, READY)
        .filter(|c| c.status == "False" && c.reason == reason::WAITING_FOR_VISIBILITY)
        .map(|c| c.last_transition_time.clone())
}

/// A refused create, and describe says 404.
fn refused(input: &PlanInput<'_>, obs: &Observation, message: &str, cause: &Refusal) -> Decision {
    let d = input.desired;
    let prev = input.previous;
    // Listed but not described: a lagging management node; the topic exists.
    let cause = if obs.listed { &Refusal::Exists } else { cause };
    let stall = |why: String| {
        // An Event only when the situation is new, not on every retry.
        let same = find_condition(&prev.conditions, STALLED).is_some_and(|c| {
            c.status == "True" && c.reason == reason::CREATE_REJECTED && c.message == why
        });
        let events = if same {
            vec![]
        } else {
            vec![EventSpec::warning(reason::CREATE_REJECTED, why.clone())]
        };
        finish_stalled(
            input,
            base_status(input),
            reason::CREATE_REJECTED,
            why,
            events,
            Duration::from_secs(60),
        )
    };
    match cause {
        Refusal::Config { key: Some(key) } => stall(format!(
            "the cluster refused config {key} of topic {}: {message}",
            d.topic_name
        )),
        Refusal::Config { key: None } => stall(format!(
            "the cluster refused a config of topic {}: {message}",
            d.topic_name
        )),
        Refusal::Request => stall(format!(
            "the proxy refused to create topic {} (name, partitions or replication factor): {message}",
            d.topic_name
        )),
        Refusal::Unclear
            if waiting_for_existing(prev).is_some_and(|since| {
                elapsed_since(input.now, &since) >= input.settings.visibility_timeout
            }) =>
        {
            // No reason given, and no topic appeared in all that time: not something time fixes.
            stall(format!(
                "the proxy refused to create topic {} and it has not appeared for {}s: {message}",
                d.topic_name,
                input.settings.visibility_timeout.as_secs()
            ))
        }
        Refusal::Exists | Refusal::Unclear => {
            let why = if *cause == Refusal::Exists {
                "the proxy says it already exists"
            } else {
                "the proxy refused the create without saying why"
            };
            let message = format!(
                "{why} ({message}) but does not show topic {} yet; waiting for it to appear",
                d.topic_name
            );
            finish_waiting(
                input,
                base_status(input),
                reason::WAITING_FOR_VISIBILITY,
                message,
                vec![],
                Duration::from_secs(1),
            )
        }
    }
}

/// Everything as it was (the conditions, the observed topic), apart from `missing_since`: used
/// while a topic that existed looks missing but that is not yet established.
fn finish_unchanged(
    input: &PlanInput<'_>,
    missing_since: Option<Time>,
    requeue_after: Duration,
) -> Decision {
    let prev = input.previous;
    let mut status = base_status(input);
    copy_observed(prev, &mut status);
    status.missing_since = missing_since;
    let keep = |type_: &'static str, default: DesiredCondition| {
        find_condition(&prev.conditions, type_)
            .map(|c| DesiredCondition {
                type_,
                status: c.status == "True",
                reason: leak_reason(&c.reason),
                message: c.message.clone(),
            })
            .unwrap_or(default)
    };
    let mut conditions = vec![
        keep(
            READY,
            DesiredCondition::new(READY, true, reason::RECONCILED, ""),
        ),
        keep(
            RECONCILING,
            DesiredCondition::new(RECONCILING, false, reason::RECONCILED, ""),
        ),
        keep(
            STALLED,
            DesiredCondition::new(STALLED, false, reason::RECONCILED, ""),
        ),
    ];
    keep_drifted(prev, &mut conditions);
    status.conditions = merge_conditions(
        &prev.conditions,
        &conditions,
        input.generation,
        &Time(input.now),
    );
    Decision::Finish(Finish {
        status,
        events: vec![],
        requeue_after,
        look: LookUpdate::Keep,
    })
}

/// Events and status after a re-creation was sent (the caller announces it before sending).
pub fn recreation_event(d: &DesiredTopic) -> EventSpec {
    EventSpec::warning(
        "TopicRecreated",
        format!(
            "topic {} disappeared from the cluster and was created again: its data and consumer offsets are gone",
            d.topic_name
        ),
    )
}

fn create_request(d: &DesiredTopic) -> CreateRequest {
    CreateRequest {
        topic_name: d.topic_name.clone(),
        partitions: d.partitions,
        replication_factor: d.replication_factor,
        config: d.config.clone(),
    }
}

/// Status fields every outcome carries.
fn base_status(input: &PlanInput<'_>) -> KafkaTopicStatus {
    KafkaTopicStatus {
        observed_generation: input.generation,
        topic_name: Some(input.desired.topic_name.clone()),
        proxy: Some(input.desired.proxy.clone()),
        proxy_endpoint: Some(input.proxy_endpoint.to_string()),
        create_requested_at: input.previous.create_requested_at.clone(),
        ..Default::default()
    }
}

fn copy_observed(from: &KafkaTopicStatus, to: &mut KafkaTopicStatus) {
    to.partitions = from.partitions;
    to.replication_factor = from.replication_factor;
    to.under_replicated_partitions = from.under_replicated_partitions;
    to.offline_partitions = from.offline_partitions;
    to.partition_details = from.partition_details.clone();
    to.partition_details_truncated = from.partition_details_truncated;
    to.config_state = from.config_state;
}

/// What the drift message says about `spec.config`: the proxy cannot read a topic's config, so
/// a non-empty one is never called matching.
pub const CONFIG_NOT_COMPARED: &str =
    "spec.config cannot be compared: the REST proxy cannot read a topic's config";

/// `status.configState` of a topic that is present: none without spec.config; `Applied` when
/// this operator's create (with spec.config) took effect; `Unverifiable` when it was adopted.
pub fn config_state(d: &DesiredTopic, created_by_us: bool) -> Option<ConfigState> {
    if d.config.is_empty() {
        None
    } else if created_by_us {
        Some(ConfigState::Applied)
    } else {
        Some(ConfigState::Unverifiable)
    }
}

/// Summary of a described topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSummary {
    pub partitions: i32,
    pub replication_factor: i32,
    pub under_replicated: i32,
    pub offline: i32,
}

/// Partition count, replication factor (smallest replica count), under-replicated and offline
/// partitions of a described topic.
pub fn summarize(parts: &[PartitionDetail]) -> TopicSummary {
    let count = |pred: &dyn Fn(&PartitionDetail) -> bool| {
        i32::try_from(parts.iter().filter(|p| pred(p)).count()).unwrap_or(i32::MAX)
    };
    TopicSummary {
        partitions: i32::try_from(parts.len()).unwrap_or(i32::MAX),
        replication_factor: parts
            .iter()
            .map(|p| i32::try_from(p.replicas.len()).unwrap_or(i32::MAX))
            .min()
            .unwrap_or(0),
        under_replicated: count(&|p| p.isr.len() < p.replicas.len()),
        offline: count(&|p| p.leader.is_none()),
    }
}

/// `status.partitionDetails` within its bounds: at most [`MAX_PARTITION_DETAILS`] partitions,
/// [`MAX_REPLICAS_IN_STATUS`] broker ids per list and [`PARTITION_DETAILS_BUDGET`] bytes of
/// JSON. Returns the details to show (or none) and whether anything was left out.
pub fn bounded_details(parts: &[PartitionDetail]) -> (Option<Vec<PartitionDetail>>, bool) {
    if parts.len() > MAX_PARTITION_DETAILS {
        return (None, true);
    }
    let mut cut = false;
    let mut details: Vec<PartitionDetail> = parts
        .iter()
        .map(|p| {
            let mut p = p.clone();
            for list in [&mut p.replicas, &mut p.isr] {
                if list.len() > MAX_REPLICAS_IN_STATUS {
                    list.truncate(MAX_REPLICAS_IN_STATUS);
                    cut = true;
                }
            }
            p
        })
        .collect();
    details.sort_by_key(|p| p.partition);
    let size = serde_json::to_vec(&details).map_or(usize::MAX, |v| v.len());
    if size > PARTITION_DETAILS_BUDGET {
        return (None, true);
    }
    (Some(details), cut)
}

/// Differences between the spec and what the cluster reports, in words.
pub fn drift(d: &DesiredTopic, s: &TopicSummary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = d.partitions.filter(|p| *p != s.partitions) {
        out.push(format!(
            "spec.partitions is {p} but the cluster reports {}",
            s.partitions
        ));
    }
    if let Some(rf) = d
        .replication_factor
        .filter(|rf| *rf != s.replication_factor)
    {
        out.push(format!(
            "spec.replicationFactor is {rf} but the cluster reports {}",
            s.replication_factor
        ));
    }
    out
}

fn finish_present(
    input: &PlanInput<'_>,
    parts: &[PartitionDetail],
    _obs: &Observation,
) -> Decision {
    let d = input.desired;
    let prev = input.previous;
    let summary = summarize(parts);
    let mut status = base_status(input);
    status.partitions = Some(summary.partitions);
    status.replication_factor = Some(summary.replication_factor);
    status.under_replicated_partitions = Some(summary.under_replicated);
    status.offline_partitions = Some(summary.offline);
    let (details, truncated) = bounded_details(parts);
    status.partition_details = details;
    status.partition_details_truncated = truncated.then_some(true);

    let mut events = Vec::new();
    // Created by this operator (a create request is on record) or adopted.
    let ready_reason = if prev.create_requested_at.is_some() {
        reason::CREATED
    } else {
        reason::ADOPTED
    };
    let was_present = prev.partitions.is_some();
    if !was_present
        && ready_reason == reason::CREATED
        && previous_ready_reason(prev) == Some(reason::CREATE_UNCERTAIN)
    {
        events.push(EventSpec::normal(
            reason::CREATED,
            format!(
                "the create of topic {} that got no clear answer took effect",
                d.topic_name
            ),
        ));
    }
    if !was_present && ready_reason == reason::ADOPTED {
        events.push(EventSpec::normal(
            reason::ADOPTED,
            format!(
                "topic {} already existed on the cluster; observing it",
                d.topic_name
            ),
        ));
    }
    let ready_message = format!(
        "topic {}: {} partitions, replication factor {}, {} under-replicated, {} offline",
        d.topic_name,
        summary.partitions,
        summary.replication_factor,
        summary.under_replicated,
        summary.offline
    );

    status.config_state = config_state(d, ready_reason == reason::CREATED);
    let drifts = drift(d, &summary);
    let drift_condition = if drifts.is_empty() {
        if d.config.is_empty() {
            DesiredCondition::new(
                DRIFTED,
                false,
                reason::IN_SYNC,
                "the cluster matches the spec",
            )
        } else {
            DesiredCondition::new(
                DRIFTED,
                false,
                reason::IN_SYNC,
                format!("partitions and replication factor match the spec; {CONFIG_NOT_COMPARED}"),
            )
        }
    } else {
        let config_note = if d.config.is_empty() {
            String::new()
        } else {
            format!("; {CONFIG_NOT_COMPARED}")
        };
        let message = format!(
            "{}; the REST proxy cannot change a topic, so this is only reported{config_note}",
            drifts.join("; ")
        );
        let previous_message = find_condition(&prev.conditions, DRIFTED)
            .filter(|c| c.status == "True")
            .map(|c| c.message.as_str());
        if previous_message != Some(message.as_str()) {
            events.push(EventSpec::warning(reason::DRIFTED, message.clone()));
        }
        DesiredCondition::new(DRIFTED, true, reason::DRIFTED, message)
    };

    let prev_urp = prev.under_replicated_partitions.unwrap_or(0);
    let prev_offline = prev.offline_partitions.unwrap_or(0);
    if summary.offline > 0 && prev_offline == 0 {
        events.push(EventSpec::warning(
            "PartitionsOffline",
            format!(
                "{} partitions of topic {} have no leader",
                summary.offline, d.topic_name
            ),
        ));
    }
    if summary.under_replicated > 0 && prev_urp == 0 {
        events.push(EventSpec::warning(
            "UnderReplicated",
            format!(
                "{} partitions of topic {} have fewer in-sync replicas than replicas",
                summary.under_replicated, d.topic_name
            ),
        ));
    }

    let conditions = vec![
        DesiredCondition::new(READY, true, ready_reason, ready_message),
        DesiredCondition::new(RECONCILING, false, reason::RECONCILED, ""),
        DesiredCondition::new(STALLED, false, reason::RECONCILED, ""),
        drift_condition,
    ];
    status.conditions = merge_conditions(
        &prev.conditions,
        &conditions,
        input.generation,
        &Time(input.now),
    );
    Decision::Finish(Finish {
        status,
        events,
        requeue_after: input.settings.resync_interval,
        look: LookUpdate::Keep,
    })
}

fn finish_waiting(
    input: &PlanInput<'_>,
    mut status: KafkaTopicStatus,
    reason: &'static str,
    message: String,
    events: Vec<EventSpec>,
    requeue_after: Duration,
) -> Decision {
    let conditions = vec![
        DesiredCondition::new(READY, false, reason, message.clone()),
        DesiredCondition::new(RECONCILING, true, reason, message),
        DesiredCondition::new(STALLED, false, reason::RECONCILED, ""),
    ];
    status.conditions = merge_conditions(
        &input.previous.conditions,
        &conditions,
        input.generation,
        &Time(input.now),
    );
    Decision::Finish(Finish {
        status,
        events,
        requeue_after,
        look: LookUpdate::Keep,
    })
}

fn finish_stalled(
    input: &PlanInput<'_>,
    status: KafkaTopicStatus,
    reason: &'static str,
    message: String,
    events: Vec<EventSpec>,
    requeue_after: Duration,
) -> Decision {
    finish_not_ready(input, status, reason, message, true, events, requeue_after)
}

fn finish_not_ready(
    input: &PlanInput<'_>,
    mut status: KafkaTopicStatus,
    reason: &'static str,
    message: String,
    stalled: bool,
    events: Vec<EventSpec>,
    requeue_after: Duration,
) -> Decision {
    let conditions = vec![
        DesiredCondition::new(READY, false, reason, message.clone()),
        DesiredCondition::new(RECONCILING, false, reason, ""),
        if stalled {
            DesiredCondition::new(STALLED, true, reason, message)
        } else {
            DesiredCondition::new(STALLED, false, reason::RECONCILED, "")
        },
    ];
    status.conditions = merge_conditions(
        &input.previous.conditions,
        &conditions,
        input.generation,
        &Time(input.now),
    );
    Decision::Finish(Finish {
        status,
        events,
        requeue_after,
        look: LookUpdate::Keep,
    })
}

/// The outcome when the reconcile cannot (or must not) talk to the proxy. `attempt` counts
/// consecutive failures of this object, for the backoff.
pub fn finish_blocked(
    topic: &KafkaTopic,
    blocked: &Blocked,
    now: Timestamp,
    settings: &PlanSettings,
    attempt: u32,
) -> Finish {
    let prev = topic.status.clone().unwrap_or_default();
    let generation = topic.metadata.generation;
    let mut status = prev.clone();
    status.observed_generation = generation;
    let ready_now = find_condition(&prev.conditions, READY).is_some_and(|c| c.status == "True");
    let now_t = Time(now);
    let backoff = exponential_backoff(attempt);

    let (conditions, events, requeue_after) = match blocked {
        Blocked::Paused => {
            // Keep Ready/Stalled as they were: pausing changes nothing on the cluster.
            let mut kept: Vec<DesiredCondition> = prev
                .conditions
                .iter()
                .filter(|c| c.type_ != PAUSED && c.type_ != RECONCILING)
                .filter_map(|c| {
                    known_type(&c.type_).map(|t| DesiredCondition {
                        type_: t,
                        status: c.status == "True",
                        reason: leak_reason(&c.reason),
                        message: c.message.clone(),
                    })
                })
                .collect();
            if find_condition(&prev.conditions, READY).is_none() {
                kept.push(DesiredCondition::new(
                    READY,
                    false,
                    reason::PAUSED,
                    "paused before the first reconcile",
                ));
            }
            if find_condition(&prev.conditions, STALLED).is_none() {
                kept.push(DesiredCondition::new(STALLED, false, reason::PAUSED, ""));
            }
            kept.push(DesiredCondition::new(
                RECONCILING,
                false,
                reason::PAUSED,
                "",
            ));
            kept.push(DesiredCondition::new(
                PAUSED,
                true,
                reason::PAUSED,
                format!(
                    "annotation {}=true: no calls to the proxy until it is removed",
                    crate::crd::PAUSED_ANNOTATION
                ),
            ));
            (kept, vec![], settings.resync_interval)
        }
        Blocked::Transient {
            message,
            retry_after,
        } => {
            let wait = retry_after.map_or(backoff, |r| r.max(Duration::from_secs(1)));
            // A Ready topic stays Ready, and a topic on its way (created, waiting to appear, or
            // after an uncertain create) keeps its progress: the plan reads it next time.
            const IN_PROGRESS: [&str; 4] = [
                reason::CREATING,
                reason::WAITING_FOR_VISIBILITY,
                reason::CREATE_UNCERTAIN,
                reason::TOPIC_MISSING,
            ];
            let kept = find_condition(&prev.conditions, READY)
                .filter(|c| ready_now || IN_PROGRESS.contains(&c.reason.as_str()));
            let ready = match kept {
                Some(c) => DesiredCondition {
                    type_: READY,
                    status: c.status == "True",
                    reason: leak_reason(&c.reason),
                    message: c.message.clone(),
                },
                None => DesiredCondition::new(READY, false, reason::RETRYING, message.clone()),
            };
            let mut conds = vec![
                ready,
                DesiredCondition::new(
                    RECONCILING,
                    true,
                    reason::RETRYING,
                    // No delay in the message: it would change on every retry and write status.
                    format!("{message}; retrying with backoff"),
                ),
                DesiredCondition::new(STALLED, false, reason::RECONCILED, ""),
            ];
            keep_drifted(&prev, &mut conds);
            (conds, vec![], wait)
        }
        other => {
            let (reason, message, event) = match other {
                Blocked::InvalidSpec(m) => (reason::INVALID_SPEC, m.clone(), false),
                Blocked::ProxyNotFound(m) => (reason::PROXY_NOT_FOUND, m.clone(), false),
                Blocked::ProxyNotAllowed(m) => (reason::PROXY_NOT_ALLOWED, m.clone(), false),
                Blocked::EndpointNotAllowed(m) => (reason::ENDPOINT_NOT_ALLOWED, m.clone(), false),
                Blocked::ScopeNotAllowed(m) => (reason::SCOPE_NOT_ALLOWED, m.clone(), false),
                Blocked::Conflict { owner } => (
                    reason::RESOURCE_CONFLICT,
                    format!(
                        "KafkaTopic {owner} already manages this topic on this proxy (it is older); this one is ignored"
                    ),
                    true,
                ),
                Blocked::SecretNotFound(m) => (reason::SECRET_NOT_FOUND, m.clone(), false),
                Blocked::CredentialsInvalid(m) => (reason::CREDENTIALS_INVALID, m.clone(), false),
                Blocked::AuthenticationFailed(m) => {
                    (reason::AUTHENTICATION_FAILED, m.clone(), true)
                }
                Blocked::Forbidden(m) => (reason::FORBIDDEN, m.clone(), true),
                Blocked::Paused | Blocked::Transient { .. } => unreachable_reason(),
            };
            let previous = find_condition(&prev.conditions, READY);
            let same_as_before =
                previous.is_some_and(|c| c.reason == reason && c.message == message);
            let events = if event && !same_as_before {
                vec![EventSpec::warning(reason, message.clone())]
            } else {
                vec![]
            };
            let mut conds = vec![
                DesiredCondition::new(READY, false, reason, message.clone()),
                DesiredCondition::new(RECONCILING, false, reason, ""),
                DesiredCondition::new(STALLED, true, reason, message),
            ];
            keep_drifted(&prev, &mut conds);
            // Configuration problems are fixed by a change that re-triggers the reconcile; a
            // slow backoff covers changes outside Kubernetes (group membership, AADSTS).
            let wait = match other {
                Blocked::AuthenticationFailed(_) | Blocked::Forbidden(_) => backoff,
                _ => settings.resync_interval.min(Duration::from_secs(300)),
            };
            (conds, events, wait)
        }
    };
    status.conditions = merge_conditions(&prev.conditions, &conditions, generation, &now_t);
    Finish {
        status,
        events,
        requeue_after,
        look: LookUpdate::Keep,
    }
}

// The match above covers these variants in the first arms; this keeps the compiler satisfied
// without a panic path.
fn unreachable_reason() -> (&'static str, String, bool) {
    (reason::RETRYING, String::new(), false)
}

fn keep_drifted(prev: &KafkaTopicStatus, conds: &mut Vec<DesiredCondition>) {
    if let Some(c) = find_condition(&prev.conditions, DRIFTED) {
        conds.push(DesiredCondition {
            type_: DRIFTED,
            status: c.status == "True",
            reason: leak_reason(&c.reason),
            message: c.message.clone(),
        });
    }
}

fn known_type(t: &str) -> Option<&'static str> {
    [READY, RECONCILING, STALLED, DRIFTED, PAUSED]
        .into_iter()
        .find(|k| *k == t)
}

/// Maps a stored reason back to its static string (reasons come from the fixed set above; an
/// unknown one, e.g. written by another version, becomes "Unknown").
fn leak_reason(r: &str) -> &'static str {
    use reason::*;
    const ALL: [&str; 24] = [
        CREATED,
        ADOPTED,
        CREATING,
        WAITING_FOR_VISIBILITY,
        CREATE_UNCERTAIN,
        NOT_VISIBLE,
        CREATE_REJECTED,
        TOPIC_NOT_FOUND,
        TOPIC_MISSING,
        PROXY_NOT_FOUND,
        PROXY_NOT_ALLOWED,
        ENDPOINT_NOT_ALLOWED,
        SCOPE_NOT_ALLOWED,
        SECRET_NOT_FOUND,
        CREDENTIALS_INVALID,
        AUTHENTICATION_FAILED,
        FORBIDDEN,
        RESOURCE_CONFLICT,
        INVALID_SPEC,
        RETRYING,
        RECONCILED,
        PAUSED,
        IN_SYNC,
        DRIFTED,
    ];
    ALL.into_iter().find(|k| *k == r).unwrap_or("Unknown")
}

/// 1 s doubling per consecutive failure, capped at 5 minutes.
pub fn exponential_backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(8)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{KafkaTopicSpec, is_true};
    use serde_json::json;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or_default()
    }

    fn topic(spec: serde_json::Value, status: Option<KafkaTopicStatus>) -> KafkaTopic {
        let spec: KafkaTopicSpec = serde_json::from_value(spec).unwrap_or_default();
        let mut t = KafkaTopic::new("orders", spec);
        t.metadata.namespace = Some("team-a".into());
        t.metadata.generation = Some(1);
        t.status = status;
        t
    }

    struct Case {
        topic: KafkaTopic,
        desired: DesiredTopic,
        settings: PlanSettings,
        now: Timestamp,
        last_look: Option<LastLook>,
        first_look_after: Option<Duration>,
        sent_create: Option<SentCreate>,
    }

    impl Case {
        fn new(spec: serde_json::Value, status: Option<KafkaTopicStatus>) -> Self {
            let topic = topic(spec, status);
            let desired = validate(&topic).unwrap_or_else(|e| panic!("{e}"));
            Self {
                topic,
                desired,
                settings: PlanSettings::default(),
                now: ts(0),
                last_look: None,
                first_look_after: None,
                sent_create: None,
            }
        }
        fn decide(&self, obs: &Observation) -> Decision {
            let status = self.topic.status.clone().unwrap_or_default();
            let input = PlanInput {
                generation: self.topic.metadata.generation,
                desired: &self.desired,
                proxy_endpoint: "https://c-kafkarest.example",
                previous: &status,
                now: self.now,
                settings: &self.settings,
                last_look: self.last_look.as_ref(),
                first_look_after: self.first_look_after,
                sent_create: self.sent_create,
            };
            decide(&input, obs)
        }
    }

    fn finish(d: Decision) -> Finish {
        match d {
            Decision::Finish(f) => f,
            other => panic!("expected Finish, got {other:?}"),
        }
    }

    fn ready_reason(status: &KafkaTopicStatus) -> (String, String) {
        find_condition(&status.conditions, READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap_or_default()
    }

    fn parts(n: i32, replicas: &[i32]) -> Vec<PartitionDetail> {
        (0..n)
            .map(|p| PartitionDetail {
                partition: p,
                leader: replicas.first().copied(),
                replicas: replicas.to_vec(),
                isr: replicas.to_vec(),
            })
            .collect()
    }

    fn present_status(partitions: i32) -> KafkaTopicStatus {
        let c = Case::new(json!({"partitions": partitions}), None);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(partitions, &[1001, 1002, 1003]))),
            ..Default::default()
        }));
        f.status
    }

    #[test]
    fn absent_topic_with_policy_create_is_created_without_a_describe_first() {
        let c = Case::new(
            json!({"partitions": 12, "replicationFactor": 3, "config": {"retention.ms": 1000}}),
            None,
        );
        match c.decide(&Observation::default()) {
            Decision::Create {
                request,
                recreation,
            } => {
                assert!(!recreation);
                assert_eq!(request.topic_name, "orders");
                assert_eq!(request.partitions, Some(12));
                assert_eq!(request.replication_factor, Some(3));
                assert_eq!(request.config.get("retention.ms"), Some(&json!(1000)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepted_create_reports_creating_and_emits_created() {
        let c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Accepted),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason::CREATING.into())
        );
        assert!(is_true(&f.status.conditions, RECONCILING));
        assert_eq!(f.status.create_requested_at, Some(Time(ts(0))));
        assert_eq!(
            f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            vec![reason::CREATED]
        );
        assert_eq!(f.requeue_after, Duration::from_millis(500));
    }

    #[test]
    fn a_fresh_create_stays_creating_without_a_status_change() {
        let mut c = Case::new(json!({}), None);
        let created = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Accepted),
            ..Default::default()
        }))
        .status;
        c.topic.status = Some(created.clone());
        c.now = ts(1);
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(
            f.status, created,
            "nothing to write while it is still Creating"
        );
        assert_eq!(f.requeue_after, Duration::from_millis(500));
        c.now = ts(3);
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
    }

    #[test]
    fn created_but_not_listed_waits_with_growing_poll_then_stalls_not_visible() {
        let mut c = Case::new(json!({}), None);
        let created = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Accepted),
            ..Default::default()
        }))
        .status;
        c.topic.status = Some(created);
        c.now = ts(4);
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
        assert!(is_true(&f.status.conditions, RECONCILING));
        assert_eq!(
            f.requeue_after,
            Duration::from_secs(2),
            "half the time waited"
        );
        assert!(f.events.is_empty());
        c.now = ts(100);
        assert_eq!(
            finish(c.decide(&Observation::default())).requeue_after,
            Duration::from_secs(30)
        );
        // Past the timeout a describe double-checks; a 404 makes it NotVisible + Stalled, once.
        c.now = ts(601);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        let f = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            described_now: true,
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason::NOT_VISIBLE.into())
        );
        assert!(is_true(&f.status.conditions, STALLED));
        assert_eq!(f.events.len(), 1);
        c.topic.status = Some(f.status);
        let again = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            described_now: true,
            ..Default::default()
        }));
        assert!(again.events.is_empty(), "NotVisible is announced once");
    }

    #[test]
    fn listed_topic_is_described_and_becomes_ready_with_details() {
        let mut c = Case::new(json!({"partitions": 3}), None);
        c.topic.status = Some(
            finish(c.decide(&Observation {
                created: Some(CreateOutcome::Accepted),
                ..Default::default()
            }))
            .status,
        );
        assert_eq!(
            c.decide(&Observation {
                listed: true,
                ..Default::default()
            }),
            Decision::Describe
        );
        let mut p = parts(3, &[1001, 1002, 1003]);
        p.reverse();
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(p)),
            described_now: true,
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::CREATED.into())
        );
        assert_eq!(f.status.partitions, Some(3));
        assert_eq!(f.status.replication_factor, Some(3));
        assert_eq!(f.status.under_replicated_partitions, Some(0));
        let details = f.status.partition_details.clone().unwrap_or_default();
        assert_eq!(
            details.iter().map(|d| d.partition).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(!is_true(&f.status.conditions, DRIFTED));
        assert!(f.events.is_empty(), "Created was announced at create time");
        assert_eq!(f.requeue_after, c.settings.resync_interval);
    }

    #[test]
    fn existing_topic_on_first_sight_is_adopted() {
        let c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(6, &[1001, 1002]))),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::ADOPTED.into())
        );
        assert_eq!(
            f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            vec![reason::ADOPTED]
        );
        assert_eq!(f.status.create_requested_at, None);
    }

    fn rejected(cause: Refusal, message: &str) -> Observation {
        Observation {
            created: Some(CreateOutcome::Rejected {
                message: message.into(),
                cause,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_create_refused_because_the_topic_exists_waits_and_adopts_never_stalls() {
        let mut c = Case::new(json!({}), None);
        let refused = rejected(Refusal::Exists, "HTTP 400: Topic 'orders' already exists.");
        assert_eq!(c.decide(&refused), Decision::Describe, "re-observe first");
        let adopted = finish(c.decide(&Observation {
            described: Some(Described::Found(parts(1, &[1001]))),
            ..refused.clone()
        }));
        assert_eq!(
            ready_reason(&adopted.status),
            ("True".into(), reason::ADOPTED.into())
        );
        // Not visible yet (the proxy's list is a cache): wait, Reconciling, no Event.
        let waiting = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            ..refused.clone()
        }));
        assert_eq!(
            ready_reason(&waiting.status),
            ("False".into(), reason::WAITING_FOR_VISIBILITY.into())
        );
        assert!(is_true(&waiting.status.conditions, RECONCILING));
        assert!(!is_true(&waiting.status.conditions, STALLED));
        assert!(waiting.events.is_empty(), "{:?}", waiting.events);
        assert_eq!(
            waiting.status.create_requested_at, None,
            "no create of ours happened"
        );
        // Later reconciles keep waiting without sending the create again…
        c.topic.status = Some(waiting.status);
        c.now = ts(1);
        let still = finish(c.decide(&Observation::default()));
        assert_eq!(
            ready_reason(&still.status).1,
            reason::WAITING_FOR_VISIBILITY
        );
        assert!(!is_true(&still.status.conditions, STALLED));
        // …until it shows: Adopted, with an Event.
        c.now = ts(2);
        assert_eq!(
            c.decide(&Observation {
                listed: true,
                ..Default::default()
            }),
            Decision::Describe
        );
        let found = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(1, &[1001]))),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&found.status),
            ("True".into(), reason::ADOPTED.into())
        );
        assert!(found.events.iter().any(|e| e.reason == reason::ADOPTED));
        // Still invisible after uncertain_retry: look, then send the create again (in case the
        // topic went away meanwhile); if the proxy still says it exists, the wait goes on.
        c.now = ts(31);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        assert!(matches!(
            c.decide(&Observation {
                described: Some(Described::NotFound),
                ..Default::default()
            }),
            Decision::Create {
                recreation: false,
                ..
            }
        ));
        let again = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            ..refused
        }));
        assert!(!is_true(&again.status.conditions, STALLED));
    }

    #[test]
    fn a_refusal_listed_on_one_node_is_a_topic_that_exists() {
        let c = Case::new(json!({}), None);
        // Listed by one management node, 404 on describe from the other: it exists.
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::NotFound),
            ..rejected(Refusal::Request, "HTTP 400: invalid")
        }));
        assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
        assert!(!is_true(&f.status.conditions, STALLED));
    }

    #[test]
    fn an_uncertain_create_that_turns_out_to_have_happened_is_created() {
        let mut c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Uncertain {
                message: "HTTP 500".into(),
            }),
            ..Default::default()
        }));
        c.topic.status = Some(f.status);
        c.now = ts(31);
        // The retry meets the topic the first attempt made.
        let f = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            ..rejected(Refusal::Exists, "HTTP 400: exists")
        }));
        assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
        assert!(f.status.create_requested_at.is_some());
        c.topic.status = Some(f.status);
        c.now = ts(32);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(1, &[1001]))),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::CREATED.into())
        );
    }

    #[test]
    fn refusals_about_the_request_stall_naming_the_cause_with_one_event() {
        for (cause, fragment) in [
            (
                Refusal::Config {
                    key: Some("retention.ms".into()),
                },
                "config retention.ms",
            ),
            (Refusal::Config { key: None }, "a config"),
            (Refusal::Request, "replication factor"),
        ] {
            let mut c = Case::new(json!({"config": {"retention.ms": 1000}}), None);
            let obs = Observation {
                described: Some(Described::NotFound),
                ..rejected(cause.clone(), "HTTP 400: nope")
            };
            let f = finish(c.decide(&obs));
            assert_eq!(
                ready_reason(&f.status),
                ("False".into(), reason::CREATE_REJECTED.into())
            );
            assert!(is_true(&f.status.conditions, STALLED));
            let stalled = find_condition(&f.status.conditions, STALLED).map(|c| c.message.clone());
            assert!(
                stalled
                    .as_deref()
                    .is_some_and(|m| m.contains(fragment) && m.contains("HTTP 400: nope")),
                "{cause:?}: {stalled:?}"
            );
            assert_eq!(f.events.len(), 1);
            assert!(f.events[0].warning && f.events[0].reason == reason::CREATE_REJECTED);
            // A minute later the same refusal: same status, no second Event.
            c.topic.status = Some(f.status.clone());
            c.now = ts(61);
            let again = finish(c.decide(&obs));
            assert!(again.events.is_empty(), "{cause:?}: {:?}", again.events);
            assert_eq!(again.status, f.status);
        }
    }

    #[test]
    fn an_unexplained_refusal_waits_then_stalls_after_the_visibility_timeout() {
        let mut c = Case::new(json!({}), None);
        let obs = Observation {
            described: Some(Described::NotFound),
            ..rejected(Refusal::Unclear, "HTTP 400: ")
        };
        let f = finish(c.decide(&obs));
        assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
        assert!(!is_true(&f.status.conditions, STALLED));
        c.topic.status = Some(f.status);
        c.now = ts(601);
        let f = finish(c.decide(&obs));
        assert_eq!(ready_reason(&f.status).1, reason::CREATE_REJECTED);
        assert!(is_true(&f.status.conditions, STALLED));
    }

    #[test]
    fn refusals_are_classified_from_the_status_and_the_text() {
        let config = json!({"retention.ms": 1, "local.retention.ms": 2});
        let config = config.as_object().cloned().unwrap_or_default();
        let cases = [
            (409, "", Refusal::Exists),
            (
                400,
                r#"{"error":"topic_already_exists","message":"Topic 'orders' already exists."}"#,
                Refusal::Exists,
            ),
            (400, "Topic orders exists", Refusal::Exists),
            (
                400,
                "Invalid value -5 for configuration retention.ms: Value must be at least -1",
                Refusal::Config {
                    key: Some("retention.ms".into()),
                },
            ),
            (
                400,
                "Unknown topic config name: local.retention.ms",
                Refusal::Config {
                    key: Some("local.retention.ms".into()),
                },
            ),
            (
                400,
                "Unknown topic config name: segment.ms",
                Refusal::Config { key: None },
            ),
            (
                400,
                "Replication factor: 4 larger than available brokers: 3.",
                Refusal::Request,
            ),
            (
                400,
                "Number of partitions must be larger than 0",
                Refusal::Request,
            ),
            (400, "", Refusal::Unclear),
            (422, "<html>Bad Request</html>", Refusal::Unclear),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                classify_refusal(status, body, "orders", &config),
                want,
                "{status} {body}"
            );
        }
        // A topic name that looks like a config key is not one.
        assert_eq!(
            classify_refusal(
                400,
                "Topic 'retention.ms-audit' already exists.",
                "retention.ms-audit",
                &config
            ),
            Refusal::Exists
        );
    }

    #[test]
    fn uncertain_create_waits_then_looks_and_tries_again() {
        let mut c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Uncertain {
                message: "503".into(),
            }),
            ..Default::default()
        }));
        assert_eq!(ready_reason(&f.status).1, reason::CREATE_UNCERTAIN);
        c.topic.status = Some(f.status);
        c.now = ts(10);
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(
            ready_reason(&f.status).1,
            reason::CREATE_UNCERTAIN,
            "no second create before uncertain_retry"
        );
        c.now = ts(31);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        assert!(matches!(
            c.decide(&Observation {
                described: Some(Described::NotFound),
                ..Default::default()
            }),
            Decision::Create {
                recreation: false,
                ..
            }
        ));
    }

    #[test]
    fn a_transient_failure_keeps_an_uncertain_create_uncertain() {
        let mut c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Uncertain {
                message: "500".into(),
            }),
            ..Default::default()
        }));
        c.topic.status = Some(f.status);
        c.now = ts(1);
        let blocked = finish_blocked(
            &c.topic,
            &Blocked::Transient {
                message: "list: HTTP 500".into(),
                retry_after: None,
            },
            c.now,
            &PlanSettings::default(),
            1,
        );
        assert_eq!(ready_reason(&blocked.status).1, reason::CREATE_UNCERTAIN);
        c.topic.status = Some(blocked.status);
        c.now = ts(31);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    }

    #[test]
    fn drift_is_reported_once_and_stays_ready() {
        let mut c = Case::new(json!({"partitions": 12, "replicationFactor": 3}), None);
        let obs = Observation {
            listed: true,
            described: Some(Described::Found(parts(6, &[1001, 1002]))),
            ..Default::default()
        };
        let f = finish(c.decide(&obs));
        assert_eq!(ready_reason(&f.status).0, "True");
        let drifted = find_condition(&f.status.conditions, DRIFTED)
            .cloned()
            .unwrap_or_else(|| panic!("no Drifted condition"));
        assert_eq!(drifted.status, "True");
        assert!(
            drifted
                .message
                .contains("spec.partitions is 12 but the cluster reports 6"),
            "{}",
            drifted.message
        );
        assert!(
            drifted
                .message
                .contains("spec.replicationFactor is 3 but the cluster reports 2"),
            "{}",
            drifted.message
        );
        assert!(
            f.events
                .iter()
                .any(|e| e.reason == reason::DRIFTED && e.warning)
        );
        c.topic.status = Some(f.status);
        let again = finish(c.decide(&obs));
        assert!(
            !again.events.iter().any(|e| e.reason == reason::DRIFTED),
            "Drifted is announced once"
        );
    }

    #[test]
    fn under_replicated_and_offline_partitions_are_counted_and_announced_on_change() {
        let mut c = Case::new(json!({}), Some(present_status(3)));
        let mut p = parts(3, &[1001, 1002, 1003]);
        p[0].isr = vec![1001, 1003];
        p[1].leader = None;
        p[1].isr = vec![];
        let obs = Observation {
            listed: true,
            described: Some(Described::Found(p)),
            ..Default::default()
        };
        let f = finish(c.decide(&obs));
        assert_eq!(f.status.under_replicated_partitions, Some(2));
        assert_eq!(f.status.offline_partitions, Some(1));
        let reasons: Vec<_> = f.events.iter().map(|e| e.reason).collect();
        assert!(
            reasons.contains(&"UnderReplicated") && reasons.contains(&"PartitionsOffline"),
            "{reasons:?}"
        );
        assert_eq!(ready_reason(&f.status).0, "True");
        c.topic.status = Some(f.status);
        assert!(finish(c.decide(&obs)).events.is_empty());
    }

    #[test]
    fn vanished_topic_is_recreated_only_after_list_and_describe_agree_for_the_grace_period() {
        let mut c = Case::new(json!({}), Some(present_status(3)));
        let ready = c.topic.status.clone().unwrap_or_default();
        c.settings.recreate_grace = Duration::from_secs(120);
        // Missing from the list: describe to confirm before anything else.
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        let gone = Observation {
            described: Some(Described::NotFound),
            described_now: true,
            ..Default::default()
        };
        // The first miss changes nothing a user sees: only the time is noted.
        let f = finish(c.decide(&gone));
        assert_eq!(f.status.conditions, ready.conditions, "still Ready");
        assert_eq!(f.status.missing_since, Some(Time(ts(0))));
        assert_eq!(f.status.partitions, Some(3));
        assert!(f.events.is_empty());
        c.topic.status = Some(f.status);
        c.now = ts(60);
        let f = finish(c.decide(&gone));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::ADOPTED.into())
        );
        // Listed by one node while the other 404s on describe: not gone, the count starts over.
        let mixed = finish(c.decide(&Observation {
            listed: true,
            ..gone.clone()
        }));
        assert_eq!(mixed.status.missing_since, None);
        assert_eq!(mixed.status.conditions, ready.conditions);
        // Agreed gone through the whole grace period: TopicMissing, and on the next look that
        // still agrees, created again.
        c.now = ts(121);
        let missing = finish(c.decide(&gone));
        assert_eq!(
            ready_reason(&missing.status),
            ("False".into(), reason::TOPIC_MISSING.into())
        );
        assert_eq!(
            missing.status.partitions,
            Some(3),
            "the last observation is kept"
        );
        c.topic.status = Some(missing.status);
        c.now = ts(122);
        assert!(matches!(
            c.decide(&gone),
            Decision::Create {
                recreation: true,
                ..
            }
        ));
        // It came back instead: Ready again, missing_since cleared.
        let back = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(3, &[1001]))),
            ..Default::default()
        }));
        assert_eq!(back.status.missing_since, None);
        assert_eq!(ready_reason(&back.status).0, "True");
    }

    #[test]
    fn observe_policy_never_creates() {
        let c = Case::new(json!({"managementPolicy": "Observe"}), None);
        let f = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason::TOPIC_NOT_FOUND.into())
        );
        // Someone has to create it: Stalled (kstatus "Failed"), not Reconciling.
        assert!(is_true(&f.status.conditions, STALLED));
        assert!(!is_true(&f.status.conditions, RECONCILING));
        // Looked for again on the list's cadence, not once per resync interval.
        assert_eq!(f.requeue_after, Duration::from_secs(30));
        assert!(f.events.is_empty());
        // It appears: Ready by itself, Stalled cleared, adopted.
        let mut appeared = Case::new(json!({"managementPolicy": "Observe"}), Some(f.status));
        appeared.now = ts(31);
        let f = finish(appeared.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(3, &[1001, 1002]))),
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::ADOPTED.into())
        );
        assert!(!is_true(&f.status.conditions, STALLED));
        // One that existed is reported gone only when list and describe agree through the
        // grace period (a lagging management node proves nothing).
        let mut c = Case::new(
            json!({"managementPolicy": "Observe"}),
            Some(present_status(3)),
        );
        let ready = c.topic.status.clone().unwrap_or_default();
        let gone = Observation {
            described: Some(Described::NotFound),
            ..Default::default()
        };
        let f = finish(c.decide(&gone));
        assert_eq!(f.status.conditions, ready.conditions);
        c.topic.status = Some(f.status);
        c.now = ts(301);
        let f = finish(c.decide(&gone));
        assert_eq!(ready_reason(&f.status).1, reason::TOPIC_NOT_FOUND);
        assert!(is_true(&f.status.conditions, STALLED));
        assert!(
            matches!(c.decide(&gone), Decision::Finish(_)),
            "Observe never creates"
        );
    }

    #[test]
    fn config_state_says_whether_spec_config_is_known_to_be_in_effect() {
        let config = json!({"config": {"retention.ms": 604800000}});
        let present = |c: &Case| {
            finish(c.decide(&Observation {
                listed: true,
                described: Some(Described::Found(parts(3, &[1001, 1002]))),
                ..Default::default()
            }))
        };
        // Created by this operator with spec.config: Applied.
        let mut created = Case::new(config.clone(), None);
        let mut requested = KafkaTopicStatus {
            create_requested_at: Some(Time(ts(0))),
            ..Default::default()
        };
        created.topic.status = Some(requested.clone());
        created.now = ts(2);
        let f = present(&created);
        assert_eq!(ready_reason(&f.status).1, reason::CREATED);
        assert_eq!(f.status.config_state, Some(ConfigState::Applied));
        let (status, _, message) = drifted(&f.status);
        assert_eq!(status, "False");
        assert!(message.contains(CONFIG_NOT_COMPARED), "{message}");
        assert!(!message.contains("the cluster matches"), "{message}");
        // Adopted (existed before): Unverifiable; the proxy cannot read config back.
        let f = present(&Case::new(config.clone(), None));
        assert_eq!(ready_reason(&f.status).1, reason::ADOPTED);
        assert_eq!(f.status.config_state, Some(ConfigState::Unverifiable));
        assert!(drifted(&f.status).2.contains(CONFIG_NOT_COMPARED));
        // Drifted partitions with a config: the message still says config is not compared.
        let f = present(&Case::new(
            json!({"partitions": 6, "config": {"retention.ms": 604800000}}),
            None,
        ));
        let (status, _, message) = drifted(&f.status);
        assert_eq!(status, "True");
        assert!(message.contains("spec.partitions is 6"), "{message}");
        assert!(message.contains(CONFIG_NOT_COMPARED), "{message}");
        // Without spec.config there is nothing to report.
        requested.conditions.clear();
        let mut plain = Case::new(json!({}), Some(requested));
        plain.now = ts(2);
        let f = present(&plain);
        assert_eq!(f.status.config_state, None);
        assert_eq!(drifted(&f.status).2, "the cluster matches the spec");
        // Kept while the topic looks missing (nothing visible changes in the grace period).
        let mut c = Case::new(config, Some(present(&created).status));
        c.now = ts(10);
        let f = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            ..Default::default()
        }));
        assert_eq!(f.status.config_state, Some(ConfigState::Applied));
    }

    fn drifted(status: &KafkaTopicStatus) -> (String, String, String) {
        find_condition(&status.conditions, DRIFTED)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            .unwrap_or_default()
    }

    #[test]
    fn same_inputs_give_an_identical_status_so_nothing_is_written() {
        let mut c = Case::new(json!({}), Some(present_status(3)));
        let obs = Observation {
            listed: true,
            described: Some(Described::Found(parts(3, &[1001, 1002, 1003]))),
            ..Default::default()
        };
        let first = finish(c.decide(&obs)).status;
        c.topic.status = Some(first.clone());
        c.now = ts(5000);
        assert_eq!(finish(c.decide(&obs)).status, first);
    }

    #[test]
    fn partition_details_are_capped() {
        let c = Case::new(json!({}), None);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(1001, &[1001]))),
            ..Default::default()
        }));
        assert_eq!(f.status.partitions, Some(1001));
        assert_eq!(f.status.partition_details, None);
        assert_eq!(f.status.partition_details_truncated, Some(true));
    }

    #[test]
    fn replica_lists_and_the_details_size_are_bounded() {
        let wide = |n: usize, replicas: usize| -> Vec<PartitionDetail> {
            (0..n)
                .map(|i| PartitionDetail {
                    partition: i32::try_from(i).unwrap_or(i32::MAX),
                    leader: Some(1),
                    replicas: (0..replicas as i32).collect(),
                    isr: (0..replicas as i32).collect(),
                })
                .collect()
        };
        // 40 replicas each: lists cut to 32, flagged; counts from the full answer.
        let (shown, cut) = bounded_details(&wide(3, 40));
        let shown = shown.expect("small enough to show");
        assert!(cut);
        assert!(
            shown
                .iter()
                .all(|p| p.replicas.len() == MAX_REPLICAS_IN_STATUS
                    && p.isr.len() == MAX_REPLICAS_IN_STATUS)
        );
        assert_eq!(summarize(&wide(3, 40)).replication_factor, 40);
        // Within bounds: shown in full, not flagged.
        assert_eq!(bounded_details(&wide(3, 3)), (Some(wide(3, 3)), false));
        // 1000 partitions of 32 large broker ids would be ~700 KB: omitted, flagged.
        let mut big = wide(1000, 32);
        for p in &mut big {
            p.replicas = vec![i32::MAX; 32];
            p.isr = vec![i32::MAX; 32];
        }
        assert_eq!(bounded_details(&big), (None, true));
        assert!(serde_json::to_vec(&wide(1000, 3)).expect("json").len() < PARTITION_DETAILS_BUDGET);
    }

    #[test]
    fn spec_violations_found_at_runtime_are_invalid_spec() {
        let mut status = present_status(3);
        status.topic_name = Some("orders.v0".into());
        let t = topic(json!({}), Some(status));
        assert!(
            validate(&t)
                .err()
                .unwrap_or_default()
                .contains("cannot be renamed")
        );
        let mut status = present_status(3);
        status.proxy = Some("other/default".into());
        let t = topic(json!({}), Some(status));
        assert!(
            validate(&t)
                .err()
                .unwrap_or_default()
                .contains("spec.proxyRef")
        );
        let t = topic(json!({"config": {"retention.ms": {"x": 1}}}), None);
        assert!(
            validate(&t)
                .err()
                .unwrap_or_default()
                .starts_with("spec.config.retention.ms")
        );
        // Config outside Kafka's topic-level table (docs/topic-config.md): an unknown name or
        // a value no supported version accepts.
        let t = topic(json!({"config": {"retention.msec": 1000}}), None);
        assert!(
            validate(&t)
                .err()
                .unwrap_or_default()
                .starts_with("spec.config.retention.msec: not a topic-level config")
        );
        let t = topic(json!({"config": {"cleanup.policy": "compact,purge"}}), None);
        assert_eq!(
            validate(&t).err().as_deref(),
            Some("spec.config.cleanup.policy: must be a comma-separated list of compact, delete")
        );
        let t = topic(json!({"topicName": "a b"}), None);
        assert!(
            validate(&t)
                .err()
                .unwrap_or_default()
                .starts_with("spec.topicName")
        );
    }

    #[test]
    fn blocked_reasons_map_to_conditions() {
        let settings = PlanSettings::default();
        let t = topic(json!({}), None);
        for (blocked, reason, stalled) in [
            (
                Blocked::ProxyNotFound("no KafkaRestProxy team-a/default".into()),
                reason::PROXY_NOT_FOUND,
                true,
            ),
            (
                Blocked::ProxyNotAllowed("not allowed".into()),
                reason::PROXY_NOT_ALLOWED,
                true,
            ),
            (
                Blocked::SecretNotFound("Secret team-a/sp does not exist".into()),
                reason::SECRET_NOT_FOUND,
                true,
            ),
            (
                Blocked::CredentialsInvalid("Secret sp lacks clientSecret".into()),
                reason::CREDENTIALS_INVALID,
                true,
            ),
            (
                Blocked::AuthenticationFailed("AADSTS7000215: invalid client secret".into()),
                reason::AUTHENTICATION_FAILED,
                true,
            ),
            (
                Blocked::Forbidden("not a member".into()),
                reason::FORBIDDEN,
                true,
            ),
            (
                Blocked::Conflict {
                    owner: "team-a/first".into(),
                },
                reason::RESOURCE_CONFLICT,
                true,
            ),
            (
                Blocked::InvalidSpec("spec.config.x: bad".into()),
                reason::INVALID_SPEC,
                true,
            ),
        ] {
            let f = finish_blocked(&t, &blocked, ts(0), &settings, 0);
            assert_eq!(
                ready_reason(&f.status),
                ("False".into(), reason.into()),
                "{blocked:?}"
            );
            assert_eq!(
                is_true(&f.status.conditions, STALLED),
                stalled,
                "{blocked:?}"
            );
        }
        let f = finish_blocked(
            &t,
            &Blocked::Conflict {
                owner: "team-a/first".into(),
            },
            ts(0),
            &settings,
            0,
        );
        assert!(
            f.status
                .conditions
                .iter()
                .any(|c| c.message.contains("team-a/first"))
        );
        assert_eq!(f.events.len(), 1);
        let auth = finish_blocked(
            &t,
            &Blocked::AuthenticationFailed("AADSTS7000215".into()),
            ts(0),
            &settings,
            3,
        );
        assert_eq!(
            auth.requeue_after,
            Duration::from_secs(8),
            "authentication failures back off exponentially"
        );
    }

    #[test]
    fn transient_failures_keep_a_ready_topic_ready_and_honour_retry_after() {
        let settings = PlanSettings::default();
        let t = topic(json!({}), Some(present_status(3)));
        let f = finish_blocked(
            &t,
            &Blocked::Transient {
                message: "proxy answered 503".into(),
                retry_after: Some(Duration::from_secs(7)),
            },
            ts(10),
            &settings,
            0,
        );
        assert_eq!(ready_reason(&f.status).0, "True");
        assert!(is_true(&f.status.conditions, RECONCILING));
        assert_eq!(f.requeue_after, Duration::from_secs(7));
        let fresh = topic(json!({}), None);
        let f = finish_blocked(
            &fresh,
            &Blocked::Transient {
                message: "timeout".into(),
                retry_after: None,
            },
            ts(10),
            &settings,
            2,
        );
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason::RETRYING.into())
        );
        assert_eq!(f.requeue_after, Duration::from_secs(4));
    }

    #[test]
    fn paused_keeps_ready_and_adds_paused() {
        let settings = PlanSettings::default();
        let t = topic(json!({}), Some(present_status(3)));
        let f = finish_blocked(&t, &Blocked::Paused, ts(10), &settings, 0);
        assert_eq!(ready_reason(&f.status).0, "True");
        assert!(is_true(&f.status.conditions, PAUSED));
        assert!(f.events.is_empty());
    }

    const ENDPOINT: &str = "https://c-kafkarest.example";

    fn look(at: Timestamp) -> LastLook {
        LastLook {
            at,
            endpoint: ENDPOINT.into(),
        }
    }

    #[test]
    fn a_triggered_reconcile_reuses_a_recent_description() {
        let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
        let seen = parts(3, &[1001, 1002, 1003]);
        c.last_look = Some(look(ts(0)));
        c.now = ts(100);
        let listed = Observation {
            listed: true,
            ..Default::default()
        };
        let f = finish(c.decide(&listed));
        assert_eq!(Some(&f.status), c.topic.status.as_ref(), "nothing to write");
        assert!(f.events.is_empty());
        assert_eq!(f.look, LookUpdate::Keep);
        // Due when the description's lifetime (resync less its 10 % jitter) runs out.
        assert_eq!(f.requeue_after, Duration::from_secs(540 - 100));
        // At the resync it is described again, and the new description remembered.
        c.now = ts(540);
        assert_eq!(c.decide(&listed), Decision::Describe);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(seen.clone())),
            described_now: true,
            ..Default::default()
        }));
        assert_eq!(f.look, LookUpdate::Remember(Box::new(look(ts(540)))));
        // Not listed: the description proves nothing about now.
        c.now = ts(541);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        let f = finish(c.decide(&Observation {
            described: Some(Described::NotFound),
            described_now: true,
            ..Default::default()
        }));
        assert_eq!(f.look, LookUpdate::Forget);
    }

    #[test]
    fn after_a_restart_a_current_ready_topic_is_described_at_its_share_of_the_resync() {
        let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
        c.first_look_after = Some(Duration::from_secs(123));
        let listed = Observation {
            listed: true,
            ..Default::default()
        };
        let f = finish(c.decide(&listed));
        assert_eq!(Some(&f.status), c.topic.status.as_ref(), "nothing to write");
        assert_eq!(f.requeue_after, Duration::from_secs(123));
        let LookUpdate::Remember(inherited) = f.look else {
            panic!("the inherited status is remembered: {:?}", f.look);
        };
        assert_eq!(inherited.endpoint, ENDPOINT);
        // A reconcile triggered before then (a Secret rotation) still costs no describe …
        c.last_look = Some(*inherited);
        c.first_look_after = None;
        c.now = ts(100);
        let f = finish(c.decide(&listed));
        assert_eq!(f.requeue_after, Duration::from_secs(23));
        assert_eq!(f.look, LookUpdate::Keep);
        // … and at its time it is described.
        c.now = ts(123);
        assert_eq!(c.decide(&listed), Decision::Describe);
        // A topic missing from the first list is looked at at once.
        c.last_look = None;
        c.first_look_after = Some(Duration::from_secs(123));
        c.now = ts(0);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    }

    #[test]
    fn only_a_current_ready_status_stands_in_for_a_describe() {
        let listed = Observation {
            listed: true,
            ..Default::default()
        };
        // A spec change the previous process did not see yet.
        let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
        c.topic.metadata.generation = Some(2);
        c.first_look_after = Some(Duration::from_secs(5));
        assert_eq!(c.decide(&listed), Decision::Describe);
        // Not Ready (e.g. Stalled on credentials before the restart).
        let mut stalled = present_status(3);
        stalled.conditions.retain(|c| c.type_ != READY);
        let c2 = Case {
            first_look_after: Some(Duration::from_secs(5)),
            ..Case::new(json!({"partitions": 3}), Some(stalled))
        };
        assert_eq!(c2.decide(&listed), Decision::Describe);
        // A topic that looked missing before the restart.
        let mut missing = present_status(3);
        missing.missing_since = Some(Time(ts(-1)));
        let c3 = Case {
            first_look_after: Some(Duration::from_secs(5)),
            ..Case::new(json!({"partitions": 3}), Some(missing))
        };
        assert_eq!(c3.decide(&listed), Decision::Describe);
        // Ready but retrying after a failure when the previous process stopped.
        let retrying = finish_blocked(
            &topic(json!({"partitions": 3}), Some(present_status(3))),
            &Blocked::Transient {
                message: "the proxy failed (HTTP 500)".into(),
                retry_after: None,
            },
            ts(1),
            &PlanSettings::default(),
            1,
        )
        .status;
        let c4 = Case {
            first_look_after: Some(Duration::from_secs(5)),
            ..Case::new(json!({"partitions": 3}), Some(retrying))
        };
        assert_eq!(c4.decide(&listed), Decision::Describe);
    }

    #[test]
    fn a_new_endpoint_adopts_the_topic_there_at_once_keeping_ready_since() {
        let before = present_status(3);
        let mut moved = before.clone();
        moved.proxy_endpoint = Some("https://old-kafkarest.example".into());
        moved.create_requested_at = Some(Time(ts(-50)));
        let mut c = Case::new(json!({"partitions": 3}), Some(moved));
        // A description of the old cluster is not reused.
        c.last_look = Some(LastLook {
            endpoint: "https://old-kafkarest.example".into(),
            ..look(ts(0))
        });
        c.now = ts(10);
        let listed = Observation {
            listed: true,
            ..Default::default()
        };
        assert_eq!(c.decide(&listed), Decision::Describe);
        let f = finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(3, &[4, 5, 6]))),
            described_now: true,
            ..Default::default()
        }));
        assert_eq!(
            ready_reason(&f.status),
            ("True".into(), reason::ADOPTED.into())
        );
        assert_eq!(f.status.proxy_endpoint.as_deref(), Some(ENDPOINT));
        assert_eq!(f.status.create_requested_at, None);
        assert_eq!(
            f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            vec![reason::ADOPTED]
        );
        let since = |s: &KafkaTopicStatus| {
            find_condition(&s.conditions, READY).map(|c| c.last_transition_time.clone())
        };
        assert_eq!(since(&f.status), since(&before), "Ready all along");
    }

    #[test]
    fn a_new_endpoint_without_the_topic_creates_it_without_grace_or_recreation() {
        let mut moved = present_status(3);
        moved.proxy_endpoint = Some("https://old-kafkarest.example".into());
        let c = Case::new(json!({"partitions": 3}), Some(moved.clone()));
        match c.decide(&Observation::default()) {
            Decision::Create { recreation, .. } => assert!(!recreation),
            other => panic!("expected a create at once, got {other:?}"),
        }
        // Policy Observe: reported absent at once, nothing created.
        let c = Case::new(
            json!({"partitions": 3, "managementPolicy": "Observe"}),
            Some(moved),
        );
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(ready_reason(&f.status).1, reason::TOPIC_NOT_FOUND);
    }

    #[test]
    fn waiting_messages_carry_no_times_so_polling_writes_nothing() {
        // Every poll while waiting, and every uncertain wait, produces the same status.
        let mut c = Case::new(json!({}), None);
        let uncertain = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Uncertain {
                message: "HTTP 500: trace 1234 at 10:00:01".into(),
            }),
            ..Default::default()
        }))
        .status;
        let message =
            |s: &KafkaTopicStatus| find_condition(&s.conditions, READY).map(|c| c.message.clone());
        assert!(!message(&uncertain).unwrap_or_default().contains("1234"));
        c.topic.status = Some(uncertain.clone());
        c.now = ts(1);
        assert_eq!(finish(c.decide(&Observation::default())).status, uncertain);

        let mut c = Case::new(json!({}), None);
        let created = finish(c.decide(&Observation {
            created: Some(CreateOutcome::Accepted),
            ..Default::default()
        }))
        .status;
        c.topic.status = Some(created);
        c.now = ts(4);
        let waiting = finish(c.decide(&Observation::default())).status;
        c.topic.status = Some(waiting.clone());
        for t in [5, 17, 90, 400] {
            c.now = ts(t);
            assert_eq!(finish(c.decide(&Observation::default())).status, waiting);
        }
    }

    #[test]
    fn a_create_whose_recording_failed_is_not_sent_again_before_its_time() {
        // Accepted: waits for visibility like a recorded one.
        let mut c = Case::new(json!({}), None);
        c.sent_create = Some(SentCreate {
            at: ts(0),
            uncertain: false,
        });
        c.now = ts(1);
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(f.status.create_requested_at, Some(Time(ts(0))));
        assert!(is_true(&f.status.conditions, RECONCILING));
        // Without a clear answer: uncertain, and tried again only after --uncertain-retry.
        c.sent_create = Some(SentCreate {
            at: ts(0),
            uncertain: true,
        });
        let f = finish(c.decide(&Observation::default()));
        assert_eq!(ready_reason(&f.status).1, reason::CREATE_UNCERTAIN);
        c.now = ts(31);
        assert_eq!(c.decide(&Observation::default()), Decision::Describe);
        // A status that records a create (or the topic) wins over the memory.
        let c = Case {
            sent_create: Some(SentCreate {
                at: ts(0),
                uncertain: true,
            }),
            ..Case::new(json!({"partitions": 3}), Some(present_status(3)))
        };
        assert_eq!(
            c.decide(&Observation {
                listed: true,
                ..Default::default()
            }),
            Decision::Describe
        );
    }
}
