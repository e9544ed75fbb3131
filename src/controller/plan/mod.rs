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
    CONDITION_TYPES, ConfigState, DRIFTED, DesiredCondition, KafkaTopic, KafkaTopicStatus,
    MAX_PARTITION_DETAILS, MAX_REPLICAS_IN_STATUS, ManagementPolicy, PARTITION_DETAILS_BUDGET,
    PAUSED, PartitionDetail, READY, RECONCILING, STALLED, find_condition, merge_conditions,
    normalize_config, validate_topic_name,
};

use super::outcome::Reporter;
pub use super::outcome::{Blocked, exponential_backoff, reason};

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

mod finish;
mod refusal;

pub use finish::*;
pub use refusal::{Refusal, classify_refusal};

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
    /// When the proxy last refused a create this process sent for this object (the topic
    /// exists, or no reason given): while waiting for such a topic to appear, the create is
    /// sent again only `uncertain_retry` after the last one.
    pub last_refused_create: Option<Timestamp>,
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
    // Names, generation and endpoint are rebuilt by every finish (`base_status`).
    KafkaTopicStatus {
        conditions: prev.conditions.clone(),
        ..Default::default()
    }
}

/// Decides the next step of a reconcile.
pub fn decide(input: &PlanInput<'_>, obs: &Observation) -> Decision {
    if cluster_changed(input) {
        let fresh = as_seen_from_new_cluster(input.previous);
        // A look at the old cluster says nothing about the new one, and neither does a create
        // sent there: `fresh` records neither a description nor a create, so no look stands in
        // for a describe (`reusable`), and the remembered create is not consulted.
        let moved = PlanInput {
            previous: &fresh,
            ..*input
        };
        return remember_look(&moved, obs, decide_here(&moved, obs));
    }
    if let Some(recorded) = with_sent_create(input) {
        let with_create = PlanInput {
            previous: &recorded,
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
        // Past the visibility timeout (reached before `--uncertain-retry` when that is the
        // longer). A create without a clear answer is tried again: nothing appeared, so it most
        // likely did not happen. An accepted one is reported.
        if previous_ready_reason(prev) == Some(reason::CREATE_UNCERTAIN) {
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
        // Since the last create that was refused, when this process sent one after the wait
        // began: the wait before the next starts over, or every poll would send one.
        let since_sent = input
            .last_refused_create
            .map_or(waited, |at| elapsed_since(input.now, &Time(at)).min(waited));
        if since_sent >= input.settings.uncertain_retry {
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
                .min(input.settings.uncertain_retry.saturating_sub(since_sent))
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
            if let Some(poll) = within_grace(input.settings, elapsed_since(input.now, &since)) {
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
        let reported = previous_ready_reason(prev) == Some(reason::TOPIC_MISSING);
        if let Some(poll) = within_grace(input.settings, elapsed_since(input.now, &since)) {
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

/// While a topic that existed has been agreed missing (list and describe) for less than the
/// grace period: when to look again — a quarter of the grace, at most what remains of it,
/// between 1 and 30 s. `None` once the grace is over.
fn within_grace(settings: &PlanSettings, missing_for: Duration) -> Option<Duration> {
    (missing_for < settings.recreate_grace).then(|| {
        (settings.recreate_grace / 4)
            .min(settings.recreate_grace.saturating_sub(missing_for))
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    })
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
        find_condition(&prev.conditions, type_).map_or(default, DesiredCondition::kept)
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
    finish_with(
        input,
        status,
        &conditions,
        vec![],
        requeue_after,
        LookUpdate::Keep,
    )
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

#[cfg(test)]
mod tests;
