//! `sandbox bench`: N KafkaTopics at once against the emulators, the operator as a separate
//! process, every figure beside its lower bound.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use hdinsight_topic_operator::crd::{
    KafkaRestProxy, KafkaTopic, KafkaTopicSpec, READY, find_condition,
};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;

use crate::env::{CLIENT_SECRET, ClusterSettings, Env, NAMESPACE, sandbox_allowlist_env};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Number of KafkaTopics applied at once.
    #[arg(long, default_value_t = 1000)]
    pub topics: usize,
    /// Latency the emulated proxy adds to every call.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Delay before a created topic is listed.
    #[arg(long, default_value_t = 2000)]
    pub visibility_ms: u64,
    /// The proxy's requestsPerSecond limit (0 = unlimited).
    #[arg(long, default_value_t = 100)]
    pub rps: u32,
    /// The proxy's burst.
    #[arg(long, default_value_t = 200)]
    pub burst: u32,
    /// The proxy's maxConcurrentRequests.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,
    /// Resync interval of the operator during the run.
    #[arg(long, default_value_t = 20)]
    pub resync_secs: u64,
    /// How long the operator reuses the proxy's topic list (`--list-freshness`).
    #[arg(long, default_value_t = 2000)]
    pub list_freshness_ms: u64,
    /// Resync periods observed in the steady state.
    #[arg(long, default_value_t = 2)]
    pub steady_periods: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Working directory (kubeconfig, CA).
    #[arg(long, default_value = ".sandbox/bench")]
    pub dir: PathBuf,
}

#[derive(Serialize, Debug, Default)]
pub struct Results {
    pub topics: usize,
    pub latency_ms: u64,
    pub visibility_ms: u64,
    pub rps: u32,
    pub burst: u32,
    pub concurrency: u32,
    pub lower_bound_secs: f64,
    pub apply_secs: f64,
    pub all_ready_secs: f64,
    pub target_secs: f64,
    pub ttr_p50_secs: f64,
    pub ttr_p95_secs: f64,
    pub ttr_p99_secs: f64,
    pub creates: u64,
    pub describes: u64,
    pub lists: u64,
    pub proxy_calls_per_topic: f64,
    pub token_requests: u64,
    pub status_writes: u64,
    pub status_writes_per_topic: f64,
    pub peak_rss_mib: f64,
    pub cpu_secs: f64,
    /// CPU of this process: both emulators and the bench driver, up to the end of the burst.
    pub emulators_cpu_secs: f64,
    pub resync_secs: u64,
    pub list_freshness_ms: u64,
    pub steady_secs: f64,
    /// Topic lists sent to the proxy during the steady state.
    pub steady_lists: u64,
    pub steady_proxy_calls_per_minute: f64,
    pub steady_describes_per_topic_per_resync: f64,
    pub steady_status_writes: u64,
}

/// The time the proxy calls alone need under the limits (design §6).
pub fn lower_bound(args: &BenchArgs) -> Duration {
    let n = args.topics as f64;
    let visibility = args.visibility_ms as f64 / 1000.0;
    let rate = if args.rps == 0 {
        0.0
    } else {
        ((2.0 * n - f64::from(args.burst)).max(0.0)) / f64::from(args.rps)
    };
    let latency = 2.0 * n * (args.latency_ms as f64 / 1000.0) / f64::from(args.concurrency.max(1));
    Duration::from_secs_f64(visibility.max(rate).max(latency))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// (peak resident MiB, CPU seconds) of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // clock ticks per second is 100 on Linux.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (hwm_kib / 1024.0, cpu)
}

fn ready_transition_secs(t: &KafkaTopic) -> Option<f64> {
    let created = t.metadata.creation_timestamp.as_ref()?;
    let ready = find_condition(&t.status.as_ref()?.conditions, READY)?;
    if ready.status != "True" {
        return None;
    }
    let ms = ready.last_transition_time.0.as_millisecond() - created.0.as_millisecond();
    Some(ms as f64 / 1000.0)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let results = measure(&args).await?;
    print!("{}", markdown(&results));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub async fn measure(args: &BenchArgs) -> anyhow::Result<Results> {
    let cluster = ClusterSettings {
        visibility_delay: Duration::from_millis(args.visibility_ms),
        latency: Duration::from_millis(args.latency_ms),
        ..Default::default()
    };
    let env = Env::start(&args.dir, &cluster).await?;
    env.install(CLIENT_SECRET).await?;
    let proxies: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), NAMESPACE);
    let limits = serde_json::json!({"spec": {"limits": {
        "requestsPerSecond": args.rps, "burst": args.burst,
        "maxConcurrentRequests": args.concurrency, "requestTimeoutSeconds": 30}}});
    proxies
        .patch("default", &PatchParams::default(), &Patch::Merge(&limits))
        .await?;

    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("operator")
        .env("KUBECONFIG", &env.kubeconfig)
        .env("HDI_METRICS_ADDR", "127.0.0.1:0")
        .env("HDI_HEALTH_ADDR", "127.0.0.1:0")
        .env("HDI_RESYNC_INTERVAL", format!("{}s", args.resync_secs))
        .env(
            "HDI_LIST_FRESHNESS",
            format!("{}ms", args.list_freshness_ms),
        )
        .env("HDI_MAX_CONCURRENT_RECONCILES", "256")
        .envs(sandbox_allowlist_env())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the operator")?;
    let pid = child.id().unwrap_or(0);
    // The burst starts once the operator has synced its caches and checked the proxy (its
    // Ready condition), not after a guessed delay.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let proxy = proxies.get("default").await?;
        let conditions = proxy.status.map(|s| s.conditions).unwrap_or_default();
        if find_condition(&conditions, READY).is_some_and(|c| c.status == "True") {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            bail!("the KafkaRestProxy is not Ready after 60 s: {conditions:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let topics: Api<KafkaTopic> = Api::namespaced(env.client.clone(), NAMESPACE);
    let started = Instant::now();
    futures::stream::iter(0..args.topics)
        .map(|i| {
            let topics = topics.clone();
            async move {
                let spec: KafkaTopicSpec = serde_json::from_value(serde_json::json!({
                    "partitions": 3, "replicationFactor": 3,
                    "config": {"retention.ms": 86_400_000}
                }))?;
                let t = KafkaTopic::new(&format!("bench-{i:05}"), spec);
                topics.create(&PostParams::default(), &t).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let applied = started.elapsed();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let items = loop {
        let items = topics.list(&ListParams::default()).await?.items;
        let ready = items
            .iter()
            .filter(|t| ready_transition_secs(t).is_some())
            .count();
        if ready == args.topics {
            break items;
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            bail!(
                "only {ready} of {} topics Ready after {}s",
                args.topics,
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_ready = started.elapsed();
    let mut ttr: Vec<f64> = items.iter().filter_map(ready_transition_secs).collect();
    ttr.sort_by(f64::total_cmp);

    let hdi = env.hdi.control().stats();
    let kube = env.kube.control().stats();
    let (rss, cpu) = proc_usage(pid);
    let (_, emulators_cpu) = proc_usage(std::process::id());
    let n = args.topics as f64;
    let lb = lower_bound(args);
    let mut r = Results {
        topics: args.topics,
        latency_ms: args.latency_ms,
        visibility_ms: args.visibility_ms,
        rps: args.rps,
        burst: args.burst,
        concurrency: args.concurrency,
        lower_bound_secs: lb.as_secs_f64(),
        apply_secs: applied.as_secs_f64(),
        all_ready_secs: all_ready.as_secs_f64(),
        target_secs: 1.25 * lb.as_secs_f64() + 2.0,
        ttr_p50_secs: percentile(&ttr, 50.0),
        ttr_p95_secs: percentile(&ttr, 95.0),
        ttr_p99_secs: percentile(&ttr, 99.0),
        creates: hdi.count("create"),
        describes: hdi.count("describe"),
        lists: hdi.count("list"),
        token_requests: hdi.token_requests,
        status_writes: kube.writes_to("kafkatopics", Some("status")),
        peak_rss_mib: rss,
        cpu_secs: cpu,
        emulators_cpu_secs: emulators_cpu,
        ..Default::default()
    };
    r.proxy_calls_per_topic = (r.creates + r.describes + r.lists) as f64 / n;
    r.status_writes_per_topic = r.status_writes as f64 / n;

    // Steady state: nothing changes, so nothing may be written.
    let before_hdi = env.hdi.control().stats();
    let before_writes = env
        .kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"));
    let steady = Duration::from_secs(args.resync_secs * u64::from(args.steady_periods.max(1)));
    tokio::time::sleep(steady).await;
    let after_hdi = env.hdi.control().stats();
    let after_writes = env
        .kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"));
    let calls = |s: &hdinsight_emulator::Stats| {
        s.count("create")
            + s.count("describe")
            + s.count("list")
            + s.count("status")
            + s.count("brokers")
    };
    r.steady_secs = steady.as_secs_f64();
    r.resync_secs = args.resync_secs;
    r.list_freshness_ms = args.list_freshness_ms;
    r.steady_lists = after_hdi.count("list") - before_hdi.count("list");
    r.steady_proxy_calls_per_minute =
        (calls(&after_hdi) - calls(&before_hdi)) as f64 * 60.0 / steady.as_secs_f64();
    r.steady_describes_per_topic_per_resync = (after_hdi.count("describe")
        - before_hdi.count("describe")) as f64
        / n
        / f64::from(args.steady_periods.max(1));
    r.steady_status_writes = after_writes - before_writes;
    let (rss, cpu) = proc_usage(pid);
    r.peak_rss_mib = r.peak_rss_mib.max(rss);
    r.cpu_secs = cpu;
    let _ = child.kill().await;
    Ok(r)
}

/// Most topic lists the steady state may send: the list is shared and reused for the list
/// freshness, so one per freshness period (and one more for a period cut by the window).
pub fn steady_list_bound(r: &Results) -> u64 {
    let window_ms = (r.steady_secs * 1000.0) as u64;
    window_ms / r.list_freshness_ms.max(1) + 1
}

/// The results beside their bounds, as a Markdown table.
pub fn markdown(r: &Results) -> String {
    let mut s = format!(
        "N = {} topics, proxy latency {} ms, visibility {} ms, limits {} rps / burst {} / {} concurrent\n\n",
        r.topics, r.latency_ms, r.visibility_ms, r.rps, r.burst, r.concurrency
    );
    s.push_str("| figure | measured | bound / target |\n|---|---|---|\n");
    let mut row = |a: &str, b: String, c: String| s.push_str(&format!("| {a} | {b} | {c} |\n"));
    row(
        "applying the N KafkaTopics (the bench's own Kubernetes writes)",
        format!("{:.1} s", r.apply_secs),
        "–".into(),
    );
    row(
        "all Ready (from the first apply)",
        format!("{:.1} s", r.all_ready_secs),
        format!(
            "LB {:.1} s, target ≤ {:.1} s",
            r.lower_bound_secs, r.target_secs
        ),
    );
    row(
        "time to Ready p50 / p95 / p99",
        format!(
            "{:.0} / {:.0} / {:.0} s",
            r.ttr_p50_secs, r.ttr_p95_secs, r.ttr_p99_secs
        ),
        format!(
            "≥ {:.1} s (visibility); 1 s resolution",
            r.visibility_ms as f64 / 1000.0
        ),
    );
    row(
        "proxy calls per topic (create + describe + list)",
        format!(
            "{:.2} ({} + {} + {})",
            r.proxy_calls_per_topic, r.creates, r.describes, r.lists
        ),
        "≥ 2 (one create, one describe); target ≤ 2.1".into(),
    );
    row(
        "token requests",
        r.token_requests.to_string(),
        "1 per proxy per token lifetime".into(),
    );
    row(
        "status writes per topic",
        format!("{:.2} ({})", r.status_writes_per_topic, r.status_writes),
        "≥ 1; target ≤ 3".into(),
    );
    row(
        "operator peak RSS",
        format!("{:.0} MiB", r.peak_rss_mib),
        "target < 150 MiB at 10,000".into(),
    );
    row("operator CPU", format!("{:.1} s", r.cpu_secs), "–".into());
    row(
        "emulators + bench driver CPU (same machine) until all Ready",
        format!("{:.1} s", r.emulators_cpu_secs),
        format!(
            "with the operator's share, the machine's {} cores × {:.1} s = {:.1} CPU-seconds",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            r.all_ready_secs,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as f64
                * r.all_ready_secs
        ),
    );
    row(
        "steady state: proxy calls per minute",
        format!("{:.0}", r.steady_proxy_calls_per_minute),
        format!(
            "N · 60 / resync = {:.0} describes (+ a few lists and proxy checks)",
            r.topics as f64 * 60.0 / r.resync_secs.max(1) as f64
        ),
    );
    row(
        "steady state: topic lists",
        r.steady_lists.to_string(),
        format!(
            "≤ {:.0} s / {} ms freshness + 1 = {}",
            r.steady_secs,
            r.list_freshness_ms,
            steady_list_bound(r)
        ),
    );
    row(
        "steady state: describes per topic per resync",
        format!("{:.2}", r.steady_describes_per_topic_per_resync),
        "1".into(),
    );
    row(
        "steady state: status writes",
        r.steady_status_writes.to_string(),
        "0".into(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: usize) -> BenchArgs {
        BenchArgs {
            topics: n,
            latency_ms: 20,
            visibility_ms: 2000,
            rps: 100,
            burst: 200,
            concurrency: 16,
            resync_secs: 20,
            list_freshness_ms: 2000,
            steady_periods: 2,
            timeout_secs: 600,
            json: None,
            dir: PathBuf::from("x"),
        }
    }

    #[test]
    fn lower_bound_matches_the_design_examples() {
        // Default limits, N = 1,000, 20 ms, 2 s: LB = (2000 - 200) / 100 = 18 s.
        assert_eq!(lower_bound(&args(1000)).as_secs_f64(), 18.0);
        // Unthrottled, 64 concurrent, N = 10,000: 2 * 10,000 * 0.02 / 64 = 6.25 s.
        let mut a = args(10_000);
        a.rps = 0;
        a.concurrency = 64;
        assert_eq!(lower_bound(&a).as_secs_f64(), 6.25);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
