//! Every row of the behaviour table, as a unit test of the planner.

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
    last_refused_create: Option<Timestamp>,
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
            last_refused_create: None,
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
            last_refused_create: self.last_refused_create,
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

mod blocked;
mod create;
mod present;
