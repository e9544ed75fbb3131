//! The Python sample of Microsoft's HDInsight Kafka REST proxy article against the emulator:
//! runs `tests/rest_sample.py` (create a topic, wait until it is listed, produce the sample's six
//! records, consume them back, list the partitions, describe partition 0) with the interpreter
//! named by `HDI_TEST_PYTHON` (which must have `msal` and `requests` installed), with only the
//! endpoint, authority, tenant, client and CA pointed at the emulator. Without the variable
//! the test fails under `CI` and is skipped visibly elsewhere (the shared `tests/require`).

mod common;
#[path = "../../../tests/require/mod.rs"]
mod require;

use std::time::Duration;

use common::{CLIENT_ID, Env, SECRET};
use hdinsight_emulator::EmulatorConfig;
use serde_json::{Value, json};

/// Long enough that the sample's wait loop lists the topic at least once before it shows.
const VISIBILITY_DELAY_MS: u64 = 1500;
/// The pause between listings (the article's is 30 s).
const POLL_SECONDS: &str = "0.25";

/// The value a consumed record carried when it was produced: strings as they are, anything
/// else as its JSON text.
fn decoded(value: &Value) -> Value {
    let text = value.as_str().expect("consumed values are strings");
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Runs the sample against `env` and returns the JSON line it printed. `partition_count`
/// replaces the sample's partition count of 1.
async fn run_sample(python: &str, env: &Env, partition_count: Option<&str>) -> Value {
    let base = env.emulator.base_url();
    let ca = env.dir.join("ca.pem");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rest_sample.py");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .env("HDI_KAFKAREST_ENDPOINT", &base)
        .env("HDI_AUTHORITY_HOST", env.emulator.authority_url())
        .env("HDI_TENANT", env.emulator.tenant_id())
        .env("HDI_CLIENT_ID", CLIENT_ID)
        .env("HDI_CLIENT_SECRET", SECRET)
        .env("HDI_SAMPLE_POLL_SECONDS", POLL_SECONDS)
        .env("HDI_SAMPLE_WAIT_SECONDS", "30")
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("HDI_SAMPLE_PARTITION_COUNT")
        .kill_on_drop(true);
    if let Some(count) = partition_count {
        command.env("HDI_SAMPLE_PARTITION_COUNT", count);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the sample finishes within two minutes")
        .expect("the python interpreter runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rest_sample.py failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line on stdout")
}

fn python() -> Option<String> {
    require::require_var(
        "HDI_TEST_PYTHON",
        "a python with msal and requests installed",
    )
}

#[tokio::test]
async fn microsofts_python_sample_runs_to_the_end() {
    let Some(python) = python() else {
        return;
    };
    let env = Env::start_split(EmulatorConfig {
        visibility_delay_ms: VISIBILITY_DELAY_MS,
        ..common::fast_config()
    })
    .await;
    let result = run_sample(&python, &env, None).await;
    let topic = result["topic"]
        .as_str()
        .expect("the topic name")
        .to_string();
    assert!(topic.starts_with("hello_topic_"), "{topic}");
    assert!(result["status"].is_string(), "{result}");
    assert!(result["create"].is_string(), "{result}");
    assert!(result["produce"].is_string(), "{result}");

    // The topic list is a cache: the loop saw the topic missing first, then present, and only
    // once the visibility delay had passed (elapsed times count from before the create).
    let polls = result["polls"].as_array().expect("polls");
    let listed: Vec<bool> = polls
        .iter()
        .map(|p| p["listed"].as_bool().expect("listed"))
        .collect();
    assert!(
        listed.len() >= 2 && !listed[0],
        "the loop lists at least once before the topic shows: {polls:?}"
    );
    assert_eq!(
        listed.iter().filter(|l| **l).count(),
        1,
        "the loop stops at the first listing that shows it: {polls:?}"
    );
    assert_eq!(listed.last(), Some(&true), "{polls:?}");
    let shown_after = polls
        .last()
        .and_then(|p| p["elapsed_ms"].as_u64())
        .expect("elapsed_ms");
    assert!(
        shown_after >= VISIBILITY_DELAY_MS,
        "listed {shown_after} ms after the create, before the {VISIBILITY_DELAY_MS} ms delay"
    );
    assert!(
        shown_after < VISIBILITY_DELAY_MS + 5000,
        "listed only {shown_after} ms after the create"
    );

    // Six records back, in the order produced, all in the one partition the sample creates.
    let produced = result["produced"].as_array().expect("produced");
    let consumed = result["consumed"].as_array().expect("consumed");
    assert_eq!(produced.len(), 6, "{result}");
    assert_eq!(consumed.len(), 6, "{result}");
    for (i, (record, sent)) in consumed.iter().zip(produced).enumerate() {
        assert_eq!(record["partition"], 0, "record {i}: {record}");
        assert_eq!(record["offset"], i, "record {i}: {record}");
        assert_eq!(decoded(&record["value"]), sent["value"], "record {i}");
        assert_eq!(
            record["key"],
            sent.get("key").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(
            record["timestampType"], "CreateTime",
            "record {i}: {record}"
        );
        assert!(record["timestamp"].as_i64().is_some_and(|t| t > 0));
    }
    assert_eq!(consumed[0]["value"], "**********");
    assert_eq!(consumed[0]["key"], "key1");
    assert_eq!(consumed[1]["value"], "5");
    assert_eq!(
        consumed[2]["value"], "3.14",
        "the float keeps its JSON text"
    );
    assert_eq!(
        decoded(&consumed[5]["value"])["HDI Kafka REST server info"]["servers"][2]["server id"],
        3
    );

    // count=2 from offset 0: three full pages, then an empty one whose NextOffset is the offset
    // asked for, which ends the sample's loop.
    let calls: Vec<(u64, String, usize)> = result["consume_calls"]
        .as_array()
        .expect("consume_calls")
        .iter()
        .map(|c| {
            (
                c["offset"].as_u64().expect("offset"),
                c["next_offset"].as_str().expect("NextOffset").to_string(),
                c["offsets"].as_array().expect("offsets").len(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            (0, "2".to_string(), 2),
            (2, "4".to_string(), 2),
            (4, "6".to_string(), 2),
            (6, "6".to_string(), 0),
        ]
    );

    // One partition with one replica, holding the six records; describing partition 0 alone
    // gives the same metadata.
    let partitions = &result["partitions"];
    assert_eq!(partitions["topic"], topic.as_str());
    let list = partitions["partitions"].as_array().expect("partitions");
    assert_eq!(list.len(), 1, "{partitions}");
    let p0 = &list[0];
    assert_eq!(p0["partition_id"], 0);
    assert_eq!(p0["earliest_offset"], 0);
    assert_eq!(p0["latest_offset"], 6);
    assert_eq!(p0["replicas"].as_array().map(Vec::len), Some(1), "{p0}");
    assert_eq!(p0["isr"], p0["replicas"], "{p0}");
    assert_eq!(p0["leader"], p0["replicas"][0], "{p0}");
    assert_eq!(result["partition"], *p0);

    // What the emulator itself recorded: the sample's properties, one create, every listing.
    let properties = env
        .emulator
        .control()
        .topic_properties(&topic)
        .expect("the topic exists");
    assert_eq!(properties.get("retention.ms"), Some(&json!(604_800_000)));
    assert_eq!(properties.get("min.insync.replicas"), Some(&json!("1")));
    let stats = env.emulator.control().stats();
    assert_eq!(stats.creates_per_topic.get(&topic), Some(&1));
    assert_eq!(stats.count_status("list", 200), polls.len() as u64);
    assert_eq!(stats.count_status("produce", 200), 1);
    assert_eq!(stats.count_status("consume", 200), 4);
    assert_eq!(stats.count_status("describe", 200), 1);
    assert_eq!(stats.count_status("describe_partition", 200), 1);
    assert_eq!(stats.tokens_issued.get(CLIENT_ID), Some(&1));
}

#[tokio::test]
async fn the_sample_reads_every_partition_of_a_two_partition_topic() {
    let Some(python) = python() else {
        return;
    };
    let env = Env::start_split(EmulatorConfig {
        visibility_delay_ms: VISIBILITY_DELAY_MS,
        ..common::fast_config()
    })
    .await;
    let result = run_sample(&python, &env, Some("2")).await;

    // Every record came back from exactly one place, the one sent to partition 0 from there,
    // and the unkeyed records were spread over both partitions.
    let placed: Vec<(u64, u64)> = result["placed"]
        .as_array()
        .expect("placed")
        .iter()
        .map(|p| {
            (
                p["partition"].as_u64().expect("partition"),
                p["offset"].as_u64().expect("offset"),
            )
        })
        .collect();
    assert_eq!(placed.len(), 6, "{result}");
    assert_eq!(placed[1].0, 0, "the record sent to partition 0: {placed:?}");
    let mut distinct = placed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "no record read twice: {placed:?}");
    let per_partition = |p: u64| placed.iter().filter(|(q, _)| *q == p).count();
    assert!(
        per_partition(0) > 0 && per_partition(1) > 0,
        "records in both partitions: {placed:?}"
    );

    // Each partition was read from 0 until an empty answer whose NextOffset is the offset asked
    // for, each answer's NextOffset being the next call's offset.
    let calls = result["consume_calls"].as_array().expect("consume_calls");
    for partition in 0..2u64 {
        let chain: Vec<&Value> = calls
            .iter()
            .filter(|c| c["partition"] == partition)
            .collect();
        let held = u64::try_from(per_partition(partition)).expect("a small count");
        assert_eq!(chain.first().map(|c| &c["offset"]), Some(&json!(0)));
        let mut offset = 0u64;
        for call in &chain {
            assert_eq!(call["offset"], offset, "partition {partition}: {chain:?}");
            let next: u64 = call["next_offset"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("NextOffset is an integer");
            let got = call["offsets"].as_array().map_or(0, Vec::len) as u64;
            assert_eq!(next, offset + got, "partition {partition}: {chain:?}");
            offset = next;
        }
        assert_eq!(offset, held, "partition {partition} read to its end");
        assert_eq!(
            chain
                .last()
                .map(|c| c["offsets"].as_array().map_or(0, Vec::len)),
            Some(0),
            "the last read of partition {partition} is empty"
        );
        let described = &result["partitions"]["partitions"][partition as usize];
        assert_eq!(described["partition_id"], partition);
        assert_eq!(described["latest_offset"], held, "{described}");
    }
    assert_eq!(
        result["partition"], result["partitions"]["partitions"][0],
        "describing partition 0 alone gives the same metadata"
    );
}
