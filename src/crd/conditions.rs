//! kstatus-compatible conditions: `Ready`, `Reconciling`, `Stalled` (always present once the
//! operator has looked at an object) plus `Drifted` and `Paused` on topics.
//!
//! `lastTransitionTime` changes only when a condition's status changes, so an unchanged
//! reconcile produces a byte-identical status and therefore no write.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const DRIFTED: &str = "Drifted";
pub const PAUSED: &str = "Paused";

/// Every condition type the operator writes.
pub const CONDITION_TYPES: [&str; 5] = [READY, RECONCILING, STALLED, DRIFTED, PAUSED];

/// A condition as the planner wants it; times are filled in by [`merge_conditions`]. The
/// reason is owned: a condition kept from the stored status keeps its reason as written, even
/// one this version does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: Cow<'static, str>,
    pub status: bool,
    pub reason: Cow<'static, str>,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: Cow::Borrowed(type_),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A stored condition, kept as it is (its transition time is kept by [`merge_conditions`]).
    pub fn kept(c: &Condition) -> Self {
        Self {
            type_: Cow::Owned(c.type_.clone()),
            status: c.status == "True",
            reason: Cow::Owned(c.reason.clone()),
            message: c.message.clone(),
        }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Builds the new condition list from the desired ones, keeping `lastTransitionTime` of every
/// condition whose status did not change. Conditions not in `desired` are dropped. Order follows
/// `desired`, so the output is deterministic.
pub fn merge_conditions(
    existing: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let status = status_str(d.status).to_string();
            let last_transition_time = existing
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: d.type_.to_string(),
                status,
                reason: d.reason.to_string(),
                message: bounded_message(&d.message),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Condition messages are cut to this many characters (Kubernetes allows 32768; a message that
/// quotes a hostile proxy must not come near that).
pub const MAX_CONDITION_MESSAGE: usize = 1024;

fn bounded_message(m: &str) -> String {
    match m.char_indices().nth(MAX_CONDITION_MESSAGE) {
        Some((idx, _)) => format!("{}…", &m[..idx]),
        None => m.to_string(),
    }
}

/// The condition of a type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of a type is present with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default())
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let first = merge_conditions(
            &[],
            &[DesiredCondition::new(READY, false, "Creating", "creating")],
            Some(1),
            &t(100),
        );
        assert_eq!(first[0].last_transition_time, t(100));
        // Same status, new reason and message: the transition time stays.
        let second = merge_conditions(
            &first,
            &[DesiredCondition::new(
                READY,
                false,
                "WaitingForVisibility",
                "waiting",
            )],
            Some(1),
            &t(200),
        );
        assert_eq!(second[0].last_transition_time, t(100));
        assert_eq!(second[0].reason, "WaitingForVisibility");
        // Status flips: the transition time moves.
        let third = merge_conditions(
            &second,
            &[DesiredCondition::new(READY, true, "Created", "ok")],
            Some(2),
            &t(300),
        );
        assert_eq!(third[0].last_transition_time, t(300));
        assert_eq!(third[0].observed_generation, Some(2));
        assert!(is_true(&third, READY));
        assert!(!is_true(&third, STALLED));
    }

    #[test]
    fn each_condition_keeps_its_own_transition_time() {
        let first = merge_conditions(
            &[],
            &[DesiredCondition::new(READY, false, "Creating", "creating")],
            Some(1),
            &t(100),
        );
        // Stalled appears later with the same status as Ready: it starts at its own time, not
        // at Ready's.
        let second = merge_conditions(
            &first,
            &[
                DesiredCondition::new(READY, false, "Creating", "creating"),
                DesiredCondition::new(STALLED, false, "Progressing", "working"),
            ],
            Some(1),
            &t(200),
        );
        assert_eq!(
            second
                .iter()
                .map(|c| (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.last_transition_time.clone()
                ))
                .collect::<Vec<_>>(),
            vec![("Ready", "False", t(100)), ("Stalled", "False", t(200))]
        );
        assert_eq!(
            find_condition(&second, STALLED).map(|c| c.reason.as_str()),
            Some("Progressing")
        );
        assert_eq!(
            find_condition(&second, READY).map(|c| c.reason.as_str()),
            Some("Creating")
        );
        assert!(find_condition(&second, PAUSED).is_none());
    }

    #[test]
    fn messages_are_kept_and_long_ones_cut() {
        let short = "topic orders: creating 3 partitions";
        let long = "é".repeat(MAX_CONDITION_MESSAGE + 10);
        let conditions = merge_conditions(
            &[],
            &[
                DesiredCondition::new(READY, true, "Created", short),
                DesiredCondition::new(STALLED, false, "Progressing", long.as_str()),
                DesiredCondition::new(
                    RECONCILING,
                    false,
                    "Done",
                    "x".repeat(MAX_CONDITION_MESSAGE),
                ),
            ],
            None,
            &t(1),
        );
        assert_eq!(conditions[0].message, short);
        assert_eq!(
            conditions[1].message,
            format!("{}…", "é".repeat(MAX_CONDITION_MESSAGE))
        );
        // Exactly at the limit: nothing is cut.
        assert_eq!(conditions[2].message, "x".repeat(MAX_CONDITION_MESSAGE));
    }
}
