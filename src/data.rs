//! `produce`, `consume` and the round trip of `check --topic`: the REST proxy's data path, as a
//! smoke test of a cluster and its credentials. The operator itself never reads or writes
//! records.

use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::check::{connect, fail, line};
use crate::cli::{ConsumeArgs, ProduceArgs};
use crate::proxy::{ConsumeRecord, PartitionMetadata, ProducerRecord, ProxyClient};

/// Records asked for per consume call; the proxy also stops at 6 MB.
const PAGE: u32 = 500;
/// Consume calls per partition at most, so that a proxy that never advances cannot loop forever.
const MAX_PAGES: usize = 10_000;

pub async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let client = connect(&args.connection).await?;
    let record = ProducerRecord {
        value: serde_json::Value::String(args.value),
        key: args.key.map(serde_json::Value::String),
        partition: args.partition,
    };
    client
        .produce(&args.topic, std::slice::from_ref(&record))
        .await
        .map_err(|e| anyhow!("producing to {}: {e}", args.topic))?;
    println!("produced 1 record to {}", args.topic);
    Ok(())
}

pub async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = connect(&args.connection).await?;
    let partitions = partitions(&client, &args.topic, args.partition).await?;
    let mut out = std::io::stdout().lock();
    for p in &partitions {
        let start = args.offset.unwrap_or(p.earliest_offset);
        read_partition(&client, &args.topic, p, start, args.count, |r| {
            use std::io::Write as _;
            writeln!(out, "{}", format_record(r)).map_err(|e| anyhow!("stdout: {e}"))
        })
        .await?;
    }
    Ok(())
}

/// The topic's partitions, or the one asked for.
async fn partitions(
    client: &ProxyClient,
    topic: &str,
    only: Option<i32>,
) -> anyhow::Result<Vec<PartitionMetadata>> {
    let described = client
        .describe_topic(topic)
        .await
        .map_err(|e| anyhow!("describing {topic}: {e}"))?;
    let mut partitions = described.partitions;
    partitions.sort_by_key(|p| p.partition_id);
    if let Some(wanted) = only {
        partitions.retain(|p| p.partition_id == wanted);
        if partitions.is_empty() {
            bail!("{topic} has no partition {wanted}");
        }
    }
    Ok(partitions)
}

/// Reads up to `count` records of one partition from `start`, stopping at the log end the
/// description reported, and hands each to `sink`.
async fn read_partition(
    client: &ProxyClient,
    topic: &str,
    partition: &PartitionMetadata,
    start: i64,
    count: u32,
    mut sink: impl FnMut(&ConsumeRecord) -> anyhow::Result<()>,
) -> anyhow::Result<u32> {
    let mut offset = start;
    let mut read = 0u32;
    for _ in 0..MAX_PAGES {
        if read >= count || offset >= partition.latest_offset {
            break;
        }
        let page = client
            .consume(
                topic,
                partition.partition_id,
                offset,
                PAGE.min(count - read),
            )
            .await
            .map_err(|e| {
                anyhow!(
                    "reading {topic} partition {} at offset {offset}: {e}",
                    partition.partition_id
                )
            })?;
        let Some(last) = page.records.last().map(|r| r.offset) else {
            break;
        };
        for r in page.records.iter().take((count - read) as usize) {
            sink(r)?;
            read += 1;
        }
        // Move past what came back even if the proxy sent a NextOffset that does not advance.
        let next = page.next_offset.unwrap_or(last.saturating_add(1));
        offset = next
            .max(last.saturating_add(1))
            .max(offset.saturating_add(1));
    }
    Ok(read)
}

/// One line per record: partition, offset, key and value, tab-separated; key and value are JSON
/// strings (so tabs and newlines in them stay on the line) and a missing key is `null`.
pub fn format_record(r: &ConsumeRecord) -> String {
    let text = |v: &Option<String>| {
        v.as_ref().map_or("null".to_string(), |s| {
            serde_json::Value::String(s.clone()).to_string()
        })
    };
    format!(
        "{}\t{}\t{}\t{}",
        r.partition,
        r.offset,
        text(&r.key),
        text(&r.value)
    )
}

/// `check --topic`: writes one record with a unique value to partition 0 and reads it back
/// from the offset the log ended at before. Returns the report lines and whether both worked.
pub async fn round_trip(client: &ProxyClient, topic: &str) -> (String, bool) {
    let mut out = String::new();
    let before = match client.describe_topic(topic).await {
        Ok(t) => t.partitions.into_iter().find(|p| p.partition_id == 0),
        Err(e) => {
            fail(
                &mut out,
                &format!("GET /v1/metadata/topics/{topic}/partitions"),
                &e,
            );
            return (out, false);
        }
    };
    let Some(before) = before else {
        line(
            &mut out,
            false,
            &format!("GET /v1/metadata/topics/{topic}/partitions"),
            "the topic has no partition 0",
        );
        return (out, false);
    };
    let marker = format!("hdinsight-topic-operator check {}", uuid::Uuid::new_v4());
    let record = ProducerRecord {
        value: serde_json::Value::String(marker.clone()),
        key: None,
        partition: Some(0),
    };
    let produce_step = format!("POST /v1/producer/topics/{topic}");
    if let Err(e) = client.produce(topic, &[record]).await {
        fail(&mut out, &produce_step, &e);
        return (out, false);
    }
    line(&mut out, true, &produce_step, "1 record to partition 0");

    let consume_step = format!("GET /v1/consumer/topics/{topic}/partitions/0");
    // A record is readable once the in-sync replicas have it; give the cluster a few seconds.
    for attempt in 0..10u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        match client.consume(topic, 0, before.latest_offset, PAGE).await {
            Ok(page) => {
                if let Some(r) = page
                    .records
                    .iter()
                    .find(|r| r.value.as_deref() == Some(marker.as_str()))
                {
                    line(
                        &mut out,
                        true,
                        &consume_step,
                        &format!("read the record back at offset {}", r.offset),
                    );
                    return (out, true);
                }
            }
            Err(e) => {
                fail(&mut out, &consume_step, &e);
                return (out, false);
            }
        }
    }
    line(
        &mut out,
        false,
        &consume_step,
        &format!(
            "the record written at or after offset {} did not come back within 5 s",
            before.latest_offset
        ),
    );
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_print_one_per_line_with_quoted_key_and_value() {
        let r = ConsumeRecord {
            key: None,
            value: Some("a\tb\nc \"q\"".into()),
            partition: 2,
            offset: 41,
            timestamp: None,
            timestamp_type: None,
        };
        assert_eq!(format_record(&r), "2\t41\tnull\t\"a\\tb\\nc \\\"q\\\"\"");
        let r = ConsumeRecord {
            key: Some("k".into()),
            ..r
        };
        assert!(format_record(&r).starts_with("2\t41\t\"k\"\t"));
    }
}
