//! The statuses a reconcile ends with: a present topic (summary, details, drift), a topic on its
//! way, a stalled one, and a blocked one.

use super::*;

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

pub(super) fn finish_present(
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
    finish_with(
        input,
        status,
        &conditions,
        events,
        input.settings.resync_interval,
        LookUpdate::Keep,
    )
}

pub(super) fn finish_waiting(
    input: &PlanInput<'_>,
    status: KafkaTopicStatus,
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
    finish_with(
        input,
        status,
        &conditions,
        events,
        requeue_after,
        LookUpdate::Keep,
    )
}

pub(super) fn finish_stalled(
    input: &PlanInput<'_>,
    status: KafkaTopicStatus,
    reason: &'static str,
    message: String,
    events: Vec<EventSpec>,
    requeue_after: Duration,
) -> Decision {
    finish_not_ready(input, status, reason, message, true, events, requeue_after)
}

pub(super) fn finish_not_ready(
    input: &PlanInput<'_>,
    status: KafkaTopicStatus,
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
    finish_with(
        input,
        status,
        &conditions,
        events,
        requeue_after,
        LookUpdate::Keep,
    )
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
    let requeue_after = blocked.wait(Reporter::Topic, attempt, settings.resync_interval);

    let (conditions, events) = match blocked {
        Blocked::Paused => {
            // Keep Ready/Stalled as they were: pausing changes nothing on the cluster.
            let mut kept: Vec<DesiredCondition> = prev
                .conditions
                .iter()
                .filter(|c| c.type_ != PAUSED && c.type_ != RECONCILING)
                .filter(|c| CONDITION_TYPES.contains(&c.type_.as_str()))
                .map(DesiredCondition::kept)
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
                blocked.message(),
            ));
            (kept, vec![])
        }
        Blocked::Transient { message, .. } => {
            // A Ready topic stays Ready, and a topic on its way (created, waiting to appear, or
            // after an uncertain create) keeps its progress: the plan reads it next time.
            const IN_PROGRESS: [&str; 4] = [
                reason::CREATING,
                reason::WAITING_FOR_VISIBILITY,
                reason::CREATE_UNCERTAIN,
                reason::TOPIC_MISSING,
            ];
            let ready = find_condition(&prev.conditions, READY)
                .filter(|c| c.status == "True" || IN_PROGRESS.contains(&c.reason.as_str()))
                .map_or_else(
                    || DesiredCondition::new(READY, false, reason::RETRYING, message.clone()),
                    DesiredCondition::kept,
                );
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
            (conds, vec![])
        }
        stalled => {
            let reason = stalled.reason(Reporter::Topic);
            let message = stalled.message();
            let same_as_before = find_condition(&prev.conditions, READY)
                .is_some_and(|c| c.reason == reason && c.message == message);
            let events = if stalled.warns() && !same_as_before {
                vec![EventSpec::warning(reason, message)]
            } else {
                vec![]
            };
            let mut conds = stalled.conditions(Reporter::Topic);
            keep_drifted(&prev, &mut conds);
            (conds, events)
        }
    };
    status.conditions = merge_conditions(&prev.conditions, &conditions, generation, &Time(now));
    Finish {
        status,
        events,
        requeue_after,
        look: LookUpdate::Keep,
    }
}

/// The end of a reconcile: `conditions` merged into `status`, keeping the transition time of
/// each whose status did not change.
pub(super) fn finish_with(
    input: &PlanInput<'_>,
    mut status: KafkaTopicStatus,
    conditions: &[DesiredCondition],
    events: Vec<EventSpec>,
    requeue_after: Duration,
    look: LookUpdate,
) -> Decision {
    status.conditions = merge_conditions(
        &input.previous.conditions,
        conditions,
        input.generation,
        &Time(input.now),
    );
    Decision::Finish(Finish {
        status,
        events,
        requeue_after,
        look,
    })
}

pub(super) fn keep_drifted(prev: &KafkaTopicStatus, conds: &mut Vec<DesiredCondition>) {
    if let Some(c) = find_condition(&prev.conditions, DRIFTED) {
        conds.push(DesiredCondition::kept(c));
    }
}
